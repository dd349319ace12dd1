"""Annotation revisions: open, drafts, save, stale tabs, separate chains, forbidden writes (both backends)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sqlalchemy import func, select

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError, StaleRevisionError
from iea_data.store import Draft, Label, Score
from iea_data.workflows.labels import (
    discard_draft,
    load_label_map,
    open_annotation,
    save_annotation,
    save_draft,
)
from iea_data.workflows.users import AuthError, disable_user

from ..conftest import H, W, model_map, reader, refdiff_of


def _n(s, model):
    return s.scalar(select(func.count()).select_from(model))


def test_fresh_state_starts_from_the_chosen_base(workspace, people, catalog):
    img = catalog["images"][1]
    for base, expect, label_id in (
        ("model", model_map(1), catalog["model"][img]),
        ("refdiff", refdiff_of(1), catalog["refdiff"][img]),
        ("zero", np.zeros((H, W), np.float32), None),
    ):
        st = open_annotation(workspace, people["ann1"], img, base=base)
        assert (st.base_kind, st.base_label_id, st.parent_id, st.from_draft) == (base, label_id, None, False)
        assert st.chain == f"user:{people['ann1'].id}"
        np.testing.assert_array_equal(st.base, expect.astype(np.float16).astype(np.float32))
        assert st.correction.dtype == np.float32 and not st.correction.any()
        assert not st.base_fallback and st.notice is None


def test_missing_prelabel_falls_back_to_zero_and_says_so(workspace, people, catalog):
    from iea_data.store import Image

    with reader(workspace) as s, s.begin():
        extra = Image(name="lonely.png", status="ok", width=5, height=4)
        s.add(extra)
    with reader(workspace) as s:
        st = open_annotation(workspace, people["ann1"], extra.id, base="model")
    assert st.base_kind == "zero" and st.base_fallback and "no model pre-label" in st.notice
    assert st.base.shape == (4, 5) and not st.base.any()


def test_save_makes_a_revision_with_base_correction_strokes_score(workspace, people, catalog):
    img = catalog["images"][0]
    ann = people["ann1"]
    with reader(workspace) as s:
        st = open_annotation(workspace, ann, img, base="refdiff")
        st.correction[1:3, 2:5] = -0.3
        st.correction[0, 0] = 5.0 - 3.5  # pushes base + correction past +1: clipped
        st.strokes = [{"mode": "add", "points": [[2, 1], [4, 2]], "radius": 1.5, "strength": -0.3}]
        st.score, st.comment = 7.5, "sky too bright"
        label = save_annotation(workspace, ann, st, submit=True)
        assert (label.kind, label.status, label.revision, label.parent_id) == ("annotation", "submitted", 1, None)
        assert label.base_id == catalog["refdiff"][img] and label.author_id == ann.id
        stored = load_label_map(workspace.objects, label)
        expect = np.clip(st.base + st.correction, -1, 1)
        np.testing.assert_allclose(stored, expect, atol=1e-3)
        assert stored[0, 0] == 1.0
        np.testing.assert_array_equal(workspace.objects.get_array(label.correction_object), st.correction)
        assert b'"strength":-0.3' in workspace.objects.get_bytes(label.strokes_object)
        score = s.scalar(select(Score).where(Score.image_id == img))
        assert (score.value, score.source, score.comment, score.author_id) == (
            7.5,
            "annotator:ann1",
            "sky too bright",
            ann.id,
        )
        # reopen: resumes the head with the same correction, strokes, score
        again = open_annotation(workspace, ann, img, base="model")
        assert (again.parent_id, again.base_kind, again.score, again.comment) == (
            label.id,
            "refdiff",
            7.5,
            "sky too bright",
        )
        np.testing.assert_array_equal(again.correction, st.correction)
        assert again.strokes == st.strokes
        again.correction[:] = 0
        again.score = None
        second = save_annotation(workspace, ann, again)
        assert (second.revision, second.parent_id, second.status) == (2, label.id, "draft")
        assert s.scalar(select(Score).where(Score.image_id == img)) is None  # score cleared
        assert np.all(load_label_map(workspace.objects, s.get(Label, label.id)) == stored)  # never overwritten


def test_draft_autosave_resume_and_discard(workspace, people, catalog):
    img = catalog["images"][2]
    ann = people["ann2"]
    with reader(workspace) as s:
        st = open_annotation(workspace, ann, img)
        st.correction[2, 3] = 0.25
        st.strokes = [{"id": 1}]
        save_draft(workspace, ann, st)
        save_draft(workspace, ann, st)  # idempotent: one row, one live bundle
        assert _n(s, Draft) == 1
        first_key = s.scalar(select(Draft.object))
        st.correction[2, 4] = 0.5
        st.strokes.append({"id": 2})
        save_draft(workspace, ann, st)
        assert _n(s, Draft) == 1
        assert not workspace.objects.exists(first_key)  # the superseded bundle is gone
    from iea_data.store import dispose_engines

    dispose_engines()  # server restart
    with reader(workspace) as s:
        back = open_annotation(workspace, ann, img)
        assert back.from_draft and back.strokes == [{"id": 1}, {"id": 2}]
        assert back.correction[2, 3] == 0.25 and back.correction[2, 4] == 0.5
        assert _n(s, Label) == 6  # a draft is not a revision
        key = s.scalar(select(Draft.object))
        discard_draft(workspace, ann, img)
        assert _n(s, Draft) == 0 and not workspace.objects.exists(key)
        assert not open_annotation(workspace, ann, img).from_draft
        discard_draft(workspace, ann, img)  # nothing there: harmless


def test_save_clears_the_draft(workspace, people, catalog):
    img = catalog["images"][0]
    with reader(workspace) as s:
        st = open_annotation(workspace, people["ann1"], img)
        st.correction[0, 0] = 0.1
        save_draft(workspace, people["ann1"], st)
        key = s.scalar(select(Draft.object))
        save_annotation(workspace, people["ann1"], st)
        assert _n(s, Draft) == 0 and not workspace.objects.exists(key)


def test_two_tabs_of_one_user_stale_save_is_refused_and_draft_kept(workspace, people, catalog):
    img = catalog["images"][0]
    ann = people["ann1"]
    with reader(workspace) as tab2:
        a = open_annotation(workspace, ann, img)
        b = open_annotation(workspace, ann, img)
        a.correction[0, :] = 0.2
        saved = save_annotation(workspace, ann, a)
        b.correction[1, :] = -0.4
        b.strokes = [{"tab": 2}]
        with pytest.raises(StaleRevisionError, match="draft is kept"):
            save_annotation(workspace, ann, b)
        assert tab2.scalar(select(func.count()).select_from(Label).where(Label.kind == "annotation")) == 1
        # tab 2's work is in the draft, and reopening says what happened
        c = open_annotation(workspace, ann, img)
        assert c.from_draft and c.strokes == [{"tab": 2}] and np.all(c.correction[1] == -0.4)
        assert c.parent_id == saved.id and "another tab" in c.notice
        third = save_annotation(workspace, ann, c)
        assert (third.revision, third.parent_id) == (2, saved.id)


def test_two_annotators_keep_separate_chains(workspace, people, catalog):
    img = catalog["images"][1]
    one = open_annotation(workspace, people["ann1"], img, base="zero")
    two = open_annotation(workspace, people["ann2"], img, base="zero")
    one.correction[:] = 0.3
    two.correction[:] = -0.3
    save_draft(workspace, people["ann1"], one)
    save_draft(workspace, people["ann2"], two)
    l1 = save_annotation(workspace, people["ann1"], one, submit=True)
    l2 = save_annotation(workspace, people["ann2"], two, submit=True)
    assert l1.chain != l2.chain and l1.revision == l2.revision == 1
    assert np.allclose(load_label_map(workspace.objects, l1), 0.3, atol=1e-3)
    assert np.allclose(load_label_map(workspace.objects, l2), -0.3, atol=1e-3)
    assert np.allclose(open_annotation(workspace, people["ann1"], img).correction, 0.3)


def test_forbidden_writes_are_refused(workspace, people, catalog):
    img = catalog["images"][0]
    with reader(workspace) as s:
        mine = open_annotation(workspace, people["ann1"], img)
        mine.correction[:] = 0.1
        # another user cannot save or autosave into ann1's chain
        for fn in (save_draft, save_annotation):
            with pytest.raises(PermissionDeniedError, match="only write their own revision chain"):
                fn(workspace, people["ann2"], mine)
        # a forged chain name in the state is refused too
        forged = dataclasses.replace(mine, chain=f"user:{people['ann2'].id}")
        with pytest.raises(PermissionDeniedError):
            save_annotation(workspace, people["ann1"], forged)
        # a base label of another image, and a parent from another chain, are refused
        other = catalog["images"][1]
        with pytest.raises(ValueError, match="is not a model label of image"):
            save_annotation(workspace, people["ann1"], dataclasses.replace(mine, base_label_id=catalog["model"][other]))
        theirs = save_annotation(workspace, people["ann2"], open_annotation(workspace, people["ann2"], img))
        with pytest.raises(ValueError, match="is not a revision of"):
            save_annotation(workspace, people["ann1"], dataclasses.replace(mine, parent_id=theirs.id))
        # wrong shapes, dtypes, ranges, scores
        bad = [
            dataclasses.replace(mine, correction=np.zeros((H + 1, W), np.float32)),
            dataclasses.replace(mine, correction=np.zeros((H, W), np.float64)),
            dataclasses.replace(mine, correction=np.full((H, W), 2.5, np.float32)),
            dataclasses.replace(mine, correction=np.full((H, W), np.nan, np.float32)),
            dataclasses.replace(mine, score=11),
            dataclasses.replace(mine, strokes=[{"x": float("nan")}]),
        ]
        for state in bad:
            with pytest.raises((ValueError, TypeError)):
                save_annotation(workspace, people["ann1"], state)
        with pytest.raises(NotFoundError):
            open_annotation(workspace, people["ann1"], 10**6)
        # a disabled user can neither open nor save
        disable_user(workspace, "ann1")
        for call in (
            lambda: open_annotation(workspace, people["ann1"], img),
            lambda: save_draft(workspace, people["ann1"], mine),
            lambda: save_annotation(workspace, people["ann1"], mine),
        ):
            with pytest.raises(AuthError):
                call()
        assert s.scalar(select(func.count()).select_from(Label).where(Label.author_id == people["ann1"].id)) == 0
        assert _n(s, Draft) == 0


def test_discarding_touches_only_ones_own_draft(workspace, people, catalog):
    img = catalog["images"][0]
    with reader(workspace) as s:
        for who, v in (("ann1", 0.1), ("ann2", -0.1)):
            st = open_annotation(workspace, people[who], img)
            st.correction[:] = v
            save_draft(workspace, people[who], st)
        discard_draft(workspace, people["ann2"], img)
        assert s.scalars(select(Draft.user_id)).all() == [people["ann1"].id]
        kept = open_annotation(workspace, people["ann1"], img)
        assert kept.from_draft and np.allclose(kept.correction, 0.1)


def test_change_base_keeps_the_correction(workspace, people, catalog):
    from iea_data.workflows.labels import change_base

    img = catalog["images"][1]
    ann = people["ann1"]
    with reader(workspace) as s:
        st = open_annotation(workspace, ann, img, base="model")
        st.correction[2:4, :] = 0.25
        label = save_annotation(workspace, ann, st)
        st = open_annotation(workspace, ann, img)
        moved = change_base(workspace, ann, st, "refdiff")
        assert (moved.base_kind, moved.base_label_id, moved.parent_id) == ("refdiff", catalog["refdiff"][img], label.id)
        np.testing.assert_array_equal(moved.correction, st.correction)
        np.testing.assert_array_equal(moved.base, refdiff_of(1).astype(np.float16).astype(np.float32))
        second = save_annotation(workspace, ann, moved)
        assert second.base_id == catalog["refdiff"][img]
        np.testing.assert_allclose(
            load_label_map(workspace.objects, second), np.clip(moved.base + moved.correction, -1, 1), atol=1e-3
        )
        zero = change_base(workspace, ann, moved, "zero")
        assert zero.base_label_id is None and not zero.base.any()
        from iea_data.store import Image

        with s.begin():
            bare = Image(name="bare.png", status="ok", width=W, height=H)
            s.add(bare)
        fresh = open_annotation(workspace, ann, bare.id, base="zero")
        with pytest.raises(IeaError, match="no model pre-label"):
            change_base(workspace, ann, fresh, "model")
        with pytest.raises(PermissionDeniedError):
            change_base(workspace, people["ann2"], st, "zero")
