"""Errors of camera RAW decoding: a file LibRaw cannot read vs a camera it does not support."""

from __future__ import annotations

from iea_data.core.errors import ImageDecodeError

__all__ = ["RawDecodeError", "UnsupportedRawError"]


class RawDecodeError(ImageDecodeError):
    """A camera RAW file is truncated, corrupt or not a RAW file (reason ``unreadable-raw``).

    The message carries LibRaw's own words. A subclass of
    :class:`~iea_data.core.errors.ImageDecodeError`, so the ingest records it as an error row
    with its :attr:`reason`.
    """

    def __init__(self, message: str, reason: str = "unreadable-raw"):
        super().__init__(reason, message)


class UnsupportedRawError(RawDecodeError):
    """A camera RAW that LibRaw does not support (reason ``unsupported-raw``); names the camera."""

    def __init__(self, message: str, camera: str | None = None):
        super().__init__(message, reason="unsupported-raw")
        self.camera = camera
