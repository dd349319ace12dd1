"""A small linear preview straight from a Bayer mosaic, without LibRaw's ``postprocess``.

LibRaw's half-size render of a 2 x 2 Bayer sensor (``postprocess(half_size=True)`` with the
camera's white balance, ``no_auto_bright``, ``gamma=(1, 1)``, ``adjust_maximum_thr=0``, sRGB
output) is, per 2 x 2 block of the visible sensor data:

1. per CFA channel ``c``: ``clip((v - black[c]) * wb[c] / (white - min(black)), 0, 1)``, the
   white balance normalised so that its smallest multiplier is 1 (LibRaw's ``scale_colors``
   without highlight recovery; the second green uses its own black and multiplier);
2. the two greens averaged (``mix_green``);
3. LibRaw's camera-to-sRGB matrix (``rgb_cam``, rawpy's ``color_matrix``) and a clip to [0, 1];
4. LibRaw's orientation (``flip``).

:func:`bayer_preview` does the same with NumPy and OpenCV on rawpy's ``raw_image_visible``
and then area-averages the result to the preview size in linear light, which is where the
time goes in LibRaw (its whole 16-bit pipeline on the half-size image, then a copy out).
It answers ``None`` for anything that is not a plain 2 x 2 RGB Bayer mosaic (X-Trans,
Foveon, 4-colour filters, LinearRaw DNGs, non-square pixels, odd sizes, missing white
balance or matrix): the caller then runs LibRaw's ``postprocess``. Not modelled (LibRaw
applies them, this does not): black-level patterns larger than 2 x 2 and cameras whose white
balance LibRaw computes from a stored white sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bayer_preview", "orient"]


def orient(rgb: np.ndarray, flip: int) -> np.ndarray:
    """Apply LibRaw's orientation code (bit 4 transpose, 2 flip rows, 1 flip columns).

    The image LibRaw writes has, at ``(row, col)``, the pixel its ``flip_index`` names:
    rows and columns swapped if ``flip & 4``, then rows reversed if ``flip & 2`` and columns
    if ``flip & 1`` (0 none, 3 180°, 5 90° counter-clockwise, 6 90° clockwise).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6).reshape(2, 3, 1)
    >>> orient(a, 6)[..., 0].tolist()
    [[3, 0], [4, 1], [5, 2]]
    >>> orient(a, 5)[..., 0].tolist()
    [[2, 5], [1, 4], [0, 3]]
    """
    if flip & 2:
        rgb = rgb[::-1]
    if flip & 1:
        rgb = rgb[:, ::-1]
    if flip & 4:
        rgb = rgb.transpose(1, 0, 2)
    return np.ascontiguousarray(rgb)


def _plain_bayer(raw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The mosaic, its 2 x 2 channel indices, per-channel blacks and multipliers, the matrix and white; or None."""
    import rawpy

    if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3 or raw.color_desc != b"RGBG":
        return None
    pattern = raw.raw_pattern
    if pattern is None or np.shape(pattern) != (2, 2):
        return None
    pattern = np.asarray(pattern)
    values = sorted(int(v) for v in pattern.ravel())
    if values not in ([0, 1, 1, 2], [0, 1, 2, 3]):
        return None
    sizes = raw.sizes
    mosaic = raw.raw_image_visible
    h, w = mosaic.shape
    if sizes.pixel_aspect != 1 or (h, w) != (sizes.height, sizes.width) or h % 2 or w % 2 or h < 2 or w < 2:
        return None
    wb = np.array(raw.camera_whitebalance, dtype=np.float64)
    if wb.shape != (4,) or not np.isfinite(wb).all():
        return None
    if wb[3] == 0:
        wb[3] = wb[1]  # LibRaw: pre_mul[3] = pre_mul[1] for 3-colour sensors
    if (wb <= 0).any():
        return None  # no usable as-shot balance: LibRaw falls back to its own
    blacks = np.array(raw.black_level_per_channel, dtype=np.float64)
    white = float(raw.white_level)
    matrix = np.asarray(raw.color_matrix, dtype=np.float64)
    if blacks.shape != (4,) or matrix.shape != (3, 4) or not np.isfinite(matrix).all() or not matrix[:, :3].any():
        return None
    if white <= blacks.max():
        return None
    return pattern, blacks, wb / wb.min(), matrix[:, :3], white


def bayer_preview(raw: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """LibRaw's half-size linear sRGB render, area-averaged to ``shape``, from the mosaic.

    Parameters
    ----------
    raw : rawpy.RawPy
        An opened and unpacked RAW.
    shape : tuple of (int, int)
        ``(height, width)`` of the result, oriented; at most the half-size render's (a larger
        side is reduced to it).

    Returns
    -------
    numpy.ndarray or None
        float32 (h, w, 3) linear sRGB primaries in [0, 1] (1.0 the white level after white
        balance); ``None`` when the sensor is not a plain 2 x 2 RGB Bayer mosaic.

    Examples
    --------
    >>> import io, numpy as np, rawpy
    >>> from iea_data.core.raw import synthetic_dng
    >>> raw = rawpy.RawPy()
    >>> raw.open_buffer(io.BytesIO(synthetic_dng(np.full((32, 48, 3), (0.2, 0.4, 0.1)))))
    >>> raw.unpack()
    >>> out = bayer_preview(raw, (8, 12))
    >>> out.shape, [round(float(v), 3) for v in out.reshape(-1, 3).mean(0)]
    ((8, 12, 3), [0.2, 0.4, 0.1])
    >>> raw.close()
    """
    import cv2

    plain = _plain_bayer(raw)
    if plain is None:
        return None
    pattern, blacks, wb, matrix, white = plain
    mosaic = raw.raw_image_visible
    flip = int(raw.sizes.flip)
    half = (mosaic.shape[0] // 2, mosaic.shape[1] // 2)
    h, w = (shape[1], shape[0]) if flip & 4 else (shape[0], shape[1])  # in sensor orientation
    h, w = min(h, half[0]), min(w, half[1])
    span = white - blacks.min()  # LibRaw subtracts the common black from the white level
    planes: dict[int, np.ndarray] = {}
    for k, c in enumerate(int(v) for v in pattern.ravel()):
        dy, dx = divmod(k, 2)
        plane = mosaic[dy::2, dx::2].astype(np.float32)
        lo, gain = blacks[c], wb[c] / span
        np.clip(plane, np.float32(lo), np.float32(lo + 1.0 / gain), out=plane)  # 0..1 after scaling, as LibRaw clips
        plane -= np.float32(lo)
        plane *= np.float32(gain)
        if c in planes:  # the second green under a 0, 1, 1, 2 pattern
            planes[3] = plane
        else:
            planes[c] = plane
    del plane  # each plane's memory goes with its last use below
    green = planes.pop(1)
    green += planes.pop(3)
    green *= np.float32(0.5)
    cam = cv2.merge([planes.pop(0), green, planes.pop(2)])
    del green
    rgb = cv2.transform(cam, matrix.astype(np.float32))
    del cam
    np.clip(rgb, 0.0, 1.0, out=rgb)
    if (h, w) != rgb.shape[:2]:
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return orient(rgb, flip)
