"""ICC(2,1) against Shrout & Fleiss's worked example; Krippendorff's alpha against the `krippendorff` package."""

from __future__ import annotations

import time

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iea_data.core.quality import icc_2_1, krippendorff_alpha_interval, pixel_sample

#: Shrout & Fleiss (1979), "Intraclass correlations: uses in assessing rater reliability",
#: Psychological Bulletin 86(2), 420-428, Table 2: 6 targets (rows) rated by 4 judges (columns).
SHROUT_FLEISS_TABLE_2 = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]


def test_icc_2_1_equals_the_published_worked_example():
    """Shrout & Fleiss Table 4 gives ICC(2,1) = 0.29 for these data.

    The interval is the McGraw & Wong (1996) F-based one, [0.019, 0.76], the same that R's
    ``psych::ICC`` prints for this table (its ``sf`` example: lower 0.019, upper 0.76).
    """
    r = icc_2_1(SHROUT_FLEISS_TABLE_2)
    assert round(r.value, 2) == 0.29
    assert r.value == pytest.approx(0.2897, abs=5e-4)
    assert r.ci_low == pytest.approx(0.019, abs=0.002)
    assert r.ci_high == pytest.approx(0.76, abs=0.005)
    assert r.n == 6


def test_icc_2_1_perfect_agreement_and_bad_input():
    x = np.arange(6, dtype=float)[:, None].repeat(3, axis=1)  # every rater gives the same ratings
    assert icc_2_1(x).value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="ratings"):
        icc_2_1([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="at least 2"):
        icc_2_1([[1.0, 2.0]])
    with pytest.raises(ValueError, match="2-D"):
        icc_2_1([1.0, 2.0])


def test_icc_2_1_tracks_the_rater_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 2000)
    low = icc_2_1(truth[:, None] + rng.normal(0, 1.0, (2000, 5)))  # ICC = 1 / (1 + 1) = 0.5
    high = icc_2_1(truth[:, None] + rng.normal(0, 0.3, (2000, 5)))  # 1 / 1.09 = 0.917
    assert low.value == pytest.approx(0.5, abs=0.03) and low.ci_low < 0.5 < low.ci_high
    assert high.value == pytest.approx(1 / 1.09, abs=0.01)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raters=st.integers(2, 8),
    units=st.integers(2, 40),
    missing=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
    discrete=st.booleans(),
)
def test_alpha_equals_the_krippendorff_package(raters, units, missing, seed, discrete):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (raters, units)) + rng.normal(0, 1, units)
    if discrete:
        x = np.round(x)
    x[rng.random(x.shape) < missing] = np.nan
    pairable = (~np.isnan(x)).sum(axis=0) >= 2
    vals = x[:, pairable][~np.isnan(x[:, pairable])]
    if pairable.sum() == 0 or vals.size < 2 or np.ptp(vals) == 0:
        with pytest.raises(ValueError):
            krippendorff_alpha_interval(x, n_boot=0)
        return
    ours = krippendorff_alpha_interval(x, n_boot=0)
    ref = krippendorff.alpha(reliability_data=x, level_of_measurement="interval")
    assert ours.value == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert ours.n == int(pairable.sum())


def test_alpha_interval_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 300) + rng.normal(0, 0.5, (6, 300))
    x[rng.random(x.shape) < 0.2] = np.nan
    a = krippendorff_alpha_interval(x, n_boot=400, seed=3)
    b = krippendorff_alpha_interval(x, n_boot=400, seed=3)
    assert a == b
    assert a.ci_low < a.value < a.ci_high and a.ci_high - a.ci_low < 0.15
    assert krippendorff_alpha_interval(x, n_boot=400, seed=4) != a


def test_a_pixel_sample_of_ten_thousand_units_by_twelve_raters_is_fast():
    """The quality report's load: 10^4 sampled pixels x 12 experts, both coefficients with intervals."""
    rng = np.random.default_rng(2)
    truth = rng.uniform(-0.5, 0.5, (256, 256))
    maps = truth[None] + rng.normal(0, 0.1, (12, 256, 256))
    idx = pixel_sample((256, 256), 10_000, key="image-sha")
    units = maps.reshape(12, -1)[:, idx]
    icc_2_1(units[:, :10].T)  # scipy.special loads once
    t0 = time.process_time()  # CPU time: the machine may be shared
    alpha = krippendorff_alpha_interval(units, n_boot=1000)
    icc = icc_2_1(units.T)
    took = time.process_time() - t0
    # the package builds a (distinct values)^2 matrix, so it is checked on a slice (quantised values)
    part = np.round(units[:, :400], 2)
    ref = krippendorff.alpha(reliability_data=part, level_of_measurement="interval")
    assert krippendorff_alpha_interval(part, n_boot=0).value == pytest.approx(ref, rel=1e-9)
    assert icc.value == pytest.approx(alpha.value, abs=0.01)  # complete data: the two nearly agree
    assert took < 3.0, took


def test_image_reliability_and_the_streamed_ratings_matrix():
    from iea_data.core.quality import image_reliability, ratings_matrix

    rng = np.random.default_rng(4)
    t = rng.uniform(-0.5, 0.5, (32, 32))
    maps = {r: np.clip(t + rng.normal(0, 0.1, t.shape), -1, 1).astype(np.float32) for r in "abcd"}
    rel = image_reliability(maps, key="sha-1", sample=500)
    idx = pixel_sample((32, 32), 500, key="sha-1")
    units = np.stack([maps[r].ravel()[idx] for r in maps]).astype(float)
    assert rel["icc_2_1"] == icc_2_1(units.T) and rel["alpha"] == krippendorff_alpha_interval(units, n_boot=200)
    other = {r: maps[r] for r in "bc"}
    names, m = ratings_matrix(iter([("k1", maps), ("k2", other)]), sample=50)
    assert names == ["a", "b", "c", "d"] and m.shape == (4, 100)
    assert np.isnan(m[0, 50:]).all() and not np.isnan(m[1]).any()
    part = np.round(m, 2)
    ref = krippendorff.alpha(reliability_data=part, level_of_measurement="interval")
    assert krippendorff_alpha_interval(part, n_boot=0).value == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="at least two"):
        image_reliability({"a": maps["a"]}, key=1)
