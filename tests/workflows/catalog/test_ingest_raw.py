"""Ingest camera RAW (issue 14): DNGs are decoded through LibRaw; bad RAWs get their own error rows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from iea_data.store import Image
from iea_data.workflows.catalog import group_scenes_by_exif, ingest

from ..conftest import reader

pytest.importorskip("pidng")
pytest.importorskip("rawpy")


@pytest.fixture(scope="module")
def raw_batch(tmp_path_factory):
    from datetime import datetime, timedelta

    from iea_data.core.raw import synthetic_dng

    d = tmp_path_factory.mktemp("raw-batch")
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float64)
    scene = np.stack([0.1 + 0.3 * xx / 96, 0.2 + 0.2 * yy / 64, np.full_like(xx, 0.1)], -1)
    t0 = datetime(2024, 5, 1, 12, 0, 0)
    for i, (ev, t) in enumerate([(0, 1 / 100), (-1, 1 / 200), (1, 1 / 50)]):
        (d / f"bracket_{i}.dng").write_bytes(
            synthetic_dng(
                np.clip(scene * 2.0**ev, 0, 1),
                exposure_time=t,
                exposure_bias=float(ev),
                capture_time=t0 + timedelta(seconds=i),
            )
        )
    data = (d / "bracket_0.dng").read_bytes()
    (d / "truncated.dng").write_bytes(data[: len(data) // 2])
    (d / "notes.dng").write_bytes(b"not a raw file at all\n" * 40)
    buf = io.BytesIO()
    exif = PILImage.Exif()
    exif[271], exif[272] = "Acme", "Obscura 9"
    PILImage.new("RGB", (32, 32)).save(buf, "TIFF", exif=exif)
    (d / "acme.nef").write_bytes(buf.getvalue())
    return d


def test_raw_files_are_catalogued_with_sensor_facts_and_exif(workspace, raw_batch):
    report = ingest(workspace, [raw_batch], workers=2)
    reasons = {Path(e.path).name: e.reason for e in report.errors}
    assert reasons == {"truncated.dng": "unreadable-raw", "notes.dng": "unreadable-raw", "acme.nef": "unsupported-raw"}
    assert any("Acme Obscura 9" in e.message for e in report.errors)
    assert all("LibRaw" in e.message for e in report.errors)
    assert report.n_new == 3
    with reader(workspace) as s:
        rows = s.scalars(select(Image).order_by(Image.name)).all()
        assert [r.name for r in rows] == ["bracket_0.dng", "bracket_1.dng", "bracket_2.dng"]
        r = rows[0]
        assert (r.format, r.raw, r.width, r.height, r.raw_width, r.raw_height) == ("DNG", True, 96, 64, 96, 64)
        assert (r.bit_depth, r.raw_cfa_pattern, r.raw_black_level, r.raw_white_level) == (14, "RGGB", 512.0, 16383)
        assert json.loads(r.raw_info)["versions"]["libraw"]
        assert (r.exif_camera_make, r.exif_camera_model) == ("Synthetic", "Bayer RGGB")
        assert r.exif_exposure_time == pytest.approx(1 / 100) and r.exif_iso == 200 and r.exif_f_number == 5.6
        assert r.thumbnail is not None
        # no auto-bright: the -1 EV shot is darker than the 0 EV one, the +1 EV one brighter
        assert rows[1].luma_mean < rows[0].luma_mean < rows[2].luma_mean
        want = float(np.mean(0.299 * _srgb(0.1 + 0.3 * np.arange(96) / 96) + 0.587 * _srgb(0.3) + 0.114 * _srgb(0.1)))
        assert r.luma_mean == pytest.approx(want, abs=0.01)
    assert group_scenes_by_exif(workspace) == 1  # the exposure EXIF makes the bracket
    with reader(workspace) as s:
        evs = sorted(s.scalars(select(Image.ev)))
    assert evs == [-1.0, 0.0, 1.0]


def _srgb(x):
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def test_non_raw_images_have_raw_false(workspace, demo_photos):
    ingest(workspace, [demo_photos], workers=1)
    with reader(workspace) as s:
        assert set(s.scalars(select(Image.raw))) == {False}


def test_raw_luma_statistics_are_those_of_the_libraw_preview(workspace, tmp_path):
    """The Bayer preview (from the mosaic, area-averaged in linear light) gives the catalog the
    luma statistics of the earlier path: LibRaw's half-size render, sRGB-encoded, then area-averaged."""
    from iea_data.core.imaging import LUMA_STATS_KEYS, label_shape, linear_to_srgb, luma_stats, resize_image
    from iea_data.core.raw import render_linear, synthetic_dng

    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:480, 0:720].astype(np.float64)
    base = np.stack([0.02 + 0.6 * xx / 720, 0.05 + 0.5 * yy / 480, 0.03 + 0.3 * (xx + yy) / 1200], -1)
    texture = 1 + 0.2 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 4.0)[..., None]
    scene = np.clip(base * texture * rng.normal(1, 0.02, base.shape), 0, 1)
    scene[:60, :90] = 1.0  # clipped highlights
    names = {"plain.dng": {}, "bggr.dng": {"pattern": "BGGR", "neutral": (0.5, 1.0, 0.75), "orientation": 6}}
    for name, kw in names.items():
        (tmp_path / name).write_bytes(synthetic_dng(scene, **kw))
    assert ingest(workspace, [tmp_path], workers=1).n_new == 2
    side = workspace.settings.stats_side
    with reader(workspace) as s:
        rows = {r.name: r for r in s.scalars(select(Image))}
    for name in names:
        r = rows[name]
        assert json.loads(r.raw_info)["preview_method"] == "mosaic"
        half = render_linear(tmp_path / name, half_size=True).linear
        old = resize_image(linear_to_srgb(np.clip(half, 0, 1)), label_shape(r.height, r.width, side))
        want = luma_stats(old)
        for key in LUMA_STATS_KEYS:
            # averaging 2-3 px of texture in linear light instead of sRGB moves luma by < 1/255
            tol = 0.01 if key.startswith("frac") else 1 / 255
            assert getattr(r, key) == pytest.approx(want[key], abs=tol), key
        assert r.luma_mean != want["luma_mean"]  # not the old path itself
