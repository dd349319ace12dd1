"""The benchmark runner: every method over one split, every metric, per image and per method."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from iea_data.core.errors import IeaError
from iea_data.core.imaging import resize_image, resize_map
from iea_data.core.metrics import MetricInputError, create, list_metrics

from ._methods import Method, create_method
from ._scoring import score_mappings

__all__ = ["BenchmarkResult", "run_benchmark", "collate_items"]

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, int], None]]

#: Long side of the example thumbnails kept for the heatmap grid.
EXAMPLE_SIDE = 160


@dataclass
class BenchmarkResult:
    """Everything a benchmark run measured.

    Attributes
    ----------
    methods : list of str
        Method labels in run order (skipped ones included).
    method_info : dict
        label -> ``{"kind", "description", "params", "status", "reason", "images_per_s", "notes"}``;
        ``status`` is ``"ok"``, ``"partial"`` (some images failed) or ``"skipped"``.
    per_image : pandas.DataFrame
        One row per (method, image): ``method, image_id, name, scene, true_score`` and each
        map metric, ``pred_score[<mapping>]`` and ``true_score[<mapping>]``.
    table : pandas.DataFrame
        One row per method that ran: map metrics (mean over images), score metrics per
        mapping (``srcc@mean_abs``), ``images_per_s``.
    metrics : list of str
        Metric names used.
    mappings : list of str
        Score mappings used.
    true_score_source : str
        ``"dataset"`` when every image has a score, else ``"mapping of the true map"``.
    n_images : int
    errors : list of tuple
        ``(method, image name, message)`` for every failed prediction.
    examples : list of dict
        For the heatmap grid: ``name``, ``photo`` (uint8 thumbnail), ``target`` and
        ``pred`` (label -> map), maps at the thumbnail's size.
    """

    methods: list[str]
    method_info: dict[str, dict[str, Any]]
    per_image: Any
    table: Any
    metrics: list[str]
    mappings: list[str]
    true_score_source: str
    n_images: int
    errors: list[tuple] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        """The summary as plain JSON-able data (no per-image rows or pictures)."""
        rows = []
        for rec in self.table.to_dict(orient="records"):
            rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()})
        return {
            "n_images": self.n_images,
            "metrics": self.metrics,
            "mappings": self.mappings,
            "true_score_source": self.true_score_source,
            "methods": {k: {kk: vv for kk, vv in v.items()} for k, v in self.method_info.items()},
            "table": rows,
            "errors": [list(e) for e in self.errors],
        }


def _to_hwc(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    # resized images round a little past [0, 1] (antialiased filters); larger excursions are errors
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"item image must lie in [0, 1]; got min {lo:.6g}, max {hi:.6g}")
    return np.ascontiguousarray(np.clip(a, 0.0, 1.0))


def _to_map(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"item residual must be (1, H, W) or (H, W); got shape {a.shape}")
    return a


def collate_items(items: list[dict]) -> dict:
    """DataLoader collate for release items of any sizes: lists of NumPy arrays.

    Parameters
    ----------
    items : list of dict
        Each with ``image`` (3, H, W) float32 in [0, 1] (tensor or array), ``residual``
        (1, H, W) in [-1, 1], and optionally ``score``, ``image_id``, ``name``, ``scene``,
        ``reference`` (3, H, W).

    Returns
    -------
    dict
        ``image``: list of float32 (H, W, 3); ``residual``: list of float32 (H, W);
        ``score``: list of float (NaN when absent); ``reference``: list (None when absent);
        ``image_id``, ``name``, ``scene``: lists.

    Examples
    --------
    >>> b = collate_items([{"image": np.zeros((3, 2, 2), np.float32), "residual": np.zeros((1, 2, 2), np.float32)}])
    >>> b["image"][0].shape, b["score"], b["name"]
    ((2, 2, 3), [nan], ['0'])
    """
    out: dict[str, list] = {k: [] for k in ("image", "residual", "score", "reference", "image_id", "name", "scene")}
    for i, it in enumerate(items):
        out["image"].append(_to_hwc(it["image"]))
        out["residual"].append(_to_map(it["residual"]))
        s = it.get("score")
        out["score"].append(float("nan") if s is None else float(s))
        ref = it.get("reference")
        out["reference"].append(None if ref is None else _to_hwc(ref))
        out["image_id"].append(it.get("image_id"))
        out["name"].append(str(it.get("name", it.get("image_id", i))))
        out["scene"].append(it.get("scene"))
    return out


def _loader(data, batch_size: int, num_workers: int):
    """Batches of collated items: a torch DataLoader when torch is importable."""
    try:
        from torch.utils.data import DataLoader, IterableDataset
    except ImportError:  # pragma: no cover - torch is a dependency
        items = list(data)
        return (collate_items(items[i : i + batch_size]) for i in range(0, len(items), batch_size)), len(items)
    total = len(data) if hasattr(data, "__len__") else 0
    if not hasattr(data, "__getitem__") and not isinstance(data, IterableDataset):
        data = list(data)
        total = len(data)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_items)
    return loader, total


def _thumb(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(1.0, EXAMPLE_SIDE / max(h, w))
    return resize_image(img, (max(1, round(h * s)), max(1, round(w * s))))


def _build_methods(methods, device: Optional[str]) -> list[Method]:
    out = []
    for m in methods:
        if isinstance(m, Method):
            out.append(m)
            continue
        from ._methods import CHECKPOINT_PREFIX, get_method_cfg

        base = "pieanet" if m.startswith(CHECKPOINT_PREFIX) else m
        kw = {"device": device} if device and "device" in get_method_cfg(base).params else {}
        out.append(create_method(m, **kw))
    labels = [m.label for m in out]
    if len(set(labels)) != len(labels):
        raise IeaError(f"methods must be distinct; got {labels}")
    return out


def run_benchmark(
    data: Iterable[dict],
    methods: Sequence[Union[str, Method]],
    *,
    metrics: Optional[Sequence[str]] = None,
    mappings: Optional[Sequence[str]] = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: Optional[str] = None,
    n_examples: int = 4,
    progress: Progress = None,
) -> BenchmarkResult:
    """Run methods over a dataset and compute every metric.

    Parameters
    ----------
    data : dataset or iterable of dict
        Items as :class:`iea_data.workflows.releases.ReleaseDataset` returns them (see
        :func:`collate_items`); read through a ``torch.utils.data.DataLoader``.
    methods : sequence of str or Method
        Registry names, ``"checkpoint:PATH"``, or built :class:`Method` objects.
    metrics : sequence of str, optional
        Metric names (default: every registered metric).
    mappings : sequence of str, optional
        Score mappings for the score metrics (default: ``mean_abs`` and every rule base).
    batch_size : int, optional
        Images per batch.
    num_workers : int, optional
        DataLoader worker processes.
    device : str, optional
        Device for methods that take one (P-IEANet); ``"auto"``: CUDA when available.
    n_examples : int, optional
        Images kept (as thumbnails) for the heatmap grid.
    progress : callable, optional
        ``progress(done, total)`` after each batch (``total`` 0 when unknown).

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    IeaError
        Unknown method, metric or mapping; an empty dataset.

    Notes
    -----
    Each method's maps are clipped to [-1, 1] (the label range) and resized to the
    label's size when they differ. A method that fails on a batch is retried image by
    image; images that still fail are recorded in ``errors`` and left out of its metrics.
    A method that needs references is skipped (status ``"skipped"``) where items carry
    none. Throughput counts the time inside the method's calls only.

    Examples
    --------
    >>> item = {"image": np.full((3, 8, 8), 0.25, np.float32),
    ...         "residual": np.full((1, 8, 8), -0.25, np.float32), "name": "a"}
    >>> item2 = {"image": np.full((3, 8, 8), 0.75, np.float32),
    ...          "residual": np.full((1, 8, 8), 0.25, np.float32), "name": "b"}
    >>> res = run_benchmark([item, item2], ["zero", "global_offset"], metrics=["mae"], mappings=["mean_abs"])
    >>> res.table.set_index("method")["mae"].round(3).to_dict()
    {'zero': 0.25, 'global_offset': 0.0}
    """
    import pandas as pd

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1; got {batch_size!r}")
    metric_names = list(metrics) if metrics is not None else list_metrics()
    mets = [create(n) for n in metric_names]
    map_mets = [m for m in mets if m.cfg.kind == "map"]
    score_mets = [m for m in mets if m.cfg.kind == "score"]
    maps_fns = score_mappings(mappings)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    built = _build_methods(methods, device)
    if not built:
        raise IeaError("no methods to run; name at least one (see list_methods())")
    info: dict[str, dict[str, Any]] = {
        m.label: {
            "name": m.name,
            "kind": m.cfg.kind,
            "description": m.cfg.description,
            "params": {k: str(v) for k, v in m.cfg.params.items()},
            "status": "ok",
            "reason": "",
            "images_per_s": None,
            "seconds": 0.0,
            "n_ok": 0,
            "notes": [],
        }
        for m in built
    }
    active = {m.label: m for m in built}
    rows: list[dict] = []
    errors: list[tuple] = []
    examples: list[dict] = []
    loader, total = _loader(data, batch_size, num_workers)
    done = 0
    for batch in loader:
        names = batch["name"]
        for label, m in list(active.items()):
            if "reference" in m.cfg.needs and any(r is None for r in batch["reference"]):
                info[label].update(status="skipped", reason="the data has no scene reference for its images")
                log.info("method %s skipped: no references", label)
                del active[label]
        preds: dict[str, list[Optional[np.ndarray]]] = {}
        for label, m in active.items():
            refs = batch["reference"] if "reference" in m.cfg.needs else None
            t0 = time.perf_counter()
            try:
                out: list[Optional[np.ndarray]] = list(m(batch["image"], refs))
            except Exception as exc:
                log.warning("method %s failed on a batch (%s); retrying image by image", label, exc)
                out = []
                for j, img in enumerate(batch["image"]):
                    try:
                        out.append(m([img], None if refs is None else [refs[j]])[0])
                    except Exception as exc1:
                        errors.append((label, names[j], f"{type(exc1).__name__}: {exc1}"))
                        out.append(None)
            info[label]["seconds"] += time.perf_counter() - t0
            preds[label] = out
        for j, name in enumerate(names):
            target = batch["residual"][j]
            true_by_map = {k: f(np.clip(target, -1, 1)) for k, f in maps_fns.items()}
            ex = None
            if len(examples) < n_examples:
                th = _thumb(batch["image"][j])
                shape = th.shape[:2]
                examples.append(
                    {
                        "name": name,
                        "photo": np.round(th * 255).astype(np.uint8),
                        "target": resize_map(np.clip(target, -1, 1).astype(np.float32), shape),
                        "pred": {},
                    }
                )
                ex = examples[-1]
            for label, out in preds.items():
                p = out[j]
                if p is None:
                    continue
                if p.shape != target.shape:
                    p = resize_map(p, target.shape)
                    p = np.clip(p, -1.0, 1.0)
                row = {
                    "method": label,
                    "image_id": batch["image_id"][j],
                    "name": name,
                    "scene": batch["scene"][j],
                    "true_score": batch["score"][j],
                }
                for met in map_mets:
                    try:
                        row[met.name] = float(met(p[None], target[None])[0])
                    except MetricInputError as exc:
                        errors.append((label, name, f"{met.name}: {exc}"))
                        row[met.name] = float("nan")
                for k, f in maps_fns.items():
                    row[f"pred_score[{k}]"] = f(p)
                    row[f"true_score[{k}]"] = true_by_map[k]
                rows.append(row)
                info[label]["n_ok"] += 1
                if ex is not None:
                    ex["pred"][label] = resize_map(p.astype(np.float32), ex["target"].shape)
        done += len(names)
        if progress is not None:
            progress(done, total or done)
    if done == 0:
        raise IeaError("the dataset is empty: nothing to benchmark")

    per_image = pd.DataFrame(rows)
    scores_known = bool(per_image.size) and bool(np.all(np.isfinite(per_image["true_score"].to_numpy(dtype=float))))
    source = "dataset" if scores_known else "mapping of the true map"
    table_rows = []
    for label in info:
        rec = info[label]
        if rec["status"] == "skipped":
            continue
        if rec["n_ok"] < done:
            rec["status"] = "partial" if rec["n_ok"] else "failed"
            rec["reason"] = f"{done - rec['n_ok']} of {done} images failed"
        rec["images_per_s"] = rec["n_ok"] / rec["seconds"] if rec["seconds"] > 0 and rec["n_ok"] else None
        sub = per_image[per_image["method"] == label] if len(per_image) else per_image
        out = {"method": label}
        for met in map_mets:
            out[met.name] = met.aggregate(sub[met.name].to_numpy(dtype=float)) if len(sub) else float("nan")
        for k in maps_fns:
            if not len(sub):
                for met in score_mets:
                    out[f"{met.name}@{k}"] = float("nan")
                continue
            pred = sub[f"pred_score[{k}]"].to_numpy(dtype=float)
            true = (
                sub["true_score"].to_numpy(dtype=float)
                if scores_known
                else sub[f"true_score[{k}]"].to_numpy(dtype=float)
            )
            undefined: dict[str, list[str]] = {}
            for met in score_mets:
                try:
                    out[f"{met.name}@{k}"] = float(met(pred, true))
                except MetricInputError as exc:
                    out[f"{met.name}@{k}"] = float("nan")
                    reason = str(exc).split(" is undefined when ", 1)[-1]
                    undefined.setdefault(reason, []).append(met.name)
            for reason, names in undefined.items():
                rec["notes"].append(f"{'/'.join(names)}@{k} undefined: {reason}")
        out["images_per_s"] = rec["images_per_s"] if rec["images_per_s"] is not None else float("nan")
        table_rows.append(out)
    table = pd.DataFrame(table_rows)
    return BenchmarkResult(
        methods=list(info),
        method_info=info,
        per_image=per_image,
        table=table,
        metrics=metric_names,
        mappings=list(maps_fns),
        true_score_source=source,
        n_images=done,
        errors=errors,
        examples=examples,
    )
