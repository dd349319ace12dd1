"""Decoding image files into library images (float32 RGB in [0, 1], EXIF orientation applied).

Decoding paths
--------------
The file is read once. PIL opens it lazily (header only: size, format, mode, EXIF) for every
file, so the pixel limit is enforced before any pixel is decoded. Pixels then come from:

* **OpenCV**, ``cv2.imdecode`` (the fast path), for

  - 8-bit JPEG, colour or grey, that ends with its EOI marker (``FF D9``);
  - PNG that ends with its ``IEND`` chunk and has no ``tRNS`` chunk: 8-bit grey/RGB through
    ``IMREAD_COLOR_RGB``, 8-bit grey+alpha/RGBA and every 16-bit layout through
    ``IMREAD_UNCHANGED``;
  - 16-bit grey and RGB(A) TIFF (``IMREAD_UNCHANGED``), which PIL would reduce to 8 bits.

  For JPEG and PNG, OpenCV is told to ignore EXIF orientation, which is then applied here
  (``_orient``), the same way for every path.
* **PIL** for everything else: CMYK JPEG and TIFF (including Adobe's inverted CMYK, as PIL
  reads it), palette images, images with ``tRNS`` transparency, 8-bit TIFF, WebP, GIF, BMP and
  the rest of PIL's formats, and every file that the fast path refuses or fails on (so a
  truncated file is always judged by PIL, whose ``LOAD_TRUNCATED_IMAGES`` stays False).

TIFF is the exception to "we orient": libtiff-based readers orient TIFF pixels themselves
(recent PIL on ``load()``, which then deletes the tag; OpenCV 5 even with
``IMREAD_UNCHANGED``). Each path therefore reports whether its pixels are already oriented
(PIL: the tag disappeared; OpenCV: probed once on a tiny TIFF), and only unoriented pixels
are oriented here. The tests pin every path against an independent reference.

Conversion
----------
uint8 is divided by 255, uint16 by 65535 (16-bit sources never pass through 8 bits). Grey is
replicated to three channels. Alpha (grey+alpha, RGBA, palette or colour-key transparency) is
composited over **white** in the encoded sRGB values, ``rgb = c * a + (1 - a)``, as a viewer
shows a transparent image on a white page; compositing over black would invent
under-exposure. ICC profiles and PNG gamma chunks are not applied: pixels are taken to be
sRGB-encoded.

Previews (``max_side``)
-----------------------
Callers that only need statistics and a thumbnail (the catalog) pass ``max_side``: ``rgb``
is then the image area-averaged to ``label_shape(height, width, max_side)`` (never
upscaled), while every other field still describes the full image. The preview is made
from integer pixels, before the float conversion, and costs less than the full image:

* JPEG (both paths) is decoded by libjpeg's DCT-domain scaling at 1/2, 1/4 or 1/8 of the
  stored size (OpenCV ``IMREAD_REDUCED_*``, PIL ``draft``), the strongest reduction whose
  image is an exact multiple of the preview or at least three times its size
  (``_jpeg_scale`` says why), then area-averaged as uint8 to the exact size, a partial last block counted
  at its true width. DCT scaling is not exactly a box filter: the preview differs from
  "decode the full image, then area-average" by about a level on average, and up to ~0.12
  at sharp colour edges (the tests allow 2 levels mean, 0.15 max).
* Other formats are decoded in full and area-averaged as uint16 (8-bit values times 257,
  so ``u / 255 == 257 u / 65535`` stays exact) before the division: the preview is that of
  the full float image to within half a 16-bit level.
* With alpha, compositing (not linear) is done at full size, in float32, and then averaged.

The preview is oriented after shrinking, which is cheaper and gives the same pixels (up
to float rounding in the averages). The
integrity checks do not change: a JPEG is only given to OpenCV if it ends with its EOI
marker, and a cut file is judged by PIL, whose scaled decoding still fails on it.
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from typing import IO, Any, Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from iea_data.core.errors import ImageDecodeError

from ._exif import ExifInfo, exif_from_pil
from ._resize import label_shape
from ._validate import _check_int

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "read_image",
    "read_image_bytes",
    "read_header",
    "decode_memory",
]

logger = logging.getLogger(__name__)

#: Default pixel limit (width * height) above which a file is refused undecoded.
DEFAULT_MAX_PIXELS = 150_000_000

PathLike = Union[str, "os.PathLike[str]"]
BytesLike = Union[bytes, bytearray, memoryview]

_TAIL = 32  # bytes at the end of a file searched for the JPEG EOI / PNG IEND marker
_U8_MAX = np.float32(255)
_U16_MAX = np.float32(65535)
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIL_LIMIT_LOCK = threading.Lock()
# libjpeg's DCT-domain scalings, largest first: denominator -> OpenCV flag (grey; with
# IMREAD_COLOR_RGB added, colour: OpenCV 5 refuses IMREAD_REDUCED_COLOR_* | IMREAD_COLOR_RGB).
_JPEG_REDUCED = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
}
# A JPEG preview is decoded by DCT scaling at least this many times larger than the preview
# (unless the scaled image is an exact multiple of it), see _jpeg_scale. Must be >= 2
# (_area relies on it).
_JPEG_MIN_RATIO = 3

# Magic numbers of the formats we expect, to tell a cut header from a file that is no image.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


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


# --------------------------------------------------------------------------- errors


def _show(name: Any) -> str:
    """The name as a one-line quoted string (escapes newlines and odd characters)."""
    return repr(os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name))


def _sniff(head: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _file_error(err: OSError, name: str) -> ImageDecodeError:
    shown = _show(name)
    if isinstance(err, FileNotFoundError) or err.errno == errno.ENOTDIR:
        return ImageDecodeError(
            "missing-file",
            f"{shown} does not exist (or is a link to nothing): check the path, or drop the "
            f"entry if the file was deleted.",
        )
    if isinstance(err, IsADirectoryError) or err.errno == errno.EISDIR:
        return ImageDecodeError(
            "is-a-directory", f"{shown} is a directory, not an image file: point to a file inside it."
        )
    if err.errno == errno.ELOOP:
        return ImageDecodeError(
            "symlink-loop",
            f"{shown} is a symbolic link that loops back on itself: fix or remove the link.",
        )
    if isinstance(err, PermissionError):
        return ImageDecodeError(
            "unreadable",
            f"cannot read {shown}: permission denied. Make it readable (e.g. `chmod a+r`) "
            f"or run as a user who may read it.",
        )
    return ImageDecodeError(
        "unreadable",
        f"cannot read {shown}: {err.strerror or err}. Check the disk or network share and try again.",
    )


def _empty(name: str) -> ImageDecodeError:
    return ImageDecodeError(
        "empty-file",
        f"{_show(name)} is empty (0 bytes): the copy or download probably failed. Copy it "
        f"again from the source, or remove it.",
    )


def _truncated(name: str, fmt: str, detail: object) -> ImageDecodeError:
    return ImageDecodeError(
        "truncated",
        f"{_show(name)}: the {fmt} pixel data ends early or is corrupt ({detail}). Copy the "
        f"file again from the source.",
    )


def _unsupported(name: str, fmt: str, mode: str, why: str) -> ImageDecodeError:
    return ImageDecodeError(
        "unsupported",
        f"{_show(name)}: {fmt} images in mode {mode!r} are not supported ({why}). Convert it "
        f"to 8- or 16-bit RGB (e.g. PNG) first.",
    )


# --------------------------------------------------------------------------- header


def _open_lazy(fp: IO[bytes], head: bytes, name: str) -> Image.Image:
    """PIL ``Image.open`` (header only) with our error mapping and PIL's pixel limit disabled.

    PIL's own decompression-bomb check (a warning above ``Image.MAX_IMAGE_PIXELS``, an error
    above twice that) would pre-empt the caller's ``max_pixels``; its warning is dropped and
    on its error the header is read again with PIL's limit lifted for that one call.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                im = Image.open(fp)
            except Image.DecompressionBombError:
                fp.seek(0)
                with _PIL_LIMIT_LOCK:
                    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        im = Image.open(fp)
                    finally:
                        Image.MAX_IMAGE_PIXELS = limit
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        fmt = _sniff(head)
        if fmt is None:
            raise ImageDecodeError(
                "not-an-image",
                f"{_show(name)} is not an image: its content matches no image format this "
                f"toolkit reads (JPEG, PNG, TIFF, WebP, ...). Remove it or fix its content.",
            ) from None
        # PIL's "cannot identify image file <_io.BytesIO ...>" says nothing more than we do.
        detail = "" if isinstance(err, UnidentifiedImageError) else f" ({err})"
        raise ImageDecodeError(
            "truncated",
            f"{_show(name)} starts like a {fmt} file but its header cannot be read{detail}: "
            f"the file is cut short or corrupt. Copy it again from the source.",
        ) from None
    for w in caught:
        if not issubclass(w.category, Image.DecompressionBombWarning):
            logger.debug("PIL on %r: %s", name, w.message)
    return im


def _format_of(im: Image.Image) -> str:
    return "JPEG" if im.format == "MPO" else (im.format or "UNKNOWN")


def _stored_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as stored, before orientation.

    Recent PIL reports a TIFF's size already oriented (it orients TIFF pixels on load), so
    for TIFF the size comes from the ImageWidth/ImageLength tags.
    """
    tags = getattr(im, "tag_v2", None)
    if tags is not None and 256 in tags and 257 in tags:
        return int(tags[256]), int(tags[257])
    return im.size


def _oriented_size(size: tuple[int, int], orientation: int | None) -> tuple[int, int]:
    w, h = size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# --------------------------------------------------------------------------- pixels


def _imdecode(data: bytes, flags: int) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:  # e.g. OpenCV's own pixel limit; PIL gets a go instead
        logger.debug("cv2.imdecode failed: %s", err)
        return None


def _to_rgb_order(arr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/BGRA to RGB/RGBA (grey stays as is), in place: no second full-size copy."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA, dst=arr)
    return arr


#: Bytes of float32 pixels converted at a time when a preview is made in strips.
_STRIP_BYTES = 1 << 22


def _area_across(strips, size: tuple[int, int], shape: tuple[int, int], alpha: bool) -> np.ndarray:
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


def _png_chunks(data: bytes):
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


def _png_strips(data: bytes, width: int, height: int, depth: int, colour: int, rows: int):
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


@dataclass(frozen=True)
class _Pixels:
    """Integer pixels in RGB(A) order, and what the decoder already did to them."""

    array: np.ndarray  # uint8/uint16, (H, W) grey, (H, W, 3) RGB or (H, W, 2|4) with alpha last
    channels: int  # of the source
    alpha: bool
    oriented: bool  # the decoder already applied the EXIF orientation
    # JPEG DCT scaling: the array is the stored image at 1/scale, each side rounded up.
    scale: int = 1


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


def _orientation_tag(im: Image.Image) -> int | None:
    """The TIFF Orientation tag as the file stores it (before PIL consumes it on load)."""
    value = getattr(im, "tag_v2", {}).get(0x0112)
    return value if isinstance(value, int) else None


def _source_bits(data: bytes, im: Image.Image, fmt: str) -> int:
    if fmt == "PNG" and data[12:16] == b"IHDR":
        return data[24]
    if fmt == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258, (8,))
        return bits[0] if isinstance(bits, tuple) else int(bits)
    return 16 if im.mode.startswith("I;16") else 8


def _pil_pixels(im: Image.Image, fmt: str, name: str, scale: int = 1) -> _Pixels:
    """Pixels via PIL.

    ``scale`` (2, 4 or 8; JPEG only) asks PIL's JPEG decoder for 1/scale of the stored
    size in the DCT domain (``Image.draft``), each side rounded up.
    """
    mode = im.mode
    # Recent PIL applies a TIFF's Orientation tag on load and then deletes the tag.
    tag_before = _orientation_tag(im)
    if scale > 1 and fmt == "JPEG":
        w, h = im.size
        # draft picks the largest of 8, 4, 2, 1 that is <= min(w // dw, h // dh): asked for
        # (w // scale, h // scale), that is exactly `scale`; the box it returns says so.
        drafted = im.draft(mode, (w // scale, h // scale))
        scale = 1 if drafted is None else round(w / drafted[1][2])
    else:
        scale = 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            im.load()
    except OSError as err:
        if "not available" in str(err) or "unsupported" in str(err).lower():
            raise _unsupported(name, fmt, mode, str(err)) from None
        raise _truncated(name, fmt, err) from None
    except (SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, ZeroDivisionError) as err:
        raise _truncated(name, fmt, f"{type(err).__name__}: {err}") from None
    for w in caught:
        logger.debug("PIL decoding %r: %s", name, w.message)
    oriented = tag_before is not None and _orientation_tag(im) is None

    transparent = "transparency" in im.info
    channels = len(im.getbands())
    if mode == "P":
        channels = 4 if transparent else 3
    elif mode == "PA":
        channels = 4
    try:
        if (mode in ("RGB", "L") and not transparent) or mode in ("RGBA", "LA"):
            out = im
        elif transparent and mode in ("P", "L", "RGB", "1"):
            out = im.convert("RGBA")
        elif mode == "PA":
            out = im.convert("RGBA")
        elif mode == "La":
            out = im.convert("LA")
        elif mode == "RGBa":
            out = im.convert("RGBA")
        elif mode == "1":
            out = im.convert("L")
        elif mode.startswith("I;16"):
            arr16 = np.asarray(im).astype(np.uint16, copy=False)
            return _Pixels(arr16, channels, False, oriented, scale)
        elif mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            out = im.convert("RGB")
        else:
            raise _unsupported(name, fmt, mode, "only 8-bit and 16-bit integer pixels are read; no float or 32-bit")
    except ValueError as err:  # a conversion PIL does not offer
        raise _unsupported(name, fmt, mode, str(err)) from None
    return _Pixels(np.asarray(out), channels, out.mode in ("RGBA", "LA"), oriented, scale)


_ORIENT_OPS = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _orient(arr: np.ndarray, orientation: int | None) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W) or (H, W, C) array, C <= 4."""
    op = _ORIENT_OPS.get(orientation)  # type: ignore[arg-type]
    return np.ascontiguousarray(arr) if op is None else op(np.ascontiguousarray(arr))


def _to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 / 255 or uint16 / 65535 as float32, correctly rounded (a true division: a
    multiplication by 1/255 is off by one ulp for half the levels)."""
    return np.divide(arr, _U8_MAX if arr.dtype == np.uint8 else _U16_MAX, dtype=np.float32)


def _to_float_rgb(arr: np.ndarray, alpha: bool) -> np.ndarray:
    """uint8/uint16 grey, grey+alpha, RGB or RGBA -> float32 RGB, alpha over white."""
    if not alpha:
        if arr.ndim == 2:
            arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
        return _to_float(arr)
    colour = _to_float(arr[..., :-1])
    if colour.shape[2] == 1:
        colour = cv2.cvtColor(colour[..., 0], cv2.COLOR_GRAY2RGB)
    a = _to_float(arr[..., -1])[..., None]
    # c * a + (1 - a): exact at a = 0 (white) and a = 1 (the colour); rounding in between
    # can reach 1 + 1 ulp, hence the clip.
    colour *= a
    colour += np.float32(1) - a
    np.minimum(colour, np.float32(1), out=colour)
    return colour


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


def _decode_pixels(data: bytes, im: Image.Image, fmt: str, name: str, target: tuple[int, int] | None = None) -> _Pixels:
    """RGB-ordered integer pixels: the OpenCV fast path, else PIL.

    ``target`` is the (width, height), in the stored layout, that the caller will shrink the
    pixels to: a JPEG is then decoded by DCT scaling at no less than that size.
    """
    scale = 1 if target is None or fmt != "JPEG" else _jpeg_scale(_stored_size(im), target)
    fast = _fast_pixels(data, im, fmt, scale)
    if fast is not None:
        return fast
    px = _pil_pixels(im, fmt, name, scale)
    if px.array.dtype == np.uint8 and _source_bits(data, im, fmt) == 16:
        logger.warning("%s: this 16-bit %s %s layout is read through 8 bits", _show(name), fmt, im.mode)
    return px


# --------------------------------------------------------------------------- public


def read_image_bytes(
    data: BytesLike,
    *,
    name: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
) -> DecodedImage:
    """Decode an image file's bytes (for callers that already read and hashed them).

    See :func:`read_image`; this does the same without touching the file system.

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The whole file.
    name : str, optional
        What to call the data in error messages (usually its path).
    max_pixels : int, optional
        Refuse, undecoded, an image whose header says ``width * height > max_pixels``.
    max_side : int or None, optional
        If given, ``rgb`` is a preview: the image area-averaged so that its long side is at
        most ``max_side``, of shape ``label_shape(height, width, max_side)`` (never
        upscaled), made without the full-size float image (see :func:`read_image`).
        ``width``, ``height`` and the other fields still describe the full image.
        None (the default): ``rgb`` is the full image.

    Returns
    -------
    DecodedImage

    Raises
    ------
    iea_data.core.errors.ImageDecodeError
        ``reason`` is ``"empty-file"``, ``"not-an-image"``, ``"truncated"``,
        ``"decompression-bomb"`` or ``"unsupported"``.
    TypeError, ValueError
        If ``data`` is not bytes-like, or ``max_pixels`` or ``max_side`` (unless None) is
        not a positive integer.

    Examples
    --------
    >>> import cv2, numpy as np
    >>> png = cv2.imencode(".png", np.full((2, 3, 3), 255, np.uint8))[1].tobytes()
    >>> img = read_image_bytes(png)
    >>> img.rgb.shape, img.rgb.dtype, float(img.rgb.min()), img.format, img.bit_depth
    ((2, 3, 3), dtype('float32'), 1.0, 'PNG', 8)

    A preview at most 2 pixels long, of a 4 x 6 image:

    >>> png = cv2.imencode(".png", np.zeros((4, 6), np.uint8))[1].tobytes()
    >>> img = read_image_bytes(png, max_side=2)
    >>> img.rgb.shape, (img.height, img.width)
    ((1, 2, 3), (4, 6))
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        hint = " Use read_image(path) for a file name." if isinstance(data, (str, os.PathLike)) else ""
        raise TypeError(f"`data` must be bytes, bytearray or memoryview; got {type(data).__name__}.{hint}")
    max_pixels = _check_int(max_pixels, "max_pixels")
    if max_side is not None:
        max_side = _check_int(max_side, "max_side")
    if not data:
        raise _empty(name)

    im = _open_lazy(io.BytesIO(data), data[:16], name)
    try:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageDecodeError(
                "decompression-bomb",
                f"{_show(name)} is {w} x {h} = {w * h:,} pixels, more than the limit "
                f"max_pixels = {max_pixels:,}, and was not decoded. If the image is genuine, "
                f"raise the workspace pixel limit `max_pixels` in iea.toml.",
            )
        fmt = _format_of(im)
        exif = exif_from_pil(im, name)
        if max_side is None:
            px = _decode_pixels(data, im, fmt, name)
            arr = px.array if px.oriented else _orient(px.array, exif.orientation)
            rgb = _to_float_rgb(arr, px.alpha)
            height, width = rgb.shape[:2]
        else:
            # The preview's size in the stored layout (label_shape treats both sides alike,
            # so shrinking before orienting gives the oriented label_shape).
            sw, sh = _stored_size(im)
            th, tw = label_shape(sh, sw, max_side)
            streamed = (
                _png_preview_in_strips(data, (th, tw)) if fmt == "PNG" and "transparency" not in im.info else None
            )
            if streamed is not None:  # a large PNG: never the whole image in memory
                rgb, channels, depth = streamed
                rgb = _orient(rgb, exif.orientation)
                width, height = _oriented_size((sw, sh), exif.orientation)
                return DecodedImage(
                    rgb=rgb,
                    width=width,
                    height=height,
                    channels=channels,
                    bit_depth=depth,
                    format=fmt,
                    mode=im.mode,
                    exif=exif,
                )
            px = _decode_pixels(data, im, fmt, name, (tw, th))
            full = (sh, sw) if px.scale > 1 else px.array.shape[:2]
            shape = label_shape(full[0], full[1], max_side)
            rgb = _preview_rgb(px, shape, full, lossy=fmt == "JPEG")
            height, width = full
            if not px.oriented:
                rgb = _orient(rgb, exif.orientation)
                width, height = _oriented_size((width, height), exif.orientation)
        return DecodedImage(
            rgb=rgb,
            width=width,
            height=height,
            channels=px.channels,
            bit_depth=16 if px.array.dtype == np.uint16 else 8,
            format=fmt,
            mode=im.mode,
            exif=exif,
        )
    finally:
        im.close()


def _read_file(path: PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise _file_error(err, path) from None


def read_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None) -> DecodedImage:
    """Read an image file into a library image and its facts.

    The file is read once; the header is checked against ``max_pixels`` before any pixel is
    decoded. 8-bit JPEG/PNG and 16-bit PNG/TIFF decode through OpenCV, the rest through
    PIL (see the module notes). 16-bit sources keep full precision (``/ 65535``); grey is
    replicated to RGB; alpha is composited over white; EXIF orientation is applied.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    max_pixels : int, optional
        Refuse, undecoded, an image whose header says ``width * height > max_pixels``
        (default 150 million; the workspace setting ``max_pixels`` in ``iea.toml``).
    max_side : int or None, optional
        If given, return a preview instead of the full image: ``rgb`` is area-averaged to
        ``label_shape(height, width, max_side)`` (long side at most ``max_side``, never
        upscaled), while ``width``, ``height``, ``channels``, ``bit_depth``, ``format``,
        ``mode`` and ``exif`` still describe the full image. For the catalog, whose
        statistics and thumbnails only need a preview. It is faster: a JPEG is decoded
        at 1/2, 1/4 or 1/8 size in the DCT domain, other images are shrunk as integers,
        before the float conversion (see the module notes for the accuracy of each).
        Error behaviour is the same as without it. None (the default): the full image.

    Returns
    -------
    DecodedImage
        ``rgb`` is float32 (H, W, 3) in [0, 1]; (H, W) is (height, width), or
        ``label_shape(height, width, max_side)``.

    Raises
    ------
    iea_data.core.errors.ImageDecodeError
        With ``reason`` one of ``"missing-file"``, ``"is-a-directory"``, ``"symlink-loop"``,
        ``"unreadable"`` (permission or I/O error), ``"empty-file"``, ``"not-an-image"``,
        ``"truncated"`` (header readable, pixel data cut or corrupt, or a cut header with a
        known signature), ``"decompression-bomb"``, ``"unsupported"`` (e.g. float TIFF).

    Examples
    --------
    >>> import cv2, numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> cv2.imwrite(str(path), np.full((2, 4), 51, np.uint8))
    True
    >>> img = read_image(path)
    >>> img.rgb.shape, img.channels, round(float(img.rgb[0, 0, 0]), 3)
    ((2, 4, 3), 1, 0.2)
    >>> read_image(path, max_side=2).rgb.shape
    (1, 2, 3)
    """
    return read_image_bytes(_read_file(path), name=os.fspath(path), max_pixels=max_pixels, max_side=max_side)


def read_header(path_or_bytes: PathLike | BytesLike) -> tuple[int, int, str]:
    """Width, height and format of an image without decoding its pixels.

    Width and height are as :func:`read_image` would return them, i.e. after the EXIF
    orientation (which swaps them for orientations 5..8).

    Parameters
    ----------
    path_or_bytes : str, os.PathLike, bytes, bytearray or memoryview
        A file name, or the file's bytes.

    Returns
    -------
    tuple of (int, int, str)
        ``(width, height, format)``, format as in :attr:`DecodedImage.format`.

    Raises
    ------
    iea_data.core.errors.ImageDecodeError
        As :func:`read_image`, except ``"decompression-bomb"`` (nothing is decoded).

    Examples
    --------
    >>> import cv2, numpy as np
    >>> read_header(cv2.imencode(".jpg", np.zeros((2, 5, 3), np.uint8))[1].tobytes())
    (5, 2, 'JPEG')
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        if not data:
            raise _empty("<bytes>")
        return _header_of(io.BytesIO(data), data[:16], "<bytes>")
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise TypeError(f"`path_or_bytes` must be a path or bytes; got {type(path_or_bytes).__name__}.")
    name = os.fspath(path_or_bytes)
    try:
        f = open(path_or_bytes, "rb")
    except OSError as err:
        raise _file_error(err, name) from None
    with f:
        try:
            head = f.read(16)
            f.seek(0)
        except OSError as err:
            raise _file_error(err, name) from None
        if not head:
            raise _empty(name)
        return _header_of(f, head, name)


def _header_of(fp: IO[bytes], head: bytes, name: str) -> tuple[int, int, str]:
    im = _open_lazy(fp, head, name)
    with im:
        w, h = _oriented_size(_stored_size(im), exif_from_pil(im, name).orientation)
        return w, h, _format_of(im)


# --------------------------------------------------------------------------- memory estimate

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
        if strips:  # _png_preview_in_strips: a few strips and the (H, w) float32 intermediate
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
    * an image over ``max_pixels`` (refused before decoding), or a file whose header
      cannot be read (it fails early): only the file's size.

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
