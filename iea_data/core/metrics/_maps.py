"""Metrics between residual maps, one value per image, computed in float64.

All functions take ``pred`` and ``target`` residual maps (H, W), (N, H, W) or (N, 1, H, W)
with values in [-1, 1] and return float64 (N,).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._config import MetricInputError
from ._validate import as_maps

__all__ = [
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
    "CLASSES",
    "DATA_RANGE",
]

#: Value range of a residual map, ``1 - (-1)``: the ``data_range`` of PSNR and SSIM.
DATA_RANGE = 2.0
#: Pixel classes of :func:`classify`, in index order.
CLASSES = ("under", "ideal", "over")


def mae(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Mean absolute error per image.

    Parameters
    ----------
    pred, target : array_like
        Residual maps (H, W), (N, H, W) or (N, 1, H, W) in [-1, 1].

    Returns
    -------
    ndarray
        float64 (N,), in [0, 2]; accumulated in float64.

    Examples
    --------
    >>> mae(np.zeros((2, 2)), np.full((2, 2), 0.5)).tolist()
    [0.5]
    """
    p, t = as_maps(pred, target)
    return np.abs(p - t).mean(axis=(1, 2))


def mse(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Mean squared error per image, float64 (N,) in [0, 4].

    Examples
    --------
    >>> mse(np.zeros((2, 2)), np.full((2, 2), 0.5)).tolist()
    [0.25]
    """
    p, t = as_maps(pred, target)
    return ((p - t) ** 2).mean(axis=(1, 2))


def psnr(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB, with data range 2 (maps in [-1, 1]).

    ``10 log10(2**2 / mse)``, as ``skimage.metrics.peak_signal_noise_ratio(target, pred,
    data_range=2)``; identical maps give ``inf``.

    Returns
    -------
    ndarray
        float64 (N,), in [0, inf].

    Examples
    --------
    >>> psnr(np.zeros((2, 2)), np.full((2, 2), 0.2)).round(3).tolist()
    [20.0]
    """
    err = mse(pred, target)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(DATA_RANGE**2 / err)


def ssim(pred: ArrayLike, target: ArrayLike, *, win_size: int = 7) -> np.ndarray:
    """Mean structural similarity per image (Wang et al. 2004), data range 2.

    The computation of ``skimage.metrics.structural_similarity(target, pred,
    data_range=2)`` with its defaults (uniform ``win_size`` x ``win_size`` window, sample
    covariance, K1 = 0.01, K2 = 0.03, reflected borders, the border of ``(win_size - 1) // 2``
    pixels left out of the mean), vectorised over the batch and computed in float64.

    Parameters
    ----------
    pred, target : array_like
        Residual maps (H, W), (N, H, W) or (N, 1, H, W) in [-1, 1], H and W >= ``win_size``.
    win_size : int, optional
        Odd side of the window, >= 3.

    Returns
    -------
    ndarray
        float64 (N,), in [-1, 1]; 1 for identical maps.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE TIP 13(4), 2004.

    Examples
    --------
    >>> a = np.linspace(-1, 1, 64).reshape(8, 8)
    >>> float(ssim(a, a)[0])
    1.0
    """
    from scipy.ndimage import uniform_filter

    if isinstance(win_size, bool) or not isinstance(win_size, (int, np.integer)) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"`win_size` must be an odd integer >= 3; got {win_size!r}.")
    p, t = as_maps(pred, target)
    if min(p.shape[1:]) < win_size:
        raise MetricInputError(
            f"ssim needs maps of at least {win_size}x{win_size} pixels (win_size); got "
            f"{p.shape[1]}x{p.shape[2]}. Pass a smaller odd win_size, or larger maps."
        )
    size = (1, win_size, win_size)
    n_pix = win_size**2
    cov_norm = n_pix / (n_pix - 1)
    ux, uy = uniform_filter(t, size=size), uniform_filter(p, size=size)
    uxx, uyy, uxy = (uniform_filter(a, size=size) for a in (t * t, p * p, t * p))
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return s[:, pad : s.shape[1] - pad, pad : s.shape[2] - pad].mean(axis=(1, 2), dtype=np.float64)


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) or not 0 <= tau < 1:
        raise ValueError(
            f"`tau` must be a number in [0, 1) (the |residual| above which a pixel is badly exposed); got {tau!r}."
        )
    return float(tau)


def classify(residual: np.ndarray, *, tau: float = 0.1) -> np.ndarray:
    """Per-pixel class: 0 under (r < -tau), 1 ideal (|r| <= tau), 2 over (r > tau).

    Parameters
    ----------
    residual : ndarray
        Any shape, real values.
    tau : float, optional
        Threshold in [0, 1).

    Returns
    -------
    ndarray
        uint8, the same shape.

    Examples
    --------
    >>> classify(np.array([-0.5, 0.05, 0.1, 0.3]), tau=0.1).tolist()
    [0, 1, 1, 2]
    """
    tau = _check_tau(tau)
    r = np.asarray(residual)
    return np.where(r < -tau, 0, np.where(r > tau, 2, 1)).astype(np.uint8)


def confusion(pred: ArrayLike, target: ArrayLike, *, tau: float = 0.1) -> np.ndarray:
    """Per-image 3x3 confusion matrices of :func:`classify` classes.

    Returns
    -------
    ndarray
        int64 (N, 3, 3); ``[n, i, j]`` counts pixels of true class ``i`` predicted as ``j``.

    Examples
    --------
    >>> confusion(np.array([[-0.5, 0.0]]), np.array([[-0.5, 0.5]]), tau=0.1)[0].tolist()
    [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    """
    p, t = as_maps(pred, target)
    n = p.shape[0]
    idx = classify(t, tau=tau).astype(np.int64) * 3 + classify(p, tau=tau)
    idx += (np.arange(n, dtype=np.int64) * 9)[:, None, None]
    return np.bincount(idx.ravel(), minlength=9 * n).reshape(n, 3, 3)


def pixel_accuracy(pred: ArrayLike, target: ArrayLike, *, tau: float = 0.1) -> np.ndarray:
    """Fraction of pixels whose class (under / ideal / over at ``tau``) is right, (N,) in [0, 1].

    Examples
    --------
    >>> pixel_accuracy(np.array([[-0.5, 0.0]]), np.array([[-0.5, 0.5]])).tolist()
    [0.5]
    """
    cm = confusion(pred, target, tau=tau)
    return np.trace(cm, axis1=1, axis2=2) / cm.sum(axis=(1, 2))


def _per_class(cm: np.ndarray, what: str) -> np.ndarray:
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    both = cm.sum(axis=2) + cm.sum(axis=1)  # true + predicted pixels of the class
    denom = both - tp if what == "iou" else both
    num = tp if what == "iou" else 2 * tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, num / np.maximum(denom, 1), np.nan)


def class_iou(pred: ArrayLike, target: ArrayLike, *, tau: float = 0.1) -> np.ndarray:
    """Per-image intersection over union of each class (under, ideal, over).

    Returns
    -------
    ndarray
        float64 (N, 3) in [0, 1]; NaN where a class is in neither map.

    Examples
    --------
    >>> class_iou(np.array([[-0.5, 0.0]]), np.array([[-0.5, 0.5]])).tolist()
    [[1.0, 0.0, 0.0]]
    """
    return _per_class(confusion(pred, target, tau=tau), "iou")


def mean_iou(pred: ArrayLike, target: ArrayLike, *, tau: float = 0.1) -> np.ndarray:
    """Per-image mean of :func:`class_iou` over the classes present in either map, (N,).

    Examples
    --------
    >>> mean_iou(np.array([[-0.5, 0.0]]), np.array([[-0.5, 0.5]])).round(4).tolist()
    [0.3333]
    """
    return np.nanmean(class_iou(pred, target, tau=tau), axis=1)


def macro_f1(pred: ArrayLike, target: ArrayLike, *, tau: float = 0.1) -> np.ndarray:
    """Per-image macro F1 over the classes present in either map, (N,) in [0, 1].

    F1 of a class is ``2 TP / (true + predicted)``; classes in neither map are left out
    of the mean (one class is always present).

    Examples
    --------
    >>> macro_f1(np.array([[-0.5, 0.0]]), np.array([[-0.5, 0.5]])).round(4).tolist()
    [0.3333]
    """
    return np.nanmean(_per_class(confusion(pred, target, tau=tau), "f1"), axis=1)
