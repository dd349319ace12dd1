"""Metrics between image-level scores over a set of images, in float64 NumPy.

Every function takes ``pred`` and ``target`` of shape (N,) (one set) or (B, N) (``B`` sets,
e.g. bootstrap resamples) and returns a float for (N,) input, float64 (B,) otherwise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._config import MetricInputError
from ._validate import as_scores

__all__ = ["plcc", "srcc", "krcc", "good_bad_accuracy", "rank_average"]


def _out(values: np.ndarray, pred: ArrayLike) -> float | np.ndarray:
    return float(values[0]) if np.ndim(pred) == 1 else values


def _check_not_constant(a: np.ndarray, name: str, metric: str) -> None:
    const = np.ptp(a, axis=1) == 0
    if np.any(const):
        row = int(np.argmax(const))
        where = "" if a.shape[0] == 1 else f" (set {row})"
        raise MetricInputError(
            f"{metric} is undefined when `{name}` is constant{where}: all {a.shape[1]} values are "
            f"{a[row, 0]:.6g}; a correlation needs scores that vary in both inputs."
        )


def _pearson_rows(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    p = p - p.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    r = (p * t).sum(axis=1) / np.sqrt((p * p).sum(axis=1) * (t * t).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def rank_average(a: np.ndarray) -> np.ndarray:
    """Ranks 1..N along the last axis, ties given their average rank (as ``scipy.stats.rankdata``).

    Parameters
    ----------
    a : ndarray
        (N,) or (B, N) real values.

    Returns
    -------
    ndarray
        float64, the same shape.

    Examples
    --------
    >>> rank_average(np.array([10.0, 30.0, 20.0, 20.0])).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    a2 = np.atleast_2d(np.asarray(a, dtype=np.float64))
    out = np.empty_like(a2)
    for i, row in enumerate(a2):
        order = np.argsort(row, kind="mergesort")
        s = row[order]
        # start index of each run of equal values, and the run's average 1-based rank
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        ends = np.r_[starts[1:], len(s)]
        avg = (starts + ends + 1) / 2.0
        out[i, order] = np.repeat(avg, ends - starts)
    return out.reshape(np.shape(a))


def plcc(pred: ArrayLike, target: ArrayLike) -> float | np.ndarray:
    """Pearson linear correlation coefficient.

    Parameters
    ----------
    pred, target : array_like
        (N,) or (B, N) finite scores, N >= 2, neither constant.

    Returns
    -------
    float or ndarray
        In [-1, 1]; as ``scipy.stats.pearsonr(pred, target).statistic``.

    Raises
    ------
    MetricInputError
        Different shapes, NaN, fewer than 2 scores, or a constant input.

    Examples
    --------
    >>> round(plcc([1, 2, 3, 4], [2, 4, 5, 9]), 4)
    0.9648
    """
    p, t = as_scores(pred, target)
    _check_not_constant(p, "pred", "PLCC")
    _check_not_constant(t, "target", "PLCC")
    return _out(_pearson_rows(p, t), pred)


def srcc(pred: ArrayLike, target: ArrayLike) -> float | np.ndarray:
    """Spearman rank correlation coefficient (ties: average ranks).

    As ``scipy.stats.spearmanr(pred, target).statistic``: the Pearson correlation of the
    average ranks.

    Examples
    --------
    >>> srcc([1, 2, 3, 4], [2, 4, 5, 9])
    1.0
    """
    p, t = as_scores(pred, target)
    _check_not_constant(p, "pred", "SRCC")
    _check_not_constant(t, "target", "SRCC")
    return _out(_pearson_rows(rank_average(p), rank_average(t)), pred)


def krcc(pred: ArrayLike, target: ArrayLike, *, chunk: int = 256) -> float | np.ndarray:
    """Kendall rank correlation coefficient, tau-b (ties in either input corrected).

    As ``scipy.stats.kendalltau(pred, target).statistic`` (its default ``variant="b"``):
    ``sum sign(dp) sign(dt) / sqrt(pairs not tied in pred * pairs not tied in target)``
    over all pairs, counted exactly in blocks of ``chunk`` rows (O(N^2) work, O(chunk N)
    memory).

    Examples
    --------
    >>> round(krcc([1, 2, 3, 4], [2, 4, 3, 9]), 4)
    0.6667
    """
    p, t = as_scores(pred, target)
    _check_not_constant(p, "pred", "KRCC")
    _check_not_constant(t, "target", "KRCC")
    out = np.empty(p.shape[0])
    n = p.shape[1]
    for b in range(p.shape[0]):
        s = tx = ty = 0.0
        for i0 in range(0, n, chunk):
            dp = np.sign(p[b, i0 : i0 + chunk, None] - p[b, None, :])
            dt = np.sign(t[b, i0 : i0 + chunk, None] - t[b, None, :])
            s += float((dp * dt).sum())
            tx += float(np.abs(dp).sum())
            ty += float(np.abs(dt).sum())
        out[b] = np.clip(s / np.sqrt(tx * ty), -1.0, 1.0)
    return _out(out, pred)


def good_bad_accuracy(
    pred: ArrayLike, target: ArrayLike, *, cut: float = 5.0, pred_cut: float | None = None
) -> float | np.ndarray:
    """Fraction of images put on the right side of a good/bad cut.

    An image is "good" when its score is ``>= cut`` (the target) or ``>= pred_cut`` (the
    prediction; default: the same ``cut``).

    Parameters
    ----------
    pred, target : array_like
        (N,) or (B, N) finite scores, N >= 1.
    cut : float, optional
        Threshold on the target scale (0-10 in the released manifests).
    pred_cut : float, optional
        Threshold on the prediction's scale.

    Returns
    -------
    float or ndarray
        In [0, 1].

    Examples
    --------
    >>> good_bad_accuracy([6.0, 4.0, 7.0], [5.5, 5.5, 2.0], cut=5.0)
    0.3333333333333333
    """
    for name, v in (("cut", cut), ("pred_cut", pred_cut)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v)):
            raise ValueError(f"`{name}` must be a finite number; got {v!r}.")
    p, t = as_scores(pred, target, min_n=1)
    pc = cut if pred_cut is None else pred_cut
    return _out(((p >= pc) == (t >= cut)).mean(axis=1), pred)
