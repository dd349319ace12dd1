"""Image headers through PIL: open a file lazily (no pixels), its format, stored size and orientation.

Thread safety
-------------
Nothing here changes process-wide state at decode time. :func:`_open_lazy` identifies the
file through PIL's plugin registry as ``Image.open`` does, but without ``Image.open``'s
decompression-bomb check, which compares against the process-global
``PIL.Image.MAX_IMAGE_PIXELS``: the caller's own ``max_pixels`` is checked against the
header instead (:func:`iea_data.core.imaging.read_image_bytes`), so two threads decoding with
different limits each get their own, and ``MAX_IMAGE_PIXELS`` is never touched. PIL's
warnings about a file's content (a malformed EXIF block, its advisory size warning, which our
limit replaces) are not the user's concern: one filter, installed once when this module is
imported and appended after every other filter (an explicit ``-W error`` still wins), ignores
warnings raised inside PIL's modules. No ``warnings.catch_warnings`` runs while decoding.

Examples
--------
>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO()
>>> Image.new("RGB", (5, 2)).save(buf, "PNG")
>>> im = _open_lazy(io.BytesIO(buf.getvalue()), buf.getvalue()[:16], "a.png")
>>> _format_of(im), _stored_size(im)
('PNG', (5, 2))
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import IO

from PIL import Image, UnidentifiedImageError

from iea_data.core.errors import ImageDecodeError

from ._decode_errors import _empty, _file_error, _pil_refuses, _show, _sniff
from ._decoded import BytesLike, PathLike
from ._exif import exif_from_pil

__all__ = ["read_header"]

# The one warnings filter this package installs, at import and appended (filterwarnings
# does not append an equal filter twice): warnings raised inside PIL's modules are ignored.
warnings.filterwarnings("ignore", module=r"PIL\.", append=True)

_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error)


def _identify(fp: IO[bytes]) -> Image.Image:
    """``Image.open(fp)`` without its decompression-bomb check (see the module notes).

    The same search as PIL's: the plugins ``Image.preinit`` loads, then all of them
    (``Image.init``); each plugin's ``accept`` looks at the first 16 bytes and its factory
    reads the header. Raises ``UnidentifiedImageError`` if no plugin takes the file.
    """
    fp.seek(0)
    prefix = fp.read(16)
    tried: set[str] = set()
    for loader in (Image.preinit, Image.init):
        loader()
        for fmt in [f for f in Image.ID if f not in tried]:
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            result = not accept or accept(prefix)
            if not result or isinstance(result, str):  # a str: "this looks like mine, but ..."
                continue
            fp.seek(0)
            try:
                return factory(fp, "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
    raise UnidentifiedImageError("cannot identify image file")


def _open_lazy(fp: IO[bytes], head: bytes, name: str) -> Image.Image:
    """Open ``fp`` with PIL, header only, mapping PIL's failures to :class:`ImageDecodeError`.

    PIL's process-global pixel limit is neither consulted nor changed (the module notes):
    the caller checks its own ``max_pixels`` against the header.
    """
    try:
        return _identify(fp)
    except Image.DecompressionBombError as err:  # an MPO frame's own check, past 2 x PIL's limit
        raise _pil_refuses(name, err) from None
    except _PIL_ERRORS as err:
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
