"""sRGB transfer curves, Rec.601 luma and EV changes in linear light."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iea_data.core.imaging import LUMA_WEIGHTS, apply_ev, linear_to_srgb, luma, srgb_to_linear

unit32 = st.floats(0.0, 1.0, width=32)
images = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda hw: arrays(np.float32, (hw[0], hw[1], 3), elements=unit32)
)
FAST = settings(max_examples=60, deadline=None)


def _decode64(c):
    """IEC 61966-2-1 in float64, written out independently of the code under test."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _encode64(lin):
    lin = np.asarray(lin, np.float64)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def test_transfer_curves_against_the_standard():
    x = np.linspace(0, 1, 10001, dtype=np.float32)
    np.testing.assert_allclose(srgb_to_linear(x), _decode64(x), atol=1e-6, rtol=0)
    np.testing.assert_allclose(linear_to_srgb(x), np.clip(_encode64(x), 0, 1), atol=1e-6, rtol=0)
    # Fixed points and the published knee values.
    assert srgb_to_linear(np.float32([0, 1])).tolist() == [0.0, 1.0]
    assert linear_to_srgb(np.float32([0, 1])).tolist() == [0.0, 1.0]
    assert srgb_to_linear(np.float32([0.04045]))[0] == pytest.approx(0.04045 / 12.92, rel=1e-6)
    assert srgb_to_linear(np.float32([0.5]))[0] == pytest.approx(0.21404114, rel=1e-5)
    assert linear_to_srgb(np.float32([0.18]))[0] == pytest.approx(0.46135612, rel=1e-5)


def test_curves_keep_shape_and_dtype():
    x = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    for f in (srgb_to_linear, linear_to_srgb):
        out = f(x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert out is not x


@FAST
@given(images)
def test_srgb_linear_round_trip(rgb):
    lin = srgb_to_linear(rgb)
    assert lin.dtype == np.float32 and lin.min() >= 0 and lin.max() <= 1
    np.testing.assert_allclose(linear_to_srgb(lin), rgb, atol=1e-6, rtol=0)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(rgb)), rgb, atol=1e-6, rtol=0)


def test_curves_are_monotone():
    x = np.linspace(0, 1, 100001, dtype=np.float32)
    assert (np.diff(srgb_to_linear(x)) >= 0).all()
    assert (np.diff(linear_to_srgb(x)) >= 0).all()


def test_curves_validate():
    with pytest.raises(TypeError, match="`rgb`.*float64"):
        srgb_to_linear(np.zeros(3))
    with pytest.raises(ValueError, match=r"`lin`.*\[0, 1\].*1\.5"):
        linear_to_srgb(np.float32([0.2, 1.5]))


# --------------------------------------------------------------------------- luma


def test_luma_weights():
    assert LUMA_WEIGHTS == (0.299, 0.587, 0.114)
    img = np.zeros((1, 4, 3), np.float32)
    img[0, 0, 0] = img[0, 1, 1] = img[0, 2, 2] = 1.0
    img[0, 3] = 1.0
    y = luma(img)
    assert y.shape == (1, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y[0], [0.299, 0.587, 0.114, 1.0], atol=1e-7)
    assert y[0, 3] <= 1.0


@FAST
@given(images)
def test_luma_matches_formula(rgb):
    y = luma(rgb)
    expected = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(y, expected, atol=1e-6, rtol=0)
    assert y.min() >= 0 and y.max() <= 1


def test_luma_of_grey_is_the_grey_level():
    g = np.linspace(0, 1, 257, dtype=np.float32)[None, :, None].repeat(3, axis=2)
    np.testing.assert_allclose(luma(g)[0], g[0, :, 0], atol=1e-6)


def test_luma_of_a_view():
    rgb = np.random.default_rng(1).random((6, 8, 3), dtype=np.float32)
    view = rgb[::2, ::-1]
    np.testing.assert_allclose(luma(view), luma(np.ascontiguousarray(view)), atol=0)


def test_luma_validates():
    with pytest.raises(ValueError, match=r"`rgb`.*\(H, W, 3\).*\(4, 4\)"):
        luma(np.zeros((4, 4), np.float32))


# --------------------------------------------------------------------------- EV


def test_apply_ev_formula():
    rgb = np.random.default_rng(2).random((5, 7, 3), dtype=np.float32)
    for ev in (-2.5, -1, 0, 0.5, 1, 3):
        expected = np.clip(_encode64(np.clip(_decode64(rgb) * 2.0**ev, 0, 1)), 0, 1)
        out = apply_ev(rgb, ev)
        assert out.dtype == np.float32 and out.shape == rgb.shape
        np.testing.assert_allclose(out, expected, atol=2e-6, rtol=0)


def test_apply_ev_doubles_linear_light():
    grey = np.full((1, 1, 3), 0.5, np.float32)
    lin = _decode64(0.5)
    assert _decode64(apply_ev(grey, 1.0))[0, 0, 0] == pytest.approx(2 * lin, rel=1e-5)
    assert _decode64(apply_ev(grey, -1.0))[0, 0, 0] == pytest.approx(lin / 2, rel=1e-5)


@FAST
@given(images, st.floats(0.0, 4.0))
def test_apply_ev_round_trip_where_unclipped(rgb, ev):
    back = apply_ev(apply_ev(rgb, ev), -ev)
    unclipped = _decode64(rgb) * 2.0**ev <= 1.0
    np.testing.assert_allclose(back[unclipped], rgb[unclipped], atol=1e-5, rtol=0)
    assert back.min() >= 0 and back.max() <= 1


@FAST
@given(images, st.floats(-8, 8), st.floats(-8, 8))
def test_apply_ev_is_monotone_in_ev(rgb, a, b):
    lo, hi = sorted((a, b))
    assert (apply_ev(rgb, lo) <= apply_ev(rgb, hi) + 1e-7).all()


def test_apply_ev_map():
    rgb = np.full((2, 4, 3), 0.4, np.float32)
    ev = np.zeros((2, 4), np.float32)
    ev[:, 2:] = 1.0
    out = apply_ev(rgb, ev)
    np.testing.assert_allclose(out[:, :2], apply_ev(rgb, 0.0)[:, :2], atol=0)
    np.testing.assert_allclose(out[:, 2:], apply_ev(rgb, 1.0)[:, 2:], atol=0)


def test_apply_ev_extremes_stay_finite():
    rgb = np.array([[[0, 0.5, 1]]], np.float32)
    assert apply_ev(rgb, 1000).tolist() == [[[0.0, 1.0, 1.0]]]
    assert apply_ev(rgb, -1000).max() < 1e-30
    ev_map = np.array([[300.0]], np.float32)
    assert np.isfinite(apply_ev(rgb, ev_map)).all()


def test_apply_ev_validates():
    rgb = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"`ev`.*\(2, 3\).*\(3, 2\)"):
        apply_ev(rgb, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="`ev`.*finite"):
        apply_ev(rgb, float("nan"))
    with pytest.raises(TypeError, match="`ev`"):
        apply_ev(rgb, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`ev`.*float64"):
        apply_ev(rgb, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`ev`.*non-finite"):
        apply_ev(rgb, np.full((2, 3), np.inf, np.float32))
    with pytest.raises(TypeError, match="`rgb`.*uint8"):
        apply_ev(np.zeros((2, 3, 3), np.uint8), 1.0)
