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

Modules
-------
This module holds the public entry points and the choice of path; each step is a module
of its own: ``_header`` (PIL opens the header, thread-safe), ``_decode_cv2`` (the fast
path), ``_decode_pillow`` (the PIL path), ``_pixels`` (integers to floats, orientation),
``_preview`` (``max_side``), ``_memory`` (:func:`decode_memory`), ``_decoded`` (the
result types) and ``_decode_errors`` (the messages). Decoding changes no process-wide
state (PIL's ``MAX_IMAGE_PIXELS``, warning filters), so threads may decode at once, each
with its own ``max_pixels`` (see ``_header``).
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
from PIL import Image

from ._decode_cv2 import _fast_pixels
from ._decode_errors import _empty, _file_error, _show, _too_many_pixels
from ._decode_pillow import _pil_pixels
from ._decoded import DEFAULT_MAX_PIXELS, BytesLike, DecodedImage, PathLike, _Pixels
from ._exif import exif_from_pil
from ._header import _format_of, _open_lazy, _oriented_size, _source_bits, _stored_size, read_header
from ._memory import decode_memory
from ._pixels import _orient, _to_float_rgb
from ._preview import _jpeg_scale, _png_preview_in_strips, _preview_rgb
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
        if w * h > max_pixels:  # the caller's limit, from the header: PIL's global one plays no part
            raise _too_many_pixels(name, w, h, max_pixels)
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
