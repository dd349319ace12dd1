"""Exposure brackets and previews from a linear RAW render, in linear light."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from numbers import Real
from typing import Any

import numpy as np

from iea_data.core.imaging import label_shape, linear_to_srgb, resize_image

from ._read import RawInfo, Source, _check_max_pixels, _postprocess

__all__ = ["exposure_from_linear", "raw_preview", "EV_RANGE"]

#: EV values accepted for brackets, in stops: past +-24 every 16-bit value is black or white.
EV_RANGE = (-24.0, 24.0)
_BAND_PIXELS = 1 << 19  # images above this many pixels are encoded in bands on threads


def _check_linear(linear: Any) -> np.ndarray:
    if not isinstance(linear, np.ndarray) or linear.dtype != np.float32 or linear.ndim != 3 or linear.shape[2] != 3:
        got = f"{linear.dtype} {linear.shape}" if isinstance(linear, np.ndarray) else type(linear).__name__
        raise TypeError(
            f"`linear` must be a float32 (H, W, 3) array of linear light (a LinearRender.linear); got {got}"
        )
    return linear


def _check_ev(ev: Any) -> None:
    if not isinstance(ev, Real) or isinstance(ev, bool) or not math.isfinite(ev):
        raise ValueError(f"`ev` must be a finite number of stops; got {ev!r}")
    if not EV_RANGE[0] <= float(ev) <= EV_RANGE[1]:
        raise ValueError(f"`ev` must be within {EV_RANGE[0]:g}..{EV_RANGE[1]:+g} stops; got {ev!r}")


@lru_cache(maxsize=16)
def _exposure_lut(ev: float) -> np.ndarray:
    """``exposure_from_linear(k / 65535, ev)`` for every k in 0..65535: the same float32 operations."""
    counts = np.arange(65536, dtype=np.float32)
    counts /= np.float32(65535)
    scaled = counts * np.float32(2.0**ev)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    lut = linear_to_srgb(scaled)
    lut.setflags(write=False)
    return lut


def exposure_from_linear(linear: np.ndarray, ev: float) -> np.ndarray:
    """One exposure of a linear render: ``srgb(clip(linear * 2**ev, 0, 1))``.

    The scaling is done here in linear light (not by LibRaw's ``exp_shift``), so any EV in
    :data:`EV_RANGE` works and one demosaic serves every EV of a bracket.

    Parameters
    ----------
    linear : numpy.ndarray
        float32 (H, W, 3), linear light (values above 1 are clipped after scaling); or
        uint16 (H, W, 3) counts ``k`` standing for ``k / 65535`` (:attr:`LinearRender.counts`):
        the result is then bit-identical to the float32 path on ``k / 65535`` but is a table
        lookup (65536 entries per EV) instead of a power per pixel.
    ev : float
        Stops: +1 doubles the light, -1 halves it.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded (the project's
        :func:`~iea_data.core.imaging.linear_to_srgb`).

    Examples
    --------
    >>> import numpy as np
    >>> lin = np.full((1, 1, 3), 0.25, np.float32)
    >>> [round(float(v), 4) for v in exposure_from_linear(lin, 1.0).ravel()]
    [0.7354, 0.7354, 0.7354]
    >>> float(exposure_from_linear(lin, 3.0).max())
    1.0
    >>> counts = np.full((1, 1, 3), 16384, np.uint16)
    >>> bool((exposure_from_linear(counts, 1.0) == exposure_from_linear(counts / np.float32(65535), 1.0)).all())
    True
    """
    if isinstance(linear, np.ndarray) and linear.dtype == np.uint16 and linear.ndim == 3 and linear.shape[2] == 3:
        _check_ev(ev)
        return _exposure_lut(float(ev))[linear]
    _check_linear(linear)
    _check_ev(ev)
    factor = np.float32(2.0**ev)
    out = np.empty_like(linear)

    def encode(rows: slice) -> None:
        scaled = linear[rows] * factor
        np.clip(scaled, 0.0, 1.0, out=scaled)
        out[rows] = linear_to_srgb(scaled)

    # element-wise, so bands of rows on threads (NumPy releases the GIL) give the same result
    n = min(os.cpu_count() or 1, max(1, linear.shape[0] * linear.shape[1] // _BAND_PIXELS), linear.shape[0])
    if n == 1:
        encode(slice(None))
    else:
        edges = np.linspace(0, linear.shape[0], n + 1).astype(int)
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(encode, [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]))
    return out


def raw_preview(
    source: Source, *, max_side: int = 256, name: str = "", max_pixels: int | None = None
) -> tuple[np.ndarray, RawInfo]:
    """An sRGB preview of a RAW for statistics and thumbnails: camera WB, no auto-bright.

    A half-size linear render (:func:`render_linear`), encoded with the sRGB curve and
    area-averaged to ``label_shape(height, width, max_side)`` of the full render. The
    encoding is a lookup in the EV 0 table of :func:`exposure_from_linear` on LibRaw's
    16-bit output: the same values as ``linear_to_srgb(clip(linear))`` without a float32
    copy of the render or a power per pixel.

    Parameters
    ----------
    source : bytes or path-like
        The RAW file's bytes, or its path.
    max_side : int, optional
        Long side of the preview (never upscaled past the half-size render).
    name : str, optional
        The name used in messages and for the format.
    max_pixels : int, optional
        As for :func:`render_linear`: a larger RAW is refused from its header.

    Returns
    -------
    rgb : numpy.ndarray
        float32 (h, w, 3) in [0, 1], sRGB-encoded.
    info : RawInfo

    Examples
    --------
    >>> import numpy as np
    >>> from iea_data.core.raw import synthetic_dng
    >>> rgb, info = raw_preview(synthetic_dng(np.full((32, 48, 3), 0.2, np.float32)), max_side=12)
    >>> rgb.shape, (info.height, info.width)
    ((8, 12, 3), (32, 48))
    """
    if not isinstance(max_side, int) or isinstance(max_side, bool) or max_side < 1:
        raise ValueError(f"`max_side` must be an integer >= 1; got {max_side!r}")
    rgb16, info, _ = _postprocess(source, wb=None, half_size=True, name=name, max_pixels=_check_max_pixels(max_pixels))
    rgb = _exposure_lut(0.0).take(rgb16)
    h, w = label_shape(info.height, info.width, max_side)
    h, w = min(h, rgb.shape[0]), min(w, rgb.shape[1])
    if (h, w) != rgb.shape[:2]:
        rgb = resize_image(rgb, (h, w))
    return np.ascontiguousarray(rgb), info
