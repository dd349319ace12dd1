"""Per-pixel consensus of expert labels, and how much the experts agree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iea_data.core.imaging import check_residual, resize_map
from iea_data.core.residuals import IDEAL_TOLERANCE

__all__ = ["CONSENSUS_METHODS", "TRIM_PROPORTION", "SIGN_TOLERANCE", "consensus_map", "agreement_stats"]

CONSENSUS_METHODS = ("median", "mean", "trimmed_mean")
#: The release's method names -> :func:`iea_data.core.quality.simple_consensus`'s.
_CORE_METHOD = {"median": "median", "mean": "mean", "trimmed_mean": "trimmed"}
#: ``trimmed_mean`` drops ``floor(n * TRIM_PROPORTION)`` values at each end of every pixel's sorted values.
TRIM_PROPORTION = 0.2
#: Experts disagree on a pixel's sign when one says below ``-SIGN_TOLERANCE`` and another above ``+SIGN_TOLERANCE``.
SIGN_TOLERANCE = IDEAL_TOLERANCE


def _stack(maps: Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(maps, np.ndarray):
        if maps.ndim != 3:
            raise ValueError(
                f"maps must be a sequence of (h, w) residual maps or an (n, h, w) array; got shape {maps.shape}"
            )
        maps = list(maps)
    maps = list(maps)
    if not maps:
        raise ValueError("maps must hold at least one residual map; got none")
    for i, m in enumerate(maps):
        check_residual(m, f"maps[{i}]")
    shape = maps[0].shape
    # Labels of one image are stored at one label resolution; resize stragglers to the first.
    return np.stack([m if m.shape == shape else resize_map(m, shape) for m in maps]).astype(np.float64)


def consensus_map(maps: Sequence[np.ndarray], *, method: str = "median") -> np.ndarray:
    """The per-pixel consensus of several experts' residual maps of one image.

    Parameters
    ----------
    maps : sequence of ndarray, float32 (h, w) in [-1, 1]
        One accepted map per expert (maps of another shape are resized to the first's).
    method : {"median", "mean", "trimmed_mean"}
        ``median`` (default, robust to one outlier expert), ``mean``, or ``trimmed_mean``
        (the mean after dropping ``floor(n * 0.2)`` values at each end, per pixel).
        Accumulated in float64.

    Returns
    -------
    ndarray, float32 (h, w) in [-1, 1]

    Examples
    --------
    >>> a = np.array([[0.1, -0.4]], np.float32)
    >>> b = np.array([[0.3, -0.2]], np.float32)
    >>> c = np.array([[0.8, 0.0]], np.float32)
    >>> consensus_map([a, b, c]).astype(float).round(3).tolist()
    [[0.3, -0.2]]
    >>> consensus_map([a, b, c], method="mean").astype(float).round(3).tolist()
    [[0.4, -0.2]]
    """
    if method not in CONSENSUS_METHODS:
        raise ValueError(f"method must be one of {', '.join(CONSENSUS_METHODS)}, got {method!r}")
    from iea_data.core.quality import simple_consensus  # the one implementation (issue 15)

    stack = _stack(maps)
    out = simple_consensus(list(stack.astype(np.float32)), method=_CORE_METHOD[method], trim=TRIM_PROPORTION)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def agreement_stats(maps: Sequence[np.ndarray]) -> dict[str, float]:
    """How much experts agree on one image.

    Parameters
    ----------
    maps : sequence of ndarray, float32 (h, w) in [-1, 1]
        One map per expert.

    Returns
    -------
    dict
        ``n_experts``; ``spread``: the mean over pixels of the per-pixel standard deviation
        across experts (population, ddof=0; 0 for one expert); ``sign_disagreement``: the
        share of pixels where one expert says too dark (below ``-0.05``) and another too
        bright (above ``+0.05``). Accumulated in float64.

    Examples
    --------
    >>> a = np.array([[0.25, -0.5]], np.float32)
    >>> b = np.array([[0.75, 0.5]], np.float32)
    >>> agreement_stats([a, b])
    {'n_experts': 2, 'spread': 0.375, 'sign_disagreement': 0.5}
    """
    stack = _stack(maps)
    spread = float(stack.std(axis=0).mean())
    disagree = (stack.max(axis=0) > SIGN_TOLERANCE) & (stack.min(axis=0) < -SIGN_TOLERANCE)
    return {
        "n_experts": int(stack.shape[0]),
        "spread": round(spread, 12),
        "sign_disagreement": float(disagree.mean()),
    }
