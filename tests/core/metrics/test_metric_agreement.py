"""Metrics agree with scipy.stats, skimage.metrics and plain NumPy to 1e-3 (random and Hypothesis data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from iea_data.core import metrics

#: Tolerances, one table (absolute).
TOL = {"srcc": 1e-3, "plcc": 1e-3, "krcc": 1e-3, "ssim": 1e-3, "psnr": 1e-3, "numpy": 1e-9}


def _ref_ssim(p, t):
    return np.array([structural_similarity(b, a, data_range=2.0) for a, b in zip(p, t)])


def _ref_psnr(p, t):
    return np.array([peak_signal_noise_ratio(b, a, data_range=2.0) for a, b in zip(p, t)])


def _ref_classes(p, t, tau):
    """Loop-per-pixel reference for accuracy, per-class IoU and macro F1."""

    def cls(v):
        return 0 if v < -tau else (2 if v > tau else 1)

    out = []
    for a, b in zip(p, t):
        pc = np.array([cls(v) for v in a.ravel()])
        tc = np.array([cls(v) for v in b.ravel()])
        ious, f1s = [], []
        for c in range(3):
            inter = np.sum((pc == c) & (tc == c))
            union = np.sum((pc == c) | (tc == c))
            ious.append(inter / union if union else np.nan)
            tot = np.sum(pc == c) + np.sum(tc == c)
            f1s.append(2 * inter / tot if tot else np.nan)
        out.append((np.mean(pc == tc), ious, np.nanmean(ious), np.nanmean(f1s)))
    return out


def _maps_pair(rng, n=3, h=24, w=20):
    t = rng.uniform(-1, 1, (n, h, w)).astype(np.float32)
    p = np.clip(t + rng.normal(0, 0.3, t.shape), -1, 1).astype(np.float32)
    return p, t


def test_map_metrics_match_references_on_random_maps(rng):
    p, t = _maps_pair(rng)
    np.testing.assert_allclose(metrics.ssim(p, t), _ref_ssim(p, t), atol=TOL["ssim"])
    np.testing.assert_allclose(metrics.psnr(p, t), _ref_psnr(p, t), atol=TOL["psnr"])
    p64, t64 = p.astype(np.float64), t.astype(np.float64)
    np.testing.assert_allclose(metrics.mae(p, t), np.abs(p64 - t64).mean(axis=(1, 2)), atol=TOL["numpy"])
    np.testing.assert_allclose(metrics.mse(p, t), ((p64 - t64) ** 2).mean(axis=(1, 2)), atol=TOL["numpy"])
    for tau in (0.0, 0.1, 0.35):
        ref = _ref_classes(p64, t64, tau)
        np.testing.assert_allclose(metrics.pixel_accuracy(p, t, tau=tau), [r[0] for r in ref], atol=TOL["numpy"])
        np.testing.assert_allclose(metrics.class_iou(p, t, tau=tau), [r[1] for r in ref], atol=TOL["numpy"])
        np.testing.assert_allclose(metrics.mean_iou(p, t, tau=tau), [r[2] for r in ref], atol=TOL["numpy"])
        np.testing.assert_allclose(metrics.macro_f1(p, t, tau=tau), [r[3] for r in ref], atol=TOL["numpy"])


def test_ssim_window_size_matches_skimage(rng):
    p, t = _maps_pair(rng, n=2, h=16, w=16)
    for win in (3, 5, 11):
        ref = [structural_similarity(b, a, data_range=2.0, win_size=win) for a, b in zip(p, t)]
        np.testing.assert_allclose(metrics.ssim(p, t, win_size=win), ref, atol=TOL["ssim"])


def test_score_metrics_match_scipy_on_random_scores(rng):
    t = rng.uniform(0, 10, 200)
    p = t + rng.normal(0, 2, 200)
    p[::7] = np.round(p[::7])  # ties
    t[::5] = np.round(t[::5])
    assert metrics.srcc(p, t) == pytest.approx(scipy.stats.spearmanr(p, t).statistic, abs=TOL["srcc"])
    assert metrics.plcc(p, t) == pytest.approx(scipy.stats.pearsonr(p, t).statistic, abs=TOL["plcc"])
    assert metrics.krcc(p, t) == pytest.approx(scipy.stats.kendalltau(p, t).statistic, abs=TOL["krcc"])
    assert metrics.good_bad_accuracy(p, t, cut=5.0) == pytest.approx(np.mean((p >= 5) == (t >= 5)))


def test_score_metrics_batched_equal_one_by_one(rng):
    t = rng.uniform(0, 10, (4, 30))
    p = t + rng.normal(0, 3, t.shape)
    for name in ("srcc", "plcc", "krcc", "good_bad_acc"):
        m = metrics.create(name)
        batched = m(p, t)
        assert batched.shape == (4,)
        np.testing.assert_allclose(batched, [m(a, b) for a, b in zip(p, t)], atol=1e-12)


def test_rank_average_matches_scipy(rng):
    a = rng.integers(0, 6, 50).astype(float)
    np.testing.assert_array_equal(metrics.rank_average(a), scipy.stats.rankdata(a))


scores = st.lists(
    st.tuples(st.floats(-1e3, 1e3, allow_nan=False, width=32), st.floats(-1e3, 1e3, allow_nan=False, width=32)),
    min_size=3,
    max_size=60,
).filter(lambda xs: len({x for x, _ in xs}) > 1 and len({y for _, y in xs}) > 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(scores)
def test_correlations_match_scipy_hypothesis(pairs):
    p = np.array([a for a, _ in pairs], dtype=np.float64)
    t = np.array([b for _, b in pairs], dtype=np.float64)
    assert metrics.srcc(p, t) == pytest.approx(scipy.stats.spearmanr(p, t).statistic, abs=TOL["srcc"])
    assert metrics.krcc(p, t) == pytest.approx(scipy.stats.kendalltau(p, t).statistic, abs=TOL["krcc"])
    # Pearson on values spanning a tiny range relative to their size is ill-conditioned in both
    if np.ptp(p) > 1e-3 * (1 + np.abs(p).max()) and np.ptp(t) > 1e-3 * (1 + np.abs(t).max()):
        assert metrics.plcc(p, t) == pytest.approx(scipy.stats.pearsonr(p, t).statistic, abs=TOL["plcc"])


# Values below 1e-6 in magnitude are flushed to 0: skimage computes PSNR in float32, where the
# squared error of such values underflows to 0 (inf dB) while float64 still sees it.
_values = st.floats(-1, 1, width=32).map(lambda v: 0.0 if abs(v) < 1e-6 else v)
map_pairs = st.integers(7, 14).flatmap(
    lambda h: st.tuples(
        arrays(np.float32, (2, h, 9), elements=_values),
        arrays(np.float32, (2, h, 9), elements=_values),
    )
)


@settings(max_examples=40, deadline=None)
@given(map_pairs, st.sampled_from([0.0, 0.05, 0.5]))
def test_map_metrics_match_references_hypothesis(pair, tau):
    p, t = pair
    np.testing.assert_allclose(metrics.ssim(p, t), _ref_ssim(p, t), atol=TOL["ssim"])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(metrics.psnr(p, t), _ref_psnr(p, t), atol=TOL["psnr"])
    ref = _ref_classes(p.astype(np.float64), t.astype(np.float64), tau)
    np.testing.assert_allclose(metrics.pixel_accuracy(p, t, tau=tau), [r[0] for r in ref], atol=TOL["numpy"])
    np.testing.assert_allclose(metrics.class_iou(p, t, tau=tau), [r[1] for r in ref], atol=TOL["numpy"])
    np.testing.assert_allclose(metrics.macro_f1(p, t, tau=tau), [r[3] for r in ref], atol=TOL["numpy"])
