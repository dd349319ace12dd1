"""Review: the queue, accept / reject rules, experts' maps and spread, per-annotator summary (both backends)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import select

from iea_data.core.errors import IeaError, PermissionDeniedError, StaleRevisionError
from iea_data.store import Label, Review
from iea_data.workflows.labels import (
    agreement,
    annotator_summary,
    expert_labels,
    expert_spread,
    open_annotation,
    review_label,
    review_queue,
    save_annotation,
)

from ..conftest import reader


def _save(ws, user, image_id, value, *, submit=True):
    st_ = open_annotation(ws, user, image_id, base="zero")
    st_.correction[:] = value
    st_.score = 6.0
    return save_annotation(ws, user, st_, submit=submit)


def test_review_queue_and_decisions(workspace, people, catalog):
    a, b = catalog["images"][:2]
    with reader(workspace) as s:
        l1 = _save(workspace, people["ann1"], a, 0.1)
        l2 = _save(workspace, people["ann2"], a, -0.1)
        l3 = _save(workspace, people["rev"], b, 0.2)
        _save(workspace, people["ann1"], b, 0.3, submit=False)  # a draft revision is not in the queue
        q = review_queue(workspace, people["rev"])
        assert [x.label_id for x in q] == [l1.id, l2.id]  # oldest first, not the reviewer's own l3
        assert (q[0].author_name, q[0].image_id, q[0].score, q[0].rebased) == ("ann1", a, 6.0, False)
        assert [x.label_id for x in review_queue(workspace, people["rev2"])] == [l1.id, l2.id, l3.id]
        # annotators cannot see the queue or decide
        with pytest.raises(PermissionDeniedError):
            review_queue(workspace, people["ann1"])
        with pytest.raises(PermissionDeniedError):
            review_label(workspace, people["ann2"], l1.id, decision="accept")
        # nobody reviews their own label
        with pytest.raises(PermissionDeniedError, match="their own label"):
            review_label(workspace, people["rev"], l3.id, decision="accept")
        # rejecting needs a comment
        with pytest.raises(IeaError, match="needs a comment"):
            review_label(workspace, people["rev"], l2.id, decision="reject", comment="  ")
        with pytest.raises(ValueError):
            review_label(workspace, people["rev"], l2.id, decision="maybe")
        r = review_label(workspace, people["rev"], l1.id, decision="accept")
        assert (r.decision, r.reviewer_id, r.label_id) == ("accept", people["rev"].id, l1.id)
        review_label(workspace, people["admin"], l2.id, decision="reject", comment="edges of the sky are wrong")
        assert s.get(Label, l1.id, populate_existing=True).status == "accepted"
        assert s.get(Label, l2.id, populate_existing=True).status == "rejected"
        # a decided label cannot be decided again
        with pytest.raises(IeaError, match="only submitted"):
            review_label(workspace, people["rev2"], l1.id, decision="reject", comment="changed my mind")
        assert [x.label_id for x in review_queue(workspace, people["rev2"])] == [l3.id]
        assert s.scalar(select(Review.comment).where(Review.label_id == l2.id)) == "edges of the sky are wrong"


def test_an_older_revision_cannot_be_reviewed(workspace, people, catalog):
    a = catalog["images"][0]
    old = _save(workspace, people["ann1"], a, 0.1)
    st_ = open_annotation(workspace, people["ann1"], a)
    save_annotation(workspace, people["ann1"], st_, submit=True)
    with pytest.raises(StaleRevisionError, match="review the newest"):
        review_label(workspace, people["rev"], old.id, decision="accept")


def test_model_labels_are_not_reviewed(workspace, people, catalog):
    with pytest.raises(IeaError, match="only expert annotations"):
        review_label(workspace, people["rev"], catalog["model"][catalog["images"][0]], decision="accept")


def test_expert_labels_spread_and_summary(workspace, people, catalog):
    a, b, c = catalog["images"]
    values = {("ann1", a): 0.2, ("ann2", a): -0.2, ("rev", a): 0.5, ("ann1", b): 0.1, ("ann2", b): 0.1}
    labels = {k: _save(workspace, people[k[0]], k[1], v) for k, v in values.items()}
    _save(workspace, people["ann2"], c, 0.3, submit=False)  # work in progress: not an expert label
    review_label(workspace, people["rev"], labels[("ann1", a)].id, decision="accept")
    review_label(workspace, people["rev2"], labels[("ann2", b)].id, decision="reject", comment="too flat")
    maps = expert_labels(workspace, a)
    assert [lab.author_id for lab, _ in maps] == sorted(people[n].id for n in ("ann1", "ann2", "rev"))
    got = {lab.author_id: float(m.mean()) for lab, m in maps}
    for (name, image), v in values.items():
        if image == a:
            assert got[people[name].id] == pytest.approx(v, abs=1e-3)
    assert expert_labels(workspace, c) == []
    spread = expert_spread([m for _, m in maps])
    np.testing.assert_allclose(spread, np.std([0.2, -0.2, 0.5]), atol=1e-3)
    summary = {d["name"]: d for d in annotator_summary(workspace)}
    f16 = lambda v: float(np.float16(v))  # noqa: E731 - maps are stored as float16
    assert summary["ann1"]["done"] == 2 and summary["ann1"]["accepted"] == 1 and summary["ann1"]["pending"] == 1
    assert summary["ann2"]["rejected"] == 1 and summary["ann2"]["done"] == 1 and summary["ann2"]["drafts"] == 1
    # ann1: image a vs mean(ann2, rev), image b: ann2's b was rejected, so nothing to compare there
    exp = 1 - abs(f16(0.2) - (f16(-0.2) + f16(0.5)) / 2) / 2
    assert summary["ann1"]["compared"] == 1 and summary["ann1"]["agreement"] == pytest.approx(exp, abs=1e-6)
    assert summary["rev"]["compared"] == 1
    assert summary["rev"]["agreement"] == pytest.approx(1 - abs(f16(0.5) - (f16(0.2) + f16(-0.2)) / 2) / 2, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(2, 5), st.integers(1, 4), st.integers(1, 4)),
        elements=st.floats(-1, 1, width=32),
    )
)
def test_spread_is_zero_for_agreement_bounded_and_order_free(stack):
    maps = list(stack)
    spread = expert_spread(maps)
    assert spread.dtype == np.float32 and spread.shape == maps[0].shape
    assert np.all(spread >= 0) and np.all(spread <= 1 + 1e-6)
    np.testing.assert_allclose(spread, expert_spread(maps[::-1]), atol=1e-6)
    assert not expert_spread([maps[0]] * len(maps)).any()
    assert 0 <= agreement(maps[0], maps[1:]) <= 1
    assert agreement(maps[0], [maps[0]]) == 1.0


def test_spread_validates():
    with pytest.raises(ValueError, match="non-empty"):
        expert_spread([])
    with pytest.raises(ValueError, match="must match"):
        expert_spread([np.zeros((2, 2), np.float32), np.zeros((2, 3), np.float32)])
    with pytest.raises(TypeError):
        expert_spread([np.zeros((2, 2, 3), np.float32)])


def test_summary_agreement_window(workspace, people, catalog):
    a, b, _ = catalog["images"]
    for image, (v1, v2) in ((a, (0.0, 0.4)), (b, (0.2, 0.2))):
        _save(workspace, people["ann1"], image, v1)
        _save(workspace, people["ann2"], image, v2)
    full = {d["name"]: d for d in annotator_summary(workspace)}
    newest = {d["name"]: d for d in annotator_summary(workspace, max_images=1)}
    with pytest.raises(ValueError, match="max_images"):
        annotator_summary(workspace, max_images=0)
    assert full["ann1"]["compared"] == 2 and newest["ann1"]["compared"] == 1
    assert newest["ann1"]["agreement"] == pytest.approx(1.0)  # image b, labelled last: both said 0.2
    assert full["ann1"]["agreement"] == pytest.approx((1 - abs(0 - float(np.float16(0.4))) / 2 + 1) / 2, abs=1e-6)
    assert newest["ann1"]["done"] == full["ann1"]["done"] == 2  # counts are not windowed
