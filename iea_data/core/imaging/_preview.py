"""Previews (``max_side``): integer pixels area-averaged to a small float image, without the full float image.

* JPEG: the DCT scaling to decode at (:func:`_jpeg_scale`), then an area average that counts
  a partial last block at its true width (:func:`_area`);
* large PNG: decoded a strip of rows at a time (:func:`_png_preview_in_strips`), never whole;
* everything else: area-averaged as integers, or in float32 strips where alpha or 8-bit
  lossless pixels need it (:func:`_preview_rgb`).

The accuracy of each is in the notes of :mod:`iea_data.core.imaging._decode`.

Examples
--------
>>> _jpeg_scale((4032, 3024), (512, 384)), _jpeg_scale((1024, 768), (512, 384))
(2, 2)
>>> import numpy as np
>>> _area(np.full((4, 4), 10, np.uint8), (2, 2)).tolist()
[[10, 10], [10, 10]]
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from ._decode_cv2 import _JPEG_REDUCED, _PNG_CHANNELS, _PNG_SIGNATURE
from ._decoded import _Pixels
from ._pixels import _to_float_rgb, _to_rgb_order

logger = logging.getLogger(__name__)

# A JPEG preview is decoded by DCT scaling at least this many times larger than the preview
# (unless the scaled image is an exact multiple of it), see _jpeg_scale. Must be >= 2
# (_area relies on it).
_JPEG_MIN_RATIO = 3

#: Bytes of float32 pixels converted at a time when a preview is made in strips.
_STRIP_BYTES = 1 << 22


def _area_across(
    strips: Iterable[np.ndarray], size: tuple[int, int], shape: tuple[int, int], alpha: bool
) -> np.ndarray:
    """float32 RGB area average to ``shape`` = (h, w) of an integer image given as row strips.

    ``strips`` yields the image's rows top to bottom as uint8/uint16 arrays (rows, W[, C])
    in RGB(A) order; ``size`` is its (H, W). Area averaging is separable: each strip is
    converted to float32 (alpha composited over white) and averaged across to width ``w``
    at once, and the (H, w) result averaged down to height ``h``. Only one strip and the
    (H, w) intermediate are held in float32, against 12 bytes per pixel for the full float
    image; the values equal the full-size area average up to float32 rounding.
    """
    (h, w), (H, W) = shape, size
    across = np.empty((H, w, 3), np.float32)
    r0 = 0
    for part in strips:
        strip = _to_float_rgb(part, alpha)
        n = strip.shape[0]
        across[r0 : r0 + n] = strip if W == w else cv2.resize(strip, (w, n), interpolation=cv2.INTER_AREA)
        r0 += n
        del strip, part
    if r0 != H:
        raise ValueError(f"strips held {r0} rows, expected {H}")
    out = across if H == h else cv2.resize(across, (w, h), interpolation=cv2.INTER_AREA)
    out = np.ascontiguousarray(out)
    # Area averages are convex combinations; clip only against float rounding.
    return np.clip(out, np.float32(0), np.float32(1), out=out)


def _strip_rows(width: int) -> int:
    """Rows per strip so that one strip in float32 RGB is about :data:`_STRIP_BYTES`."""
    return max(1, _STRIP_BYTES // (width * 3 * 4))


def _area_in_strips(arr: np.ndarray, shape: tuple[int, int], alpha: bool) -> np.ndarray:
    """:func:`_area_across` of a whole integer array, converted to float one strip at a time."""
    rows = _strip_rows(arr.shape[1])
    return _area_across((arr[r : r + rows] for r in range(0, arr.shape[0], rows)), arr.shape[:2], shape, alpha)


#: PNGs whose decoded pixels exceed this many bytes are decoded for a preview in strips.
_PNG_STRIP_MIN_BYTES = 16 << 20


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """``(type, payload memoryview)`` of each chunk of a PNG; stops at IEND."""
    view = memoryview(data)
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = bytes(data[pos + 4 : pos + 8])
        payload = view[pos + 8 : pos + 8 + length]
        if len(payload) != length:
            raise ValueError("chunk runs past the end of the file")
        yield kind, payload
        if kind == b"IEND":
            return
        pos += 12 + length


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_strips(data: bytes, width: int, height: int, depth: int, colour: int, rows: int) -> Iterator[np.ndarray]:
    """Decode a non-interlaced PNG a strip of ``rows`` rows at a time: yields RGB(A)-ordered arrays.

    The compressed stream is inflated incrementally; each strip's filtered rows are handed
    to OpenCV as a small PNG of their own, preceded by the previous strip's last row stored
    unfiltered, so that Up, Average and Paeth filters see the row above them: the pixels
    are exactly those of decoding the whole file. Raises ``ValueError`` on a malformed file.
    """
    channels = _PNG_CHANNELS[colour]
    bpp = depth // 8
    stride = 1 + width * channels * bpp
    inflate = zlib.decompressobj()
    buf = bytearray()
    prev: bytes | None = None  # the row above the next strip, unfiltered (PNG byte order)
    done = 0
    idat = (payload for kind, payload in _png_chunks(data) if kind == b"IDAT")
    while done < height:
        n = min(rows, height - done)
        while len(buf) < n * stride:
            piece = next(idat, None)
            if piece is None:
                buf += inflate.flush()
                if len(buf) < n * stride:
                    raise ValueError("the image data ends early")
                break
            buf += inflate.decompress(piece)
        body = bytes(buf[: n * stride])
        del buf[: n * stride]
        lead = b"" if prev is None else b"\x00" + prev
        m = n + (prev is not None)
        mini = (
            _PNG_SIGNATURE
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, m, depth, colour, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(lead + body, 0))
            + _png_chunk(b"IEND", b"")
        )
        del body
        arr = cv2.imdecode(np.frombuffer(mini, np.uint8), cv2.IMREAD_UNCHANGED)
        del mini
        if arr is None or arr.shape[0] != m or arr.shape[1] != width:
            raise ValueError("OpenCV could not decode a strip")
        if prev is not None:
            arr = arr[1:]
        arr = _to_rgb_order(np.ascontiguousarray(arr))
        if (1 if arr.ndim == 2 else arr.shape[2]) != channels:
            raise ValueError("OpenCV changed the number of channels")
        last = arr[-1]
        prev = (last.astype(">u2") if bpp == 2 else last).tobytes()
        done += n
        yield arr


def _png_preview_in_strips(data: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, int, int] | None:
    """``(float32 RGB preview of shape, channels, bit depth)`` of a large PNG, decoded in strips.

    None where the file is small, interlaced, paletted, has a ``tRNS`` chunk or is
    malformed: the whole-image path then decides (and raises the specific error).
    """
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _comp, _filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or depth not in (8, 16) or interlace != 0 or colour == 4:
        return None
    if width * height * channels * depth // 8 < _PNG_STRIP_MIN_BYTES or b"tRNS" in data[: 1 << 16]:
        return None
    try:
        kinds = {kind for kind, _ in _png_chunks(data)}
        if b"tRNS" in kinds or b"IEND" not in kinds:
            return None
        strips = _png_strips(data, width, height, depth, colour, _strip_rows(width))
        rgb = _area_across(strips, (height, width), shape, channels in (2, 4))
    except (ValueError, zlib.error, struct.error, cv2.error) as err:
        logger.debug("PNG strip decoding fell back to a whole decode: %s", err)
        return None
    return rgb, channels, depth


def _area(arr: np.ndarray, shape: tuple[int, int], extent: tuple[float, float] | None = None) -> np.ndarray:
    """Area-average ``arr`` (H, W) or (H, W, C) down to ``shape`` = (h, w), same dtype.

    ``extent`` (the default: (H, W)) is how much of ``arr`` the image covers, in its pixels:
    a JPEG scaled by ``s`` in the DCT domain ends in a partial block when its width is no
    multiple of ``s``, so its true width is ``width / s``, less than ``W``. Output pixel
    ``j`` then averages ``[j, j + 1) * extent / shape`` exactly (OpenCV's area weights
    with an explicit scale; the rest of the last row/column is cropped off).
    """
    src = np.ascontiguousarray(arr)
    (h, w), (sh, sw) = shape, src.shape[:2]
    if extent is None or extent == (sh, sw):
        return cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
    fy, fx = h / extent[0], w / extent[1]
    # OpenCV copies instead of resizing when its size (cvRound, as round) would not
    # change; with _JPEG_MIN_RATIO >= 2, fx, fy <= 1/2 and that cannot happen.
    if (round(sh * fy), round(sw * fx)) == (sh, sw):
        return cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
    out = cv2.resize(src, None, fx=fx, fy=fy, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out[:h, :w])


def _preview_rgb(px: _Pixels, shape: tuple[int, int], full: tuple[int, int], lossy: bool) -> np.ndarray:
    """float32 RGB of ``px`` area-averaged to ``shape`` (array layout), not yet oriented.

    ``full`` is the (H, W) of the full image in the array's layout (larger than the array
    if the decoder scaled it). The integer pixels are averaged before the float conversion:
    uint16 as they are, uint8 as uint8 for a lossy source (JPEG, whose coding error is far
    above the half level lost) and otherwise as uint16 times 257 (``u / 255 == 257 u /
    65535`` exactly), so that the result is the float image's area average to within half
    a 16-bit level. Alpha is composited at full size first: ``c * a + (1 - a)`` is not
    linear, the average of composites is not the composite of averages. Both, and the
    8-bit lossless case, are done in float32 strips (:func:`_area_in_strips`), so that
    neither the full float image nor a full uint16 copy is ever held.
    """
    arr = px.array
    if arr.shape[:2] == shape:
        return _to_float_rgb(arr, px.alpha)
    extent = None if px.scale == 1 else (full[0] / px.scale, full[1] / px.scale)
    if extent is None and (px.alpha or (arr.dtype == np.uint8 and not lossy)):
        # bounded memory: float32 strips, never the full float image (nor a uint16 copy)
        return _area_in_strips(arr, shape, px.alpha)
    if px.alpha:
        small = _area(_to_float_rgb(arr, True), shape, extent)
        # Area averages are convex combinations; clip only against float rounding.
        return np.clip(small, np.float32(0), np.float32(1), out=small)
    if arr.dtype == np.uint8 and not lossy:
        arr = np.multiply(arr, np.uint16(257), dtype=np.uint16)
    return _to_float_rgb(_area(arr, shape, extent), False)


def _jpeg_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The DCT scaling (8, 4, 2, else 1) at which to decode a JPEG of ``size`` = (w, h)
    for a preview of ``target`` = (w, h).

    The largest whose scaled image is an exact multiple of the preview, or at least
    ``_JPEG_MIN_RATIO`` (3) times its size, on both sides. Area-averaging scaled pixels
    again widens every preview pixel by up to a scaled pixel on each side (a scaled pixel
    partly inside it is averaged in whole), a blur that shrinks as the ratio grows: against
    "decode in full, then average", detailed photos (scikit-image's, native resolution)
    showed a mean error of about 5 levels at a ratio of 1.25, 2.5 at 2 and under 1 from 3
    on. An exact multiple adds no blur. So 4032 x 3024 -> 512 x 384 decodes at 1/2 (1/4
    would leave a ratio of 1.97), 1024 x 768 -> 512 x 384 at 1/2 (exact).
    """
    (w, h), (tw, th) = size, target
    for s in _JPEG_REDUCED:
        if w % (s * tw) == 0 and h % (s * th) == 0:
            return s
        if w >= _JPEG_MIN_RATIO * s * tw and h >= _JPEG_MIN_RATIO * s * th:
            return s
    return 1
