"""The quality plots: valid PNGs that show what they say (colours, legends, one row per rater)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

from iea_data.core.heatmaps import COLORMAP
from iea_data.core.quality import (
    SPREAD_COLORMAP,
    RaterParams,
    Reliability,
    bias_plot_png,
    colorize_spread,
    consensus_map,
    estimate_raters,
    expert_grid_png,
    noise_plot_png,
    reliability_over_time_png,
)

from ._synthetic import panel


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    bias = np.array([0.06, 0.02, -0.03, -0.05, 0.0])
    images, _ = panel(rng, bias, np.array([0.03, 0.05, 0.08, 0.1, 0.12]), 8, 32, 32)
    params, _ = estimate_raters(images, n_boot=50)
    return params, images


def _img(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _has(arr: np.ndarray, colour) -> bool:
    return bool((arr.reshape(-1, 3) == np.array(colour, np.uint8)).all(axis=1).any())


def test_bias_plot_has_a_row_per_rater_in_blue_and_red(fitted):
    params, _ = fitted
    arr = _img(bias_plot_png(params))
    assert arr.shape[0] >= 44 + 20 * len(params)
    assert _has(arr, (178, 24, 43)) and _has(arr, (33, 102, 172))  # brighter and darker raters


def test_noise_plot_and_reliability_over_time(fitted):
    params, _ = fitted
    assert _img(noise_plot_png(params)).shape[1] > 400
    pts = [
        (dt.date(2026, 11, 1) + dt.timedelta(days=7 * i), Reliability(0.5 + 0.04 * i, 0.4, 0.9, 500)) for i in range(5)
    ]
    arr = _img(reliability_over_time_png(pts, label="alpha"))
    assert _has(arr, (33, 102, 172))
    single = _img(reliability_over_time_png([("2026-12-01", Reliability(0.7, float("nan"), float("nan"), 3))]))
    assert single.size
    with pytest.raises(ValueError, match=r"points\[0\]"):
        reliability_over_time_png([("not a date", Reliability(0.5, 0.4, 0.6, 3))])
    with pytest.raises(ValueError, match="at least one"):
        reliability_over_time_png([])


def test_expert_grid_shows_both_colour_scales_with_legends(fitted):
    params, images = fitted
    res = consensus_map(images[0], params)
    arr = _img(expert_grid_png(images[0], res.map, res.spread, cell=64))
    assert _has(arr, COLORMAP[0]) and _has(arr, COLORMAP[-1])  # the residual legend's ends
    assert _has(arr, SPREAD_COLORMAP[0]) and _has(arr, SPREAD_COLORMAP[-1])  # the spread legend's ends
    assert arr.shape[1] >= 7 * 64  # five experts, the consensus and the spread


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="params"):
        bias_plot_png({"a": 1})
    with pytest.raises(ValueError, match="no raters"):
        noise_plot_png(RaterParams(()))
    with pytest.raises(ValueError, match="spread"):
        colorize_spread(np.full((2, 2), -1.0))
    z = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="spread has shape"):
        expert_grid_png({"a": z}, z, np.zeros((3, 3)))
