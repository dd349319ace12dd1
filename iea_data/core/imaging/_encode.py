"""Encoding library images to PNG/JPEG/TIFF/WebP bytes and writing them atomically."""

from __future__ import annotations

import logging
import os
from typing import Optional, Union

import cv2
import numpy as np

from iea_data.core.files import atomic_write

from ._validate import _check_int, _check_shape_hw, check_image

__all__ = ["encode_png", "encode_image", "write_image"]

logger = logging.getLogger(__name__)

_INT_EXPECTED = "a uint8 or uint16 numpy array of shape (H, W, 3), RGB"

# extension -> (format name, bit depths it can hold)
_FORMATS = {
    ".png": ("PNG", (8, 16)),
    ".jpg": ("JPEG", (8,)),
    ".jpeg": ("JPEG", (8,)),
    ".tif": ("TIFF", (8, 16)),
    ".tiff": ("TIFF", (8, 16)),
    ".webp": ("WEBP", (8,)),
}


def _pixels_bgr(rgb: np.ndarray, bit_depth: int) -> np.ndarray:
    """The BGR integer pixels OpenCV encodes.

    float32 RGB in [0, 1] is quantised, ``round(x * 255)`` or ``round(x * 65535)`` (halves to
    even); uint8 (for 8 bits) or uint16 (for 16 bits) RGB is taken as it is.
    """
    if isinstance(rgb, np.ndarray) and rgb.dtype in (np.uint8, np.uint16):
        _check_shape_hw(rgb, "rgb", _INT_EXPECTED, channels=3)
        have = 8 if rgb.dtype == np.uint8 else 16
        if have != bit_depth:
            raise ValueError(
                f"`rgb` is {rgb.dtype} ({have}-bit pixels) but `bit_depth` is {bit_depth}: pass "
                f"bit_depth={have}, or a float32 image to be quantised to {bit_depth} bits."
            )
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    check_image(rgb, "rgb")
    peak, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    scaled = rgb * np.float32(peak)
    np.rint(scaled, out=scaled)
    return cv2.cvtColor(scaled.astype(dtype), cv2.COLOR_RGB2BGR)


def encode_image(rgb: np.ndarray, ext: str, *, bit_depth: int = 8, quality: Optional[int] = None) -> bytes:
    """Encode a library image to the bytes of a ``.png``, ``.jpg``, ``.tif`` or ``.webp`` file.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], quantised on writing; or uint8 / uint16 (H, W, 3) RGB
        pixels (e.g. a :func:`thumbnail`), written as they are with ``bit_depth`` 8 / 16.
    ext : str
        File extension naming the format (``".png"``, ``".jpg"``/``".jpeg"``,
        ``".tif"``/``".tiff"``, ``".webp"``), case-insensitive.
    bit_depth : {8, 16}, optional
        16 only for PNG and TIFF. Values are stored as ``round(x * 255)`` or
        ``round(x * 65535)``, so reading them back with :func:`read_image` gives ``rgb``
        to within half a level.
    quality : int, optional
        JPEG/WebP quality 1..100; default: JPEG 95, WebP lossless. JPEG is written
        without chroma subsampling (4:4:4).

    Returns
    -------
    bytes

    Examples
    --------
    >>> import numpy as np
    >>> encode_image(np.zeros((2, 2, 3), np.float32), ".jpg")[:3] == b"\\xff\\xd8\\xff"
    True
    """
    key = ext.lower() if isinstance(ext, str) else ext
    if key not in _FORMATS:
        raise ValueError(f"`ext` must name a format this toolkit writes ({', '.join(sorted(_FORMATS))}); got {ext!r}.")
    fmt, depths = _FORMATS[key]
    bit_depth = _check_int(bit_depth, "bit_depth")
    if bit_depth not in depths:
        raise ValueError(
            f"`bit_depth` must be one of {depths} for {fmt}; got {bit_depth}. "
            f"Use a .png or .tif file for 16-bit output."
        )
    params: list[int] = []
    if quality is not None:
        quality = _check_int(quality, "quality")
        if quality > 100 or fmt not in ("JPEG", "WEBP"):
            raise ValueError(f"`quality` must be 1..100 and applies to JPEG and WebP only; got {quality} for {fmt}.")
        params = [cv2.IMWRITE_JPEG_QUALITY if fmt == "JPEG" else cv2.IMWRITE_WEBP_QUALITY, quality]
    elif fmt == "JPEG":
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    if fmt == "JPEG":  # full-resolution colour: no chroma subsampling
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(key if key != ".jpeg" else ".jpg", _pixels_bgr(rgb, bit_depth), params)
    if not ok:  # pragma: no cover - OpenCV reports failures by exception in practice
        raise RuntimeError(f"OpenCV could not encode a {rgb.shape} image as {fmt}.")
    return buf.tobytes()


def encode_png(rgb: np.ndarray, bit_depth: int = 8) -> bytes:
    """Encode a library image (or uint8/uint16 RGB pixels) as PNG bytes.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], stored as ``round(x * 255)`` or ``round(x * 65535)``;
        or uint8 / uint16 (H, W, 3) RGB pixels such as a :func:`thumbnail`, stored as they are.
    bit_depth : {8, 16}, optional
        Bits per channel; must match the dtype of integer input.

    Returns
    -------
    bytes

    Examples
    --------
    >>> import numpy as np
    >>> encode_png(np.ones((1, 1, 3), np.float32), bit_depth=16)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    >>> len(encode_png(np.zeros((4, 4, 3), np.uint8))) > 0
    True
    """
    return encode_image(rgb, ".png", bit_depth=bit_depth)


def write_image(
    path: Union[str, os.PathLike[str]],
    rgb: np.ndarray,
    *,
    bit_depth: int = 8,
    quality: Optional[int] = None,
) -> None:
    """Write a library image to ``path``, atomically; the extension picks the format.

    Parameters
    ----------
    path : str or os.PathLike
        Target file ending in ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff`` or ``.webp``.
        Its folder must exist; an existing file is replaced.
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1]; or uint8 / uint16 (H, W, 3) RGB pixels written as they
        are (``bit_depth`` must match).
    bit_depth : {8, 16}, optional
        16 for PNG and TIFF only.
    quality : int, optional
        JPEG/WebP quality 1..100; default: JPEG 95, WebP lossless.

    Notes
    -----
    The bytes go to a temporary file in the same folder, which is then renamed over
    ``path`` (``os.replace``), so readers never see a partly written image.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> write_image(path, np.full((2, 2, 3), 0.5, np.float32), bit_depth=16)
    >>> from iea_data.core.imaging import read_image
    >>> img = read_image(path)
    >>> img.bit_depth, round(float(img.rgb[0, 0, 0]), 4)
    (16, 0.5)
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(
            f"`path` must end in one of {', '.join(sorted(_FORMATS))} (the extension picks the format); got {path!r}."
        )
    data = encode_image(rgb, ext, bit_depth=bit_depth, quality=quality)
    atomic_write(path, data)
    logger.debug("wrote %s (%d bytes)", path, len(data))
