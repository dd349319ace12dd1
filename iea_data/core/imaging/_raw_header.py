"""Camera RAW headers through LibRaw (rawpy): sizes for the memory budget, nothing decoded.

The RAW readers themselves are in :mod:`iea_data.core.raw`, which builds on this package;
what :func:`~iea_data.core.imaging.decode_memory` needs to know about a RAW lives here so
that the estimate needs no import of the package above. rawpy is imported on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from iea_data.core.errors import ImageDecodeError

from ._decode_errors import _show, _too_many_pixels
from ._decoded import PathLike

__all__ = ["RAW_EXTENSIONS", "RawHeader", "raw_header", "raw_decode_bytes", "pixel_limit_error"]

#: File extensions read as camera RAW (lower case), the formats LibRaw reads.
RAW_EXTENSIONS = frozenset(
    {
        ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
        ".rw2", ".rwl", ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr",
        ".mrw", ".mos", ".mef", ".raw",
    }
)  # fmt: skip

# Bytes per pixel of the render held at the peak of each phase (measured with ru_maxrss on a
# 3000 x 2000 DNG, docs/benchmarks.md): LibRaw's postprocess holds its 4 x uint16 working
# image and its 3 x uint16 output (14) beside the unpacked sensor data; then our float32 linear
# copy beside that output (18); a preview adds the float32 sRGB result and its temporaries (42).
_LIBRAW_BYTES_PER_PIXEL = 8 + 6
_LINEAR_BYTES_PER_PIXEL = 6 + 12
_PREVIEW_BYTES_PER_PIXEL = 6 + 12 + 12 + 12


@dataclass(frozen=True)
class RawHeader:
    """What LibRaw reads from a RAW's header before unpacking anything.

    Attributes
    ----------
    width, height : int
        The visible image, as stored (before the camera's orientation).
    raw_width, raw_height : int
        The sensor data, masked borders included.
    channels : int
        uint16 values per sensor pixel once unpacked: 1 for a colour-filter mosaic (Bayer,
        X-Trans), 4 for non-mosaic data (linear DNG, sRAW, Foveon).
    """

    width: int
    height: int
    raw_width: int
    raw_height: int
    channels: int

    @property
    def raw_pixels(self) -> int:
        """``raw_width * raw_height``: the count :func:`pixel_limit_error` is checked against."""
        return self.raw_width * self.raw_height


def pixel_limit_error(name: str, width: int, height: int, max_pixels: int) -> ImageDecodeError:
    """The ``decompression-bomb`` error every decoder raises for an image over ``max_pixels``.

    Examples
    --------
    >>> err = pixel_limit_error("big.dng", 20000, 10000, 10_000_000)
    >>> err.reason, "was not decoded" in str(err)
    ('decompression-bomb', True)
    """
    return _too_many_pixels(name, width, height, max_pixels)


def raw_header(path: PathLike) -> RawHeader:
    """Sizes and layout of a camera RAW from its header (LibRaw ``open_file``; no unpack, no demosaic).

    Raises
    ------
    iea_data.core.errors.ImageDecodeError
        ``"unreadable-raw"`` when LibRaw cannot open the file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from iea_data.core.raw import synthetic_dng
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.dng"
    >>> _ = path.write_bytes(synthetic_dng(np.full((32, 48, 3), 0.2, np.float32)))
    >>> raw_header(path)
    RawHeader(width=48, height=32, raw_width=48, raw_height=32, channels=1)
    """
    import rawpy

    name = os.fspath(path)
    raw = rawpy.RawPy()
    try:
        raw.open_file(name)
        sizes = raw.sizes
        channels = 1 if raw.raw_type == rawpy.RawType.Flat else 4
        return RawHeader(int(sizes.width), int(sizes.height), int(sizes.raw_width), int(sizes.raw_height), channels)
    except rawpy.LibRawError as exc:
        text = exc.args[0] if exc.args else exc
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        raise ImageDecodeError("unreadable-raw", f"{_show(name)}: LibRaw cannot open it ({text})") from None
    finally:
        raw.close()


def raw_decode_bytes(header: RawHeader, *, half_size: bool) -> int:
    """Peak bytes of pixels a linear render of this RAW holds (the file's bytes not included).

    The larger of LibRaw's phase (the unpacked sensor data, ``raw_width * raw_height *
    channels`` uint16 values, and 14 bytes per pixel of the render) and ours (18 bytes per
    pixel for a linear render; 42 for a half-size preview with its sRGB encoding).

    Examples
    --------
    >>> raw_decode_bytes(RawHeader(6000, 4000, 6048, 4024, 1), half_size=True)
    252000000
    >>> raw_decode_bytes(RawHeader(6000, 4000, 6048, 4024, 1), half_size=False)
    432000000
    """
    if half_size:
        pixels = ((header.width + 1) // 2) * ((header.height + 1) // 2)
        ours = pixels * _PREVIEW_BYTES_PER_PIXEL
    else:
        pixels = header.width * header.height
        ours = pixels * _LINEAR_BYTES_PER_PIXEL
    return max(header.raw_pixels * header.channels * 2 + pixels * _LIBRAW_BYTES_PER_PIXEL, ours)
