"""workflows.brackets: one demosaic per RAW, EVs scaled in linear light, names that group on ingest."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

pytest.importorskip("pidng")
pytest.importorskip("rawpy")

from iea_data.core.imaging import linear_to_srgb, read_image
from iea_data.core.raw import render_linear, synthetic_dng
from iea_data.core.scenes import read_sidecar
from iea_data.workflows.brackets import bracket_names, parse_evs, render_brackets

EVS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def _scene(h: int = 64, w: int = 96, gain: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    s = np.stack([0.1 + 0.3 * xx / w, 0.2 + 0.2 * yy / h, 0.05 + 0.1 * (xx + yy) / (w + h)], -1)
    s[8:24, 40:72] = 0.7
    return s * gain


@pytest.fixture(scope="module")
def raws(tmp_path_factory):
    d = tmp_path_factory.mktemp("raws")
    (d / "alpha.dng").write_bytes(synthetic_dng(_scene()))
    (d / "beta.dng").write_bytes(synthetic_dng(_scene(gain=0.5), model="Bayer beta"))
    data = (d / "alpha.dng").read_bytes()
    (d / "broken.dng").write_bytes(data[: len(data) // 3])
    return d


def _read16(path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr.dtype == np.uint16
    return bgr[..., ::-1].astype(np.float64) / 65535


def test_each_ev_is_srgb_of_clipped_scaled_linear_within_one_16bit_step(raws, tmp_path):
    report = render_brackets([raws / "alpha.dng"], tmp_path, evs=EVS)
    assert report.errors == [] and len(report.outputs) == 5
    lin = render_linear(raws / "alpha.dng").linear
    for row in bracket_names("alpha", EVS):
        want = linear_to_srgb(np.clip(lin * np.float32(2.0 ** row["ev"]), 0, 1)).astype(np.float64)
        got = _read16(tmp_path / row["file"])
        assert np.abs(got - want).max() <= 1 / 65535 + 1e-9, row
    names = sorted(p.name for p in tmp_path.glob("alpha*.png"))
    assert names == ["alpha.png", "alpha_N1.png", "alpha_N2.png", "alpha_P1.png", "alpha_P2.png"]


def test_8bit_png_within_one_step_and_jpeg_decodes(raws, tmp_path):
    render_brackets([raws / "alpha.dng"], tmp_path / "p8", evs="-1,0,1", fmt="png", name_style="ev")
    lin = render_linear(raws / "alpha.dng").linear
    got = read_image(tmp_path / "p8" / "alpha_+1EV.png")
    assert got.bit_depth == 8
    want = linear_to_srgb(np.clip(lin * np.float32(2.0), 0, 1))
    assert np.abs(got.rgb - want).max() <= 1 / 255 + 1e-6
    render_brackets([raws / "alpha.dng"], tmp_path / "jpg", evs="-1,0,1", fmt="jpg")
    jpg = read_image(tmp_path / "jpg" / "alpha_N1.jpg")
    assert (jpg.width, jpg.height, jpg.format) == (96, 64, "JPEG")


def test_sidecar_and_provenance(raws, tmp_path):
    report = render_brackets([raws / "alpha.dng", raws / "beta.dng"], tmp_path, evs=EVS, workers=2)
    rows = read_sidecar(report.sidecar)
    assert {r.scene for r in rows} == {"alpha", "beta"} and len(rows) == 10
    alpha = {r.path: r for r in rows if r.scene == "alpha"}
    assert alpha["alpha.png"].is_reference and alpha["alpha_N2.png"].ev == -2.0 and alpha["alpha_P1.png"].ev == 1.0
    assert alpha["alpha_N2.png"].variant == "N2"
    import json

    prov = json.loads((tmp_path / "alpha.render.json").read_text())
    assert prov["versions"]["rawpy"] and prov["versions"]["libraw"]
    assert len(prov["raw_sha256"]) == 64 and prov["render"]["no_auto_bright"] is True
    assert prov["parameters"]["evs"] == list(EVS) and prov["raw_info"]["cfa_pattern"] == "RGGB"
    with open(report.sidecar, newline="") as fh:
        assert next(csv.reader(fh)) == ["path", "scene", "variant", "ev", "is_reference"]


def test_resumable_second_run_skips_same_parameters(raws, tmp_path):
    first = render_brackets([raws / "alpha.dng"], tmp_path, evs=EVS)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.png")}
    again = render_brackets([raws / "alpha.dng"], tmp_path, evs=EVS)
    assert first.rendered and again.rendered == [] and again.skipped == [str(raws / "alpha.dng")]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.png")} == mtimes
    (tmp_path / "alpha_P2.png").unlink()  # a missing output renders the bracket again
    assert render_brackets([raws / "alpha.dng"], tmp_path, evs=EVS).rendered
    changed = render_brackets([raws / "alpha.dng"], tmp_path, evs=EVS, fmt="png")  # other parameters
    assert changed.rendered


def test_one_bad_raw_is_reported_and_skipped(raws, tmp_path):
    seen = []
    report = render_brackets(
        [raws / "alpha.dng", raws / "broken.dng", raws / "beta.dng"],
        tmp_path,
        evs=EVS,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert [e.reason for e in report.errors] == ["unreadable-raw"] and "broken.dng" in report.errors[0].path
    assert len(report.rendered) == 2 and seen[-1] == (3, 3)
    assert not list(tmp_path.glob("broken*"))


def test_names_and_validation():
    assert parse_evs("-2, -1 0 +1,+2") == EVS
    assert [r["file"] for r in bracket_names("s", [-0.5, 0.0], name_style="ev")] == ["s_-0.5EV.png", "s.png"]
    from iea_data.core.errors import IeaError

    with pytest.raises(IeaError, match="name-style ev"):
        bracket_names("s", [-0.5, 0.0])
    with pytest.raises(IeaError, match="--reference"):
        bracket_names("s", [-1.0, 1.0])
    with pytest.raises(IeaError, match="repeat"):
        parse_evs("1,1")
    with pytest.raises(IeaError, match="--format"):
        bracket_names("s", [0.0], fmt="webp")
