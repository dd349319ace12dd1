"""Ideal-exposure targets: EV in linear light, revisions, refdiff recompute and rebasing (both backends, real files)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import func, select

from iea_data.core.errors import PermissionDeniedError, StaleRevisionError
from iea_data.core.imaging import apply_ev, label_shape, luma, read_image, resize_map, write_image
from iea_data.core.residuals import ideal_from_ev
from iea_data.store import Draft, Image, Label, Target
from iea_data.workflows.catalog import ingest
from iea_data.workflows.labels import (
    chain_head,
    load_label_map,
    open_annotation,
    prelabel_refdiff,
    review_label,
    review_queue,
    save_annotation,
    save_draft,
)
from iea_data.workflows.targets import apply_target, open_target, save_target

from ..conftest import reader, reader_unit


@pytest.fixture
def bracket(workspace, tmp_path, rng):
    """A real scene ``t``: reference t.png and variants t_-1EV.png, t_+1EV.png, ingested, with refdiff pre-labels."""
    folder = tmp_path / "photos"
    folder.mkdir()
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    ref = np.stack([0.2 + 0.5 * x / 63, 0.3 + 0.4 * y / 47, np.full_like(x, 0.45)], -1).astype(np.float32)
    ref = np.clip(ref + rng.normal(0, 0.02, ref.shape).astype(np.float32), 0, 1)
    write_image(folder / "t.png", ref)
    for ev in (-1, 1):
        write_image(folder / f"t_{ev:+d}EV.png", apply_ev(ref, float(ev)))
    ingest(workspace, [folder], workers=1)
    report = prelabel_refdiff(workspace)
    assert report.n_saved == 2 and not report.errors
    with reader(workspace) as s:
        rows = {name: (i, sc) for i, name, sc in s.execute(select(Image.id, Image.name, Image.scene_id))}
    return {
        "folder": folder,
        "scene_id": rows["t.png"][1],
        "ref": rows["t.png"][0],
        "dark": rows["t_-1EV.png"][0],
        "bright": rows["t_+1EV.png"][0],
    }


def _expected_refdiff(folder, variant_name, ev_map):
    ref = read_image(folder / "t.png").rgb
    var = read_image(folder / variant_name).rgb
    ideal = apply_ev(ref, resize_map(ev_map, ref.shape[:2]))
    return resize_map(luma(var) - luma(ideal), label_shape(*var.shape[:2], 1024))


def test_target_save_recomputes_refdiff_and_rebases(workspace, people, bracket):
    ws, dark, bright = workspace, bracket["dark"], bracket["bright"]
    ann1, ann2, rev = people["ann1"], people["ann2"], people["rev"]
    with reader_unit(ws) as uow:
        old_base = chain_head(uow, dark, "refdiff")
        # ann1 paints over the reference difference and submits; a reviewer accepts
        st1 = open_annotation(ws, ann1, dark, base="refdiff")
        st1.correction[10:20, 10:30] = 0.3
        st1.strokes = [{"mode": "add"}]
        old1 = save_annotation(ws, ann1, st1, submit=True)
        review_label(ws, rev, old1.id, decision="accept")
        # ann2 paints over zero: a target change does not touch it
        st2 = open_annotation(ws, ann2, dark, base="zero")
        st2.correction[:] = -0.2
        old2 = save_annotation(ws, ann2, st2, submit=True)
        # ann1 has an unsaved draft over the refdiff of the other variant
        d = open_annotation(ws, ann1, bright, base="refdiff")
        d.correction[0, 0] = 0.1
        save_draft(ws, ann1, d)

        target = open_target(ws, rev, bracket["scene_id"])
        assert target.parent_id is None and target.reference_image_id == bracket["ref"]
        assert target.ev_map.shape == (48, 64) and not target.ev_map.any()
        target.ev_map[:, 32:] = 1.0  # the right half of the ideal one stop brighter
        target.strokes = [{"mode": "add", "ev": 1.0}]
        done = []
        report = save_target(ws, rev, target, progress=lambda i, n: done.append((i, n)))
    assert (report.revision, report.n_variants, report.n_refdiff, report.n_rebased, report.n_drafts_moved) == (
        1,
        2,
        2,
        1,
        1,
    )
    assert not report.errors and done[-1] == (2, 2)
    with reader_unit(ws) as uow:
        t = uow.session.get(Target, report.target_id)
        assert (t.author_id, t.status, t.parent_id, t.base_image_id) == (rev.id, "accepted", None, bracket["ref"])
        np.testing.assert_array_equal(ws.objects.get_array(t.ev_map_object), target.ev_map)
        new_base = chain_head(uow, dark, "refdiff")
        assert new_base.revision == old_base.revision + 1 and new_base.target_id == t.id
        got = load_label_map(ws.objects, new_base)
        expect = _expected_refdiff(bracket["folder"], "t_-1EV.png", target.ev_map)
        np.testing.assert_allclose(got, expect, atol=2e-3)
        before = load_label_map(ws.objects, old_base)
        assert got[:, 40:].mean() < before[:, 40:].mean() - 0.05  # brighter ideal: the variant is further too dark
        np.testing.assert_allclose(got[:, :24], before[:, :24], atol=2e-3)  # EV 0 half unchanged
        # ann1's chain: a new revision, same correction over the new base, back in review
        head1 = chain_head(uow, dark, f"user:{ann1.id}")
        assert (head1.revision, head1.parent_id, head1.base_id, head1.status) == (2, old1.id, new_base.id, "submitted")
        params = json.loads(head1.params)
        assert params["rebased_from"] == old1.id and params["needs_review"] and params["rebased_target_id"] == t.id
        np.testing.assert_array_equal(ws.objects.get_array(head1.correction_object), st1.correction)
        np.testing.assert_allclose(load_label_map(ws.objects, head1), np.clip(got + st1.correction, -1, 1), atol=2e-3)
        assert head1.strokes_object == old1.strokes_object
        assert uow.session.get(Label, old1.id).status == "accepted"  # the old revision is untouched
        # ann2's zero-based chain was not rebased
        assert chain_head(uow, dark, f"user:{ann2.id}").id == old2.id
        # the review queue flags the rebased label
        flagged = {x.label_id: x.rebased for x in review_queue(ws, people["rev2"])}
        assert flagged[head1.id] is True and flagged[old2.id] is False
        # the draft follows the new base
        draft = uow.session.scalar(select(Draft).where(Draft.user_id == ann1.id, Draft.image_id == bright))
        assert draft.base_label_id == chain_head(uow, bright, "refdiff").id
        resumed = open_annotation(ws, ann1, bright)
        assert resumed.from_draft and resumed.correction[0, 0] == np.float32(0.1)
        np.testing.assert_array_equal(resumed.base, load_label_map(ws.objects, chain_head(uow, bright, "refdiff")))
        # and the rebased revision opens with the new base
        reopened = open_annotation(ws, ann1, dark)
        assert reopened.parent_id == head1.id and reopened.base_label_id == new_base.id


def test_target_revisions_stale_and_roles(workspace, people, bracket):
    ws = workspace
    with reader(ws) as s:
        tab1 = open_target(ws, people["rev"], bracket["scene_id"])
        tab2 = open_target(ws, people["admin"], bracket["scene_id"])
        # annotators may look but not paint
        annot = open_target(ws, people["ann1"], bracket["scene_id"])
        annot.ev_map[:] = 0.5
        with pytest.raises(PermissionDeniedError, match="paint target"):
            save_target(ws, people["ann1"], annot)
        tab1.ev_map[:] = 0.5
        first = save_target(ws, people["rev"], tab1)
        tab2.ev_map[:] = -0.5
        with pytest.raises(StaleRevisionError, match="reopen the newest target"):
            save_target(ws, people["admin"], tab2)
        assert s.scalar(select(func.count()).select_from(Target)) == 1
        again = open_target(ws, people["admin"], bracket["scene_id"])
        assert again.parent_id == first.target_id and np.all(again.ev_map == 0.5)
        again.ev_map[:] = -0.5
        second = save_target(ws, people["admin"], again)
        assert second.revision == 2
        assert s.get(Target, second.target_id).parent_id == first.target_id
        # nothing is overwritten: the first EV map is still there
        assert np.all(ws.objects.get_array(s.get(Target, first.target_id).ev_map_object) == 0.5)
        bad = open_target(ws, people["admin"], bracket["scene_id"])
        bad.ev_map = np.full_like(bad.ev_map, 11.0)
        with pytest.raises(ValueError, match="stops"):
            save_target(ws, people["admin"], bad)


def test_one_unreadable_variant_does_not_stop_the_others_and_a_rerun_does_the_rest(workspace, people, bracket):
    path = bracket["folder"] / "t_+1EV.png"
    kept = path.read_bytes()
    os.remove(path)
    with reader_unit(workspace) as uow:
        st_ = open_target(workspace, people["rev"], bracket["scene_id"])
        st_.ev_map[:] = 0.25
        report = save_target(workspace, people["rev"], st_)
        assert report.n_refdiff == 1 and [name for name, _ in report.errors] == ["t_+1EV.png"]
        assert chain_head(uow, bracket["dark"], "refdiff").target_id == report.target_id
        assert chain_head(uow, bracket["bright"], "refdiff").target_id is None
        path.write_bytes(kept)
        with pytest.raises(PermissionDeniedError):
            apply_target(workspace, people["ann1"], bracket["scene_id"])
        again = apply_target(workspace, people["rev"], bracket["scene_id"])
        assert (again.target_id, again.n_skipped, again.n_refdiff, again.errors) == (report.target_id, 1, 1, [])
        head = chain_head(uow, bracket["bright"], "refdiff")
        assert head.target_id == report.target_id
        expect = _expected_refdiff(bracket["folder"], "t_+1EV.png", st_.ev_map)
        np.testing.assert_allclose(load_label_map(workspace.objects, head), expect, atol=2e-3)
        assert apply_target(workspace, people["rev"], bracket["scene_id"]).n_skipped == 2  # nothing left to do


@settings(max_examples=40, deadline=None)
@given(
    ref=arrays(np.float32, (3, 4, 3), elements=st.floats(0, 1, width=32)),
    ev=st.floats(-4, 4, width=32),
    extra=st.floats(0, 2, width=32),
)
def test_ideal_from_ev_properties(ref, ev, extra):
    zero = ideal_from_ev(ref, np.zeros((3, 4), np.float32))
    np.testing.assert_allclose(zero, ref, atol=1e-5)  # EV 0 is the reference
    a = ideal_from_ev(ref, np.full((3, 4), ev, np.float32))
    b = ideal_from_ev(ref, np.full((3, 4), ev + extra, np.float32))
    assert a.dtype == np.float32 and a.shape == ref.shape and a.min() >= 0 and a.max() <= 1
    assert np.all(b >= a - 1e-6)  # more stops never darken
    # an EV map at another size is resized to the image
    small = ideal_from_ev(ref, np.full((1, 2), ev, np.float32))
    np.testing.assert_allclose(small, a, atol=1e-6)


def test_ideal_from_ev_is_linear_light():
    ref = np.full((1, 1, 3), 0.5, np.float32)
    out = ideal_from_ev(ref, np.full((1, 1), -1.0, np.float32))
    lin = ((0.5 + 0.055) / 1.055) ** 2.4 / 2  # half the light
    assert out[0, 0, 0] == pytest.approx(1.055 * lin ** (1 / 2.4) - 0.055, abs=1e-5)
    with pytest.raises(TypeError, match="float32"):
        ideal_from_ev(ref, np.zeros((1, 1), np.float64))
