"""Issue 15's speed goals kept honest: the fast paths give the numbers the slow definitions give.

- the Quality page's per-annotator and per-image figures (SQL aggregates) against plain Python
  loops over every revision (the definitions the page had before), on SQLite and PostgreSQL;
- the pooled rater fit on a deterministic sample against the fit on every image (the sample's
  effect on the recovered bias and noise, and on the consensus maps, within stated tolerances);
- consensus rows written in batches: a run stopped part-way keeps whole batches, a re-run does the rest;
- :func:`save_label_batch` refuses a stale parent and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import select, update

from iea_data.core.errors import StaleRevisionError
from iea_data.store import Label, init_workspace, rebuild_quality_summary
from iea_data.workflows.labels import chain_head, save_label_batch, store_label_map
from iea_data.workflows.quality import (
    build_synthetic_quality_catalog,
    compute_consensus,
    quality_report,
    stored_rater_params,
)
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD, reader
from .conftest import add_images, expert_map, save_expert

MAX_GAP = 15 * 60


def _slow_annotator_figures(ws) -> dict[int, dict]:
    """images done, mean strokes, median gap per author: loops over every annotation revision."""
    with reader(ws) as s:
        rows = s.execute(
            select(Label.author_id, Label.image_id, Label.revision, Label.status, Label.params, Label.created_at)
            .where(Label.kind == "annotation")
            .order_by(Label.author_id, Label.created_at, Label.id)
        ).all()
    out: dict[int, dict] = defaultdict(lambda: {"strokes": [], "gaps": [], "newest": {}})
    last: dict[int, dt.datetime] = {}
    for uid, image_id, rev, status, params, created in rows:
        d = out[uid]
        p = json.loads(params) if params else {}
        if "n_strokes" in p and "imported_from" not in p:
            d["strokes"].append(p["n_strokes"])
        if uid in last:
            gap = (created - last[uid]).total_seconds()
            if 0 < gap <= MAX_GAP and "imported_from" not in p:
                d["gaps"].append(gap)
        last[uid] = created
        if rev >= d["newest"].get(image_id, (0, ""))[0]:
            d["newest"][image_id] = (rev, status)
    return {
        uid: {
            "images_done": sum(st in ("submitted", "accepted") for _r, st in d["newest"].values()),
            "strokes_per_image": round(float(np.mean(d["strokes"])), 2) if d["strokes"] else None,
            "seconds_per_image": round(float(np.median(d["gaps"])), 1) if d["gaps"] else None,
        }
        for uid, d in out.items()
    }


def _slow_images(ws) -> list[tuple]:
    """(image, experts, spread_mean, consensus id, method) for images with >= 2 expert heads, worst first."""
    with reader(ws) as s:
        rows = s.execute(
            select(Label.image_id, Label.chain, Label.revision, Label.status, Label.id, Label.params)
        ).all()
    heads: dict[tuple[int, str], tuple] = {}
    for r in rows:
        if r[1] != "consensus" and not r[1].startswith("user:"):
            continue
        if (r[0], r[1]) not in heads or r[2] > heads[(r[0], r[1])][2]:
            heads[(r[0], r[1])] = r
    experts: dict[int, int] = defaultdict(int)
    for (i, chain), r in heads.items():
        if chain.startswith("user:") and r[3] in ("submitted", "accepted"):
            experts[i] += 1
    out = []
    for i, n in experts.items():
        if n < 2:
            continue
        c = heads.get((i, "consensus"))
        p = json.loads(c[5]) if c else {}
        out.append((i, n, p.get("spread_mean"), c[4] if c else None, p.get("method")))
    out.sort(key=lambda r: (-(r[2] if r[2] is not None else -1.0), r[0]))
    return out


def test_report_aggregates_equal_the_slow_definitions(workspace):
    ws = workspace
    users = [add_user(ws, f"u{k}", role="annotator", password=PASSWORD) for k in range(3)]
    ids = add_images(ws, 5)
    for k, i in enumerate(ids):
        for j, u in enumerate(users):
            save_expert(ws, u.id, i, expert_map(i, 0.05 * j, 0.02 + 0.05 * j, seed=10 * k + j), status="submitted")
    # u0 revises image 0 (a draft head: not done there), u1's image 1 head is rejected, u2 has an imported revision
    save_expert(ws, users[0].id, ids[0], expert_map(ids[0], 0, 0.01, seed=99), status="draft")
    with ws.unit() as uow:
        uow.session.execute(
            update(Label).where(Label.author_id == users[1].id, Label.image_id == ids[1]).values(status="rejected")
        )
        uow.session.execute(
            update(Label)
            .where(Label.author_id == users[2].id, Label.image_id == ids[4])
            .values(params=json.dumps({"imported_from": "x.npy", "n_strokes": 40}))
        )
        # save times: gaps of 20 s, 45 s, a 2-hour break, ... per author (the catalog's own times are all "now")
        t0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
        steps = [20, 45, 7200, 33, 61, 5]
        labels = uow.session.execute(select(Label.id, Label.author_id).order_by(Label.id)).all()
        seen: dict[int, float] = defaultdict(float)
        for n, (lid, uid) in enumerate(labels):
            seen[uid] += steps[n % len(steps)] + 0.2 * uid
            stamp = t0 + dt.timedelta(seconds=seen[uid])
            uow.session.execute(update(Label).where(Label.id == lid).values(created_at=stamp))
        rebuild_quality_summary(uow.session)  # the edits above bypassed the writers that keep the summary
    compute_consensus(ws, method="mean")
    rep = quality_report(ws, use_cache=False, plots=False)
    slow = _slow_annotator_figures(ws)
    got = {r["user_id"]: r for r in rep.annotators}
    assert set(got) == set(slow)
    for uid, want in slow.items():
        assert {k: got[uid][k] for k in want} == pytest.approx(want, abs=0.051), uid
    assert got[users[0].id]["images_done"] == 4 and got[users[1].id]["images_done"] == 4
    assert got[users[2].id]["seconds_per_image"] is not None
    fast = [(r["image_id"], r["n_experts"], r["spread_mean"], r["consensus_label_id"], r["method"]) for r in rep.images]
    assert fast == _slow_images(ws)
    assert {r[1] for r in fast} == {2, 3}


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The same synthetic catalog (600 images x 6 experts, 16 x 16) fitted on every image and on a 150-image sample."""
    out = {}
    for name, n in (("all", None), ("sample", 150)):
        ws = init_workspace(tmp_path_factory.mktemp(name) / "ws")
        truth = build_synthetic_quality_catalog(ws, n_images=600, n_experts=6, side=16, pool=32, seed=3)
        report = compute_consensus(ws, fit_images=n)
        with reader(ws) as s:
            maps = dict(s.execute(select(Label.image_id, Label.map_object).where(Label.chain == "consensus")).all())
        out[name] = (ws, truth, report, stored_rater_params(ws), maps)
    return out


def test_a_sampled_fit_recovers_what_the_full_fit_recovers(fits):
    """Tolerances: biases within 0.003 and noise sd within 3 % of the full fit at 150 of 600 images."""
    _ws, truth, full_rep, full, full_maps = fits["all"]
    ws_s, _truth, rep, sample, maps = fits["sample"]
    assert not full_rep.fit["sampled"] and full_rep.fit["n_images"] == 600
    assert rep.fit["sampled"] and rep.fit["n_images"] == 150 and rep.fit["of_images"] == 600
    assert rep.n_saved == full_rep.n_saved == 600  # every image still gets its consensus
    a = {r["rater"]: r for r in full["params"]["raters"]}
    b = {r["rater"]: r for r in sample["params"]["raters"]}
    assert set(a) == set(b) and len(a) == 6
    for r in a:
        assert b[r]["bias"] == pytest.approx(a[r]["bias"], abs=0.003)
        assert np.sqrt(b[r]["sigma2"]) == pytest.approx(np.sqrt(a[r]["sigma2"]), rel=0.03)
        assert b[r]["n_images"] == 150
    # both recover the planted noise (sd) within 5 %
    sds = sorted(sd for _b, sd in truth["experts"].values())
    assert sorted(np.sqrt(r["sigma2"]) for r in b.values()) == pytest.approx(sds, rel=0.05)
    # the consensus maps: within 2e-3 (float16 storage is 5e-4 at these values)
    worst = max(
        float(np.abs(ws_s.objects.get_array(maps[i]).astype(np.float32) - fits["all"][0].objects.get_array(m)).max())
        for i, m in full_maps.items()
    )
    assert worst <= 2e-3


def test_a_stopped_run_keeps_whole_batches_and_a_rerun_does_the_rest(qws, monkeypatch):
    import iea_data.workflows.quality._consensus as consensus_module

    build_synthetic_quality_catalog(qws, n_images=23, n_experts=3, side=4)
    monkeypatch.setattr(consensus_module, "WRITE_BATCH", 5)
    calls = {"n": 0}
    real = consensus_module._save_batch

    def stop_on_third(ws, prepared):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is stopped part-way
        real(ws, prepared)

    monkeypatch.setattr(consensus_module, "_save_batch", stop_on_third)
    with pytest.raises(KeyboardInterrupt):
        compute_consensus(qws)
    with reader(qws) as s:
        assert len(s.scalars(select(Label.id).where(Label.chain == "consensus")).all()) == 10  # two whole batches
    monkeypatch.setattr(consensus_module, "_save_batch", real)
    again = compute_consensus(qws)
    assert (again.n_saved, again.n_skipped) == (13, 10)
    with reader(qws) as s:
        revs = s.execute(select(Label.image_id, Label.revision).where(Label.chain == "consensus")).all()
    assert len(revs) == 23 and {r for _i, r in revs} == {1}


def test_save_label_batch_refuses_a_stale_parent_and_writes_nothing(qws):
    ids = add_images(qws, 2)
    with qws.unit() as uow:
        m = store_label_map(uow.objects, np.zeros((6, 8), np.float32))
        first = save_label_batch(
            uow, [(ids[0], m, None, {"method": "mean"}), (ids[1], m, None, None)], kind="consensus"
        )
    with qws.unit() as uow:
        with pytest.raises(StaleRevisionError, match="is now at revision 1"):
            save_label_batch(uow, [(ids[0], m, first[0], None), (ids[1], m, None, None)], kind="consensus")
    with qws.unit() as uow:
        assert chain_head(uow, ids[1], "consensus").id == first[1]
        assert chain_head(uow, ids[0], "consensus").revision == 1
    with qws.unit() as uow:
        with pytest.raises(ValueError, match="kind must be 'consensus', 'refdiff' or 'model'"):
            save_label_batch(uow, [(ids[0], m, None, None)], kind="annotation")
        with pytest.raises(TypeError, match="StoredMap"):
            save_label_batch(uow, [(ids[0], np.zeros((6, 8)), None, None)], kind="consensus")
