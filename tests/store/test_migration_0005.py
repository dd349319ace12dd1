"""Migration 0005 (gold images, workspace settings, stale consensus, ``imported`` labels) on a populated catalog."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from iea_data.store import current_revision, get_engine, upgrade_database

NEW_TABLES = {"gold_images", "workspace_settings", "consensus_stale"}

_LABEL = (
    "INSERT INTO labels (image_id, kind, chain, revision, status, map_object, height, width, created_at, updated_at) "
    "VALUES (1, '{kind}', '{kind}', {rev}, 'accepted', 'ab', 2, 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def test_0005_upgrades_a_populated_catalog_and_downgrades(db_url):
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0003") == "0003"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text(_LABEL.format(kind="refdiff", rev=1)))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # 0003 refuses the new kind
        conn.execute(text(_LABEL.format(kind="imported", rev=1)))
    assert upgrade_database(engine, "0005") == "0005"
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        assert conn.execute(text("SELECT kind, chain FROM labels")).all() == [("refdiff", "refdiff")]
        conn.execute(text(_LABEL.format(kind="imported", rev=1)))
        conn.execute(
            text(
                "INSERT INTO gold_images (image_id, label_id, added_at) "
                "SELECT 1, id, CURRENT_TIMESTAMP FROM labels WHERE kind = 'imported'"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one gold row per image
        conn.execute(
            text(
                "INSERT INTO gold_images (image_id, label_id, added_at) "
                "SELECT 1, id, CURRENT_TIMESTAMP FROM labels WHERE kind = 'refdiff'"
            )
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM gold_images"))
        conn.execute(text("DELETE FROM labels WHERE kind = 'imported'"))
    command.downgrade(alembic_config(engine), "0003")
    assert current_revision(engine) == "0003"
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM labels")).all() == [("refdiff",)]


def test_0005_rebuilds_labels_on_sqlite_while_reviews_refer_to_them(tmp_path):
    """SQLite rebuilds ``labels`` for the new kind check; rows that refer to labels must not stop it.

    With foreign keys on, SQLite refuses ``DROP TABLE labels`` while a review refers to a label
    (``FOREIGN KEY constraint failed``); the migration environment turns them off for the rebuild and
    checks them before the commit. Foreign keys are enforced again afterwards.
    """
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    assert upgrade_database(engine, "0004") == "0004"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (name, role, enabled, created_at, must_change_password) "
                "VALUES ('rev', 'reviewer', 1, CURRENT_TIMESTAMP, 0)"
            )
        )
        conn.execute(text(_LABEL.format(kind="annotation", rev=1)))
        conn.execute(
            text(
                "INSERT INTO reviews (label_id, reviewer_id, decision, created_at) "
                "VALUES (1, 1, 'accept', CURRENT_TIMESTAMP)"
            )
        )
    assert upgrade_database(engine, "0005") == "0005"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT label_id, decision FROM reviews")).all() == [(1, "accept")]
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    with pytest.raises(IntegrityError), engine.begin() as conn:  # foreign keys are on again
        conn.execute(
            text(
                "INSERT INTO reviews (label_id, reviewer_id, decision, created_at) "
                "VALUES (99, 1, 'accept', CURRENT_TIMESTAMP)"
            )
        )
    command.downgrade(alembic_config(engine), "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reviews")).scalar_one() == 1
