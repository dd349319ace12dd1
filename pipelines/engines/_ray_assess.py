"""``iea assess --engine ray``: decoding tasks, model actors that score, and a Parquet dataset of rows.

One row per photo (:func:`iea_data.workflows.assess.result_row`): path, sha256, error (empty
when scored), size, mean and mean |residual|, then each rule base's score, level, condition,
under/over fractions and region. An unreadable file is a row with its error, never a failed
job. The rows stream back to the driver (for the progress bar and the summary) and are
written with Ray's Parquet writer into a folder of ``.parquet`` files, readable by pandas,
DuckDB and pyarrow as one dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from ._ray_journal import JournalDir
from ._ray_model import ActorPlan, model_pipeline, path_dataset, plan_actors
from ._ray_runtime import RayCluster, require_ray

__all__ = ["RayAssessReport", "assess_ray"]

ProgressFn = Callable[[int, int], None]


@dataclass
class RayAssessReport:
    """What ``assess --engine ray`` did: the rows (input order), the Parquet folder, timing."""

    rule_bases: list
    rows: list = field(default_factory=list)
    out: Optional[str] = None
    seconds: float = 0.0
    engine: str = ""

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(r["path"], r["error"]) for r in self.rows if r["error"]]

    @property
    def scored(self) -> list[dict]:
        return [r for r in self.rows if not r["error"]]

    @property
    def images_per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("nan")


def assess_ray(
    paths: Sequence[Any],
    cluster: RayCluster,
    *,
    out: Optional[os.PathLike | str] = None,
    rule_bases: Any = None,
    masks: Any = None,
    heatmaps_dir: Optional[os.PathLike | str] = None,
    model: str = "pieanet",
    weights: Any = "official",
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 8,
    actors: Optional[int] = None,
    max_side: int = 1024,
    progress: Optional[ProgressFn] = None,
) -> RayAssessReport:
    """Assess photos on Ray; write the rows as a Parquet dataset in the folder ``out`` (if given).

    ``heatmaps_dir``: the actors write ``<stem>-<sha256[:10]>.png`` there (on shared storage in a
    cluster), and the rows gain a ``heatmap`` column.
    """
    import ray.data

    from iea_data.core.errors import IeaError
    from iea_data.core.model import PRECISIONS, get_model_cfg
    from iea_data.workflows.assess import expand_paths, resolve_rule_bases, result_row

    require_ray()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if out is not None and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise IeaError(f"--out {os.fspath(out)!r} must be a new or empty folder (a Parquet dataset is written there)")
    if isinstance(masks, (str, os.PathLike)) and not os.path.isdir(masks):
        raise IeaError(f"masks folder {os.fspath(masks)!r} does not exist")
    t0 = time.perf_counter()
    if heatmaps_dir is not None:
        os.makedirs(heatmaps_dir, exist_ok=True)
    rbs = resolve_rule_bases(rule_bases)
    files, walk_errors = expand_paths(paths)
    report = RayAssessReport(rule_bases=rbs)
    rows: dict[int, dict] = {}
    pool: Optional[ActorPlan] = None
    total = len(files) + len(walk_errors)
    if progress:
        progress(0, total)
    # which file killed a worker, across Ray's retries: beside the outputs (shared storage in a cluster)
    journal = JournalDir(
        out if out is not None else heatmaps_dir if heatmaps_dir is not None else tempfile.gettempdir()
    )
    try:
        if files:
            cfg = get_model_cfg(model)
            pool = plan_actors(actors, cluster.cpus, cluster.gpus, nodes=cluster.nodes, memory=cluster.memory)
            scored = model_pipeline(
                path_dataset(files, batch_size),
                pool,
                batch_size=batch_size,
                max_side=max_side,
                input_size=cfg.input_size,
                journal=journal.path,
                model_name=model,
                weights=weights,
                device=device,
                precision=precision,
                finish="assess",
                rule_bases=rbs,
                masks=masks,
                heatmaps_dir=os.path.abspath(heatmaps_dir) if heatmaps_dir is not None else None,
            )
            # prefetch_batches=0: each result as soon as its batch is done (Ray Data's default of one
            # prefetched batch holds every result back until the next batch is done, the first included)
            for batch in scored.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                for k, raw in zip(batch["i"].tolist(), batch["row"]):
                    rows[k] = json.loads(str(raw))
                if progress:
                    progress(len(rows), total)
    finally:
        journal.remove()
    extra = {"heatmap": None} if heatmaps_dir is not None else {}
    report.rows = [rows[k] for k in sorted(rows)] + [{**result_row(p, rbs, error=e), **extra} for p, e in walk_errors]
    if progress:
        progress(len(report.rows), total)
    if out is not None and report.rows:
        import pyarrow as pa

        table = pa.Table.from_pylist(report.rows)
        ray.data.from_arrow(table).write_parquet(os.fspath(out))
        report.out = os.fspath(out)
    report.seconds = time.perf_counter() - t0
    report.engine = f"ray ({pool.describe() if pool else 'no photos'}; {cluster.describe()})"
    return report
