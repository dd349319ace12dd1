"""Targets on a RAW-derived scene: the ideal comes from the linear RAW render, not the 8-bit reference."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sqlalchemy import select

pytest.importorskip("pidng")
pytest.importorskip("rawpy")

from iea_data.core.imaging import read_image
from iea_data.core.raw import ideal_from_linear, render_linear, synthetic_dng
from iea_data.core.residuals import ideal_from_ev, variant_refdiff
from iea_data.store import Image, Label
from iea_data.workflows.brackets import ingest_render, render_brackets
from iea_data.workflows.labels import chain_head, load_label_map
from iea_data.workflows.targets import open_target, save_target

from ..conftest import reader, reader_unit


@pytest.fixture
def raw_scene(workspace, tmp_path):
    """RAW ``r``: a 0.1..0.4 gradient with a 0.7 patch, rendered at -1, 0 (variants) and +1 EV (the 8-bit reference)."""
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float64)
    scene = np.stack([0.1 + 0.3 * xx / 96, 0.15 + 0.25 * yy / 64, np.full_like(xx, 0.12)], -1)
    scene[16:40, 32:72] = 0.7  # at the reference's +1 EV: 1.4, clipped to white in the 8-bit reference
    (tmp_path / "r.dng").write_bytes(synthetic_dng(scene))
    render_brackets([tmp_path / "r.dng"], tmp_path / "out", evs="-1,0,1", reference=1.0, fmt="png")
    report = ingest_render(workspace, [tmp_path / "out"], workers=1)
    assert report.n_images == 3 and not report.errors
    with reader(workspace) as s:
        ids = {name: (i, sc) for i, name, sc in s.execute(select(Image.id, Image.name, Image.scene_id))}
    return {"dir": tmp_path, "scene_id": ids["r.png"][1], "P0": ids["r_P0.png"][0], "N1": ids["r_N1.png"][0]}


def test_raw_ideal_recovers_what_the_8bit_reference_clipped(workspace, people, raw_scene):
    d, rev = raw_scene["dir"], people["rev"]
    state = open_target(workspace, rev, raw_scene["scene_id"])
    assert state.ev_map.shape == (64, 96)
    state.ev_map[:] = -1.0  # the ideal one stop darker than the (+1 EV) reference: the RAW's own exposure
    report = save_target(workspace, rev, state)
    assert report.ideal_source == "raw-linear" and report.notes == [] and not report.errors
    assert report.n_refdiff == 2

    ref8 = read_image(d / "out" / "r.png").rgb
    lin = render_linear(d / "r.dng").linear
    ideal_raw = ideal_from_linear(lin, state.ev_map, reference_ev=1.0)
    ideal_8 = ideal_from_ev(ref8, state.ev_map)
    clipped = ref8.max(-1) >= 1.0
    assert clipped[20:36, 36:68].all() and clipped.mean() < 0.2
    # what differs and by how much: where the 8-bit reference clips, the 8-bit ideal is srgb(0.5)
    # of white (0.735) where the sensor had 0.7 (0.854); elsewhere only the 8-bit quantisation
    diff = np.abs(ideal_raw - ideal_8).max(-1)
    assert diff[~clipped].max() <= 1.5 / 255
    assert diff[20:36, 36:68].min() > 0.1
    assert np.array_equal(diff > 2 / 255, clipped & (diff > 2 / 255)) and (diff > 2 / 255).sum() >= 0.9 * clipped.sum()

    with reader_unit(workspace) as uow:
        for name, key in (("r_P0.png", "P0"), ("r_N1.png", "N1")):
            head = chain_head(uow, raw_scene[key], "refdiff")
            got = load_label_map(workspace.objects, head)
            var = read_image(d / "out" / name).rgb
            want = variant_refdiff(var, ideal_raw, workspace.settings.label_max_side)
            np.testing.assert_allclose(got, want, atol=2e-3)
            params = json.loads(head.params)
            assert params["ideal"] == "raw-linear" and params["reference_ev"] == 1.0 and len(params["raw_sha256"]) == 64
        # the EV 0 variant is the ideal itself: its reference difference is ~0 even in the patch,
        # where the 8-bit path would call it 0.1 too bright
        p0 = load_label_map(workspace.objects, chain_head(uow, raw_scene["P0"], "refdiff"))
        assert np.abs(p0).max() < 0.01
        eight = variant_refdiff(read_image(d / "out" / "r_P0.png").rgb, ideal_8, workspace.settings.label_max_side)
        assert eight[20:36, 36:68].min() > 0.08

    # the RAW gone: the reference's pixels are used, and the report says why
    os.remove(d / "r.dng")
    state = open_target(workspace, rev, raw_scene["scene_id"])
    again = save_target(workspace, rev, state)
    assert again.ideal_source == "reference" and "is not found" in again.notes[0] and not again.errors
    with reader(workspace) as s:
        newest = s.scalars(
            select(Label).where(Label.image_id == raw_scene["P0"], Label.kind == "refdiff").order_by(Label.revision)
        ).all()[-1]
        assert json.loads(newest.params)["ideal"] == "reference"
        np.testing.assert_allclose(load_label_map(workspace.objects, newest), eight, atol=2e-3)
