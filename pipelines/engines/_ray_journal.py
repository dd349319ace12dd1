"""Files that kill the process reading them, found across Ray's retries of a task.

A file whose decoding kills its process (a decoder's segfault, the OOM killer on a huge image)
would kill every retry of the Ray task that holds it, until Ray gives up and fails the whole
job. Each task therefore keeps a small journal on storage every node sees: the
item it is working on is written before the work starts and marked done after it. When Ray
retries the task after its process died, the retry reads the journal, names the item that was
in progress at the death, and returns that item as an error (``worker-crashed``) instead of
trying it again; the other items of the batch are recomputed as usual. This is the Ray
engine's counterpart of the local ingest pool's isolation of such files.

Ray retries a task whose process died up to three times (Ray's default ``max_retries`` for tasks,
which Ray Data keeps): each retry skips one more such file, so a batch holding up to three of
them finishes; a fourth fails the job with Ray's ``WorkerCrashedError`` (a smaller
``--batch-size`` makes that less likely). The journal is one file per batch (named by a hash of
the batch's items), so a retry finds its predecessor's journal whichever node it runs on; it is
removed when the batch finishes, and the driver removes the run's folder at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

__all__ = ["CrashJournal", "JournalDir", "CRASHED_KIND", "CRASHED_MESSAGE", "CRASH_ON_ENV", "MAX_ATTEMPTS_MARGIN"]

#: The error kind of a file that killed the process reading it (the local ingest pool's).
CRASHED_KIND = "worker-crashed"
#: ... and its message.
CRASHED_MESSAGE = (
    "the Ray worker process reading this file died (out of memory, or a decoder crash) and it was not "
    "tried again; lower ingest.max_pixels / --max-side, or check the file"
)

#: Test hook (the local ingest pool's own): a path substring on which a Ray task kills its process.
CRASH_ON_ENV = "IEA_TEST_CRASH_ON"

#: Attempts beyond one per item after which a batch that dies without a culprit gives up.
MAX_ATTEMPTS_MARGIN = 3

_START, _DONE, _ATTEMPT = "S\t", "D", "A"


class JournalDir:
    """A run's journal folder under ``root`` (shared storage); :meth:`remove` at the end of the run.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     jd = JournalDir(d)
    ...     j = CrashJournal(jd.path, ["a.png", "b.png"])
    ...     j.is_culprit("a.png")
    ...     jd.remove()
    False
    """

    def __init__(self, root: os.PathLike | str) -> None:
        self.path = str(Path(root) / ".iea-ray-journal" / uuid.uuid4().hex)
        os.makedirs(self.path, exist_ok=True)

    def remove(self) -> None:
        """Remove this run's journals (and the parent folder if no other run uses it)."""
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(self.path))
        except OSError:
            pass


class CrashJournal:
    """One batch's journal: which items earlier attempts of this task died on.

    Parameters
    ----------
    folder : str
        The run's journal folder (:attr:`JournalDir.path`), on storage every node sees.
    items : sequence of str
        The batch's items (paths), in order; their hash names the journal, so every attempt of the
        same Ray task finds the same file.

    Examples
    --------
    An attempt that died while working on ``b.png`` makes the next attempt skip it:

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> first = CrashJournal(d, ["a.png", "b.png"])
    >>> first.start("a.png"); first.done(); first.start("b.png")   # ... and the process dies here
    >>> retry = CrashJournal(d, ["a.png", "b.png"])
    >>> retry.is_culprit("a.png"), retry.is_culprit("b.png")
    (False, True)
    >>> retry.close()
    """

    def __init__(self, folder: str, items: Sequence[str]) -> None:
        key = hashlib.sha256("\0".join(map(str, items)).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.path = os.path.join(folder, key + ".log")
        self.culprits, attempts = _read(self.path)
        if attempts > len(items) + MAX_ATTEMPTS_MARGIN:
            raise RuntimeError(
                f"a batch of {len(items)} files was attempted {attempts} times and its process died each time "
                "without a file to blame (out of memory?); lower --batch-size or give the tasks more memory"
            )
        self._fh = open(self.path, "a", encoding="utf-8", errors="surrogateescape")
        self._write(_ATTEMPT)
        self._crash_on = os.environ.get(CRASH_ON_ENV) or None

    def is_culprit(self, item: str) -> bool:
        """Whether an earlier attempt of this task died while working on ``item``."""
        return str(item) in self.culprits

    def start(self, item: str) -> None:
        """Record that work on ``item`` begins (in the kernel's hands before the work starts)."""
        self._write(_START + str(item))
        if self._crash_on and self._crash_on in str(item):
            os.kill(os.getpid(), signal.SIGKILL)

    def done(self) -> None:
        """Record that the item last started finished."""
        self._write(_DONE)

    def close(self) -> None:
        """The batch finished: remove its journal."""
        self._fh.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _write(self, line: str) -> None:
        # flushed to the kernel, not fsynced: what a killed process wrote survives it (and a
        # network file system writes it back when the kernel closes the dead process's file)
        self._fh.write(line + "\n")
        self._fh.flush()


def _read(path: str) -> tuple[set[str], int]:
    """(items earlier attempts died on, number of earlier attempts) from a journal file."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return set(), 0
    culprits: set[str] = set()
    attempts = 0
    current: Optional[str] = None
    for line in lines:
        if line == _ATTEMPT:
            if current is not None:
                culprits.add(current)
            attempts += 1
            current = None
        elif line.startswith(_START):
            current = line[len(_START) :]
        elif line == _DONE:
            current = None
    if current is not None:  # the last attempt died too (this one is its retry)
        culprits.add(current)
    return culprits, attempts
