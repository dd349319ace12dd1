"""What decoding returns: :class:`DecodedImage`, the decoders' integer pixels and the pixel limit.

Examples
--------
>>> DEFAULT_MAX_PIXELS
150000000
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Union

import numpy as np

from ._exif import ExifInfo

__all__ = ["DEFAULT_MAX_PIXELS", "DecodedImage", "PathLike", "BytesLike"]

#: Default pixel limit (width * height) above which a file is refused undecoded.
DEFAULT_MAX_PIXELS = 150_000_000

PathLike = Union[str, "os.PathLike[str]"]
BytesLike = Union[bytes, bytearray, memoryview]


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded image and the facts about its source file.

    Attributes
    ----------
    rgb : numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded, EXIF orientation applied, alpha
        composited over white, C-contiguous. ``(H, W) == (height, width)``, unless the image
        was read with ``max_side``: then ``rgb`` is a preview, the full image area-averaged
        to ``(H, W) = label_shape(height, width, max_side)`` (never upscaled).
    width, height : int
        Size of the full image after orientation (5..8 swap the stored width and height),
        also when ``rgb`` is a preview.
    channels : int
        Channels of the source: 1 grey, 2 grey+alpha, 3 RGB (also palette, YCbCr), 4 RGBA,
        CMYK, or palette with transparency.
    bit_depth : int
        Bits per channel the pixels were decoded with: 16 for 16-bit sources (kept at full
        precision, divided by 65535), 8 otherwise (sources with fewer bits are expanded).
    format : str
        ``"JPEG"`` (also for multi-picture JPEG, PIL's "MPO"), ``"PNG"``, ``"TIFF"``,
        ``"WEBP"``, or another PIL format name.
    mode : str
        The source's PIL mode (``"RGB"``, ``"L"``, ``"I;16"``, ``"CMYK"``, ``"P"``, ...).
        PIL calls 16-bit RGB PNG/TIFF ``"RGB"``; ``bit_depth`` tells them apart.
    exif : ExifInfo
        Camera facts, or an empty :class:`ExifInfo`.
    """

    rgb: np.ndarray
    width: int
    height: int
    channels: int
    bit_depth: int
    format: str
    mode: str
    exif: ExifInfo


@dataclass(frozen=True)
class _Pixels:
    """Integer pixels in RGB(A) order, and what the decoder already did to them."""

    array: np.ndarray  # uint8/uint16, (H, W) grey, (H, W, 3) RGB or (H, W, 2|4) with alpha last
    channels: int  # of the source
    alpha: bool
    oriented: bool  # the decoder already applied the EXIF orientation
    # JPEG DCT scaling: the array is the stored image at 1/scale, each side rounded up.
    scale: int = 1
