"""Label resolution, resizing of images and maps, and thumbnails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ._validate import _check_int, _check_map, check_image

__all__ = ["label_shape", "resize_map", "resize_image", "thumbnail"]


def label_shape(height: int, width: int, max_side: int = 1024) -> tuple[int, int]:
    """The (height, width) a label map is stored at for an image of this size.

    The image size scaled so that the long side is at most ``max_side``: never upscaled,
    aspect ratio kept, each side rounded to the nearest integer (halves up) and at least 1.

    Parameters
    ----------
    height, width : int
        The image size in pixels, >= 1.
    max_side : int, optional
        The longest side allowed (the workspace's label resolution), >= 1.

    Returns
    -------
    tuple of (int, int)
        ``(h, w)`` with ``max(h, w) <= max_side``, ``h <= height``, ``w <= width``.

    Examples
    --------
    >>> label_shape(3000, 4000)
    (768, 1024)
    >>> label_shape(600, 800)
    (600, 800)
    >>> label_shape(1, 5000, max_side=100)
    (1, 100)
    """
    height = _check_int(height, "height")
    width = _check_int(width, "width")
    max_side = _check_int(max_side, "max_side")
    long_side = max(height, width)
    if long_side <= max_side:
        return height, width
    # round(side * max_side / long_side) in exact integer arithmetic, halves up.
    return tuple(  # type: ignore[return-value]
        max(1, (2 * side * max_side + long_side) // (2 * long_side)) for side in (height, width)
    )


def _check_shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    if not isinstance(shape, Sequence) or isinstance(shape, str) or len(shape) != 2:
        raise TypeError(f"`{name}` must be a (height, width) pair of positive integers; got {shape!r}.")
    return _check_int(shape[0], f"{name}[0]"), _check_int(shape[1], f"{name}[1]")


def _resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area interpolation when shrinking both sides, bilinear otherwise (OpenCV)."""
    h, w = shape
    if (h, w) == arr.shape[:2]:
        return arr.copy()
    shrink = h <= arr.shape[0] and w <= arr.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(arr), (w, h), interpolation=interp)
    return out.reshape((h, w) + arr.shape[2:])


def resize_map(arr2d: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float32 map (residual, EV or confidence map) to ``shape``.

    Area interpolation when both sides shrink (each output pixel is the mean of the input
    it covers), bilinear when a side grows; pixel centres are aligned (OpenCV convention).

    Parameters
    ----------
    arr2d : numpy.ndarray
        float32 (H, W), finite values (any range).
    shape : tuple of (int, int)
        Output ``(height, width)``.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``shape``, a new array. Both interpolations are convex
        combinations, so values stay within the input's [min, max] (the result is clipped
        to it against float rounding): a residual map stays in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    >>> resize_map(m, (1, 2)).tolist()
    [[0.0, 1.0]]
    >>> resize_map(m, (4, 8)).shape
    (4, 8)
    """
    _check_map(arr2d, "arr2d")
    out = _resize(arr2d, _check_shape(shape))
    return np.clip(out, arr2d.min(), arr2d.max(), out=out)


def resize_image(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a library image to ``shape`` (area when shrinking, else bilinear).

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1].
    shape : tuple of (int, int)
        Output ``(height, width)``.

    Returns
    -------
    numpy.ndarray
        float32 (height, width, 3) in [0, 1], a new array.

    Examples
    --------
    >>> import numpy as np
    >>> resize_image(np.ones((4, 6, 3), np.float32), (2, 3)).shape
    (2, 3, 3)
    """
    check_image(rgb, "rgb")
    out = _resize(rgb, _check_shape(shape))
    return np.clip(out, 0.0, 1.0, out=out)


def thumbnail(rgb: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A small uint8 RGB preview, long side at most ``max_side`` (never upscaled).

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1].
    max_side : int, optional
        Longest side of the thumbnail.

    Returns
    -------
    numpy.ndarray
        uint8 (h, w, 3), RGB, ``(h, w) = label_shape(H, W, max_side)``; area interpolation
        in float32, then ``round(x * 255)`` (halves to even).

    Examples
    --------
    >>> import numpy as np
    >>> t = thumbnail(np.full((512, 1024, 3), 0.2, np.float32), max_side=64)
    >>> t.shape, t.dtype, int(t[0, 0, 0])
    ((32, 64, 3), dtype('uint8'), 51)
    """
    check_image(rgb, "rgb")
    small = _resize(rgb, label_shape(rgb.shape[0], rgb.shape[1], max_side))
    # One pass: saturate_cast<uchar>(|x * 255|), which rounds halves to even like numpy.rint.
    return cv2.convertScaleAbs(small, alpha=255.0)
