"""Decoded integer pixels to library floats: channel order, EXIF orientation, /255 and /65535, alpha over white.

Examples
--------
>>> import numpy as np
>>> _to_float_rgb(np.array([[0, 255]], np.uint8), alpha=False).tolist()
[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]
>>> _orient(np.array([[1, 2]], np.uint8), 2).tolist()  # mirrored
[[2, 1]]
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

_U8_MAX = np.float32(255)
_U16_MAX = np.float32(65535)


def _to_rgb_order(arr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/BGRA to RGB/RGBA (grey stays as is), in place: no second full-size copy."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA, dst=arr)
    return arr


_ORIENT_OPS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _orient(arr: np.ndarray, orientation: int | None) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W) or (H, W, C) array, C <= 4."""
    op = None if orientation is None else _ORIENT_OPS.get(orientation)
    return np.ascontiguousarray(arr) if op is None else op(np.ascontiguousarray(arr))


def _to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 / 255 or uint16 / 65535 as float32, correctly rounded (a true division: a
    multiplication by 1/255 is off by one ulp for half the levels)."""
    return np.divide(arr, _U8_MAX if arr.dtype == np.uint8 else _U16_MAX, dtype=np.float32)


def _to_float_rgb(arr: np.ndarray, alpha: bool) -> np.ndarray:
    """uint8/uint16 grey, grey+alpha, RGB or RGBA -> float32 RGB, alpha over white."""
    if not alpha:
        if arr.ndim == 2:
            arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
        return _to_float(arr)
    colour = _to_float(arr[..., :-1])
    if colour.shape[2] == 1:
        colour = cv2.cvtColor(colour[..., 0], cv2.COLOR_GRAY2RGB)
    a = _to_float(arr[..., -1])[..., None]
    # c * a + (1 - a): exact at a = 0 (white) and a = 1 (the colour); rounding in between
    # can reach 1 + 1 ulp, hence the clip.
    colour *= a
    colour += np.float32(1) - a
    np.minimum(colour, np.float32(1), out=colour)
    return colour
