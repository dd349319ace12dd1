"""Boundary checks for the arrays the library passes around.

Every public function of :mod:`iea_data` that takes an image or a map calls one of these
helpers first, so that a wrong dtype, shape or range fails at the call that caused it, with a
message that names the argument, says what was expected and what was found, and how to fix it.

The checks are cheap: a dtype and shape test plus one min/max reduction, which also finds NaN
and infinities (images in [0, 1]: one ``cv2.minMaxLoc`` pass over the bits, see
``_unit_float32_ok``; other ranges: NumPy's ``min`` and ``max``, which propagate NaN).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

__all__ = ["check_image", "check_residual", "check_range"]

_IMAGE_EXPECTED = "a float32 numpy array of shape (H, W, 3) with values in [0, 1]"
_RESIDUAL_EXPECTED = "a float32 numpy array of shape (H, W) with values in [-1, 1]"


def _fmt(value: float) -> str:
    """Format a reduction result compactly (``0.5``, ``-1.25e-08``, ``nan``)."""
    return f"{float(value):.6g}"


def _check_ndarray(arr: Any, name: str, expected: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"`{name}` must be {expected}; got an object of type {type(arr).__name__}. "
            f"Convert it with numpy.asarray(..., dtype=numpy.float32) first."
        )
    return arr


def _check_dtype(arr: np.ndarray, name: str, expected: str, dtype: np.dtype) -> None:
    if arr.dtype != dtype:
        if np.issubdtype(arr.dtype, np.integer):
            hint = (
                " Integer pixels are converted only by iea_data.core.imaging (divide uint8 by 255, "
                "uint16 by 65535), e.g. by read_image()."
            )
        else:
            hint = f" Convert it with `{name}.astype(numpy.float32)`."
        raise TypeError(f"`{name}` must be {expected}; got dtype {arr.dtype}.{hint}")


_ONE_BITS = int(np.float32(1.0).view(np.int32))


def _unit_float32_ok(arr: np.ndarray) -> bool:
    """True if a C-contiguous float32 array certainly holds only values in [0, 1], in one pass.

    Read as int32, non-negative floats keep their order, 1.0 is 0x3F800000, everything above
    it (including +inf and +NaN) is larger and every value with the sign bit set (negatives,
    -0.0, -NaN) is negative. So ``0 <= min`` and ``max <= 0x3F800000`` over the int32 view,
    one ``cv2.minMaxLoc`` pass, prove the range and finiteness. False only means "look
    closer" (e.g. -0.0, which the exact check then accepts).
    """
    if arr.dtype != np.float32 or not arr.flags.c_contiguous or arr.ndim < 2:
        return False
    ints = arr.view(np.int32).reshape(arr.shape[0], -1)
    imin, imax, _, _ = cv2.minMaxLoc(ints)
    return imin >= 0 and imax <= _ONE_BITS


def _check_values(arr: np.ndarray, lo: float, hi: float, name: str, expected: str) -> None:
    """Find values outside ``[lo, hi]`` and NaN/inf with one min/max pair (both propagate NaN)."""
    if arr.size == 0:
        return
    if lo == 0.0 and hi == 1.0 and _unit_float32_ok(arr):
        return
    vmin, vmax = arr.min(), arr.max()
    # NaN fails both comparisons below, so test finiteness explicitly first.
    if not (math.isfinite(vmin) and math.isfinite(vmax)):
        raise ValueError(
            f"`{name}` must be {expected}; got non-finite values (min={_fmt(vmin)}, "
            f"max={_fmt(vmax)}). Find them with numpy.isfinite({name}) and fix the step "
            f"that produced them."
        )
    if vmin < lo or vmax > hi:
        raise ValueError(
            f"`{name}` must be {expected}; got values in [{_fmt(vmin)}, {_fmt(vmax)}] "
            f"(shape {arr.shape}). Out-of-range values are not clipped silently: clip them "
            f"explicitly (numpy.clip({name}, {_fmt(lo)}, {_fmt(hi)})) if that is what you mean."
        )


def _check_shape_hw(arr: np.ndarray, name: str, expected: str, channels: int | None) -> None:
    if channels is None:
        ok = arr.ndim == 2
    else:
        ok = arr.ndim == 3 and arr.shape[2] == channels
    if not ok:
        hint = ""
        if channels == 3 and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] > 4:
            hint = " It looks channels-first: use `numpy.moveaxis(x, 0, -1)`."
        elif channels == 3 and arr.ndim == 3 and arr.shape[2] == 4:
            hint = " Composite or drop the alpha channel first."
        elif channels == 3 and arr.ndim == 2:
            hint = " Replicate a grey image to 3 channels first."
        raise ValueError(f"`{name}` must be {expected}; got shape {arr.shape}.{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must be {expected}; got an empty array of shape {arr.shape}.")


def check_image(arr: Any, name: str = "image") -> np.ndarray:
    """Check that ``arr`` is a library image and return it unchanged.

    A library image is a float32 RGB array of shape (H, W, 3), sRGB-encoded, with every
    value finite and in [0, 1].

    Parameters
    ----------
    arr : object
        The value to check.
    name : str, optional
        The argument's name, used in the error message.

    Returns
    -------
    numpy.ndarray
        ``arr`` itself (no copy).

    Raises
    ------
    TypeError
        If ``arr`` is not a numpy array or its dtype is not float32.
    ValueError
        If the shape is not (H, W, 3) with H, W > 0, or a value is NaN, infinite or
        outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> img = check_image(np.zeros((2, 3, 3), np.float32))
    >>> img.shape
    (2, 3, 3)
    >>> check_image(np.ones((2, 3), np.float32), name="photo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: `photo` must be a float32 numpy array of shape (H, W, 3) with values in [0, 1]; got shape (2, 3)...
    """
    arr = _check_ndarray(arr, name, _IMAGE_EXPECTED)
    _check_dtype(arr, name, _IMAGE_EXPECTED, np.dtype(np.float32))
    _check_shape_hw(arr, name, _IMAGE_EXPECTED, channels=3)
    _check_values(arr, 0.0, 1.0, name, _IMAGE_EXPECTED)
    return arr


def check_residual(arr: Any, name: str = "residual") -> np.ndarray:
    """Check that ``arr`` is a residual map and return it unchanged.

    A residual map is float32 of shape (H, W) with finite values in [-1, 1]:
    ``Y(photo) - Y(ideal)``, negative where the photo is too dark.

    Parameters
    ----------
    arr : object
        The value to check.
    name : str, optional
        The argument's name, used in the error message.

    Returns
    -------
    numpy.ndarray
        ``arr`` itself (no copy).

    Raises
    ------
    TypeError
        If ``arr`` is not a numpy array or its dtype is not float32.
    ValueError
        If the shape is not (H, W) with H, W > 0, or a value is NaN, infinite or
        outside [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> check_residual(np.full((2, 2), -0.5, np.float32)).dtype
    dtype('float32')
    >>> check_residual(np.full((2, 2), 2.0, np.float32), name="label")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: `label` must be a float32 numpy array of shape (H, W) with values in [-1, 1]; got values in [2, 2]...
    """
    arr = _check_ndarray(arr, name, _RESIDUAL_EXPECTED)
    _check_dtype(arr, name, _RESIDUAL_EXPECTED, np.dtype(np.float32))
    _check_shape_hw(arr, name, _RESIDUAL_EXPECTED, channels=None)
    _check_values(arr, -1.0, 1.0, name, _RESIDUAL_EXPECTED)
    return arr


def check_range(arr: Any, lo: float, hi: float, name: str) -> np.ndarray:
    """Check that every value of a numeric array is finite and in ``[lo, hi]``.

    Shape and dtype are not constrained (any real dtype); an empty array passes.

    Parameters
    ----------
    arr : numpy.ndarray
        Array of any shape and real dtype.
    lo, hi : float
        The inclusive bounds, ``lo <= hi``.
    name : str
        The argument's name, used in the error message.

    Returns
    -------
    numpy.ndarray
        ``arr`` itself (no copy).

    Raises
    ------
    TypeError
        If ``arr`` is not a numpy array of a real (integer, bool or float) dtype.
    ValueError
        If ``lo > hi``, or a value is NaN, infinite or outside ``[lo, hi]``.

    Examples
    --------
    >>> import numpy as np
    >>> check_range(np.array([0.0, 2.5]), 0, 3, "ev").tolist()
    [0.0, 2.5]
    >>> check_range(np.array([0.0, 4.0]), 0, 3, "ev")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: `ev` must be a numeric array with finite values in [0, 3]; got values in [0, 4] (shape (2,))...
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"check_range needs finite bounds with lo <= hi; got lo={lo!r}, hi={hi!r}.")
    expected = f"a numeric array with finite values in [{_fmt(lo)}, {_fmt(hi)}]"
    arr = _check_ndarray(arr, name, expected)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise TypeError(f"`{name}` must be {expected}; got dtype {arr.dtype}.")
    _check_values(arr, lo, hi, name, expected)
    return arr


def _check_float32(arr: Any, name: str, lo: float, hi: float) -> np.ndarray:
    """A float32 array of any shape with finite values in ``[lo, hi]`` (internal helper)."""
    expected = f"a float32 numpy array with values in [{_fmt(lo)}, {_fmt(hi)}]"
    arr = _check_ndarray(arr, name, expected)
    _check_dtype(arr, name, expected, np.dtype(np.float32))
    _check_values(arr, lo, hi, name, expected)
    return arr


def _check_map(arr: Any, name: str) -> np.ndarray:
    """A float32 (H, W) array with finite values, any range (internal helper)."""
    expected = "a float32 numpy array of shape (H, W) with finite values"
    arr = _check_ndarray(arr, name, expected)
    _check_dtype(arr, name, expected, np.dtype(np.float32))
    _check_shape_hw(arr, name, expected, channels=None)
    _check_values(arr, -math.inf, math.inf, name, expected)
    return arr


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    """A Python or NumPy integer >= ``minimum``; bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)
