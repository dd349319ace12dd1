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

from ._ray_runtime import RayCluster, check_shared_storage, require_ray

__all__ = ["ingest_ray"]

_READY: dict[str, bool] = {}  # run tokens this worker process is set up for


def _scan_batch(batch: dict[str, np.ndarray], *, token: str, init_args: tuple) -> dict[str, Any]:
    """A Ray task: hash and decode a batch of ``(path, size, mtime_ns)`` tasks (never raises for a file)."""
    from iea_data.workflows.catalog import init_scan_worker, scan_files

    if token not in _READY:
        init_scan_worker(*init_args)
        _READY.clear()
        _READY[token] = True
    tasks = [(str(p), int(s), int(m)) for p, s, m in zip(batch["path"], batch["size"], batch["mtime_ns"])]
    # the results are dicts of plain values; pickled whole so that nothing is lost on the way
    return {"result": np.asarray([pickle.dumps(r) for r in scan_files(tasks)], dtype=object)}


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
            fn_kwargs={"token": uuid.uuid4().hex, "init_args": init_args},
            num_cpus=1,
        )
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            for raw in batch["result"]:
                yield pickle.loads(raw)

    report = ingest(ws, roots, workers=max(1, int(cluster.cpus)), group=group, progress=progress, scanner=scanner)
    return report
