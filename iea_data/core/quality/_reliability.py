"""Inter-rater reliability of continuous maps: ICC(2,1) and Krippendorff's alpha (interval)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Reliability", "icc_2_1", "krippendorff_alpha_interval"]


@dataclass(frozen=True)
class Reliability:
    """A reliability coefficient with its 95 % interval.

    Attributes
    ----------
    value : float
    ci_low, ci_high : float
    n : int
        Units (targets, pixels) it rests on.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int


def _matrix(ratings: object, name: str, *, allow_nan: bool) -> np.ndarray:
    arr = np.asarray(ratings, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if allow_nan and np.isinf(arr).any():
        raise ValueError(f"{name} holds infinite values (mark a missing rating with NaN)")
    if not allow_nan and not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values (ICC(2,1) needs complete ratings)")
    return arr


def icc_2_1(ratings: object) -> Reliability:
    """ICC(2,1): two-way random effects, absolute agreement, one rater.

    Parameters
    ----------
    ratings : array-like, (n targets, k raters)
        Complete (no NaN), n >= 2, k >= 2.

    Returns
    -------
    Reliability
        The coefficient and its 95 % F-based interval (McGraw & Wong 1996, case 2A;
        the one `pingouin.intraclass_corr` reports).

    References
    ----------
    P. E. Shrout, J. L. Fleiss, "Intraclass correlations: uses in assessing rater
    reliability", Psychological Bulletin 86 (1979) 420-428.
    K. O. McGraw, S. P. Wong, "Forming inferences about some intraclass correlation
    coefficients", Psychological Methods 1 (1996) 30-46.

    Examples
    --------
    >>> r = icc_2_1([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    >>> round(r.value, 2), round(r.ci_low, 2), round(r.ci_high, 2), r.n
    (0.29, 0.02, 0.76, 6)
    """
    from scipy.special import fdtri  # the F distribution's quantile (scipy.stats costs seconds to import)

    x = _matrix(ratings, "ratings", allow_nan=False)
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ratings must be (targets, raters) with at least 2 of each, got shape {x.shape}")
    grand = x.mean()
    ss_r = k * float(((x.mean(axis=1) - grand) ** 2).sum())
    ss_c = n * float(((x.mean(axis=0) - grand) ** 2).sum())
    ss_e = float(((x - grand) ** 2).sum()) - ss_r - ss_c
    msr, msc = ss_r / (n - 1), ss_c / (k - 1)
    mse = max(ss_e, 0.0) / ((n - 1) * (k - 1))
    den = msr + (k - 1) * mse + k * (msc - mse) / n
    if den <= 0:
        raise ValueError("ratings have no variance at all; ICC is undefined")
    icc = (msr - mse) / den
    lo = hi = math.nan
    if mse > 0 and icc < 1:
        a = k * icc / (n * (1 - icc))
        b = 1 + k * icc * (n - 1) / (n * (1 - icc))
        v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
        fl = float(fdtri(n - 1, v, 0.975))
        fu = float(fdtri(v, n - 1, 0.975))
        lo = n * (msr - fl * mse) / (fl * (k * msc + (k * n - k - n) * mse) + n * msr)
        hi = n * (fu * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fu * msr)
    elif mse == 0:
        lo = hi = icc
    return Reliability(float(icc), float(lo), float(hi), int(n))


def _unit_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pairable unit (column): m, sum, sum of squares, within-unit disagreement."""
    ok = ~np.isnan(x)
    m = ok.sum(axis=0).astype(np.float64)
    keep = m >= 2
    x0 = np.where(ok, x, 0.0)[:, keep]
    m = m[keep]
    s1 = x0.sum(axis=0)
    s2 = (x0 * x0).sum(axis=0)
    # sum over ordered pairs i != j of (x_i - x_j)^2 is 2 (m s2 - s1^2); each unit weighs 1 / (m - 1)
    do = 2.0 * np.maximum(m * s2 - s1 * s1, 0.0) / (m - 1.0)
    return m, s1, s2, do


def _alpha(m: np.ndarray, s1: np.ndarray, s2: np.ndarray, do: np.ndarray) -> np.ndarray:
    n = m.sum(axis=-1)
    total = 2.0 * np.maximum(n * s2.sum(axis=-1) - s1.sum(axis=-1) ** 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (n - 1.0) * do.sum(axis=-1) / total


def krippendorff_alpha_interval(ratings: object, *, n_boot: int = 1000, seed: int = 0) -> Reliability:
    """Krippendorff's alpha with the interval metric, and a bootstrap interval over units.

    Parameters
    ----------
    ratings : array-like, (raters, units)
        NaN marks a missing rating; units with fewer than two ratings are left out.
    n_boot : int
        Bootstrap resamples of the units (0: no interval, NaN bounds).
    seed : int
        Seeds the bootstrap (the interval is the same on every run).

    Returns
    -------
    Reliability
        ``alpha = 1 - D_o / D_e`` with ``delta^2 = (c - k)^2``, computed in O(values) from
        per-unit sums (float64), and the 2.5 / 97.5 % percentiles of the bootstrap; ``n`` is
        the number of pairable units.

    References
    ----------
    K. Krippendorff, "Computing Krippendorff's alpha-reliability" (2011); A. F. Hayes,
    K. Krippendorff, "Answering the call for a standard reliability measure for coding
    data", Communication Methods and Measures 1 (2007) 77-89 (the bootstrap).

    Examples
    --------
    >>> r = krippendorff_alpha_interval([[1, 2, 3, 4, np.nan], [1, 2, 3, 4, 5], [1, 2, 3, 5, 5]], n_boot=200)
    >>> round(r.value, 3), r.n, r.ci_low <= r.value <= r.ci_high
    (0.968, 5, True)
    """
    x = _matrix(ratings, "ratings", allow_nan=True)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative int, got {n_boot!r}")
    m, s1, s2, do = _unit_stats(x)
    u = m.size
    if u == 0 or m.sum() < 2:
        raise ValueError("ratings need at least one unit rated twice; got none")
    value = float(_alpha(m, s1, s2, do))
    if not math.isfinite(value):
        raise ValueError("ratings are all equal; alpha is undefined (no expected disagreement)")
    lo = hi = math.nan
    if n_boot:
        rng = np.random.default_rng(seed)
        cols = np.stack([m, s1, s2, do], axis=1)
        boots = []
        chunk = max(1, min(n_boot, 4_000_000 // max(u, 1)))
        for start in range(0, n_boot, chunk):
            b = min(chunk, n_boot - start)
            draw = rng.integers(0, u, size=(b, u))
            counts = np.bincount((draw + (np.arange(b) * u)[:, None]).ravel(), minlength=b * u).reshape(b, u)
            agg = counts.astype(np.float64) @ cols  # (b, 4): the resampled totals
            n = agg[:, 0]
            total = 2.0 * np.maximum(n * agg[:, 2] - agg[:, 1] ** 2, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                boots.append(1.0 - (n - 1.0) * agg[:, 3] / total)
        vals = np.concatenate(boots)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            lo, hi = (float(v) for v in np.percentile(vals, [2.5, 97.5]))
    return Reliability(value, lo, hi, int(u))
