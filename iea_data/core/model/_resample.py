"""Antialiased bilinear resizing as sparse weighted sums, with torch's exact filter weights.

``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=True)``
is separable: each output row (column) is a weighted sum of a few input rows (columns),
with weights that depend only on ``(in_size, out_size)``. :func:`aa_taps` computes those
weights the way torch's CPU kernel does (the triangle filter stretched by the scale when
shrinking, normalised to sum 1) once per size pair; :func:`resize_aa` applies them to an
(H, W) or (H, W, C) float32 array as one row gather and multiply-add per tap and axis. For a 512 px photo
to 256 px that is 5 taps per axis, a few million multiply-adds, against torch's generic
kernel that also needs the image in (C, H, W) order first.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["aa_taps", "resize_aa"]


@functools.lru_cache(maxsize=128)
def aa_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Input indices and weights of each output pixel along one axis.

    Parameters
    ----------
    in_size, out_size : int
        Lengths of the axis before and after resizing, >= 1.

    Returns
    -------
    idx : ndarray
        int64 (out_size, K): input index of each tap (clamped into range where the weight is 0).
    w : ndarray
        float32 (out_size, K): weights, each row summing to 1 (up to rounding). Read-only: the
        result is cached per ``(in_size, out_size)``.

    Notes
    -----
    As torch's ``_compute_weights_aa`` for float32 inputs: ``scale = in / out``, support
    ``scale`` when shrinking and 1 otherwise, centre ``scale * (i + 0.5)``, the triangle
    filter at ``(j - centre + 0.5) / max(scale, 1)``, each row divided by its sum; all in
    float32.

    Examples
    --------
    >>> idx, w = aa_taps(4, 2)
    >>> idx.tolist()
    [[0, 1, 2], [1, 2, 3]]
    >>> (w * 7).round(4).tolist()
    [[3.0, 3.0, 1.0], [1.0, 3.0, 3.0]]
    """
    for name, v in (("in_size", in_size), ("out_size", out_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {v!r}")
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    support = scale if scale >= 1 else f32(1.0)
    invscale = f32(1.0) / scale if scale >= 1 else f32(1.0)
    centre = scale * (np.arange(out_size, dtype=f32) + f32(0.5))
    # C++ truncation toward zero of float32 values, then clamped as torch does
    xmin = np.maximum((centre - support + f32(0.5)).astype(np.int64), 0)
    xmax = np.minimum((centre + support + f32(0.5)).astype(np.int64), in_size)
    xsize = xmax - xmin
    k = int(xsize.max())
    j = np.arange(k, dtype=np.int64)
    src = xmin[:, None] + j[None, :]
    t = np.abs((src.astype(f32) - centre[:, None] + f32(0.5)) * invscale)
    w = np.where((j[None, :] < xsize[:, None]) & (t < 1), f32(1.0) - t, f32(0.0)).astype(f32)
    total = w.sum(axis=1, dtype=f32, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0).astype(f32)
    idx = np.minimum(src, in_size - 1)
    idx.setflags(write=False)
    w.setflags(write=False)
    return idx, w


def _resize_rows(x: np.ndarray, out_size: int) -> np.ndarray:
    """(H, K) C-contiguous -> (out_size, K): each output row a weighted sum of a few input rows.

    Row gathers copy whole contiguous rows; products and sums in float32, taps in order (as torch).
    """
    idx, w = aa_taps(x.shape[0], out_size)
    out = np.take(x, idx[:, 0], axis=0)
    out *= w[:, :1]
    tap = np.empty_like(out)
    for k in range(1, idx.shape[1]):
        np.take(x, idx[:, k], axis=0, out=tap)
        tap *= w[:, k : k + 1]
        out += tap
    return out


def resize_aa(x: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Resize an (H, W) map, or an (H, W, C) image to (C, h, w) planes, as torch's antialiased bilinear does.

    Parameters
    ----------
    x : ndarray
        float32 (H, W) or (H, W, C) (C-contiguous or not).
    size : tuple of int
        ``(height, width)`` of the result.

    Returns
    -------
    Tensor
        float32, contiguous: (height, width) for a map, (C, height, width) for an image (the
        network's layout); within 1e-6 of ``F.interpolate(..., mode="bilinear",
        align_corners=False, antialias=True)`` on values in [-1, 1] (tested against it).

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> resize_aa(x, (2, 2)).double().numpy().round(3).tolist()
    [[3.571, 5.143], [9.857, 11.429]]
    >>> tuple(resize_aa(np.zeros((5, 7, 3), np.float32), (2, 3)).shape)
    (3, 2, 3)
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim not in (2, 3):
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a float32 (H, W) or (H, W, C) array; got {got}")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"size must be a (height, width) pair of integers >= 1; got {size!r}")
    height, width = x.shape[0], x.shape[1]
    c = 1 if x.ndim == 2 else x.shape[2]
    rows = np.ascontiguousarray(x).reshape(height, width * c)
    if height != h:
        rows = _resize_rows(rows, h)
    # columns as rows: (h, W, C) -> (W, h * C), resized like the rows, then to (C, h, w) planes
    cols = rows.reshape(h, width, c).transpose(1, 0, 2).reshape(width, h * c)
    if width != w:
        cols = _resize_rows(np.ascontiguousarray(cols), w)
    out = cols.reshape(w, h, c).transpose(2, 1, 0)
    # NumPy, single-threaded: called from decoding threads beside the model, a multi-threaded
    # kernel (torch's OpenMP pool, BLAS) cost 10-100x the arithmetic on a loaded 2-core machine
    planes = np.array(out, dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(planes if x.ndim == 3 else planes.reshape(h, w))
