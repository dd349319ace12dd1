"""§2: consensus revisions in the catalog, recomputed when a new expert submits; once on PostgreSQL too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import func, select

from iea_data.store import ConsensusStale, Label
from iea_data.workflows.labels import open_annotation, review_label, save_annotation, set_label_status
from iea_data.workflows.quality import compute_consensus, stored_rater_params, update_consensus
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD, reader
from .conftest import add_images, expert_map, save_expert, truth_map

EXPERTS = {"e0": (0.1, 0.02), "e1": (0.0, 0.05), "e2": (-0.1, 0.2)}  # name: (bias, noise sd)


def _consensus_rows(ws):
    with reader(ws) as s:
        return (
            s.execute(select(Label).where(Label.kind == "consensus").order_by(Label.image_id, Label.revision))
            .scalars()
            .all()
        )


def test_consensus_rows_with_provenance_resume_and_follow_a_new_submission(workspace):
    ws = workspace
    users = {n: add_user(ws, n, role="annotator", password=PASSWORD) for n in EXPERTS}
    rev = add_user(ws, "rev", role="reviewer", password=PASSWORD)
    ids = add_images(ws, 6)
    for k, i in enumerate(ids):
        for j, (name, (bias, sd)) in enumerate(EXPERTS.items()):
            save_expert(ws, users[name].id, i, expert_map(i, bias, sd, seed=100 * k + j))
    report = compute_consensus(ws)
    assert (report.n_images, report.n_saved, report.n_skipped, report.errors) == (6, 6, 0, [])
    assert report.fit["converged"]
    rows = _consensus_rows(ws)
    assert [r.image_id for r in rows] == ids and {r.status for r in rows} == {"accepted"}
    p = json.loads(rows[0].params)
    assert p["method"] == "staple" and len(p["expert_revisions"]) == 3
    assert set(p["parameters"]) == {f"user:{u.id}" for u in users.values()}
    # the precise expert counts more
    assert p["weights"][f"user:{users['e0'].id}"] > p["weights"][f"user:{users['e2'].id}"]
    fit = stored_rater_params(ws)
    bias = {r["rater"]: r["bias"] for r in fit["params"]["raters"]}
    assert bias[f"user:{users['e0'].id}"] - bias[f"user:{users['e2'].id}"] == pytest.approx(0.2, abs=0.05)
    # the consensus is closer to the truth than the noisiest expert
    c0 = ws.objects.get_array(rows[0].map_object).astype(np.float32)
    assert np.abs(c0 - truth_map(ids[0])).mean() < np.abs(expert_map(ids[0], 0, 0.2, 2) - truth_map(ids[0])).mean()
    with reader(ws) as s:
        assert s.scalar(select(func.count()).select_from(ConsensusStale)) == 0
    # resumable: nothing to do
    again = compute_consensus(ws)
    assert (again.n_saved, again.n_skipped) == (0, 6)
    # a new expert submits on one image: marked stale at once, recomputed alone
    new = add_user(ws, "e3", role="annotator", password=PASSWORD)
    state = open_annotation(ws, new, ids[2], base="zero")
    state.correction[:] = truth_map(ids[2])
    label = save_annotation(ws, new, state, submit=True)
    with reader(ws) as s:
        assert list(s.scalars(select(ConsensusStale.image_id))) == [ids[2]]
    upd = update_consensus(ws)
    assert (upd.n_images, upd.n_saved) == (1, 1)
    rows = [r for r in _consensus_rows(ws) if r.image_id == ids[2]]
    assert [r.revision for r in rows] == [1, 2]
    assert label.id in json.loads(rows[-1].params)["expert_revisions"]
    assert len(json.loads(rows[-1].params)["expert_revisions"]) == 4
    # accepting it marks it again; the full run recomputes exactly that image
    review_label(ws, rev, label.id, decision="accept")
    full = compute_consensus(ws)
    assert (full.n_saved, full.n_skipped) == (1, 5)


def test_simple_methods_and_a_bad_method(qws):
    users = [add_user(qws, f"x{k}", role="annotator", password=PASSWORD) for k in range(3)]
    (i,) = add_images(qws, 1)
    vals = (0.1, 0.3, 0.8)
    for u, v in zip(users, vals):
        save_expert(qws, u.id, i, np.full((6, 8), v, np.float32))
    compute_consensus(qws, method="median")
    row = _consensus_rows(qws)[-1]
    assert np.allclose(qws.objects.get_array(row.map_object).astype(np.float32), 0.3, atol=1e-3)
    assert compute_consensus(qws, method="mean").n_saved == 1  # another method: recomputed
    assert np.allclose(qws.objects.get_array(_consensus_rows(qws)[-1].map_object).astype(np.float32), 0.4, atol=1e-3)
    with pytest.raises(ValueError, match="method must be one of staple, median, mean, trimmed"):
        compute_consensus(qws, method="vote")
    with qws.unit() as uow:  # any status change of an expert revision marks the image
        set_label_status(uow, json.loads(_consensus_rows(qws)[-1].params)["expert_revisions"][0], "rejected")
    with reader(qws) as s:
        assert list(s.scalars(select(ConsensusStale.image_id))) == [i]
    assert update_consensus(qws).n_saved == 1
    last = json.loads(_consensus_rows(qws)[-1].params)
    assert len(last["expert_revisions"]) == 2 and last["method"] == "mean"  # the image keeps its method
