"""The decoders' error messages: each names the file, the problem and what to do.

Examples
--------
>>> err = _empty("a.jpg")
>>> err.reason, str(err).startswith("'a.jpg' is empty")
('empty-file', True)
>>> _sniff(b"GIF89a...."), _sniff(b"hello")
('GIF', None)
"""

from __future__ import annotations

import errno
import os
from typing import Any

from iea_data.core.errors import ImageDecodeError

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


def _file_error(err: OSError, name: str | os.PathLike[str]) -> ImageDecodeError:
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


def _too_many_pixels(name: str, w: int, h: int, max_pixels: int) -> ImageDecodeError:
    return ImageDecodeError(
        "decompression-bomb",
        f"{_show(name)} is {w} x {h} = {w * h:,} pixels, more than the limit "
        f"max_pixels = {max_pixels:,}, and was not decoded. If the image is genuine, "
        f"raise the workspace pixel limit `max_pixels` in iea.toml.",
    )


def _pil_refuses(name: str, err: Exception) -> ImageDecodeError:
    """PIL's own decompression-bomb error, met past our limit (e.g. a TIFF strip or an MPO frame)."""
    return ImageDecodeError(
        "decompression-bomb",
        f"{_show(name)} was not decoded: it is within max_pixels, but PIL's own limit "
        f"(PIL.Image.MAX_IMAGE_PIXELS) refuses it ({err}). Convert it to PNG or 16-bit TIFF, "
        f"which are decoded without PIL.",
    )
