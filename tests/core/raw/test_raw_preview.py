"""core.raw.raw_preview: the Bayer mosaic path against LibRaw's half-size render, and its fallbacks."""

from __future__ import annotations

import io
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iea_data.core.imaging import label_shape, linear_to_srgb
from iea_data.core.raw import BAYER_PATTERNS, mosaic_bayer, raw_preview, read_raw_info, render_linear, synthetic_dng
from iea_data.core.raw._mosaic import bayer_preview, orient

H, W = 96, 144
# XYZ -> camera of a real sensor (Canon EOS 5D Mark II, D65; dcraw's table): a strong matrix
# whose camera-to-sRGB inverse has large negative terms, so saturated colours leave the gamut
CANON_5D2 = ((0.4716, 0.0603, -0.0830), (-0.7798, 1.5474, 0.2480), (-0.1496, 0.1937, 0.6651))
# tolerances on 8-bit steps: the mosaic path does LibRaw's arithmetic in float32, LibRaw in integers
MEAN_TOL, MAX_TOL = 0.05 / 255, 0.5 / 255


def _scene(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A gradient with high-frequency texture, 2 % noise, a black patch and a patch that clips."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    lo, hi = rng.uniform(0.0, 0.3, 3), rng.uniform(0.3, 0.9, 3)
    base = lo + (hi - lo) * (xx / w)[..., None] * rng.uniform(0.5, 1, 3) + (hi - lo) * (yy / h)[..., None] * 0.3
    texture = 1 + 0.3 * np.sin(xx / rng.uniform(1, 6))[..., None] * np.cos(yy / rng.uniform(1, 6))[..., None]
    scene = base * texture * rng.normal(1.0, 0.02, base.shape)
    scene[: h // 4, : w // 4] = rng.uniform(0.9, 1.0, (h // 4, w // 4, 3))  # clips after white balance
    scene[-h // 4 :, -w // 4 :] = rng.uniform(0.0, 0.004, (h // 4, w // 4, 3))  # near black, some below it
    return np.clip(scene, 0, 1)


def _assert_close(fast: np.ndarray, ref: np.ndarray) -> None:
    assert fast.shape == ref.shape and fast.dtype == ref.dtype == np.float32
    diff = np.abs(fast.astype(np.float64) - ref)
    assert diff.mean() < MEAN_TOL and diff.max() < MAX_TOL, (diff.mean() * 255, diff.max() * 255)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("max_side", [256, 40])
def test_mosaic_preview_matches_libraw_for_every_bayer_pattern(pattern, max_side):
    data = synthetic_dng(_scene(1), pattern=pattern, neutral=(0.55, 1.0, 0.7), black=(500, 530, 520, 510))
    fast, ref = raw_preview(data, max_side=max_side), raw_preview(data, max_side=max_side, method="libraw")
    assert (fast.method, ref.method) == ("mosaic", "libraw")
    assert fast.info.cfa_pattern == pattern
    assert fast.rgb.shape == ((48, 72, 3) if max_side == 256 else (27, 40, 3))  # never above the half-size render
    _assert_close(fast.rgb, ref.rgb)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    pattern=st.sampled_from(BAYER_PATTERNS),
    neutral=st.tuples(*[st.floats(0.2, 1.0)] * 3),
    blacks=st.one_of(st.integers(0, 2048).map(lambda b: (b,) * 4), st.tuples(*[st.integers(0, 2048)] * 4)),
    white=st.sampled_from([4095, 16383, 65535]),
    matrix=st.sampled_from([None, CANON_5D2]),
    orientation=st.integers(1, 8),
    max_side=st.sampled_from([17, 40, 256]),
)
def test_mosaic_preview_matches_libraw_property(seed, pattern, neutral, blacks, white, matrix, orientation, max_side):
    if max(blacks) >= white:
        blacks = tuple(b % (white // 2) for b in blacks)
    data = synthetic_dng(
        _scene(seed),
        pattern=pattern,
        neutral=neutral,
        black=blacks,
        white=white,
        color_matrix=matrix,
        orientation=orientation,
    )
    fast, ref = raw_preview(data, max_side=max_side), raw_preview(data, max_side=max_side, method="libraw")
    assert fast.method == "mosaic"
    assert fast.rgb.shape[:2] == (
        min(label_shape(fast.info.height, fast.info.width, max_side)[0], ref.rgb.shape[0]),
        min(label_shape(fast.info.height, fast.info.width, max_side)[1], ref.rgb.shape[1]),
    )
    _assert_close(fast.rgb, ref.rgb)


def test_libraw_preview_is_the_half_size_render_area_averaged_in_linear_light():
    data = synthetic_dng(_scene(7), neutral=(0.5, 1.0, 0.8), orientation=6)
    half = render_linear(data, half_size=True).linear
    info = read_raw_info(data)
    assert half.shape == (72, 48, 3) and (info.height, info.width) == (144, 96)  # orientation 6: rotated
    h, w = label_shape(info.height, info.width, 40)
    want = linear_to_srgb(np.clip(cv2.resize(half, (w, h), interpolation=cv2.INTER_AREA), 0, 1))
    got = raw_preview(data, max_side=40, method="libraw").rgb
    assert got.shape == (40, 27, 3)
    np.testing.assert_allclose(got, want, atol=2e-4)  # the resize runs on LibRaw's uint16 values
    _assert_close(raw_preview(data, max_side=40).rgb, want)


def test_clipped_highlights_stay_white_and_black_stays_black():
    scene = np.zeros((64, 96, 3))
    scene[:, :48] = 1.0  # saturated sensor: white after any white balance (LibRaw clips each channel)
    data = synthetic_dng(scene, neutral=(0.4, 1.0, 0.6), color_matrix=CANON_5D2)
    rgb = raw_preview(data, max_side=48).rgb
    assert raw_preview(data, max_side=48).method == "mosaic"
    np.testing.assert_allclose(rgb[:, :22], 1.0, atol=1e-6)
    np.testing.assert_allclose(rgb[:, 26:], 0.0, atol=1e-6)


def test_a_linear_raw_dng_falls_back_to_libraw():
    scene = np.full((32, 48, 3), (0.2, 0.4, 0.1))
    data = synthetic_dng(scene, pattern=None)
    out = raw_preview(data, max_side=16)
    assert out.method == "libraw" and out.info.cfa_pattern is None and out.rgb.shape == (11, 16, 3)
    np.testing.assert_allclose(out.rgb.reshape(-1, 3).mean(0), linear_to_srgb(np.float32([0.2, 0.4, 0.1])), atol=2e-3)


class _Raw(SimpleNamespace):
    """A rawpy.RawPy's attributes, to change one at a time."""


def _raw_fields(data: bytes) -> dict:
    import rawpy

    raw = rawpy.RawPy()
    raw.open_buffer(io.BytesIO(data))
    raw.unpack()
    keys = (
        "raw_type",
        "num_colors",
        "color_desc",
        "raw_pattern",
        "sizes",
        "camera_whitebalance",
        "black_level_per_channel",
        "white_level",
        "color_matrix",
    )
    fields = {k: getattr(raw, k) for k in keys}
    fields["raw_image_visible"] = raw.raw_image_visible.copy()
    raw.close()
    return fields


@pytest.mark.parametrize(
    "change",
    [
        {"num_colors": 4, "color_desc": b"GMCY"},  # 4-colour filter
        {"raw_pattern": np.zeros((6, 6), np.uint8)},  # X-Trans-like 6 x 6 pattern
        {"raw_pattern": np.array([[0, 0], [3, 2]], np.uint8)},  # not one R, two G, one B
        {"camera_whitebalance": [0.0, 0.0, 0.0, 0.0]},  # no as-shot balance
        {"color_matrix": np.zeros((3, 4), np.float32)},  # no matrix
        {"white_level": 400},  # white below black
        {"pixel_aspect": 2.0},
        {"odd": True},
    ],
    ids=["4-colour", "6x6", "two-reds", "no-wb", "no-matrix", "white<black", "aspect", "odd-size"],
)
def test_anything_but_a_plain_bayer_mosaic_is_left_to_libraw(change):
    fields = _raw_fields(synthetic_dng(_scene(3, 32, 48)))
    assert bayer_preview(_Raw(**fields), (8, 12)) is not None
    change = dict(change)
    if change.pop("odd", False):
        fields["raw_image_visible"] = fields["raw_image_visible"][:31]
        fields["sizes"] = fields["sizes"]._replace(height=31)
    if "pixel_aspect" in change:
        fields["sizes"] = fields["sizes"]._replace(pixel_aspect=change.pop("pixel_aspect"))
    fields.update(change)
    assert bayer_preview(_Raw(**fields), (8, 12)) is None


def test_the_mosaic_is_read_from_the_visible_area_with_each_position_s_black():
    scene = np.zeros((32, 48, 3))
    scene[..., 0] = 0.5
    data = synthetic_dng(scene, pattern="GBRG", black=(100, 200, 300, 400), white=4095)
    fields = _raw_fields(data)
    np.testing.assert_array_equal(
        fields["raw_image_visible"], mosaic_bayer(scene, "GBRG", black=(100, 200, 300, 400), white=4095)
    )
    out = bayer_preview(_Raw(**fields), (16, 24))
    # LibRaw scales by white - min(black): red = 0.5 * (4095 - 300) / (4095 - 100)
    np.testing.assert_allclose(out[..., 0], 0.5 * (4095 - 300) / (4095 - 100), atol=2e-4)
    np.testing.assert_allclose(out[..., 1:], 0.0, atol=1e-4)  # the matrix is sRGB to 4 decimals


@pytest.mark.parametrize("flip", range(8))
def test_orient_is_libraw_s_flip_index(flip):
    ih, iw = 3, 5
    img = np.arange(ih * iw).reshape(ih, iw, 1)
    out = orient(img, flip)
    for row in range(out.shape[0]):
        for col in range(out.shape[1]):
            r, c = (col, row) if flip & 4 else (row, col)  # LibRaw's flip_index
            if flip & 2:
                r = ih - 1 - r
            if flip & 1:
                c = iw - 1 - c
            assert out[row, col, 0] == img[r, c, 0]


@pytest.mark.parametrize("orientation,flip,size", [(5, 4, (48, 32)), (7, 7, (48, 32)), (2, 1, (32, 48))])
def test_mirrored_orientations_swap_the_size_as_libraw_does(orientation, flip, size):
    data = synthetic_dng(_scene(5, 32, 48), orientation=orientation)
    info = read_raw_info(data)
    assert info.flip == flip and (info.height, info.width) == size
    assert render_linear(data).linear.shape[:2] == size
    assert raw_preview(data, max_side=12).rgb.shape[:2] == label_shape(*size, 12)


def test_method_is_validated():
    with pytest.raises(ValueError, match="`method`"):
        raw_preview(synthetic_dng(np.full((32, 48, 3), 0.2)), method="fast")
