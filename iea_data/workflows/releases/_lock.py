"""A lock file that serialises builds of one release version, on POSIX and on Windows.

POSIX uses ``fcntl.flock``; Windows ``msvcrt.locking`` on the file's first byte. Both locks
belong to the open file, so the operating system lets go of them when the holder dies
(even ``kill -9``): a lock is never stale and the lock file may stay on disk. Where
neither module exists the build refuses with a :class:`ReleaseError` saying so.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / ".1.0.0.lock"
>>> with release_lock(path):
...     path.exists()
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._errors import ReleaseError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

__all__ = ["release_lock"]

#: Seconds between two tries to take a Windows lock another build holds.
POLL_SECONDS = 0.2


@contextmanager
def release_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created when missing) for the block; wait while another holds it.

    Parameters
    ----------
    path : path-like
        The lock file, e.g. ``WORKSPACE/releases/NAME/.X.Y.Z.lock``; its folder must exist.

    Raises
    ------
    ReleaseError
        When the platform offers neither ``fcntl`` (POSIX) nor ``msvcrt`` (Windows).
    """
    if fcntl is None and msvcrt is None:
        raise ReleaseError(
            "building a release needs a file lock: fcntl (POSIX) or msvcrt (Windows), and this Python has neither"
        )
    with open(Path(path), "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return
        _lock_windows(fh)
        try:
            yield
        finally:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


def _lock_windows(fh) -> None:
    """Lock the first byte of ``fh`` (a byte past the end may be locked), polling while another process holds it."""
    while True:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return
        except OSError:  # held by another build
            time.sleep(POLL_SECONDS)
