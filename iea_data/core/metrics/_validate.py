"""Input checks shared by the metrics: every message names the argument, expectation and value."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._config import MetricInputError

__all__ = ["as_maps", "as_scores", "MAP_TOL"]

#: Slack outside [-1, 1] accepted for float rounding (maps are not clipped).
MAP_TOL = 1e-6

_MAPS = "real arrays of shape (H, W), (N, H, W) or (N, 1, H, W) with finite values in [-1, 1]"
_SCORES = "real arrays of shape (N,) or (B, N) with finite values"


def _real(arr: Any, name: str, expected: str) -> np.ndarray:
    a = np.asarray(arr)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise TypeError(f"`{name}` must be {expected}; got dtype {a.dtype}.")
    return a


def _finite(a: np.ndarray, name: str, expected: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise MetricInputError(
            f"`{name}` must be {expected}; got {bad} NaN or infinite value(s) (shape {a.shape}). "
            "Drop or fill them before computing the metric."
        )


def _same_shape(pred: np.ndarray, target: np.ndarray, p_shape: tuple[int, ...], t_shape: tuple[int, ...]) -> None:
    if pred.shape != target.shape:
        raise MetricInputError(
            f"`pred` and `target` must have the same shape; got {tuple(p_shape)} and {tuple(t_shape)}. "
            "Resize the prediction to the label's size first (iea_data.core.imaging.resize_map)."
        )


def as_maps(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both map arguments as float64 (N, H, W) after checking shape, finiteness and range.

    Parameters
    ----------
    pred, target : array_like
        (H, W), (N, H, W) or (N, 1, H, W), any real dtype, values in [-1, 1]
        (``MAP_TOL`` of rounding slack).

    Returns
    -------
    tuple of ndarray
        float64 (N, H, W) copies.

    Raises
    ------
    TypeError
        Not a real dtype.
    MetricInputError
        Wrong rank, empty, different shapes, NaN/inf, or values outside [-1, 1].

    Examples
    --------
    >>> p, t = as_maps(np.zeros((2, 3)), np.ones((2, 3)) * 0.5)
    >>> p.shape, t.dtype
    ((1, 2, 3), dtype('float64'))
    """
    out = []
    shapes = []
    for name, arr in (("pred", pred), ("target", target)):
        a = _real(arr, name, _MAPS)
        shapes.append(a.shape)
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        elif a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise MetricInputError(f"`{name}` must be {_MAPS}; got shape {np.shape(arr)}.")
        if a.size == 0:
            raise MetricInputError(f"`{name}` is empty: shape {np.shape(arr)}; pass at least one 1x1 map.")
        out.append(a)
    _same_shape(out[0], out[1], *shapes)
    for name, a in zip(("pred", "target"), out):
        _finite(a, name, _MAPS)
        lo, hi = float(a.min()), float(a.max())
        if lo < -1 - MAP_TOL or hi > 1 + MAP_TOL:
            raise MetricInputError(
                f"`{name}` must be {_MAPS}; got values in [{lo:.6g}, {hi:.6g}]. Residual maps are not "
                f"clipped silently: clip them explicitly (numpy.clip({name}, -1, 1)) if that is what you mean."
            )
    return out[0].astype(np.float64), out[1].astype(np.float64)


def as_scores(pred: Any, target: Any, *, min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both score arguments as float64 (B, N) after checking shape, finiteness and length.

    Parameters
    ----------
    pred, target : array_like
        (N,) or (B, N): ``B`` independent sets of ``N`` image-level scores.
    min_n : int, optional
        The fewest scores a set may hold.

    Returns
    -------
    tuple of ndarray
        float64 (B, N).

    Raises
    ------
    TypeError
        Not a real dtype.
    MetricInputError
        Wrong rank, different shapes, fewer than ``min_n`` scores, NaN/inf.

    Examples
    --------
    >>> p, t = as_scores([1, 2, 3], [1.0, 2.5, 2.0])
    >>> p.shape
    (1, 3)
    """
    out, shapes = [], []
    for name, arr in (("pred", pred), ("target", target)):
        a = _real(arr, name, _SCORES)
        shapes.append(a.shape)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2:
            raise MetricInputError(f"`{name}` must be {_SCORES}; got shape {np.shape(arr)}.")
        out.append(a)
    _same_shape(out[0], out[1], *shapes)
    if out[0].shape[1] < min_n:
        raise MetricInputError(f"`pred` and `target` need at least {min_n} scores each; got {out[0].shape[1]}.")
    for name, a in zip(("pred", "target"), out):
        _finite(a, name, _SCORES)
    return out[0].astype(np.float64), out[1].astype(np.float64)
