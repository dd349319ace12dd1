"""core.raw: metadata, linear renders, exposures and errors on DNGs of a known scene."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from iea_data.core.errors import ImageDecodeError
from iea_data.core.imaging import linear_to_srgb, srgb_to_linear
from iea_data.core.raw import (
    RawDecodeError,
    UnsupportedRawError,
    exposure_from_linear,
    ideal_from_linear,
    is_raw_name,
    raw_preview,
    read_raw_info,
    read_tiff_tags,
    render_linear,
)
from iea_data.core.residuals import ideal_from_ev


def test_linear_render_recovers_the_scene_channel_means(raw_dir, scene):
    out = render_linear(raw_dir / "scene.dng")
    assert out.linear.shape == scene.shape and out.linear.dtype == np.float32
    means = out.linear.reshape(-1, 3).astype(np.float64).mean(0)
    np.testing.assert_allclose(means, scene.reshape(-1, 3).mean(0), atol=1e-3)
    assert out.params["no_auto_bright"] is True and out.params["gamma"] == [1, 1] and out.params["output_bps"] == 16


def test_no_auto_bright_keeps_a_dark_exposure_dark(raw_dir, scene):
    out = render_linear(raw_dir / "dark.dng")
    np.testing.assert_allclose(out.linear.reshape(-1, 3).mean(0), (scene * 0.25).reshape(-1, 3).mean(0), atol=1e-3)


def test_given_white_balance_scales_channels(raw_dir, scene):
    out = render_linear(raw_dir / "dark.dng", wb=(2.0, 1.0, 1.0))
    ratio = out.linear[..., 0].mean() / render_linear(raw_dir / "dark.dng").linear[..., 0].mean()
    assert ratio == pytest.approx(2.0, rel=1e-2)
    with pytest.raises(ValueError, match="wb"):
        render_linear(raw_dir / "dark.dng", wb=(1.0, -1.0, 1.0))


def test_metadata_and_exposure_exif(raw_dir):
    info = read_raw_info(raw_dir / "scene.dng")
    assert (info.format, info.width, info.height, info.raw_width, info.raw_height) == ("DNG", 96, 64, 96, 64)
    assert info.cfa_pattern == "RGGB" and info.bit_depth == 14
    assert info.black_levels == (512, 512, 512, 512) and info.white_level == 16383
    e = info.exif
    assert (e.camera_make, e.camera_model) == ("Synthetic", "Bayer RGGB")
    assert e.exposure_time == pytest.approx(1 / 250) and e.f_number == pytest.approx(8.0)
    assert e.iso == 400 and e.exposure_bias == pytest.approx(-1.0)
    assert e.capture_time == datetime(2024, 5, 1, 12, 0, 0)
    assert info.camera == "Synthetic Bayer RGGB" and info.as_dict()["exif"]["iso"] == 400


def test_exposure_is_srgb_of_clipped_scaled_linear(raw_dir):
    lin = render_linear(raw_dir / "scene.dng").linear
    for ev in (-2.0, -0.5, 0.0, 1.0, 2.5):
        want = linear_to_srgb(np.clip(lin * np.float32(2.0**ev), 0, 1))
        np.testing.assert_array_equal(exposure_from_linear(lin, ev), want)
    assert float(exposure_from_linear(lin, 2.0).max()) == 1.0
    with pytest.raises(ValueError, match="ev"):
        exposure_from_linear(lin, float("nan"))


def test_preview_is_the_half_size_srgb_render(raw_dir):
    half = render_linear(raw_dir / "scene.dng", half_size=True).linear
    want = linear_to_srgb(np.clip(half, 0, 1))
    rgb, info, method = raw_preview(raw_dir / "scene.dng", max_side=48, method="libraw")
    assert rgb.shape == (32, 48, 3) and info.width == 96 and method == "libraw"
    np.testing.assert_allclose(rgb, want, atol=1e-6)
    rgb, _, method = raw_preview(raw_dir / "scene.dng", max_side=48)  # a Bayer DNG: from the mosaic
    assert method == "mosaic"
    np.testing.assert_allclose(rgb, want, atol=0.5 / 255)


def test_truncated_dng_is_unreadable_raw(raw_dir):
    with pytest.raises(RawDecodeError) as err:
        render_linear(raw_dir / "truncated.dng")
    assert err.value.reason == "unreadable-raw" and "LibRaw" in str(err.value)
    assert not isinstance(err.value, UnsupportedRawError) and isinstance(err.value, ImageDecodeError)


def test_non_raw_file_named_dng_is_unreadable_raw(raw_dir):
    with pytest.raises(RawDecodeError) as err:
        read_raw_info(raw_dir / "notraw.dng")
    assert err.value.reason == "unreadable-raw" and "not a camera RAW" in str(err.value)


def test_unsupported_camera_names_the_camera(tmp_path):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[271], exif[272] = "Acme", "Obscura 9"
    Image.new("RGB", (32, 32)).save(buf, "TIFF", exif=exif)
    with pytest.raises(UnsupportedRawError) as err:
        read_raw_info(buf.getvalue(), name="shot.nef")
    assert err.value.reason == "unsupported-raw" and "Acme Obscura 9" in str(err.value)
    assert err.value.camera == "Acme Obscura 9"


def test_tiff_tag_reader_never_raises_on_garbage():
    rng = np.random.default_rng(0)
    for _ in range(200):
        data = b"II*\x00" + rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        read_tiff_tags(data)
    assert read_tiff_tags(b"") is None and is_raw_name("x.ARW")


def test_raw_linear_ideal_differs_from_the_8bit_ideal_exactly_where_the_reference_clips(raw_dir):
    lin = render_linear(raw_dir / "scene.dng").linear
    ref_ev = 0.5  # the 8-bit reference, rendered at +0.5 EV: the 0.8 patch clips (1.13), the rest stays <= 0.71
    ref8 = np.round(exposure_from_linear(lin, ref_ev) * 255).astype(np.float32) / 255
    ev_map = np.full(lin.shape[:2], -1.0, np.float32)
    raw_ideal = ideal_from_linear(lin, ev_map, reference_ev=ref_ev)
    ideal8 = ideal_from_ev(ref8, ev_map)
    clipped = (ref8 >= 1.0).any(axis=2)
    diff = np.abs(raw_ideal - ideal8).max(axis=2)
    assert clipped.any() and not clipped.all()
    assert (diff[clipped] > 0.03).all()  # highlights the sensor kept are recovered
    assert (diff[~clipped] <= 1.5 / 255).all()  # elsewhere only 8-bit rounding differs
    np.testing.assert_allclose(srgb_to_linear(raw_ideal[~clipped]), np.clip(lin[~clipped] * 2**-0.5, 0, 1), atol=2e-3)


def test_exposure_from_counts_is_bit_identical_to_the_float_path(raw_dir):
    out = render_linear(raw_dir / "scene.dng")
    assert out.counts.dtype == np.uint16
    np.testing.assert_array_equal(out.counts.astype(np.float32) / np.float32(65535), out.linear)
    for ev in (-2.0, -0.5, 0.0, 1.0, 2.5):
        np.testing.assert_array_equal(exposure_from_linear(out.counts, ev), exposure_from_linear(out.linear, ev))
