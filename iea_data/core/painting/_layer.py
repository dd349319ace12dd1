"""What the browser draws: the heatmap as a transparent layer, and the map for the cursor readout."""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from iea_data.core.heatmaps import COLORMAP, DEFAULT_RANGE, _check_range
from iea_data.core.imaging import check_residual

__all__ = ["heatmap_layer", "heatmap_lut", "encode_layer", "quantize_map"]


def heatmap_layer(residual: np.ndarray, *, vmax: float = DEFAULT_RANGE) -> np.ndarray:
    """The blue-white-red heatmap as an RGBA layer for compositing over the photo.

    Colours are those of :func:`iea_data.core.heatmaps.colorize` (its lookup table and index); alpha is
    ``min(|residual| / vmax, 1) * 255`` on the same 255-step grid,
    so drawing the layer over the photo at opacity ``o`` gives the same picture as
    :func:`iea_data.core.heatmaps.overlay` with ``opacity=o`` (up to 8-bit rounding of alpha).

    Parameters
    ----------
    residual : ndarray, float32, shape (h, w), values in [-1, 1]
    vmax : float
        Magnitude shown at full colour.

    Returns
    -------
    ndarray, uint8, shape (h, w, 4)
        sRGB colour and alpha.

    Examples
    --------
    >>> heatmap_layer(np.array([[-0.5, 0.0, 0.25]], np.float32))[0].tolist()
    [[5, 48, 97, 255], [255, 255, 255, 0], [229, 131, 104, 127]]
    """
    residual = check_residual(residual, "residual")
    vmax = _check_range(vmax)
    # the same index as heatmaps.colorize: rint((clip(r / vmax) + 1) * 255); alpha = |index - 255|
    t = np.clip(residual / vmax, -1.0, 1.0)
    idx = np.rint((t + 1.0) * ((len(COLORMAP) - 1) / 2)).astype(np.intp)
    return _RGBA_LUT[idx]


def heatmap_lut() -> np.ndarray:
    """The RGBA lookup table of :func:`heatmap_layer`: uint8 (511, 4).

    Row ``i`` is the colour of :data:`iea_data.core.heatmaps.COLORMAP` row ``i`` with alpha
    ``|i - 255|``; a residual ``r`` takes row ``rint((clip(r / vmax, -1, 1) + 1) * 255)``.
    The painter colours its map in the browser with this table.

    Examples
    --------
    >>> heatmap_lut()[[0, 255, 510]].tolist()
    [[5, 48, 97, 255], [255, 255, 255, 0], [103, 0, 31, 255]]
    """
    return _RGBA_LUT.copy()


def _rgba_lut() -> np.ndarray:
    half = (len(COLORMAP) - 1) // 2
    alpha = np.abs(np.arange(len(COLORMAP)) - half) * 255 // half
    return np.concatenate([COLORMAP, alpha[:, None].astype(np.uint8)], axis=1)


_RGBA_LUT = _rgba_lut()


def encode_layer(rgba: np.ndarray) -> bytes:
    """Encode an RGBA (or RGB) uint8 layer as a PNG (fast, low compression) for the browser.

    Examples
    --------
    >>> encode_layer(np.zeros((2, 2, 4), np.uint8))[:4]
    b'\\x89PNG'
    """
    if not isinstance(rgba, np.ndarray) or rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] not in (3, 4):
        got = f"{rgba.dtype} {rgba.shape}" if isinstance(rgba, np.ndarray) else type(rgba).__name__
        raise TypeError(f"`rgba` must be a uint8 array of shape (h, w, 3 or 4); got {got}")
    code = cv2.COLOR_RGBA2BGRA if rgba.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, code), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - cv2 only fails on unsupported layouts, refused above
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def quantize_map(values: np.ndarray, *, step: float = 0.001) -> bytes:
    """A map as zlib-compressed little-endian int16 multiples of ``step``, for the cursor readout.

    A pixel's value is ``int16 * step`` (values beyond ``±32767 * step`` saturate). The browser
    inflates the bytes with ``DecompressionStream("deflate")``.

    Examples
    --------
    >>> data = quantize_map(np.array([[0.5, -1.0, 0.0004]], np.float32))
    >>> (np.frombuffer(zlib.decompress(data), "<i2") * 0.001).round(4).tolist()
    [0.5, -1.0, 0.0]
    """
    if not isinstance(values, np.ndarray) or values.ndim != 2:
        raise TypeError(f"`values` must be a 2-D numpy array; got {getattr(values, 'shape', type(values).__name__)}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"`step` must be a positive finite number, got {step!r}")
    q = np.clip(np.rint(values.astype(np.float32) / np.float32(step)), -32767, 32767).astype("<i2")
    return zlib.compress(q.tobytes(), 1)
