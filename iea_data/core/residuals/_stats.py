"""Summary statistics of a residual map."""

from __future__ import annotations

import numpy as np

__all__ = ["IDEAL_TOLERANCE", "label_stats"]

#: |residual| at or below this counts as ideally exposed in the summary statistics.
IDEAL_TOLERANCE = 0.05


def label_stats(residual: np.ndarray, *, tolerance: float = IDEAL_TOLERANCE) -> dict[str, float]:
    """Summary statistics of a residual map (accumulated in float64).

    Parameters
    ----------
    residual : numpy.ndarray
        A residual map (any shape, any real dtype), in EV.
    tolerance : float
        ``|residual|`` at or below this counts as ideally exposed.

    Returns
    -------
    dict of str to float
        ``mean``, ``mean_abs``, ``frac_under`` (share of pixels below ``-tolerance``: too dark)
        and ``frac_over`` (above ``+tolerance``: too bright).

    Examples
    --------
    >>> label_stats(np.array([[-0.5, 0.0], [0.25, 0.0]], np.float32))
    {'mean': -0.0625, 'mean_abs': 0.1875, 'frac_under': 0.25, 'frac_over': 0.25}
    """
    r = np.asarray(residual, dtype=np.float64)
    return {
        "mean": round(float(r.mean()), 12),
        "mean_abs": round(float(np.abs(r).mean()), 12),
        "frac_under": float((r < -tolerance).mean()),
        "frac_over": float((r > tolerance).mean()),
    }
