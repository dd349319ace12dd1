"""Migration 0006 (the quality summary) on populated catalogs: the backfill gives the report the writers gave."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, text

from iea_data.store import current_revision, get_engine, upgrade_database

NEW_TABLES = {"quality_images", "quality_annotators"}


def _report(ws):
    from iea_data.workflows.quality import quality_report

    rep = quality_report(ws, use_cache=False, plots=False)
    return rep.annotators, rep.images, rep.reliability


def test_0006_backfills_a_catalog_to_the_same_report_and_downgrades(workspace):
    """Writers keep the summary at head; down to 0005 and up again, the backfill gives the same report."""
    from alembic import command

    from iea_data.store import alembic_config
    from iea_data.workflows.labels import set_label_status
    from iea_data.workflows.quality import compute_consensus
    from iea_data.workflows.users import add_user
    from tests.workflows.conftest import PASSWORD
    from tests.workflows.quality.conftest import add_images, expert_map, save_expert

    ws = workspace
    users = [add_user(ws, f"u{k}", role="annotator", password=PASSWORD) for k in range(3)]
    ids = add_images(ws, 4)
    for i in ids:
        for j, u in enumerate(users):
            save_expert(ws, u.id, i, expert_map(i, 0.04 * j, 0.03 + 0.02 * j, seed=7 * i + j), status="submitted")
    save_expert(ws, users[0].id, ids[0], expert_map(ids[0], 0.0, 0.01, seed=1), status="draft")  # u0 leaves image 0
    compute_consensus(ws, method="mean")
    with ws.unit() as uow:
        from sqlalchemy import select

        from iea_data.store import Label

        lid = uow.session.scalar(select(Label.id).where(Label.author_id == users[1].id, Label.image_id == ids[1]))
        set_label_status(uow, lid, "rejected")  # u1 leaves image 1
    before = _report(ws)
    done = {r["name"]: r["images_done"] for r in before[0]}
    assert done == {"u0": 3, "u1": 3, "u2": 4}
    assert sorted(r["n_experts"] for r in before[1]) == [2, 2, 3, 3]
    assert all(r["seconds_per_image"] is not None for r in before[0])

    engine = ws.engine()
    command.downgrade(alembic_config(engine), "0005")
    assert current_revision(engine) == "0005"
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    assert "gap_s" not in {c["name"] for c in inspect(engine).get_columns("labels")}
    assert upgrade_database(engine) == "0006"
    assert _report(ws) == before


def test_0006_backfill_on_rows_written_by_an_older_version(db_url):
    """A 0005 catalog filled by plain SQL (times known): the backfilled figures, exactly."""
    engine = get_engine(db_url)
    assert upgrade_database(engine, "0005") == "0005"
    t0 = dt.datetime(2026, 11, 30, 9, 0, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, enabled, created_at, must_change_password) "
                "VALUES ('ann', 'annotator', true, CURRENT_TIMESTAMP, false)"
            )
        )
        for k in range(3):
            conn.execute(
                text(
                    "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                    f"VALUES ('{k:064x}', 'im{k}.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        # ann: image 1 (rev 1 submitted, rev 2 draft), image 2 accepted (imported), image 3 submitted;
        # saves at 0 s, 30.0004 s, 40 s (imported: no gap of its own), 2 h later (a break); the gap is
        # kept to the microsecond as the writers keep it (SQLite's julianday would give 30.000 s)
        rows = [
            (1, 1, "submitted", '{"n_strokes": 4}', 0),
            (1, 2, "draft", '{"n_strokes": 6}', 30.0004),
            (2, 1, "accepted", '{"imported_from": "labels import", "n_strokes": 0}', 40),
            (3, 1, "submitted", '{"n_strokes": 5}', 7240),
        ]
        for image, rev, status, params, sec in rows:
            conn.execute(
                text(
                    "INSERT INTO labels (image_id, kind, chain, revision, status, author_id, params, map_object, "
                    "height, width, created_at, updated_at) VALUES (:i, 'annotation', 'user:1', :r, :s, 1, :p, "
                    "'ab', 2, 2, :t, :t)"
                ),
                {"i": image, "r": rev, "s": status, "p": params, "t": t0 + dt.timedelta(seconds=sec)},
            )
    assert upgrade_database(engine) == "0006"
    with engine.connect() as conn:
        ann = conn.execute(
            text("SELECT user_id, images_done, strokes_sum, strokes_n, gaps_sum, gaps_n FROM quality_annotators")
        ).all()
        gaps = conn.execute(text("SELECT gap_s FROM labels ORDER BY id")).scalars().all()
        imgs = conn.execute(text("SELECT image_id, n_experts, experts FROM quality_images ORDER BY image_id")).all()
    assert [tuple(r) for r in ann] == [(1, 2, 15.0, 3, pytest.approx(30.0004, abs=1e-7), 1)]
    assert gaps[0] is None and gaps[2] is None  # the first save; an imported map
    assert gaps[1] == pytest.approx(30.0004, abs=1e-7) and gaps[3] == pytest.approx(7200.0, abs=1e-7)
    assert [tuple(r) for r in imgs] == [(2, 1, "1"), (3, 1, "1")]
