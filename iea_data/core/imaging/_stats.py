"""Summary statistics of an image's luma, as stored in the catalog for every image."""

from __future__ import annotations

import cv2
import numpy as np

from ._color import _luma
from ._validate import check_image

__all__ = ["BLACK_LEVEL", "WHITE_LEVEL", "LUMA_STATS_KEYS", "luma_stats"]

#: Luma at or below which a pixel counts as black (``frac_black``).
BLACK_LEVEL = 0.02
#: Luma at or above which a pixel counts as white (``frac_white``).
WHITE_LEVEL = 0.98

_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)

#: The keys of :func:`luma_stats`, in order.
LUMA_STATS_KEYS = (
    "luma_mean",
    "luma_std",
    *(f"luma_p{p:02d}" for p in _PERCENTILES),
    "frac_black",
    "frac_white",
)

_LEVELS = 65535  # luma is quantised to round(Y * 65535) for the percentiles
# np.bincount (it casts to intp) is quicker for small images, cv2.calcHist for large ones;
# calcHist counts in float32, exact below 2**24, so large images are counted in row blocks.
_CALCHIST_MIN_PIXELS = 1 << 18  # measured crossover, single thread
_CALCHIST_MAX_CHUNK = 1 << 24


def _histogram(q: np.ndarray) -> np.ndarray:
    """Counts of each uint16 level in ``q`` (H, W), int64 of length 65536."""
    if q.size < _CALCHIST_MIN_PIXELS:
        return np.bincount(q.ravel(), minlength=_LEVELS + 1)
    counts = np.zeros(_LEVELS + 1, np.int64)
    rows = max(1, _CALCHIST_MAX_CHUNK // q.shape[1])
    for top in range(0, q.shape[0], rows):
        block = cv2.calcHist([q[top : top + rows]], [0], None, [_LEVELS + 1], [0, _LEVELS + 1])
        counts += block.ravel().astype(np.int64)
    return counts


def _order_statistics(counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The level of the k-th smallest value (0-based) for each k in ``ranks``.

    Equivalent to ``np.searchsorted(np.cumsum(counts), ranks, side="right")``, but the
    65536-long cumulative sum (the slow part for small images) is only taken over 256
    block totals and then inside the blocks that hold a rank (one row per rank, all at
    once: the count of a row's entries <= k is ``searchsorted(row, k, side="right")``).
    """
    block = 256
    rows = counts.reshape(-1, block)
    block_cdf = np.cumsum(rows.sum(axis=1))
    blocks = np.searchsorted(block_cdf, ranks, side="right")
    before = np.concatenate(([0], block_cdf))[blocks]
    local_cdf = np.cumsum(rows[blocks], axis=1)
    inside = (local_cdf <= (ranks - before)[:, None]).sum(axis=1)
    return (blocks * block + inside).astype(np.int64, copy=False)


def _luma_stats(y: np.ndarray) -> dict[str, float]:
    n = y.size
    # float64 sums of Y and Y^2 (OpenCV accumulates float32 input in double); the variance
    # E[Y^2] - E[Y]^2 is exact to ~1e-16 absolute, so the std to ~1e-8 at worst.
    total = cv2.sumElems(y)[0]
    mean = total / n
    var = max(cv2.norm(y, cv2.NORM_L2SQR) / n - mean * mean, 0.0)
    # A 1-channel source, so the scalar really is 65535 (for 3 channels it would be
    # Scalar(65535, 0, 0)); saturating, round-to-nearest conversion.
    q = cv2.multiply(y, 65535.0, dtype=cv2.CV_16U)  # type: ignore[call-overload, unused-ignore]  # some stubs lack the scalar form
    counts = _histogram(q)
    # numpy.percentile's default ("linear"): interpolate between the order statistics
    # around the virtual index p/100 * (n - 1).
    pos = np.asarray(_PERCENTILES, np.float64) / 100.0 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    levels = _order_statistics(counts, np.concatenate((lo, hi)))
    v_lo, v_hi = levels[: len(lo)], levels[len(lo) :]
    pct = (v_lo + (pos - lo) * (v_hi - v_lo)) / _LEVELS
    out = {"luma_mean": float(mean), "luma_std": float(np.sqrt(var))}
    out.update({f"luma_p{p:02d}": float(v) for p, v in zip(_PERCENTILES, pct)})
    out["frac_black"] = int(np.count_nonzero(y <= np.float32(BLACK_LEVEL))) / n
    out["frac_white"] = int(np.count_nonzero(y >= np.float32(WHITE_LEVEL))) / n
    return out


def luma_stats(rgb: np.ndarray) -> dict[str, float]:
    """Mean, spread, percentiles and clipped shares of an image's Rec.601 luma.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded.

    Returns
    -------
    dict of str to float
        Keys, in this order (:data:`LUMA_STATS_KEYS`): ``luma_mean``, ``luma_std``
        (population), ``luma_p01``, ``luma_p05``, ``luma_p25``, ``luma_p50``, ``luma_p75``,
        ``luma_p95``, ``luma_p99``, ``frac_black`` (share of pixels with luma
        <= :data:`BLACK_LEVEL`), ``frac_white`` (share with luma >= :data:`WHITE_LEVEL`).

    Notes
    -----
    Luma is computed in float32 (:func:`luma`). Mean and standard deviation come from
    float64 sums of Y and Y². Percentiles follow ``numpy.percentile`` (linear interpolation) over luma
    quantised to 65536 levels (``round(Y * 65535)``) and counted with a histogram, so they
    are within 1/65535 of the exact value (half a level from quantisation) and cost no
    sort. The black/white shares compare the float32 luma with the levels exactly.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((2, 2, 3), np.float32)
    >>> img[0] = 1.0
    >>> s = luma_stats(img)
    >>> s["luma_mean"], s["luma_p50"], s["frac_black"], s["frac_white"]
    (0.5, 0.5, 0.5, 0.5)
    """
    return _luma_stats(_luma(check_image(rgb, "rgb")))
