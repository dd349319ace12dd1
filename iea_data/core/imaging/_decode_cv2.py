"""The OpenCV fast path: ``cv2.imdecode`` for the layouts it decodes exactly, else None (PIL decides).

* 8-bit JPEG, colour or grey, that ends with its EOI marker (``FF D9``), also at 1/2, 1/4
  or 1/8 of its size in the DCT domain (``IMREAD_REDUCED_*``);
* PNG that ends with its ``IEND`` chunk and has no ``tRNS`` chunk: 8-bit grey/RGB through
  ``IMREAD_COLOR_RGB``, 8-bit grey+alpha/RGBA and every 16-bit layout through
  ``IMREAD_UNCHANGED``;
* 16-bit grey and RGB(A) TIFF (``IMREAD_UNCHANGED``), which PIL would reduce to 8 bits.

For JPEG and PNG, OpenCV is told to ignore EXIF orientation (it is applied by the caller);
OpenCV 5 orients TIFF pixels itself, which :func:`_cv2_orients_tiff` probes once.

Examples
--------
>>> import cv2, numpy as np
>>> png = cv2.imencode(".png", np.zeros((2, 3), np.uint8))[1].tobytes()
>>> _imdecode(png, cv2.IMREAD_UNCHANGED).shape
(2, 3)
"""

from __future__ import annotations

import functools
import io
import logging

import cv2
import numpy as np
from PIL import Image

from ._decoded import _Pixels
from ._header import _orientation_tag, _oriented_size, _stored_size
from ._pixels import _to_rgb_order

logger = logging.getLogger(__name__)

_TAIL = 32  # bytes at the end of a file searched for the JPEG EOI / PNG IEND marker
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# libjpeg's DCT-domain scalings, largest first: denominator -> OpenCV flag (grey; with
# IMREAD_COLOR_RGB added, colour: OpenCV 5 refuses IMREAD_REDUCED_COLOR_* | IMREAD_COLOR_RGB).
_JPEG_REDUCED = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
}


def _imdecode(data: bytes, flags: int) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:  # e.g. OpenCV's own pixel limit; PIL gets a go instead
        logger.debug("cv2.imdecode failed: %s", err)
        return None


@functools.cache
def _cv2_orients_tiff() -> bool:
    """Whether OpenCV's TIFF reader applies the Orientation tag itself (OpenCV 5 does).

    Probed once on a 2 x 1 TIFF with Orientation 2 (mirrored), so either behaviour is
    handled without trusting a version number.
    """
    buf = io.BytesIO()
    Image.fromarray(np.array([[1, 2]], np.uint16)).save(buf, "TIFF", tiffinfo={0x0112: 2})
    probe = _imdecode(buf.getvalue(), cv2.IMREAD_UNCHANGED)
    return probe is not None and probe.ravel().tolist() == [2, 1]


def _fast_pixels(data: bytes, im: Image.Image, fmt: str, scale: int = 1) -> _Pixels | None:
    """Pixels via OpenCV where that is safe and exact, else None (PIL decides).

    ``scale`` (1, 2, 4 or 8; JPEG only) asks libjpeg for 1/scale of the stored size, each
    side rounded up (libjpeg's ``jdiv_round_up``).
    """
    w, h = _stored_size(im)
    tail = data[-_TAIL:]
    oriented = False
    want_dtype: type[np.unsignedinteger]
    if fmt == "JPEG":
        # OpenCV may return a partly grey image for a cut JPEG: only trust it with the EOI marker.
        if im.mode not in ("RGB", "L") or b"\xff\xd9" not in tail:
            return None
        channels, alpha, want_dtype = (1 if im.mode == "L" else 3), False, np.uint8
        if scale > 1:
            flags = _JPEG_REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION
            if im.mode == "RGB":
                flags |= cv2.IMREAD_COLOR_RGB
            arr = _imdecode(data, flags)
            w, h = -(-w // scale), -(-h // scale)
        else:
            arr = _imdecode(data, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    elif fmt == "PNG":
        if data[12:16] != b"IHDR" or b"IEND" not in tail or "transparency" in im.info:
            return None
        depth, png_channels = data[24], _PNG_CHANNELS.get(data[25])
        if png_channels is None or depth not in (8, 16):
            return None
        channels, alpha = png_channels, png_channels in (2, 4)
        want_dtype = np.uint16 if depth == 16 else np.uint8
        if depth == 8 and not alpha:
            arr = _imdecode(data, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
        else:  # IMREAD_UNCHANGED does not apply EXIF orientation to PNG
            arr = _imdecode(data, cv2.IMREAD_UNCHANGED)
            arr = None if arr is None else _to_rgb_order(arr)
    elif fmt == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258, (8,))
        bits = bits[0] if isinstance(bits, tuple) else bits
        channels = int(tags.get(277, 1))
        if bits != 16 or tags.get(262) not in (1, 2) or channels not in (1, 2, 3, 4):
            return None
        arr = _imdecode(data, cv2.IMREAD_UNCHANGED)
        arr = None if arr is None else _to_rgb_order(arr)
        alpha, want_dtype = channels in (2, 4), np.uint16
        oriented = _cv2_orients_tiff()
        if oriented:
            w, h = _oriented_size((w, h), _orientation_tag(im))
    else:
        return None
    if arr is None or arr.shape[:2] != (h, w) or arr.dtype != want_dtype:
        return None
    n = 1 if arr.ndim == 2 else arr.shape[2]
    if alpha != (n in (2, 4)):  # OpenCV disagreed with the header about alpha: let PIL decide
        return None
    return _Pixels(arr, channels, alpha, oriented, scale)
