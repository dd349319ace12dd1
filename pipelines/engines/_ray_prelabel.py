"""``iea prelabel --engine ray``: the library's plan → compute → commit, with Ray doing the compute.

The driver plans (what is missing), Ray computes (decoding tasks and model actors, or
reference-difference tasks) and writes each map to the workspace's object store, and the
driver commits each streamed batch of results in one unit of work
(:func:`iea_data.workflows.labels.commit_prelabels`, idempotent). A job killed at any point
leaves whole label rows; a re-run plans only what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from ._ray_journal import CRASHED_KIND, CRASHED_MESSAGE, CrashJournal, JournalDir
from ._ray_model import ActorPlan, model_pipeline, path_dataset, plan_actors
from ._ray_runtime import RayCluster, check_shared_storage, require_ray

__all__ = ["prelabel_ray"]

ProgressFn = Callable[[int, int], None]


def _refdiff_batch(
    batch: dict[str, np.ndarray], *, objects_root: str, max_side: int, align: bool, journal: Optional[str] = None
) -> dict[str, Any]:
    """A Ray task: reference differences of a batch of items (one decoded reference per scene).

    ``journal``: as in :func:`~._ray_model.decode_batch` (an item an earlier attempt died on is an error).
    """
    from iea_data.store.objects import ObjectStore
    from iea_data.workflows.labels import PrelabelItem, PrelabelResult, refdiff_result

    objects = ObjectStore(objects_root)
    cache: dict = {}
    keys, hs, ws, stats, errors, params = [], [], [], [], [], []
    raws = [str(raw) for raw in batch["item"]]
    crash = CrashJournal(journal, raws) if journal else None
    for raw in raws:
        item = PrelabelItem(**json.loads(raw))
        if crash is not None and crash.is_culprit(raw):
            r = PrelabelResult(item, None, f"{CRASHED_KIND}: {CRASHED_MESSAGE}", {})
        else:
            if crash is not None:
                crash.start(raw)
            r = refdiff_result(item, objects, max_side=max_side, align=align, cache=cache)
            if crash is not None:
                crash.done()
        s = r.stored
        keys.append(s.map_object if s else "")
        hs.append(s.height if s else 0)
        ws.append(s.width if s else 0)
        stats.append(json.dumps(dict(s.stats)) if s else "{}")
        errors.append(r.error)
        params.append(json.dumps(dict(r.params)))
    if crash is not None:
        crash.close()
    return {
        "i": np.asarray(batch["i"], np.int64),
        "map_object": np.asarray(keys, dtype=object),
        "height": np.asarray(hs, np.int64),
        "width": np.asarray(ws, np.int64),
        "stats": np.asarray(stats, dtype=object),
        "error": np.asarray(errors, dtype=object),
        "params": np.asarray(params, dtype=object),
    }


def prelabel_ray(
    ws,
    cluster: RayCluster,
    *,
    method: str = "model",
    model_name: str = "pieanet",
    weights: Any = "official",
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 8,
    actors: Optional[int] = None,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    align: bool = False,
    redo: bool = False,
    progress: Optional[ProgressFn] = None,
):
    """Pre-label on Ray; returns the library's :class:`~iea_data.workflows.labels.PrelabelReport`.

    Labels carry the local engine's provenance plus ``engine: "ray"`` and ``ray_actors`` /
    ``ray_nodes`` (the cluster size).
    """
    import ray.data

    from iea_data.workflows.labels import (
        ModelRun,
        PrelabelReport,
        PrelabelResult,
        StoredMap,
        commit_prelabels,
        plan_prelabel,
    )

    require_ray()
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    check_shared_storage(ws.root)
    plan = plan_prelabel(ws, method, model_name=model_name, scene=scene, split=split, redo=redo)
    items = plan.items
    max_side = ws.settings.label_max_side
    objects_root = str(ws.objects.root)
    journal = JournalDir(ws.root)  # which file killed a worker, across Ray's retries
    try:
        pool: Optional[ActorPlan] = None
        if method == "refdiff":
            # variants of one scene next to each other: each task decodes a reference once
            order = sorted(range(len(items)), key=lambda k: (items[k].reference_image_id or 0, items[k].target_id or 0))
            ds = ray.data.from_items([{"i": k, "item": json.dumps(vars(items[k]))} for k in order])
            out = ds.map_batches(
                _refdiff_batch,
                batch_size=batch_size,
                fn_kwargs={"objects_root": objects_root, "max_side": max_side, "align": align, "journal": journal.path},
                num_cpus=1,
            )
            extra = {"engine": "ray", "ray_nodes": cluster.nodes}
            report = plan.report()
        else:
            from iea_data.core.model import get_model_cfg
            from iea_data.workflows.labels import model_run

            cfg = get_model_cfg(model_name)
            pool = plan_actors(actors, cluster.cpus, cluster.gpus, nodes=cluster.nodes, memory=cluster.memory)
            out = model_pipeline(
                path_dataset([it.path for it in items], batch_size),
                pool,
                batch_size=batch_size,
                max_side=max_side,
                input_size=cfg.input_size,
                journal=journal.path,
                model_name=model_name,
                weights=weights,
                device=device,
                precision=precision,
                finish="label",
                objects_root=objects_root,
            )
            extra = {
                "engine": "ray",
                "ray_actors": pool.actors,
                "ray_nodes": cluster.nodes,
                "ray_decode": "actor" if pool.decode_in_actor else "tasks",
            }
            base = model_run(model_name, weights, "cpu", _fp32())
            report = PrelabelReport("model", plan.n_selected, 0, plan.n_skipped, list(plan.errors))
        total = len(items)
        done = 0
        if progress:
            progress(0, total)
        if total:
            # prefetch_batches=0: each result as soon as its batch is done (Ray Data's default of one
            # prefetched batch holds every result back until the next batch is done, the first included)
            for batch in out.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                run = None
                if method == "model":
                    prov = json.loads(str(batch["provenance"][0]))
                    ran = prov.pop("_ran")
                    run = ModelRun(base.model_name, base.weights_sha256, {**base.params, **prov})
                    report.precision = report.precision or ran
                results = []
                for j, k in enumerate(batch["i"].tolist()):
                    err = str(batch["error"][j])
                    stored = (
                        None
                        if err
                        else StoredMap(
                            str(batch["map_object"][j]),
                            int(batch["height"][j]),
                            int(batch["width"][j]),
                            json.loads(str(batch["stats"][j])),
                        )
                    )
                    params = json.loads(str(batch["params"][j])) if "params" in batch else {}
                    results.append(PrelabelResult(items[k], stored, err, params))
                commit_prelabels(ws, results, report, model=run, extra_params=extra)
                done += len(results)
                if progress:
                    progress(done, total)
    finally:
        journal.remove()
    report.engine = f"ray ({pool.describe() if pool else 'reference-difference tasks'}; {cluster.describe()})"
    return report


def _fp32():
    from iea_data.core.model import resolve_precision

    return resolve_precision("fp32", "cpu")
