"""Heatmaps: blue too dark, white ideal, red too bright, symmetric fixed range, legend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iea_data.core.heatmaps import COLORMAP, DEFAULT_RANGE, colorize, legend, overlay, render_heatmap


def test_ends_and_centre():
    c = colorize(np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]], np.float32))[0]
    assert tuple(c[2]) == (255, 255, 255)
    assert c[1, 2] > c[1, 0] and c[3, 0] > c[3, 2]  # blue for dark, red for bright
    assert (c[0] == c[1]).all() and (c[4] == c[3]).all()  # saturates beyond the range


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (7, 5), elements=st.floats(-1, 1, width=32)))
def test_sign_decides_hue_and_magnitude_decides_saturation(r):
    c = colorize(r).astype(int)
    assert ((r < -0.01) <= (c[..., 2] >= c[..., 0])).all()
    assert ((r > 0.01) <= (c[..., 0] >= c[..., 2])).all()
    # antisymmetric range: |r| maps to the same distance from white on both sides
    dist = 255 * 3 - c.sum(-1)
    dist_neg = 255 * 3 - colorize(-r).astype(int).sum(-1)
    assert (np.abs(dist - dist_neg) <= 140).all()


def test_overlay_leaves_ideal_pixels_alone_and_tints_the_rest(rng):
    photo = rng.random((20, 30, 3), dtype=np.float32)
    r = np.zeros((10, 15), np.float32)
    out = overlay(photo, r)
    assert out.shape == (20, 30, 3)
    assert np.abs(out.astype(int) - np.round(photo * 255)).max() <= 1
    r[:] = -DEFAULT_RANGE
    blue = overlay(photo, r, opacity=1.0)
    assert (blue == COLORMAP[0]).all()


def test_legend_and_figure_shapes():
    leg = legend(300, 48)
    assert leg.shape == (48, 300, 3) and leg.dtype == np.uint8
    fig = render_heatmap(np.zeros((40, 60), np.float32), title="x")
    assert fig.shape[1] == 240 and fig.shape[0] > 40 + 44


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: colorize(np.zeros((3, 3), np.float64)), "residual"),
        (lambda: colorize(np.full((3, 3), 2, np.float32)), "residual"),
        (lambda: colorize(np.zeros((3, 3), np.float32), vmax=0), "vmax"),
        (lambda: overlay(np.zeros((3, 3, 3), np.float32), np.zeros((3, 3), np.float32), opacity=2), "opacity"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
