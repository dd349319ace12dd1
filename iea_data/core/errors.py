"""Exceptions raised by :mod:`iea_data`.

Every error a user can cause derives from :class:`IeaError`; the CLI turns it into one
line on stderr and exit status 1 (``IEA_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

__all__ = [
    "IeaError",
    "WorkspaceNotFoundError",
    "ImageDecodeError",
    "ManifestError",
    "StaleRevisionError",
    "NotFoundError",
    "PermissionDeniedError",
]


class IeaError(Exception):
    """Base class of every error the toolkit raises on bad input or state."""


class WorkspaceNotFoundError(IeaError):
    """No workspace (a folder with ``iea.toml``) could be found."""


class ImageDecodeError(IeaError):
    """A file could not be decoded as an image.

    Parameters
    ----------
    reason : str
        A short machine-readable reason code, e.g. ``"empty-file"``, ``"not-an-image"``,
        ``"truncated"``, ``"decompression-bomb"``, ``"unreadable"``, ``"symlink-loop"``.
    message : str
        A sentence for a person: what is wrong and what to do.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class ManifestError(IeaError):
    """A manifest CSV is malformed; the message names the row."""


class StaleRevisionError(IeaError):
    """A save was based on a revision that is no longer the newest."""


class NotFoundError(IeaError):
    """A catalog object (image, scene, label, user) does not exist."""


class PermissionDeniedError(IeaError):
    """The acting user's role does not allow the operation."""
