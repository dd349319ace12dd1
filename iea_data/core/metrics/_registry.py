"""The ``METRICS`` registry, the :class:`Metric` wrapper and the front door ``create``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from iea_data.core.registry import Registry

from . import _maps, _scores
from ._config import MetricCfg

__all__ = ["METRICS", "Metric", "create", "list_metrics", "get_metric_cfg"]

#: Registry of metrics: name -> ``(MetricCfg, function)``.
METRICS = Registry("metric")

_INF = float("inf")


class Metric:
    """A configured metric: call it on predictions and targets.

    Parameters
    ----------
    cfg : MetricCfg
        Name, direction, range, reference and parameters.
    fn : callable
        ``fn(pred, target, **cfg.params)``.

    Notes
    -----
    A ``"map"`` metric returns float64 (N,) per image; :meth:`aggregate` averages them
    (NaN entries, e.g. IoU of a class absent from both maps, are left out). A ``"score"``
    metric returns one float per set of images and :meth:`aggregate` returns it.

    Examples
    --------
    >>> m = create("mae")
    >>> m(np.zeros((2, 4, 4)), np.full((2, 4, 4), 0.25)).tolist()
    [0.25, 0.25]
    >>> m.cfg.lower_better
    True
    """

    def __init__(self, cfg: MetricCfg, fn: Callable[..., Any]):
        self.cfg = cfg
        self._fn = fn

    @property
    def name(self) -> str:
        return self.cfg.name

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> Any:
        return self._fn(pred, target, **self.cfg.params)

    def aggregate(self, values: ArrayLike) -> float:
        """One number for a set: NaN-ignoring mean for map metrics, the value for score metrics.

        Examples
        --------
        >>> create("iou_over").aggregate(np.array([0.5, np.nan, 1.0]))
        0.75
        """
        v = np.asarray(values, dtype=np.float64)
        if self.cfg.kind == "score":
            return float(v) if v.ndim == 0 else float(v.mean())
        finite = v[~np.isnan(v)]
        return float(finite.mean()) if finite.size else float("nan")

    def better(self, a: float, b: float) -> bool:
        """True if value ``a`` is better than ``b`` for this metric."""
        return a < b if self.cfg.lower_better else a > b

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.cfg.params.items())
        return f"Metric({self.name!r}{', ' if params else ''}{params})"


def _add(cfg: MetricCfg, fn: Callable[..., Any]) -> None:
    METRICS.register(cfg.name)((cfg, fn))


def _iou_of(index: int) -> Callable[..., np.ndarray]:
    def fn(pred: ArrayLike, target: ArrayLike, *, tau: float) -> np.ndarray:
        return _maps.class_iou(pred, target, tau=tau)[:, index]

    return fn


_TAU = {"tau": 0.1}
_add(MetricCfg("mae", "map", True, (0.0, 2.0), "NumPy", {}, "mean |pred - target| per image"), _maps.mae)
_add(MetricCfg("mse", "map", True, (0.0, 4.0), "NumPy", {}, "mean (pred - target)^2 per image"), _maps.mse)
_add(
    MetricCfg(
        "psnr",
        "map",
        False,
        (0.0, _INF),
        "skimage.metrics.peak_signal_noise_ratio(data_range=2)",
        {},
        "PSNR in dB, data range 2",
    ),
    _maps.psnr,
)
_add(
    MetricCfg(
        "ssim",
        "map",
        False,
        (-1.0, 1.0),
        "skimage.metrics.structural_similarity(data_range=2)",
        {"win_size": 7},
        "mean SSIM, data range 2",
    ),
    _maps.ssim,
)
_add(
    MetricCfg(
        "pixel_acc",
        "map",
        False,
        (0.0, 1.0),
        "NumPy",
        dict(_TAU),
        "pixels classed right as under / ideal / over at |r| > tau",
    ),
    _maps.pixel_accuracy,
)
for _i, _cls in enumerate(_maps.CLASSES):
    _add(
        MetricCfg(f"iou_{_cls}", "map", False, (0.0, 1.0), "NumPy", dict(_TAU), f"IoU of the {_cls!r} pixels at tau"),
        _iou_of(_i),
    )
_add(
    MetricCfg("miou", "map", False, (0.0, 1.0), "NumPy", dict(_TAU), "mean IoU over the classes present"),
    _maps.mean_iou,
)
_add(
    MetricCfg("f1_macro", "map", False, (0.0, 1.0), "NumPy", dict(_TAU), "macro F1 over the classes present"),
    _maps.macro_f1,
)
_add(
    MetricCfg(
        "srcc", "score", False, (-1.0, 1.0), "scipy.stats.spearmanr", {}, "Spearman rank correlation of image scores"
    ),
    _scores.srcc,
)
_add(
    MetricCfg(
        "plcc", "score", False, (-1.0, 1.0), "scipy.stats.pearsonr", {}, "Pearson linear correlation of image scores"
    ),
    _scores.plcc,
)
_add(
    MetricCfg(
        "krcc",
        "score",
        False,
        (-1.0, 1.0),
        "scipy.stats.kendalltau (tau-b)",
        {},
        "Kendall rank correlation of image scores",
    ),
    _scores.krcc,
)
_add(
    MetricCfg(
        "good_bad_acc",
        "score",
        False,
        (0.0, 1.0),
        "NumPy",
        {"cut": 5.0, "pred_cut": None},
        "images on the right side of a good/bad cut",
    ),
    _scores.good_bad_accuracy,
)


def list_metrics(pattern: str = "*", *, kind: Optional[str] = None) -> list[str]:
    """Names of the registered metrics matching an fnmatch ``pattern``.

    Parameters
    ----------
    pattern : str, optional
        fnmatch pattern, e.g. ``"iou_*"``.
    kind : {"map", "score"}, optional
        Only metrics of this kind.

    Examples
    --------
    >>> list_metrics("iou_*")
    ['iou_ideal', 'iou_over', 'iou_under']
    >>> list_metrics(kind="score")
    ['good_bad_acc', 'krcc', 'plcc', 'srcc']
    """
    if kind not in (None, "map", "score"):
        raise ValueError(f"`kind` must be None, 'map' or 'score'; got {kind!r}.")
    return [n for n in METRICS.list(pattern) if kind is None or METRICS.get(n)[0].kind == kind]


def get_metric_cfg(name: str) -> MetricCfg:
    """The default :class:`MetricCfg` of a metric (unknown names raise with a hint).

    Examples
    --------
    >>> get_metric_cfg("ssim").reference
    'skimage.metrics.structural_similarity(data_range=2)'
    """
    return METRICS.get(name)[0]


def create(name: str, **overrides: Any) -> Metric:
    """Build a metric, optionally with some parameters changed.

    Parameters
    ----------
    name : str
        A name from :func:`list_metrics`.
    **overrides
        Parameters of the metric (``tau=0.2``, ``cut=6.0``); unknown ones raise.

    Returns
    -------
    Metric

    Raises
    ------
    IeaError
        Unknown metric (with "did you mean") or parameter.

    Examples
    --------
    >>> acc = create("pixel_acc", tau=0.2)
    >>> acc(np.array([[0.15, -0.5]]), np.array([[0.0, -0.3]])).tolist()
    [1.0]
    """
    cfg, fn = METRICS.get(name)
    return Metric(cfg.with_params(**overrides), fn)
