"""Colour conversions: the sRGB transfer curve, Rec.601 luma and exposure changes in EV."""

from __future__ import annotations

import math
from numbers import Real
from typing import Union

import cv2
import numpy as np

from ._validate import _check_float32, _check_map, check_image

__all__ = ["LUMA_WEIGHTS", "srgb_to_linear", "linear_to_srgb", "luma", "apply_ev"]

#: Rec.601 luma weights (R, G, B), applied to sRGB-encoded values.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# IEC 61966-2-1 constants.
_DECODE_KNEE = np.float32(0.04045)
_ENCODE_KNEE = np.float32(0.0031308)
_SLOPE = np.float32(12.92)
_ONE_PLUS_A = np.float32(1.055)
_GAMMA = np.float32(2.4)
_INV_GAMMA = np.float32(1.0 / 2.4)

# 2**ev is evaluated in float32; beyond +-126 stops it would overflow to inf (and 0 * inf is NaN).
# Every image is saturated (or black) long before that, so clamping changes no result.
_EV_LIMIT = 126.0


# The power branches are written as ((c - 1) / 1.055 + 1) ** 2.4 and 1.055 * (p - 1) + 1,
# algebraically the standard's (c + 0.055) / 1.055 and 1.055 * p - 0.055, so that white maps
# to exactly 1.0 in float32 (the textbook form gives 0.99999994).
def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    out = np.subtract(x, np.float32(1))
    out /= _ONE_PLUS_A
    out += np.float32(1)
    np.power(out, _GAMMA, out=out)
    np.copyto(out, x / _SLOPE, where=x <= _DECODE_KNEE)
    return np.clip(out, 0.0, 1.0, out=out)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    out = np.power(x, _INV_GAMMA)
    out -= np.float32(1)
    out *= _ONE_PLUS_A
    out += np.float32(1)
    np.copyto(out, x * _SLOPE, where=x <= _ENCODE_KNEE)
    return np.clip(out, 0.0, 1.0, out=out)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Decode sRGB values to linear light (IEC 61966-2-1).

    ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``; evaluated in
    float32 and clipped to [0, 1] against rounding.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 array of any shape (usually (H, W, 3)), sRGB-encoded, values in [0, 1].

    Returns
    -------
    numpy.ndarray
        float32, same shape, linear light in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 4) for v in srgb_to_linear(np.array([0.0, 0.5, 1.0], np.float32)).tolist()]
    [0.0, 0.214, 1.0]
    """
    return _srgb_to_linear(_check_float32(rgb, "rgb", 0.0, 1.0))


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB values (IEC 61966-2-1).

    ``12.92 * l`` for ``l <= 0.0031308``, else ``1.055 * l ** (1 / 2.4) - 0.055``; evaluated
    in float32 and clipped to [0, 1] against rounding.

    Parameters
    ----------
    lin : numpy.ndarray
        float32 array of any shape, linear light in [0, 1].

    Returns
    -------
    numpy.ndarray
        float32, same shape, sRGB-encoded in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 3) for v in linear_to_srgb(np.array([0.0, 0.214, 1.0], np.float32)).tolist()]
    [0.0, 0.5, 1.0]
    """
    return _linear_to_srgb(_check_float32(lin, "lin", 0.0, 1.0))


def _luma(rgb: np.ndarray) -> np.ndarray:
    # OpenCV's float RGB2GRAY uses exactly the Rec.601 weights 0.299, 0.587, 0.114 (float32);
    # it is several times faster than a NumPy dot product. White maps to exactly 1.0 and the
    # weighted sum is monotone, so the result stays in [0, 1].
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` of sRGB-encoded values.

    This is the grey level the IEA40K labels use (no linearisation).

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded.

    Returns
    -------
    numpy.ndarray
        float32 (H, W) in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((1, 3, 3), np.float32)
    >>> img[0, 0, 0] = img[0, 1, 1] = img[0, 2, 2] = 1.0
    >>> [round(v, 3) for v in luma(img)[0].tolist()]
    [0.299, 0.587, 0.114]
    """
    return _luma(check_image(rgb, "rgb"))


EV = Union[float, np.ndarray]


def apply_ev(rgb: np.ndarray, ev: EV) -> np.ndarray:
    """Change exposure by ``ev`` stops in linear light.

    ``linear_to_srgb(clip(srgb_to_linear(rgb) * 2**ev, 0, 1))``: +1 doubles the light, -1
    halves it; highlights pushed past white clip.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded.
    ev : float or numpy.ndarray
        A finite number of stops for the whole image, or a float32 (H, W) map of stops per
        pixel with the image's height and width. Values beyond +-126 stops act as +-126
        (the float32 range of ``2**ev``; the image is saturated or black long before).

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 1, 3), 0.5, np.float32)
    >>> [round(v, 3) for v in apply_ev(img, 1.0).ravel().tolist()]
    [0.686, 0.686, 0.686]
    >>> apply_ev(img, np.zeros((1, 1), np.float32)).ravel().tolist() == img.ravel().tolist()
    True
    """
    check_image(rgb, "rgb")
    if isinstance(ev, np.ndarray):
        _check_map(ev, "ev")
        if ev.shape != rgb.shape[:2]:
            raise ValueError(
                f"`ev` map must have the image's height and width {rgb.shape[:2]}; got shape "
                f"{ev.shape}. Resize it with iea_data.core.imaging.resize_map(ev, {rgb.shape[:2]})."
            )
        factor = np.exp2(np.clip(ev, -_EV_LIMIT, _EV_LIMIT))[..., None]
    elif isinstance(ev, Real) and not isinstance(ev, (bool, np.bool_)):
        if not math.isfinite(ev):
            raise ValueError(f"`ev` must be a finite number of stops; got {ev!r}.")
        factor = np.float32(2.0 ** min(max(float(ev), -_EV_LIMIT), _EV_LIMIT))
    else:
        raise TypeError(f"`ev` must be a float (stops) or a float32 (H, W) numpy array; got {type(ev).__name__}.")
    lin = _srgb_to_linear(rgb)
    lin *= factor
    np.clip(lin, 0.0, 1.0, out=lin)
    return _linear_to_srgb(lin)
