"""Boundary checks: what they accept, and error messages that name the argument."""

from __future__ import annotations

import numpy as np
import pytest

import iea_data.core.imaging as imaging
from iea_data.core.imaging import check_image, check_range, check_residual


def test_check_image_accepts_and_returns_the_same_array():
    img = np.zeros((2, 3, 3), np.float32)
    img[0, 0] = 1.0
    assert check_image(img) is img
    view = np.ones((4, 6, 3), np.float32)[::2, ::2]
    assert check_image(view) is view


@pytest.mark.parametrize(
    "value,exc,pattern",
    [
        ([[0.0]], TypeError, r"`photo` must be a float32 numpy array .*\(H, W, 3\).*got an object of type list"),
        (np.zeros((2, 2, 3), np.uint8), TypeError, r"`photo`.*got dtype uint8.*255"),
        (np.zeros((2, 2, 3), np.float64), TypeError, r"`photo`.*got dtype float64.*astype\(numpy.float32\)"),
        (np.zeros((2, 2), np.float32), ValueError, r"`photo`.*got shape \(2, 2\)"),
        (np.zeros((2, 2, 4), np.float32), ValueError, r"`photo`.*got shape \(2, 2, 4\).*alpha"),
        (np.zeros((3, 8, 8), np.float32), ValueError, r"`photo`.*got shape \(3, 8, 8\).*channels-first"),
        (np.zeros((0, 2, 3), np.float32), ValueError, r"`photo`.*empty.*\(0, 2, 3\)"),
        (np.full((2, 2, 3), 1.25, np.float32), ValueError, r"`photo`.*\[0, 1\].*got values in \[1.25, 1.25\]"),
        (
            np.full((2, 2, 3), -0.5, np.float32),
            ValueError,
            r"`photo`.*got values in \[-0.5, -0.5\].*numpy.clip\(photo, 0, 1\)",
        ),
    ],
)
def test_check_image_messages(value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        check_image(value, name="photo")


@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.copysign(np.nan, -1), np.inf, -np.inf])
@pytest.mark.parametrize("contiguous", [True, False])
def test_check_image_finds_non_finite(bad, contiguous):
    img = np.full((4, 6, 3), 0.5, np.float32)
    img[2, 4, 0] = bad
    view = img if contiguous else img[::2, ::2]
    with pytest.raises(ValueError, match=r"`image`.*non-finite.*(nan|inf)"):
        check_image(view)


def test_check_image_range_edges():
    """The one-pass bit test is exact at the edges of [0, 1]."""
    edge = [  # pairs, not a dict: -0.0 and 0.0 are the same key
        (-0.0, True),
        (0.0, True),
        (1.0, True),
        (float(np.float32(1e-45)), True),
        (float(np.nextafter(np.float32(1), np.float32(2))), False),
        (-float(np.float32(1e-45)), False),
    ]
    for value, ok in edge:
        img = np.full((2, 2, 3), 0.5, np.float32)
        img[1, 0, 2] = value
        if ok:
            assert check_image(img) is img
        else:
            with pytest.raises(ValueError, match="got values in"):
                check_image(img)


def test_check_residual():
    r = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    assert check_residual(r) is r
    with pytest.raises(ValueError, match=r"`label`.*\[-1, 1\].*got values in \[-2, 1\]"):
        check_residual(np.float32([[-2, 1]]), name="label")
    with pytest.raises(ValueError, match=r"`residual`.*\(H, W\).*\(2, 2, 1\)"):
        check_residual(np.zeros((2, 2, 1), np.float32))
    with pytest.raises(TypeError, match=r"`residual`.*float16"):
        check_residual(np.zeros((2, 2), np.float16))
    with pytest.raises(ValueError, match="`residual`.*non-finite"):
        check_residual(np.float32([[np.nan, 0]]))


def test_check_range():
    a = np.array([1, 2, 3])
    assert check_range(a, 1, 3, "counts") is a
    assert check_range(np.zeros(0), 0, 1, "empty").size == 0
    assert check_range(np.array([True, False]), 0, 1, "mask") is not None
    with pytest.raises(ValueError, match=r"`ev`.*\[-8, 8\].*got values in \[-9, 0\]"):
        check_range(np.float32([-9, 0]), -8, 8, "ev")
    with pytest.raises(ValueError, match="`ev`.*non-finite"):
        check_range(np.float32([np.nan]), -8, 8, "ev")
    with pytest.raises(TypeError, match="`ev`.*<U1"):
        check_range(np.array(["a"]), 0, 1, "ev")
    with pytest.raises(TypeError, match="`ev`.*list"):
        check_range([1.0], 0, 1, "ev")
    with pytest.raises(ValueError, match="lo <= hi"):
        check_range(a, 3, 1, "counts")


def test_public_functions_name_their_argument():
    bad = np.zeros((2, 2), np.float32)
    for fn in (imaging.luma, imaging.luma_stats, imaging.thumbnail, imaging.srgb_to_linear):
        with pytest.raises((TypeError, ValueError), match="`(rgb|lin)`"):
            fn(bad.astype(np.float64))
    with pytest.raises(ValueError, match="`rgb`"):
        imaging.resize_image(bad, (1, 1))


def test_public_api():
    expected = {
        "check_image", "check_residual", "check_range",
        "srgb_to_linear", "linear_to_srgb", "luma", "apply_ev",
        "read_image", "read_image_bytes", "read_header", "DecodedImage", "ExifInfo",
        "luma_stats", "BLACK_LEVEL", "WHITE_LEVEL",
        "label_shape", "resize_map", "resize_image", "thumbnail",
        "write_image", "encode_png",
    }  # fmt: skip
    assert expected <= set(imaging.__all__)
    for name in imaging.__all__:
        assert getattr(imaging, name) is not None, name
