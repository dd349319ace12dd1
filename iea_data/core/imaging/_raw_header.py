"""Camera RAW headers through LibRaw (rawpy): sizes for the memory budget, nothing decoded.

The RAW readers themselves are in :mod:`iea_data.core.raw`, which builds on this package;
what :func:`~iea_data.core.imaging.decode_memory` needs to know about a RAW lives here so
that the estimate needs no import of the package above. rawpy is imported on first use.
"""

from __future__ import annotations

import os
import struct
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
# copy beside that output (18); a preview adds the float32 sRGB result and its temporaries (42:
# an upper bound since the preview is area-averaged before it is encoded; from a Bayer mosaic it
# holds the sensor data, float32 planes, the camera RGB and its sRGB conversion, <= 32).
_LIBRAW_BYTES_PER_PIXEL = 8 + 6
_LINEAR_BYTES_PER_PIXEL = 6 + 12
_PREVIEW_BYTES_PER_PIXEL = 6 + 12 + 12 + 12


_PHOTOMETRIC_LINEAR_RAW = 34892  # DNG: demosaicked (or non-mosaic) data, one value per colour
_SUBIFDS, _NEW_SUBFILE_TYPE, _PHOTOMETRIC, _SAMPLES = 330, 254, 262, 277


def _dng_raw_samples(head: bytes) -> int | None:
    """Samples per pixel of a DNG's main raw image (NewSubfileType 0) when it is LinearRaw, else None.

    A bounds-checked walk of IFD0 and its SubIFDs in the file's first bytes; anything
    unexpected gives None (the data is then taken as a colour-filter mosaic).
    """
    bo = {b"II*\x00": "<", b"MM\x00*": ">"}.get(head[:4])
    if bo is None:
        return None
    try:
        todo = [struct.unpack_from(bo + "I", head, 4)[0]]
        seen: set[int] = set()
        while todo and len(seen) < 32:
            at = todo.pop()
            if at in seen or at + 2 > len(head):
                continue
            seen.add(at)
            (n,) = struct.unpack_from(bo + "H", head, at)
            tags: dict[int, list[int]] = {}
            for i in range(min(n, 512)):
                tag, typ, count, value = struct.unpack_from(bo + "HHI4s", head, at + 2 + 12 * i)
                if tag not in (_SUBIFDS, _NEW_SUBFILE_TYPE, _PHOTOMETRIC, _SAMPLES) or typ not in (3, 4, 13):
                    continue
                code, size = ("H", 2) if typ == 3 else ("I", 4)
                where = value if count * size <= 4 else struct.unpack_from(bo + "I", value)[0]
                buf, off = (value, 0) if count * size <= 4 else (head, where)
                tags[tag] = list(struct.unpack_from(f"{bo}{min(count, 64)}{code}", buf, off))
            todo.extend(tags.get(_SUBIFDS, []))
            if tags.get(_NEW_SUBFILE_TYPE, [0])[0] == 0 and tags.get(_PHOTOMETRIC, [0])[0] == _PHOTOMETRIC_LINEAR_RAW:
                return max(1, tags.get(_SAMPLES, [3])[0])
    except struct.error:
        return None
    return None


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
        X-Trans), 4 for non-mosaic data (LibRaw keeps 4 values a pixel): a LinearRaw DNG
        or a Foveon X3F. (LibRaw tells a mosaic only after unpacking, so this is read from
        the DNG's own tags; other containers count as mosaics, as nearly all are.)
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
    try:
        with open(name, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise ImageDecodeError(
            "unreadable-raw", f"{_show(name)}: cannot read the file ({exc.strerror or exc})"
        ) from None
    linear = _dng_raw_samples(head)
    channels = 4 if linear is not None or name.lower().endswith(".x3f") else 1
    raw = rawpy.RawPy()
    try:
        raw.open_file(name)  # the header only (rawpy's raw_type or raw_pattern would unpack)
        sizes = raw.sizes
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
