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

A model actor that decodes its own batches (CPU-only clusters, :class:`~._ray_model.ActorPlan`)
keeps the same journal, with two differences. It decodes a batch's files on several threads,
so more than one file can be in progress when the process dies: each of them is a *suspect*,
decoded alone (no other file beside it) on the next attempt. And it blames a file only after it
was in progress at **two** deaths (``strikes=2``): an actor is also killed from outside (a node
lost, the OOM killer on the model, the tests' killed actor) while it happens to decode an
innocent file, and Ray Data restarts actors and retries their batches without limit, so the
second strike costs one more actor start, not the job.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
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

#: Attempts beyond ``strikes`` per item after which a batch that dies without a culprit gives up.
MAX_ATTEMPTS_MARGIN = 3

_START, _DONE, _ATTEMPT = "S\t", "D\t", "A"


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
    strikes : int, optional
        Deaths with an item in progress after which it is blamed: 1 (default) for a task that
        works on one item at a time, 2 for a model actor (see the module's notes).

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

    With ``strikes=2``, one death makes ``b.png`` a suspect (decode it alone), a second one a culprit:

    >>> first = CrashJournal(d, ["a.png", "b.png"], strikes=2)
    >>> first.start("a.png"); first.start("b.png")                 # two threads; the process dies
    >>> second = CrashJournal(d, ["a.png", "b.png"], strikes=2)
    >>> sorted(second.suspects), second.is_culprit("b.png")
    (['a.png', 'b.png'], False)
    >>> second.start("a.png"); second.done("a.png"); second.start("b.png")   # alone: dies again
    >>> third = CrashJournal(d, ["a.png", "b.png"], strikes=2)
    >>> third.is_culprit("a.png"), third.is_culprit("b.png")
    (False, True)
    >>> third.close()
    """

    def __init__(self, folder: str, items: Sequence[str], *, strikes: int = 1) -> None:
        if strikes < 1:
            raise ValueError(f"strikes must be >= 1, got {strikes}")
        key = hashlib.sha256("\0".join(map(str, items)).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.path = os.path.join(folder, key + ".log")
        counts, attempts = _read(self.path)
        if attempts > strikes * len(items) + MAX_ATTEMPTS_MARGIN:
            raise RuntimeError(
                f"a batch of {len(items)} files was attempted {attempts} times and its process died each time "
                "without a file to blame (out of memory?); lower --batch-size or give the tasks more memory"
            )
        #: Items blamed: in progress at ``strikes`` deaths of earlier attempts.
        self.culprits = {item for item, n in counts.items() if n >= strikes}
        #: Items in progress at a death but not (yet) blamed: work on each of them alone.
        self.suspects = {item for item, n in counts.items() if n < strikes}
        self._lock = threading.Lock()
        self._current: dict[int, str] = {}  # thread id -> the item it started last
        self._fh = open(self.path, "a", encoding="utf-8", errors="surrogateescape")
        self._write(_ATTEMPT)
        self._crash_on = os.environ.get(CRASH_ON_ENV) or None

    def is_culprit(self, item: str) -> bool:
        """Whether earlier attempts of this task died (``strikes`` times) while working on ``item``."""
        return str(item) in self.culprits

    def start(self, item: str) -> None:
        """Record that work on ``item`` begins (in the kernel's hands before the work starts)."""
        self._current[threading.get_ident()] = str(item)
        self._write(_START + str(item))
        if self._crash_on and self._crash_on in str(item):
            os.kill(os.getpid(), signal.SIGKILL)

    def done(self, item: Optional[str] = None) -> None:
        """Record that ``item`` finished (default: the item this thread started last)."""
        current = self._current.pop(threading.get_ident(), None)
        self._write(_DONE + str(item if item is not None else current))

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
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()


def _read(path: str) -> tuple[dict[str, int], int]:
    """(per item, the earlier attempts that died with it in progress; number of earlier attempts)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return {}, 0
    counts: dict[str, int] = {}
    attempts = 0
    current: set[str] = set()

    def died() -> None:
        for item in current:
            counts[item] = counts.get(item, 0) + 1
        current.clear()

    for line in lines:
        if line == _ATTEMPT:
            died()  # a new attempt began: the one before it died with these items in progress
            attempts += 1
        elif line.startswith(_START):
            current.add(line[len(_START) :])
        elif line.startswith(_DONE):
            current.discard(line[len(_DONE) :])
    died()  # the last attempt died too (this one is its retry)
    return counts, attempts
