"""Metrics for pixel-level exposure assessment: residual maps and image-level scores.

One interface: :func:`create` returns a :class:`Metric` (configured by a frozen
:class:`MetricCfg`: ``lower_better``, ``value_range``, ``reference``, ``params``) that is
called as ``metric(pred, target)``. Map metrics take residual maps (H, W), (N, H, W) or
(N, 1, H, W) in [-1, 1] and return float64 (N,) per image; score metrics take (N,) or (B, N)
image-level scores and return one value per set. Everything accumulates in float64.

Agreement (tested to 1e-3 on random and Hypothesis-generated inputs): ``srcc`` / ``plcc`` /
``krcc`` with ``scipy.stats``, ``ssim`` and ``psnr`` with ``skimage.metrics`` (data range 2),
the rest with direct NumPy. Constant scores, NaN and shape mismatches raise
:class:`MetricInputError` (an :class:`~iea_data.core.errors.IeaError` and a ``ValueError``).

Examples
--------
>>> import numpy as np
>>> from iea_data.core import metrics
>>> metrics.list_metrics(kind="score")
['good_bad_acc', 'krcc', 'plcc', 'srcc']
>>> metrics.create("mae")(np.zeros((1, 8, 8)), np.full((1, 8, 8), 0.1)).round(3).tolist()
[0.1]
"""

from ._config import MetricCfg, MetricInputError
from ._maps import (
    CLASSES,
    DATA_RANGE,
    class_iou,
    classify,
    confusion,
    macro_f1,
    mae,
    mean_iou,
    mse,
    pixel_accuracy,
    psnr,
    ssim,
)
from ._registry import METRICS, Metric, create, get_metric_cfg, list_metrics
from ._scores import good_bad_accuracy, krcc, plcc, rank_average, srcc

__all__ = [
    # front door
    "METRICS",
    "Metric",
    "MetricCfg",
    "MetricInputError",
    "create",
    "list_metrics",
    "get_metric_cfg",
    # maps
    "CLASSES",
    "DATA_RANGE",
    "mae",
    "mse",
    "psnr",
    "ssim",
    "classify",
    "confusion",
    "pixel_accuracy",
    "class_iou",
    "mean_iou",
    "macro_f1",
    # scores
    "plcc",
    "srcc",
    "krcc",
    "good_bad_accuracy",
    "rank_average",
]
