"""How much memory decoding a file will take, from its header only (:func:`decode_memory`)."""

from __future__ import annotations

import logging
import os
import struct
from typing import IO

from iea_data.core.errors import ImageDecodeError

from ._decode_cv2 import _PNG_CHANNELS, _PNG_SIGNATURE
from ._decode_errors import _show
from ._decoded import DEFAULT_MAX_PIXELS, PathLike
from ._header import _format_of, _open_lazy, _source_bits, _stored_size
from ._preview import _PNG_STRIP_MIN_BYTES, _STRIP_BYTES, _jpeg_scale
from ._raw_header import RAW_EXTENSIONS, raw_decode_bytes, raw_header
from ._resize import label_shape
from ._validate import _check_int

__all__ = ["decode_memory"]

logger = logging.getLogger(__name__)

#: Bytes of the file read for the header by :func:`decode_memory` (JPEG markers are then
#: followed with seeks, so a large EXIF or ICC segment costs nothing extra).
_PROBE_BYTES = 1 << 16
# JPEG start-of-frame markers (SOF0..SOF15 less DHT, JPG and DAC) and the progressive ones.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def _jpeg_frame(fp: IO[bytes]) -> tuple[int, int, int, bool] | None:
    """``(width, height, components, progressive)`` from a JPEG's SOF marker, else None."""
    fp.seek(2)
    for _ in range(4096):  # markers before the frame header: APPn, DQT, DHT, COM, ...
        marker = fp.read(2)
        while len(marker) == 2 and marker[0] == 0xFF and marker[1] == 0xFF:  # fill bytes
            marker = marker[1:] + fp.read(1)
        if len(marker) != 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0x01 or 0xD0 <= kind <= 0xD7:  # TEM, RSTn: no length
            continue
        raw = fp.read(2)
        if len(raw) != 2:
            return None
        (length,) = struct.unpack(">H", raw)
        if kind in _JPEG_SOF:
            frame = fp.read(6)
            if len(frame) != 6:
                return None
            _bits, height, width, components = struct.unpack(">BHHB", frame)
            return width, height, components, kind in _JPEG_PROGRESSIVE
        if kind in (0xD9, 0xDA) or length < 2:  # end of image or scan data before any frame
            return None
        fp.seek(length - 2, os.SEEK_CUR)
    return None


def _decoded_bytes(fp: IO[bytes], head: bytes, name: str, max_side: int | None, max_pixels: int) -> int:
    """Bytes of pixels that decoding holds at its peak (the file's own bytes not included)."""

    def full_float(width: int, height: int) -> int:  # without max_side: the float32 RGB image too
        return width * height * 3 * 4 if max_side is None else 0

    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR" and len(head) >= 29:
        width, height, depth, colour, _comp, _filt, interlace = struct.unpack(">IIBBBBB", head[16:29])
        if width * height > max_pixels:
            return 0
        transparent = b"tRNS" in head
        channels = _PNG_CHANNELS.get(colour, 4 if transparent else 3)  # colour type 3: palette
        sample = 2 if depth == 16 else 1
        decoded = width * height * channels * sample
        strips = (
            max_side is not None
            and channels != 2
            and colour != 3
            and depth in (8, 16)
            and interlace == 0
            and not transparent
            and decoded >= _PNG_STRIP_MIN_BYTES
        )
        if strips and max_side is not None:  # _png_preview_in_strips: a few strips and the (H, w) float32 intermediate
            th, tw = label_shape(height, width, max_side)
            return 4 * _STRIP_BYTES + height * tw * 3 * 4
        return 2 * decoded + full_float(width, height)
    if head.startswith(b"\xff\xd8\xff"):
        frame = _jpeg_frame(fp)
        if frame is not None:
            width, height, components, progressive = frame
            if width * height > max_pixels:
                return 0
            # a progressive JPEG keeps the whole image's DCT coefficients (2 bytes each)
            coefficients = width * height * components * 2 if progressive else 0
            scale = 1
            if max_side is not None:
                th, tw = label_shape(height, width, max_side)
                scale = _jpeg_scale((width, height), (tw, th))
            scaled = -(-width // scale) * -(-height // scale) * max(components, 3)
            return coefficients + 2 * scaled + full_float(width, height)
        fp.seek(0)
    im = _open_lazy(fp, head[:16], name)
    with im:
        width, height = _stored_size(im)
        if width * height > max_pixels:
            return 0
        bands = len(im.getbands())
        if im.mode in ("P", "PA"):
            bands = 4 if "transparency" in im.info or im.mode == "PA" else 3
        elif im.mode == "CMYK":
            bands = 4
        if im.mode.startswith(("I;16", "I;16B", "I;16L")) or _source_bits(head, im, _format_of(im)) == 16:
            sample = 2
        elif im.mode in ("I", "F"):
            sample = 4
        else:
            sample = 1
        return 2 * width * height * bands * sample + full_float(width, height)


def decode_memory(path: PathLike, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """Estimated peak bytes that :func:`read_image` needs for ``path``, from its header only.

    Nothing is decoded: the file's first 64 KiB are read (and, for JPEG, its markers
    followed to the frame header). The estimate is the file's size (it is read whole)
    plus the pixel memory of the decoding path :func:`read_image` takes with the same
    arguments:

    * decoded whole (TIFF, WebP, GIF, BMP, palette, interlaced or transparent PNG, a
      small PNG, or any image without ``max_side``): ``2 * width * height * channels *
      bytes per sample``, as the decoders hold the decoded image and one converted copy
      (without ``max_side``, the float32 RGB result, 12 bytes per pixel, on top);
    * a large PNG read in strips for a preview: a few ~4 MiB strips and the float32
      ``height x preview width x 3`` intermediate;
    * JPEG: twice the image at the DCT scale used for the preview (1/2..1/8 per side, see
      :func:`read_image`), plus 2 bytes per sample of the full image for a progressive
      JPEG (libjpeg keeps all its coefficients);
    * a camera RAW (a :data:`RAW_EXTENSIONS` name; LibRaw reads the header): the file twice,
      the unpacked sensor data (``raw_width * raw_height * channels`` uint16 values) and
      56 bytes per pixel of the linear render, half size with ``max_side``
      (:func:`raw_decode_bytes`);
    * an image over ``max_pixels`` (refused before decoding; for a RAW, its
      ``raw_width * raw_height``), or a file whose header cannot be read (it fails early):
      only the file's size.

    The base memory of the process (the imported libraries) is not included.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    max_side : int or None, optional
        As for :func:`read_image`: the estimate is for a preview of this long side.
    max_pixels : int, optional
        As for :func:`read_image`.

    Returns
    -------
    int
        Bytes, >= 0 (0 for a file that cannot be opened).

    Raises
    ------
    TypeError, ValueError
        If ``max_side`` (unless None) or ``max_pixels`` is not a positive integer.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.tif"
    >>> Image.new("RGB", (1000, 500)).save(path, compression="tiff_lzw")
    >>> decode_memory(path, max_side=256) - path.stat().st_size == 2 * 1000 * 500 * 3
    True
    """
    max_pixels = _check_int(max_pixels, "max_pixels")
    if max_side is not None:
        max_side = _check_int(max_side, "max_side")
    name = os.fspath(path)
    if os.path.splitext(name)[1].lower() in RAW_EXTENSIONS:
        return _raw_memory(name, max_side, max_pixels)
    size = 0
    try:
        with open(path, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            head = fp.read(_PROBE_BYTES)
            if not head:
                return size
            return size + _decoded_bytes(fp, head, name, max_side, max_pixels)
    except (OSError, ImageDecodeError, SyntaxError, ValueError, EOFError, struct.error) as err:
        logger.debug("decode_memory(%s): header unreadable (%s)", _show(name), err)
        return size


def _raw_memory(name: str, max_side: int | None, max_pixels: int) -> int:
    """:func:`decode_memory` of a camera RAW, from LibRaw's header: the file twice (read whole,
    then LibRaw's copy of the buffer), the unpacked sensor data and the render (half size
    for a preview, as the ingest does)."""
    try:
        size = os.stat(name).st_size
    except OSError:
        return 0
    try:
        header = raw_header(name)
    except ImageDecodeError as err:  # decoding will fail early with its own error row
        logger.debug("decode_memory(%s): RAW header unreadable (%s)", _show(name), err)
        return size
    if header.raw_pixels > max_pixels:  # refused before decoding
        return size
    return 2 * size + raw_decode_bytes(header, half_size=max_side is not None)
