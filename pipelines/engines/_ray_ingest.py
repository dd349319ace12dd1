"""``iea ingest --engine ray``: the library's ingest with Ray tasks doing the hashing and decoding.

:func:`iea_data.workflows.catalog.ingest` walks, skips unchanged files, commits the results
in transactions as they stream in and groups the scenes, exactly as with the local pool; only
its decoding step (``scanner``) runs as Ray tasks, each process set up once with the run's
limits and the hashes the catalog already knows. Thumbnails go to the object store from the
tasks (the workspace must be on shared storage).
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional

import numpy as np

from ._ray_journal import CRASHED_KIND, CRASHED_MESSAGE, CrashJournal, JournalDir
from ._ray_runtime import RayCluster, check_shared_storage, require_ray

__all__ = ["ingest_ray"]

_READY: dict[str, bool] = {}  # run tokens this worker process is set up for


def _scan_batch(
    batch: dict[str, np.ndarray], *, token: str, init_args: tuple, journal: Optional[str] = None
) -> dict[str, Any]:
    """A Ray task: hash and decode a batch of ``(path, size, mtime_ns)`` tasks (never raises for a file).

    ``journal``: the run's :class:`~._ray_journal.JournalDir` path; a file an earlier attempt of this
    task died on becomes a ``worker-crashed`` error row instead of being decoded again.
    """
    from iea_data.workflows.catalog import init_scan_worker, scan_files

    if token not in _READY:
        init_scan_worker(*init_args)
        _READY.clear()
        _READY[token] = True
    tasks = [(str(p), int(s), int(m)) for p, s, m in zip(batch["path"], batch["size"], batch["mtime_ns"])]
    crash = CrashJournal(journal, [t[0] for t in tasks]) if journal else None
    results = []
    for task in tasks:
        if crash is None:
            results.extend(scan_files([task]))
        elif crash.is_culprit(task[0]):
            results.append(
                {"path": task[0], "size": task[1], "mtime_ns": task[2], "error": (CRASHED_KIND, CRASHED_MESSAGE)}
            )
        else:
            crash.start(task[0])
            results.extend(scan_files([task]))
            crash.done()
    if crash is not None:
        crash.close()
    # the results are dicts of plain values; pickled whole so that nothing is lost on the way
    return {"result": np.asarray([pickle.dumps(r) for r in results], dtype=object)}


def ingest_ray(
    ws,
    roots: Sequence[Any],
    cluster: RayCluster,
    *,
    group: str = "filename",
    batch_size: int = 16,
    progress: Optional[Callable[[int, int], None]] = None,
):
    """Ingest on Ray; returns the library's :class:`~iea_data.workflows.catalog.IngestReport`."""
    import ray.data

    from iea_data.workflows.catalog import ingest

    require_ray()
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    check_shared_storage(ws.root)

    def scanner(tasks: Sequence[tuple[str, int, int]], init_args: tuple) -> Iterator[dict]:
        if not tasks:
            return
        ds = ray.data.from_items([{"path": p, "size": s, "mtime_ns": m} for p, s, m in tasks])
        out = ds.map_batches(
            _scan_batch,
            batch_size=batch_size,
            fn_kwargs={"token": uuid.uuid4().hex, "init_args": init_args, "journal": journal.path},
            num_cpus=1,
        )
        # prefetch_batches=0: each result as soon as its batch is done (Ray Data's default of one
        # prefetched batch holds every result back until the next batch is done, the first included)
        for batch in out.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
            for raw in batch["result"]:
                yield pickle.loads(raw)

    journal = JournalDir(ws.root)  # which file killed a worker, across Ray's retries
    try:
        return ingest(ws, roots, workers=max(1, int(cluster.cpus)), group=group, progress=progress, scanner=scanner)
    finally:
        journal.remove()
