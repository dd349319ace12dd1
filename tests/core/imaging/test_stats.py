"""luma_stats against NumPy's own mean, std and percentile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import iea_data.core.imaging._stats as stats_mod
from iea_data.core.imaging import BLACK_LEVEL, LUMA_STATS_KEYS, WHITE_LEVEL, luma, luma_stats

KEYS = [
    "luma_mean",
    "luma_std",
    "luma_p01",
    "luma_p05",
    "luma_p25",
    "luma_p50",
    "luma_p75",
    "luma_p95",
    "luma_p99",
    "frac_black",
    "frac_white",
]
PERCENTILES = {
    "luma_p01": 1,
    "luma_p05": 5,
    "luma_p25": 25,
    "luma_p50": 50,
    "luma_p75": 75,
    "luma_p95": 95,
    "luma_p99": 99,
}
# The documented resolution of the percentiles, plus float32 luma vs the float64 reference.
PCT_TOL = 1 / 65535 + 1e-6


def _reference(rgb: np.ndarray) -> dict:
    y = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    out = {"luma_mean": y.mean(), "luma_std": y.std()}
    out.update({k: np.percentile(y, p) for k, p in PERCENTILES.items()})
    y32 = luma(rgb)  # the shares compare the library's float32 luma, as documented
    out["frac_black"] = np.mean(y32 <= np.float32(BLACK_LEVEL))
    out["frac_white"] = np.mean(y32 >= np.float32(WHITE_LEVEL))
    return out


def _check(rgb: np.ndarray) -> None:
    got = luma_stats(rgb)
    ref = _reference(rgb)
    assert list(got) == KEYS
    assert all(type(v) is float for v in got.values())
    assert got["luma_mean"] == pytest.approx(ref["luma_mean"], abs=1e-6)
    assert got["luma_std"] == pytest.approx(ref["luma_std"], abs=1e-6)
    for key in PERCENTILES:
        assert abs(got[key] - ref[key]) <= PCT_TOL, (key, got[key], ref[key])
    assert got["frac_black"] == ref["frac_black"]
    assert got["frac_white"] == ref["frac_white"]


def test_keys():
    assert list(LUMA_STATS_KEYS) == KEYS
    assert (BLACK_LEVEL, WHITE_LEVEL) == (0.02, 0.98)


def test_random_image(rng):
    _check(rng.random((120, 97, 3), dtype=np.float32))


def test_dark_and_bright_images(rng):
    dark = (rng.random((64, 64, 3)) ** 6).astype(np.float32)
    bright = (1 - rng.random((64, 64, 3)) ** 6).astype(np.float32)
    for rgb in (dark, bright):
        _check(rgb)
    assert luma_stats(dark)["frac_black"] > 0.1
    assert luma_stats(bright)["frac_white"] > 0.1


def test_8bit_image_with_many_ties(photo):
    _check((photo.astype(np.float32) / 255).astype(np.float32))


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 3), (3, 1)])
def test_tiny_images(rng, shape):
    _check(rng.random(shape + (3,), dtype=np.float32))


def test_constant_image():
    s = luma_stats(np.full((5, 6, 3), 0.25, np.float32))
    assert s["luma_std"] == pytest.approx(0.0, abs=1e-7)
    for key in PERCENTILES:
        assert s[key] == pytest.approx(0.25, abs=0.5 / 65535)


def test_black_and_white_levels_are_inclusive():
    levels = np.float32([0.0, 0.019, BLACK_LEVEL, 0.021, 0.5, 0.979, WHITE_LEVEL, 0.981, 1.0])
    rgb = np.repeat(levels[None, :, None], 3, axis=2)
    y = luma(rgb)[0]
    s = luma_stats(rgb)
    assert s["frac_black"] == np.mean(y <= np.float32(BLACK_LEVEL))
    assert s["frac_white"] == np.mean(y >= np.float32(WHITE_LEVEL))
    assert 2 / 9 <= s["frac_black"] <= 3 / 9 and 2 / 9 <= s["frac_white"] <= 3 / 9


def test_large_image_histogram_path_agrees(rng, monkeypatch):
    """The calcHist path (large images, counted in row blocks) equals the bincount path."""
    rgb = rng.random((90, 70, 3), dtype=np.float32)
    small_path = luma_stats(rgb)
    monkeypatch.setattr(stats_mod, "_CALCHIST_MIN_PIXELS", 0)
    monkeypatch.setattr(stats_mod, "_CALCHIST_MAX_CHUNK", 1000)  # 14 rows per block
    assert luma_stats(rgb) == small_path
    _check(rgb)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 20), st.integers(1, 20)).flatmap(
        lambda hw: arrays(np.float32, (hw[0], hw[1], 3), elements=st.floats(0, 1, width=32))
    )
)
def test_matches_numpy(rgb):
    _check(rgb)


def test_validates():
    with pytest.raises(TypeError, match="`rgb`.*uint8"):
        luma_stats(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="`rgb`.*non-finite"):
        luma_stats(np.full((2, 2, 3), np.nan, np.float32))


def test_order_statistics_match_a_full_cumulative_search(rng):
    counts = rng.integers(0, 3, 65536) * (rng.random(65536) < 0.05)
    counts[0] += 1
    counts[-1] += 2
    total = int(counts.sum())
    ranks = np.array([0, 1, total // 3, total // 2, total - 2, total - 1])
    expected = np.searchsorted(np.cumsum(counts), ranks, side="right")
    np.testing.assert_array_equal(stats_mod._order_statistics(counts, ranks), expected)
