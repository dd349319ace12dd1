"""Ingest: walk folders, decode images in worker processes, record them in the catalog.

The rules a user can rely on:

- each distinct content (sha256) is one image; the same bytes at two paths are one image
  with two :class:`~iea_data.store.ImagePath` rows;
- a re-run over unchanged files decodes nothing: a path whose size and mtime match the
  catalog is skipped without reading it, and a changed path whose bytes hash to a known
  image is only re-pointed;
- results are committed in small transactions as they arrive, so a run killed at any
  point (``kill -9``) leaves a consistent catalog and the next run does the rest, scene
  grouping included: grouping looks at every image under the run's roots that has no scene
  yet, not only at the files this run touched;
- a killed run is marked ``interrupted`` by the next run (:mod:`._run_lock`: each run holds
  a lock that dies with its process, so a run still going is left alone);
- one bad file never stops the batch: it gets an :class:`~iea_data.store.IngestError`
  row with a specific reason, and the good files of the same batch land. That holds for
  the database too: a batch the database refuses is applied again file by file, and only
  the refused file gets an error row (``database-error``). A file name that is not valid
  UTF-8 is recorded, escaped, as ``bad-file-name``;
- a decoder process that dies (out of memory, a crashing codec) costs only the file that
  killed it (``worker-crashed``): the files it may have held are scanned again one at a
  time and a new pool goes on with the rest;
- the files being decoded at once never hold more than ``ingest.memory_budget_mb`` of
  pixels together, by their header's estimate (a larger file is decoded alone).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import random
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from iea_data.core.errors import IeaError
from iea_data.core.imaging import decode_memory
from iea_data.core.progress import ProgressFn
from iea_data.core.raw import RAW_EXTENSIONS  # camera RAW, decoded through LibRaw (issue 14)
from iea_data.store import Image, ImagePath, IngestError, IngestRun, insert_ignore, utcnow

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

from ._run_lock import mark_interrupted_runs, start_run
from ._scan import classify_os_error, init_worker, os_error_message, scan_file, scan_files
from ._scenes_db import assign_scenes_by_filename, ungrouped_images_under

#: Another engine's decoding step for :func:`ingest`: ``scanner(tasks, init_args)`` yields result dicts.
Scanner = Callable[[Sequence[tuple[str, int, int]], tuple], Iterable[dict]]

__all__ = ["IMAGE_EXTENSIONS", "IngestReport", "FileError", "ingest", "walk_images"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp"}) | RAW_EXTENSIONS
COMMIT_EVERY = 256  # results per transaction
COMMIT_SECONDS = 2.0
MAX_RETRIES = 5


@dataclass(frozen=True)
class FileError:
    """A file that could not be ingested."""

    path: str
    reason: str
    message: str


@dataclass
class IngestReport:
    """What an ingest run did.

    Attributes
    ----------
    run_id : int
        The :class:`~iea_data.store.IngestRun` row.
    n_files : int
        Candidate image files found (by extension).
    n_new : int
        New images decoded and added.
    n_linked : int
        Of those, images that filled a manifest row whose file was missing.
    n_duplicate : int
        Paths whose bytes were already in the catalog (no decode, path recorded).
    n_unchanged : int
        Paths skipped because size and mtime matched the catalog (nothing read).
    errors : list of FileError
        One per failed file.
    n_scenes : int
        Scenes created by grouping.
    seconds : float
        Wall time.
    """

    run_id: int
    n_files: int = 0
    n_new: int = 0
    n_linked: int = 0
    n_duplicate: int = 0
    n_unchanged: int = 0
    n_scenes: int = 0
    errors: list[FileError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_errors(self) -> int:
        return len(self.errors)


# --------------------------------------------------------------------------- walking


BAD_FILE_NAME_MESSAGE = (
    "the file name is not valid UTF-8 (shown with \\x escapes) and cannot be stored in the catalog; "
    "rename it to a UTF-8 name (e.g. `convmv -f latin1 -t utf-8`) and run ingest again"
)


def is_storable(text: str) -> bool:
    """Whether ``text`` can be stored as SQL text as it is: valid UTF-8 (no lone surrogates) and no NUL.

    On POSIX, file names are bytes; Python hands a name that is not valid UTF-8 over with
    the bad bytes as lone surrogates (``surrogateescape``), which no database can store.
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def db_text(text: str) -> str:
    """``text`` made storable and printable for error rows: bad bytes as ``\\xNN``, NUL as ``\\x00``.

    >>> db_text(os.fsdecode(b"caf\\xe9.png"))
    'caf\\\\xe9.png'
    """
    if is_storable(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _failure_reason(path: str, exc: BaseException) -> tuple[str, str]:
    """The error row for a result the catalog refused: ``bad-file-name`` or ``database-error``."""
    if not is_storable(path):
        return "bad-file-name", BAD_FILE_NAME_MESSAGE
    if isinstance(exc, SQLAlchemyError):
        return "database-error", (
            f"the catalog refused this file's record ({_one_line(exc)}); the other files were stored. "
            "Run ingest again; if it fails again, report it with this message"
        )
    return "internal-error", (
        f"recording this file failed ({_one_line(exc)}); the other files were stored. "
        "Run ingest again; if it fails again, report it with this message (IEA_DEBUG=1 shows more)"
    )


def _retryable(exc: OperationalError) -> bool:
    """A deadlock victim or serialization failure (PostgreSQL), or a busy SQLite: safe to retry."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


def walk_images(roots: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, Optional[FileError]]]:
    """Yield ``(absolute path, None)`` for each image file under ``roots``, or ``(path, FileError)``.

    Folders are walked in sorted order; symlinked folders are followed once, and a symlink
    that leads back into one of its own ancestors is reported as ``symlink-loop``. A root
    may also be a single file. Only files with an image extension (:data:`IMAGE_EXTENSIONS`)
    are candidates; a dangling or looping symlink with such a name is reported.
    """
    seen_dirs: set[tuple[int, int]] = set()

    def visit(directory: str, ancestors: frozenset[tuple[int, int]]) -> Iterator[tuple[str, Optional[FileError]]]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            yield directory, FileError(directory, classify_os_error(exc), f"cannot list folder: {exc.strerror}")
            return
        for entry in entries:
            path = entry.path
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError as exc:
                is_dir = False
                if Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS or entry.is_symlink():
                    yield path, FileError(path, classify_os_error(exc), os_error_message(exc))
                    continue
            if is_dir:
                try:
                    st = os.stat(path)
                except OSError as exc:
                    yield path, FileError(path, classify_os_error(exc), os_error_message(exc))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    yield (
                        path,
                        FileError(
                            path,
                            "symlink-loop",
                            "this folder symlink points back to one of its own parent folders; skipped",
                        ),
                    )
                    continue
                if key in seen_dirs:
                    continue  # reached twice through symlinks: walk it once
                seen_dirs.add(key)
                yield from visit(path, ancestors | {key})
                continue
            if Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if entry.is_symlink():
                try:
                    os.stat(path)
                except OSError as exc:
                    yield path, FileError(path, classify_os_error(exc), os_error_message(exc))
                    continue
            yield path, None

    for root in roots:
        root = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(root)
        except OSError as exc:
            yield root, FileError(root, classify_os_error(exc), os_error_message(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue
            seen_dirs.add(key)
            yield from visit(root, frozenset({key}))
        else:
            yield root, None


# --------------------------------------------------------------------------- main side


WORKER_CRASHED_MESSAGE = (
    "the decoder process died while reading this file (out of memory?); lower --workers, "
    "ingest.memory_budget_mb or ingest.max_pixels in iea.toml and run ingest again"
)


class _Budget:
    """Admission of files, in order, against a byte budget shared by all decoder processes.

    A file is admitted when the bytes admitted so far plus its own estimate stay within the
    budget, or when nothing is admitted (a file larger than the whole budget runs alone).
    Admission is first come, first served: a file that does not fit holds back the files
    after it until enough of the budget is given back, so a large file is never starved.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self.count = 0

    def fits(self, cost: int) -> bool:
        return self.count == 0 or self.used + cost <= self.budget

    def take(self, cost: int) -> None:
        self.used += cost
        self.count += 1

    def give(self, cost: int) -> None:
        self.used -= cost
        self.count -= 1


def _pool_context(raw: bool = False):
    # Not "fork": the parent may hold OpenCV/BLAS thread pools whose locks a forked child
    # would inherit mid-use (a deadlock). A fork server starts clean once and forks workers
    # with the decoders already imported.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # rawpy (~0.4 s to import) only when RAW files are coming: once in the server, not per worker
        ctx.set_forkserver_preload(["iea_data.workflows.catalog._scan", *(["rawpy"] if raw else [])])
        return ctx
    return mp.get_context("spawn")


def _start_pool(ctx, workers: int, init_args: tuple) -> ProcessPoolExecutor:
    # isolated=True: these processes may die (and arm the test hook); the ingest survives them
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=init_worker, initargs=(*init_args, True)
    )


def _crashed(task: tuple[str, int, int]) -> dict:
    path, size, mtime_ns = task
    log.warning("%s: %s", db_text(path), WORKER_CRASHED_MESSAGE)
    return {"path": path, "size": size, "mtime_ns": mtime_ns, "error": ("worker-crashed", WORKER_CRASHED_MESSAGE)}


def _failed(task: tuple[str, int, int], exc: BaseException) -> dict:
    path, size, mtime_ns = task
    return {
        "path": path,
        "size": size,
        "mtime_ns": mtime_ns,
        "error": ("decode-failed", f"the decoder process could not return this file's result ({_one_line(exc)})"),
    }


def _one_by_one(ctx, tasks: Sequence[tuple[str, int, int]], init_args: tuple) -> Iterator[dict]:
    """Scan ``tasks`` one at a time in a pool of one process: a file that kills it is the culprit."""
    pool: ProcessPoolExecutor | None = None
    try:
        for task in tasks:
            if pool is None:
                pool = _start_pool(ctx, 1, init_args)
            future = pool.submit(scan_file, task)
            try:
                result = future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True)
                pool = None
                result = _crashed(task)
            except Exception as exc:  # e.g. a result that cannot be pickled
                result = _failed(task, exc)
            yield result
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_tasks(
    tasks: Sequence[tuple[str, int, int]],
    *,
    workers: int,
    init_args: tuple,
    budget_bytes: int | None = None,
    cost: Callable[[str], int] | None = None,
) -> Iterator[dict]:
    """Scan ``tasks`` (path, size, mtime_ns) and yield one result per task, in completion order.

    With ``workers > 1`` the files are decoded by a pool of processes. ``cost(path)`` (bytes,
    see :func:`iea_data.core.imaging.decode_memory`) is counted against ``budget_bytes`` from
    submission to result (:class:`_Budget`): the files in flight never add up to more than
    the budget, except one file alone. Small files go to the workers in chunks (as
    ``Pool.imap``'s chunksize did), a large one on its own. A process that dies (OOM killer,
    a crashing codec) breaks the pool: the files that were in flight are scanned again one
    at a time in a pool of their own, so that only the file that kills its process again is
    recorded (``worker-crashed``); then a new pool goes on with the rest.
    """
    if not tasks:
        return
    if workers <= 1:  # in this process: no pool to start, but a crashing decoder ends the run
        init_worker(*init_args)
        for task in tasks:
            yield scan_file(task)
        return
    ctx = _pool_context(raw=any(os.path.splitext(t[0])[1].lower() in RAW_EXTENSIONS for t in tasks))
    budget = _Budget(budget_bytes if budget_bytes is not None else 1 << 62)
    limit = 4 * workers  # chunks submitted ahead, so that no worker waits while the writer commits
    chunk_size = max(1, min(16, len(tasks) // (workers * 8)))
    chunk_cap = budget.budget // limit  # a chunk's estimate: so many chunks in flight fit the budget
    queue: deque[tuple[tuple[str, int, int], int | None]] = deque((task, None) for task in tasks)
    in_flight: dict[Future, tuple[list[tuple[str, int, int]], int]] = {}
    held: tuple[list[tuple[str, int, int]], int] | None = None  # the next chunk, waiting for room in the budget
    broken = False  # the pool refused a submission: a process died between two results

    def next_chunk() -> tuple[list[tuple[str, int, int]], int]:
        chunk: list[tuple[str, int, int]] = []
        total = 0
        while queue and len(chunk) < chunk_size:
            task, c = queue.popleft()
            if c is None:
                c = cost(task[0]) if cost is not None else 0
            if chunk and total + c > chunk_cap:  # a large file goes on its own (or starts the next chunk)
                queue.appendleft((task, c))
                break
            chunk.append(task)
            total += c
            if total > chunk_cap:
                break
        return chunk, total

    def fill() -> None:
        nonlocal held, broken
        while len(in_flight) < limit and not broken:
            if held is None:
                if not queue:
                    return
                held = next_chunk()
            if not budget.fits(held[1]):
                return
            if held[1] > budget.budget:
                log.info(
                    "%s: estimated %d MiB to decode, more than the memory budget; decoding it alone",
                    db_text(held[0][0][0]),
                    held[1] >> 20,
                )
            try:
                future = pool.submit(scan_files, held[0])
            except BrokenProcessPool:
                broken = True
                return
            in_flight[future] = held
            budget.take(held[1])
            held = None

    def collect(future: Future, ready: list[dict], suspects: list[tuple[str, int, int]]) -> None:
        chunk, c = in_flight.pop(future)
        budget.give(c)
        exc = future.exception()
        if exc is None:
            ready.extend(future.result())
        elif isinstance(exc, BrokenProcessPool):
            suspects.extend(chunk)
        else:
            ready.extend(_failed(task, exc) for task in chunk)

    pool = _start_pool(ctx, workers, init_args)
    try:
        fill()
        while in_flight or broken:
            ready: list[dict] = []
            suspects: list[tuple[str, int, int]] = []
            if in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(future, ready, suspects)
            if suspects or broken:
                # a broken pool fails every future it still held: all of their files are suspects
                wait(in_flight)
                for future in list(in_flight):
                    collect(future, ready, suspects)
                pool.shutdown(wait=True, cancel_futures=True)
                log.warning(
                    "a decoder process died; scanning the %d files it may have held one at a time", len(suspects)
                )
                yield from ready
                ready = []
                yield from _one_by_one(ctx, sorted(suspects), init_args)
                pool = _start_pool(ctx, workers, init_args)
                broken = False
            fill()
            yield from ready
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Writer:
    """Applies worker results to the catalog in small units of work (one per batch)."""

    def __init__(self, workspace: Workspace, run_id: int, report: IngestReport, commit_every: int = COMMIT_EVERY):
        self.workspace = workspace
        self.commit_every = commit_every
        self.run_id = run_id
        self.report = report
        self.pending: list[dict] = []
        self.last_commit = time.monotonic()
        self.touched_images: set[int] = set()

    def add(self, result: dict) -> None:
        self.pending.append(result)
        if len(self.pending) >= self.commit_every or time.monotonic() - self.last_commit > COMMIT_SECONDS:
            self.flush()

    def error(self, path: str, reason: str, message: str) -> None:
        self.pending.append({"path": path, "error": (reason, message)})

    def flush(self) -> None:
        """Commit the pending results: the batch in one transaction, else row by row.

        A batch that fails for any reason but a retryable lock conflict is applied again one
        row per transaction, so the one bad row (a name the database cannot store, a value
        it refuses, a bug) gets an error row with the reason and every other row lands.
        """
        if not self.pending:
            return
        # A fixed order (by content hash, then path) keeps two writers from locking rows in
        # opposite orders; PostgreSQL may still pick a deadlock victim, so retry that batch.
        batch = sorted(self.pending, key=lambda r: (r.get("sha256") or "", r["path"]))
        try:
            self._commit(batch)
        except Exception as exc:
            if len(batch) == 1:
                self._commit_failure(batch[0], exc)
            else:
                log.warning(
                    "an ingest batch of %d files failed (%s); applying it file by file", len(batch), _one_line(exc)
                )
                for row in batch:
                    try:
                        self._commit([row])
                    except Exception as row_exc:
                        self._commit_failure(row, row_exc)
        self.pending.clear()
        self.last_commit = time.monotonic()

    def _commit_failure(self, row: dict, exc: BaseException) -> None:
        """Record that ``row`` could not be stored; a failure to record even that is raised."""
        reason, message = _failure_reason(row["path"], exc)
        log.warning("%s: %s", db_text(row["path"]), message)
        self._commit([{"path": row["path"], "error": (reason, message)}])

    def _commit(self, batch: list[dict]) -> None:
        """Apply ``batch`` in one transaction (retrying lock conflicts) and count it in the report."""
        for attempt in range(MAX_RETRIES):
            delta = IngestReport(run_id=self.run_id)
            touched: set[int] = set()
            try:
                with self.workspace.unit() as uow:
                    s = uow.session
                    self._apply_batch(s, batch, delta, touched)
                    s.execute(
                        update(IngestRun)
                        .where(IngestRun.id == self.run_id)
                        .values(
                            n_new=self.report.n_new + delta.n_new,
                            n_duplicate=self.report.n_duplicate + delta.n_duplicate,
                            n_errors=self.report.n_errors + delta.n_errors,
                        )
                    )
                break
            except OperationalError as exc:
                if not _retryable(exc) or attempt == MAX_RETRIES - 1:
                    raise
                log.info("ingest batch hit %s; retrying", type(exc.orig).__name__)
                time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
        self.report.n_new += delta.n_new
        self.report.n_linked += delta.n_linked
        self.report.n_duplicate += delta.n_duplicate
        self.report.errors.extend(delta.errors)
        self.touched_images |= touched

    def _apply_batch(self, s: Session, batch: list[dict], delta: IngestReport, touched: set[int]) -> None:
        """Apply one batch with a handful of set-based statements (not a query per file)."""
        now = utcnow()
        failed = [r for r in batch if "error" in r]
        good = [r for r in batch if "error" not in r]
        if failed:
            s.execute(
                IngestError.__table__.insert(),
                [
                    {
                        "run_id": self.run_id,
                        "path": db_text(r["path"]),
                        "reason": r["error"][0],
                        "message": db_text(r["error"][1]),
                        "created_at": now,
                    }
                    for r in failed
                ],
            )
            delta.errors.extend(FileError(db_text(r["path"]), r["error"][0], db_text(r["error"][1])) for r in failed)
            # a path that now fails no longer shows the image it used to show
            storable = [r["path"] for r in failed if is_storable(r["path"])]
            old = (
                s.execute(select(ImagePath.id, ImagePath.image_id).where(ImagePath.path.in_(storable))).all()
                if storable
                else []
            )
            if old:
                s.execute(delete(ImagePath).where(ImagePath.id.in_([o.id for o in old])))
                orphans = {o.image_id for o in old} - set(
                    s.scalars(select(ImagePath.image_id).where(ImagePath.image_id.in_({o.image_id for o in old})))
                )
                if orphans:
                    s.execute(update(Image).where(Image.id.in_(orphans)).values(status="missing", updated_at=now))
        if not good:
            return
        shas = sorted({r["sha256"] for r in good})
        ids = dict(s.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(shas))).all())
        fresh: dict[str, dict] = {}
        for r in good:
            if r["sha256"] in ids:
                continue
            if "image" not in r:  # known to the worker's snapshot, gone since: retried next run
                delta.errors.append(
                    FileError(
                        r["path"],
                        "changed-during-run",
                        "the catalog changed while this file was read; run ingest again",
                    )
                )
                continue
            fresh.setdefault(r["sha256"], r)
        if fresh:
            rows = {
                sha: dict(
                    r["image"],
                    file_size=r["size"],
                    status="ok",
                    sha256=sha,
                    updated_at=now,
                    name=os.path.basename(r["path"]),
                )
                for sha, r in fresh.items()
            }
            # manifest rows waiting for their file are filled in place (matched by file name)
            waiting = dict(
                s.execute(
                    select(Image.name, func.min(Image.id))
                    .where(
                        Image.name.in_({row["name"] for row in rows.values()}),
                        Image.sha256.is_(None),
                        Image.status == "missing",
                    )
                    .group_by(Image.name)
                ).all()
            )
            to_insert = []
            for row in rows.values():
                target = waiting.pop(row["name"], None)
                if target is not None:
                    facts = {k: v for k, v in row.items() if k != "name"}
                    n = s.execute(
                        update(Image).where(Image.id == target, Image.sha256.is_(None)).values(**facts)
                    ).rowcount
                    if n:
                        delta.n_linked += 1
                        continue
                to_insert.append(dict(row, created_at=now))
            insert_ignore(s, Image.__table__, to_insert, conflict=["sha256"])
            ids = dict(s.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(shas))).all())
        seen_new: set[str] = set()
        paths = []
        for r in good:
            image_id = ids.get(r["sha256"])
            if image_id is None:
                continue
            if r["sha256"] in fresh and r["sha256"] not in seen_new:
                seen_new.add(r["sha256"])
                delta.n_new += 1
            else:
                delta.n_duplicate += 1
            touched.add(image_id)
            paths.append(
                {
                    "image_id": image_id,
                    "path": r["path"],
                    "size": r["size"],
                    "mtime_ns": r["mtime_ns"],
                    "run_id": self.run_id,
                    "seen_at": now,
                }
            )
        s.execute(
            update(Image)
            .where(Image.id.in_({p["image_id"] for p in paths}), Image.status != "ok")
            .values(status="ok", updated_at=now)
        )
        existing = dict(
            s.execute(select(ImagePath.path, ImagePath.id).where(ImagePath.path.in_([p["path"] for p in paths]))).all()
        )
        insert_ignore(s, ImagePath.__table__, [p for p in paths if p["path"] not in existing], conflict=["path"])
        moved = [p for p in paths if p["path"] in existing]
        if moved:
            t = ImagePath.__table__
            s.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"))
                .values(
                    image_id=bindparam("b_image"),
                    size=bindparam("b_size"),
                    mtime_ns=bindparam("b_mtime"),
                    run_id=self.run_id,
                    seen_at=now,
                ),
                [
                    {
                        "b_id": existing[p["path"]],
                        "b_image": p["image_id"],
                        "b_size": p["size"],
                        "b_mtime": p["mtime_ns"],
                    }
                    for p in moved
                ],
            )


def ingest(
    workspace: Workspace,
    roots: Sequence[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    group: str = "filename",
    progress: ProgressFn | None = None,
    kind: str = "ingest",
    commit_every: int | None = None,
    memory_budget_mb: int | None = None,
    scanner: Scanner | None = None,
) -> IngestReport:
    """Ingest every image under ``roots`` into the workspace's catalog.

    Parameters
    ----------
    workspace : Workspace
        The open workspace.
    roots : sequence of path-like
        Folders (walked recursively) or single files.
    workers : int, optional
        Decoder processes; default the workspace setting (0 = one per core).
    group : {"filename", "none"}
        Group new images into scenes by the ``<scene>_<variant>.<ext>`` convention
        (see :mod:`iea_data.core.scenes`); EXIF and sidecar grouping are separate steps
        (:func:`iea_data.workflows.catalog.group_scenes_by_exif`, :func:`iea_data.workflows.catalog.apply_sidecar`).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.
    kind : str
        Recorded on the run (``ingest``, ``demo``, ``manifest-link``).
    commit_every : int, optional
        Results per transaction (also committed every 2 s); default :data:`COMMIT_EVERY`.
        Smaller loses less work to a kill, larger is faster.
    memory_budget_mb : int, optional
        MiB of decoded pixels that all workers together may hold at once; default the
        workspace setting ``ingest.memory_budget_mb`` (2048). Each file counts its estimate
        from its header (:func:`iea_data.core.imaging.decode_memory`, about twice its decoded size
        where it is decoded whole, far less for JPEG and large PNG previews) from the moment
        it is handed to a worker until its result is back; a file that does not fit waits
        (and the files after it), and a file larger than the whole budget is decoded alone.
    scanner : callable, optional
        Another engine for the decoding step: ``scanner(tasks, init_args)`` yields one result
        dict per ``(path, size, mtime_ns)`` task, in any order, each made by
        :func:`scan_files` in a process set up with ``init_scan_worker(*init_args)`` (e.g.
        Ray tasks: ``iea ingest --engine ray``). The walk, the skips, the transactions and
        the grouping stay here, so the catalog rows are the same. Default: the local pool.

    Returns
    -------
    IngestReport
        Counts and the list of failed files. The caller decides the exit status
        (``iea ingest`` exits with 3 when any file failed).

    Notes
    -----
    With ``workers > 1`` the decoders run in a pool started from a fork server, as Python's
    ``multiprocessing`` does for spawn-like start methods: a script that calls ``ingest``
    must guard its entry point with ``if __name__ == "__main__":``. A decoder process that
    dies (the kernel's OOM killer, a crashing codec) does not stop the run: the files it may
    have held are scanned again one at a time, the one that kills its process again gets a
    ``worker-crashed`` error row, and a new pool decodes the rest. With ``workers=1`` the
    files are decoded in the calling process itself (no pool to start; no such isolation).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from iea_data.core.imaging import write_image
    >>> from iea_data.store import init_workspace
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "photos").mkdir()
    >>> for name, grey in (("s.png", 0.5), ("s_N1.png", 0.25)):
    ...     write_image(root / "photos" / name, np.full((4, 6, 3), grey, np.float32))
    >>> ws = init_workspace(root / "ws")
    >>> report = ingest(ws, [root / "photos"], workers=1)
    >>> report.n_new, report.n_errors, report.n_scenes
    (2, 0, 1)
    """
    if group not in ("filename", "none"):
        raise IeaError(f"group must be 'filename' or 'none', got {group!r}")
    if commit_every is None:
        commit_every = COMMIT_EVERY
    if not isinstance(commit_every, int) or commit_every < 1:
        raise IeaError(f"commit_every must be an integer >= 1, got {commit_every!r}")
    t0 = time.monotonic()
    settings = workspace.settings
    if memory_budget_mb is None:
        memory_budget_mb = settings.memory_budget_mb
    if not isinstance(memory_budget_mb, int) or isinstance(memory_budget_mb, bool) or memory_budget_mb < 1:
        raise IeaError(f"memory_budget_mb must be an integer >= 1 (MiB), got {memory_budget_mb!r}")
    n_workers = workers if workers is not None else workspace.workers
    if n_workers < 1:
        raise IeaError(f"workers must be >= 1, got {n_workers}")
    engine = workspace.engine()
    from iea_data.store import check_schema

    check_schema(engine)
    mark_interrupted_runs(engine)
    abs_roots = [os.path.abspath(os.fspath(r)) for r in roots]
    lock = start_run(engine, {"kind": kind, "roots": "\n".join(db_text(r) for r in abs_roots), "workers": n_workers})
    run_id = lock.run_id
    report = IngestReport(run_id=run_id)
    status = "failed"
    try:
        # a sequence of short units of work: the reads below, one per batch of results (the
        # write lock is never held while files are decoded), then the grouping
        writer = _Writer(workspace, run_id, report, commit_every)
        candidates: list[tuple[str, int, int]] = []
        walk_errors: list[FileError] = []
        for path, err in walk_images(roots):
            if err is not None:
                walk_errors.append(err)
                continue
            try:
                st = os.stat(path)
            except OSError as exc:
                walk_errors.append(FileError(path, classify_os_error(exc), os_error_message(exc)))
                continue
            candidates.append((path, st.st_size, st.st_mtime_ns))
        report.n_files = len(candidates) + len(walk_errors)
        with workspace.unit() as uow:
            known_paths = {
                p: (size, mtime)
                for p, size, mtime in uow.session.execute(
                    select(ImagePath.path, ImagePath.size, ImagePath.mtime_ns)
                    .join(Image, Image.id == ImagePath.image_id)
                    .where(Image.status == "ok")
                )
            }
        tasks = []
        for path, size, mtime in candidates:
            if not is_storable(path):  # not valid UTF-8: recorded escaped, never decoded
                walk_errors.append(FileError(path, "bad-file-name", BAD_FILE_NAME_MESSAGE))
            elif known_paths.get(path) == (size, mtime):
                report.n_unchanged += 1
            else:
                tasks.append((path, size, mtime))
        with workspace.unit() as uow:
            known_hashes = frozenset(
                h for (h,) in uow.session.execute(select(Image.sha256).where(Image.sha256.is_not(None)))
            )
        total = report.n_files
        done = report.n_unchanged
        for err in walk_errors:
            writer.error(err.path, err.reason, err.message)
            done += 1
        if progress:
            progress(done, total)
        init = (
            settings.max_pixels,
            settings.thumbnail_side,
            settings.stats_side,
            str(workspace.objects.root),
            known_hashes,
        )

        def cost(path: str) -> int:
            return decode_memory(path, max_side=settings.stats_side, max_pixels=settings.max_pixels)

        results = (
            scanner(tasks, init)
            if scanner is not None
            else _run_tasks(tasks, workers=n_workers, init_args=init, budget_bytes=memory_budget_mb << 20, cost=cost)
        )
        for result in results:
            writer.add(result)
            done += 1
            if progress:
                progress(done, total)
        writer.flush()
        if group == "filename":
            # from the catalog's state, not from this run's files: a run killed before
            # it grouped leaves its images for the next run over the same folders
            with workspace.unit() as uow:
                ungrouped = ungrouped_images_under(uow, abs_roots)
                if ungrouped:
                    report.n_scenes = assign_scenes_by_filename(uow, ungrouped)
        status = "done"
    finally:
        report.seconds = time.monotonic() - t0
        try:
            with workspace.unit() as uow:
                uow.session.execute(
                    update(IngestRun)
                    .where(IngestRun.id == run_id)
                    .values(
                        status=status,
                        finished_at=utcnow(),
                        n_files=report.n_files,
                        n_new=report.n_new,
                        n_duplicate=report.n_duplicate,
                        n_unchanged=report.n_unchanged,
                        n_errors=report.n_errors,
                    )
                )
        finally:
            lock.release()  # after the row says how the run ended
    return report
