"""An annotator's map against a gold reference: error, bias, sign agreement, region IoU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iea_data.core.imaging import check_residual
from iea_data.core.rules import Thresholds

__all__ = ["GOLD_THRESHOLD", "GoldScore", "gold_scores"]

#: The rule bases' default under/over threshold: a pixel is under where ``residual <= -0.1``.
GOLD_THRESHOLD = Thresholds().under


@dataclass(frozen=True)
class GoldScore:
    """How one map compares with its gold reference.

    Attributes
    ----------
    mae : float
        ``mean |map - gold|``.
    bias : float
        ``mean (map - gold)`` (positive: the annotator calls the photo brighter than gold does).
    sign_agreement : float
        Share of pixels in the same class (under / ideal / over) as gold.
    iou_under, iou_over : float
        Intersection over union of the under- (over-) exposed regions; 1.0 when both are empty.
    """

    mae: float
    bias: float
    sign_agreement: float
    iou_under: float
    iou_over: float


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def gold_scores(map: np.ndarray, gold: np.ndarray, *, threshold: float = GOLD_THRESHOLD) -> GoldScore:
    """Score ``map`` against the gold reference ``gold``.

    Parameters
    ----------
    map : ndarray, float32 (h, w) in [-1, 1]
        The annotator's residual map.
    gold : ndarray, float32 (h, w) in [-1, 1]
        The reference, same shape.
    threshold : float in (0, 1]
        Under where ``residual <= -threshold``, over where ``>= threshold``, ideal between
        (default: the rule bases' :class:`~iea_data.core.rules.Thresholds` ``under``, 0.1).

    Returns
    -------
    GoldScore
        Accumulated in float64.

    Examples
    --------
    >>> g = np.array([[0.0, 0.5, -0.5, 0.0]], np.float32)
    >>> m = np.array([[0.0, 0.5, 0.0, 0.2]], np.float32)
    >>> s = gold_scores(m, g)
    >>> round(s.mae, 3), round(s.bias, 3), s.sign_agreement, s.iou_under, s.iou_over
    (0.175, 0.175, 0.5, 0.0, 0.5)
    >>> gold_scores(g * 0, g * 0).iou_under
    1.0
    """
    map = check_residual(map, "map")
    gold = check_residual(gold, "gold")
    if map.shape != gold.shape:
        raise ValueError(f"map has shape {map.shape} but gold has {gold.shape}; resize one to the other first")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a residual magnitude in (0, 1], got {threshold!r}")
    d = map.astype(np.float64) - gold.astype(np.float64)
    mu, gu = map <= -threshold, gold <= -threshold
    mo, go = map >= threshold, gold >= threshold
    cls_m = mo.astype(np.int8) - mu.astype(np.int8)
    cls_g = go.astype(np.int8) - gu.astype(np.int8)
    return GoldScore(
        mae=float(np.abs(d).mean()),
        bias=float(d.mean()),
        sign_agreement=float((cls_m == cls_g).mean()),
        iou_under=_iou(mu, gu),
        iou_over=_iou(mo, go),
    )
