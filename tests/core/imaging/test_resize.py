"""Label resolution, map and image resizing, thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iea_data.core.imaging import label_shape, resize_image, resize_map, thumbnail

# --------------------------------------------------------------------------- label_shape


def test_label_shape_examples():
    assert label_shape(3000, 4000) == (768, 1024)
    assert label_shape(4000, 3000) == (1024, 768)
    assert label_shape(1024, 1024) == (1024, 1024)
    assert label_shape(500, 700) == (500, 700)  # never upscaled
    assert label_shape(2048, 1025, max_side=1024) == (1024, 513)  # 512.5 rounds half up
    assert label_shape(1, 10000, max_side=100) == (1, 100)  # a side never drops to 0
    assert label_shape(np.int64(600), np.int32(800), max_side=400) == (300, 400)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20000), st.integers(1, 20000), st.integers(1, 4096))
def test_label_shape_properties(height, width, max_side):
    h, w = label_shape(height, width, max_side)
    assert isinstance(h, int) and isinstance(w, int)
    assert 1 <= h <= height and 1 <= w <= width  # never upscales
    assert max(h, w) <= max_side
    long_side = max(height, width)
    if long_side <= max_side:
        assert (h, w) == (height, width)
    else:
        assert max(h, w) == max_side
        scale = max_side / long_side
        # Aspect kept: each side is the scaled side rounded to nearest (or clamped to 1).
        assert abs(h - height * scale) <= 0.5 + 1e-9 or h == 1
        assert abs(w - width * scale) <= 0.5 + 1e-9 or w == 1


def test_label_shape_validates():
    with pytest.raises(ValueError, match="`height`.*>= 1.*0"):
        label_shape(0, 10)
    with pytest.raises(TypeError, match="`width`"):
        label_shape(10, 10.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`max_side`"):
        label_shape(10, 10, max_side=True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- resize_map


def test_shrinking_is_area_averaging():
    m = np.arange(24, dtype=np.float32).reshape(4, 6) / 24
    out = resize_map(m, (2, 3))
    expected = m.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_enlarging_is_bilinear():
    m = np.array([[0.0, 1.0]], np.float32)
    out = resize_map(m, (1, 4))
    # Pixel centres aligned: output centres at input x = -0.25, 0.25, 0.75, 1.25 (clamped).
    np.testing.assert_allclose(out[0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)


def test_resize_map_keeps_the_range(rng):
    m = rng.uniform(-1, 1, (37, 53)).astype(np.float32)
    m[0, 0], m[-1, -1] = -1.0, 1.0
    for shape in [(10, 14), (74, 106), (20, 80), (5, 5), (37, 53)]:
        out = resize_map(m, shape)
        assert out.shape == shape and out.dtype == np.float32
        assert out.min() >= -1.0 and out.max() <= 1.0
    assert resize_map(m, m.shape) is not m
    np.testing.assert_array_equal(resize_map(m, m.shape), m)
    constant = np.full((9, 7), 0.3, np.float32)
    np.testing.assert_allclose(resize_map(constant, (20, 3)), 0.3, atol=1e-7)


def test_resize_map_validates():
    with pytest.raises(ValueError, match=r"`arr2d`.*\(H, W\).*\(2, 2, 3\)"):
        resize_map(np.zeros((2, 2, 3), np.float32), (1, 1))
    with pytest.raises(TypeError, match="`shape`"):
        resize_map(np.zeros((2, 2), np.float32), 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`shape\[1\]`"):
        resize_map(np.zeros((2, 2), np.float32), (1, 0))


# --------------------------------------------------------------------------- images


def test_resize_image(rng):
    rgb = rng.random((30, 40, 3), dtype=np.float32)
    small = resize_image(rgb, (15, 20))
    assert small.shape == (15, 20, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small, rgb.reshape(15, 2, 20, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    big = resize_image(rgb, (61, 83))
    assert big.shape == (61, 83, 3) and 0 <= big.min() and big.max() <= 1
    with pytest.raises(TypeError, match="`rgb`"):
        resize_image(rgb.astype(np.float64), (2, 2))


def test_thumbnail_shape_and_rounding():
    for value in (0.0, 0.2, 0.5, 1.0):
        t = thumbnail(np.full((300, 500, 3), value, np.float32), max_side=64)
        assert t.dtype == np.uint8 and t.shape == (38, 64, 3)
        assert (t == np.rint(np.float32(value) * 255)).all()  # 127.5 -> 128 (halves to even)


def test_thumbnail_of_8bit_levels_is_exact():
    levels = np.arange(256, dtype=np.float32).reshape(16, 16) / np.float32(255)
    rgb = np.repeat(levels[..., None], 3, axis=2)
    t = thumbnail(rgb, max_side=256)  # not shrunk: every level must come back
    np.testing.assert_array_equal(t[..., 0], np.arange(256).reshape(16, 16))


def test_thumbnail_area_average(photo):
    rgb = (photo / 255).astype(np.float32)
    t = thumbnail(rgb, max_side=32)
    assert t.shape == (24, 32, 3)
    expected = rgb.reshape(24, 2, 32, 2, 3).mean(axis=(1, 3)) * 255
    assert np.abs(t.astype(np.float64) - expected).max() <= 0.5 + 1e-4


def test_thumbnail_never_upscales(rng):
    rgb = rng.random((10, 20, 3), dtype=np.float32)
    assert thumbnail(rgb, max_side=256).shape == (10, 20, 3)
    with pytest.raises(ValueError, match="`max_side`"):
        thumbnail(rgb, max_side=0)
