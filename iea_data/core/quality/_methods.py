"""The simple consensus methods (median, mean, trimmed mean) and the registry of all methods."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Union

import numpy as np

from iea_data.core.registry import Registry

from ._staple import ConsensusResult, RaterParams, consensus_map, stack_maps

__all__ = ["CONSENSUS_METHODS", "SIMPLE_METHODS", "TRIM_PROPORTION", "simple_consensus", "get_consensus"]

#: ``trimmed`` drops ``floor(n * trim)`` values at each end of every pixel's sorted values.
TRIM_PROPORTION = 0.2
SIMPLE_METHODS = ("median", "mean", "trimmed")

#: name -> ``fn(maps, *, params=None) -> ConsensusResult``: "staple" and the simple methods.
CONSENSUS_METHODS = Registry("consensus method")

Maps = Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]


def _as_mapping(maps: Maps) -> Mapping[str, np.ndarray]:
    if isinstance(maps, Mapping):
        return maps
    if isinstance(maps, np.ndarray) and maps.ndim != 3:
        raise ValueError(f"maps must be a mapping, a sequence of (h, w) maps or an (n, h, w) array; got {maps.shape}")
    if isinstance(maps, (Sequence, np.ndarray)) and not isinstance(maps, (str, bytes)):
        return {str(i): m for i, m in enumerate(maps)}
    raise TypeError(f"maps must be a mapping rater -> map or a sequence of maps, got {type(maps).__name__}")


def _reduce(st: np.ndarray, method: str, trim: float) -> np.ndarray:
    if method == "median":
        # np.median's numbers (the middle value, or the mean of the two middle ones) from a sort
        # along the raters: about 4x faster than np.median(axis=0) for a dozen raters
        n = st.shape[0]
        srt = np.sort(st, axis=0)
        return srt[n // 2] if n % 2 else (srt[n // 2 - 1] + srt[n // 2]) / 2.0
    if method == "mean":
        return st.mean(axis=0)
    n = st.shape[0]
    k = int(np.floor(n * trim))
    return np.sort(st, axis=0)[k : n - k].mean(axis=0)


def simple_consensus(maps: Maps, method: str = "median", *, trim: float = TRIM_PROPORTION) -> np.ndarray:
    """The per-pixel median, mean or trimmed mean of one image's maps.

    The same numbers as the release builder's ``median`` / ``mean`` / ``trimmed_mean``.

    Parameters
    ----------
    maps : mapping rater -> ndarray, or sequence of ndarray; float32 (h, w) in [-1, 1]
        One map per rater, of one shape.
    method : {"median", "mean", "trimmed"}
    trim : float in [0, 0.5)
        For ``trimmed``: the share dropped at each end (``floor(n * trim)`` values per pixel).

    Returns
    -------
    ndarray, float32 (h, w) in [-1, 1]
        Accumulated in float64.

    Examples
    --------
    >>> a = np.array([[0.1, -0.4]], np.float32)
    >>> b = np.array([[0.3, -0.2]], np.float32)
    >>> c = np.array([[0.8, 0.0]], np.float32)
    >>> simple_consensus([a, b, c]).astype(float).round(3).tolist()
    [[0.3, -0.2]]
    >>> simple_consensus({"x": a, "y": b, "z": c}, "mean").astype(float).round(3).tolist()
    [[0.4, -0.2]]
    """
    if method not in SIMPLE_METHODS:
        raise ValueError(f"method must be one of {', '.join(SIMPLE_METHODS)}, got {method!r}")
    if not (isinstance(trim, (int, float)) and 0 <= trim < 0.5):
        raise ValueError(f"trim must be a share in [0, 0.5), got {trim!r}")
    _, st = stack_maps(_as_mapping(maps), "maps")
    return np.clip(_reduce(st.astype(np.float64), method, float(trim)), -1.0, 1.0).astype(np.float32)


def _simple_result(maps: Maps, method: str) -> ConsensusResult:
    names, st = stack_maps(_as_mapping(maps), "maps")
    st64 = st.astype(np.float64)
    out = _reduce(st64, method, TRIM_PROPORTION)
    return ConsensusResult(
        map=np.clip(out, -1.0, 1.0).astype(np.float32),
        spread=st64.std(axis=0).astype(np.float32),
        weights={r: 1.0 / len(names) for r in names},
        bias={r: 0.0 for r in names},
        method=method,
    )


@CONSENSUS_METHODS.register("staple")
def _staple(maps: Maps, *, params: RaterParams | None = None) -> ConsensusResult:
    """Continuous STAPLE with pooled parameters (or fitted on the image when ``params`` is None)."""
    return consensus_map(_as_mapping(maps), params)


@CONSENSUS_METHODS.register("median")
def _median(maps: Maps, *, params: RaterParams | None = None) -> ConsensusResult:
    """Per-pixel median (``params`` ignored); spread is the plain standard deviation."""
    return _simple_result(maps, "median")


@CONSENSUS_METHODS.register("mean")
def _mean(maps: Maps, *, params: RaterParams | None = None) -> ConsensusResult:
    """Per-pixel mean (``params`` ignored)."""
    return _simple_result(maps, "mean")


@CONSENSUS_METHODS.register("trimmed")
def _trimmed(maps: Maps, *, params: RaterParams | None = None) -> ConsensusResult:
    """Per-pixel mean after dropping ``floor(0.2 n)`` values at each end (``params`` ignored)."""
    return _simple_result(maps, "trimmed")


def get_consensus(name: str) -> Callable[..., ConsensusResult]:
    """The consensus function registered as ``name`` (unknown names raise with a hint).

    Examples
    --------
    >>> CONSENSUS_METHODS.list()
    ['mean', 'median', 'staple', 'trimmed']
    >>> m = {"a": np.zeros((1, 1), np.float32), "b": np.full((1, 1), 0.5, np.float32)}
    >>> get_consensus("mean")(m).map.tolist()
    [[0.25]]
    """
    return CONSENSUS_METHODS.get(name)
