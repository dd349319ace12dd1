"""The pieces of a Ray Data pipeline that runs the model: decoding tasks and model actors.

Decoding (CPU) runs in plain Ray tasks, ahead of the model; the model runs in a pool of
stateful actors (one model load per actor, ``num_gpus=1`` each where the cluster has GPUs),
Ray Data's batch-inference recipe. Both sides call the library's own functions
(:class:`iea_data.core.model.ImageFileDataset` items, :func:`iea_data.core.model.predict_batch`),
so the maps are those of the local engine.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._ray_journal import CRASHED_KIND, CRASHED_MESSAGE, CrashJournal

__all__ = [
    "ActorPlan",
    "plan_actors",
    "decode_batch",
    "ModelActor",
    "model_actor",
    "model_pipeline",
    "ACTOR_PID_DIR_ENV",
]

#: Test hook: a folder where each model actor writes a file named by its process id.
ACTOR_PID_DIR_ENV = "IEA_TEST_ACTOR_PID_DIR"


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors, with what resources each, and the decoding tasks' CPU share."""

    actors: int
    num_cpus: float
    num_gpus: float
    decode_cpus: float
    torch_threads: int

    def describe(self) -> str:
        gpu = f", {self.num_gpus:g} GPU" if self.num_gpus else ""
        return f"{self.actors} model actor(s) ({self.num_cpus:g} CPU{gpu} each)"


def plan_actors(actors: Optional[int], cpus: float, gpus: float) -> ActorPlan:
    """Actor pool size and resources for a cluster of ``cpus`` CPUs and ``gpus`` GPUs.

    GPUs: one actor per GPU (default: all of them), ``num_gpus=1`` and one CPU each. CPU only:
    default one actor; the actors share the CPUs but a quarter CPU per decoding task, so that
    decoding always has room to run ahead of the model.

    Examples
    --------
    >>> plan_actors(None, 2, 0)
    ActorPlan(actors=1, num_cpus=1.5, num_gpus=0, decode_cpus=0.25, torch_threads=2)
    >>> plan_actors(None, 64, 8).actors, plan_actors(2, 2, 0).num_cpus
    (8, 0.75)
    """
    if actors is not None and actors < 1:
        raise ValueError(f"--actors must be >= 1, got {actors}")
    if gpus >= 1:
        n = actors or int(gpus)
        return ActorPlan(n, 1.0, 1, 1.0, max(1, int(cpus // max(n, 1)) - 1))
    n = actors or 1
    decode = 0.25
    per = max(0.25, (cpus - 2 * decode) / n)
    per = max(0.25, int(per * 4) / 4)  # Ray's fractional resources: quarters
    return ActorPlan(n, per, 0, decode, max(1, int(round(cpus / n)) if n <= cpus else 1))


def decode_batch(
    batch: dict[str, np.ndarray], *, max_side: int, input_size: tuple[int, int], journal: Optional[str] = None
) -> dict[str, Any]:
    """A Ray task: decode a batch of files into network inputs (or errors), with each file's sha256.

    ``batch["path"]``; a path ending in ``.npy`` is a residual map (assessment), passed through
    for the actor to load. Output columns: ``i``, ``path``, ``x`` (N, 3, H, W) float32,
    ``height``, ``width`` (label resolution), ``error``, ``is_map``, ``sha256``. ``journal``: the
    run's :class:`~._ray_journal.JournalDir` path; a file an earlier attempt of this task died on
    comes back as a ``worker-crashed`` error instead of being decoded again.
    """
    from iea_data.core.model import ImageFileDataset

    paths = [str(p) for p in batch["path"]]
    ds = ImageFileDataset(paths, max_side, input_size)
    empty = np.zeros((3, *input_size), np.float32)
    crashed = (empty, 0, 0, f"{CRASHED_KIND}: {CRASHED_MESSAGE}", False, "")
    rows = []  # (x, height, width, error, is_map, sha256) per file
    crash = CrashJournal(journal, paths) if journal else None
    for i, p in enumerate(paths):
        if crash is None:
            rows.append(_decode_one(ds, i, p, empty))
        elif crash.is_culprit(p):
            rows.append(crashed)
        else:
            crash.start(p)
            rows.append(_decode_one(ds, i, p, empty))
            crash.done()
    if crash is not None:
        crash.close()
    xs, hs, ws, errs, maps, shas = zip(*rows) if rows else ((),) * 6
    return {
        "i": np.asarray(batch["i"], np.int64),
        "path": np.asarray(paths, dtype=object),
        "x": np.stack(xs).astype(np.float32) if xs else np.zeros((0, 3, *input_size), np.float32),
        "height": np.asarray(hs, np.int64),
        "width": np.asarray(ws, np.int64),
        "error": np.asarray(errs, dtype=object),
        "is_map": np.asarray(maps, bool),
        "sha256": np.asarray(shas, dtype=object),
    }


def _decode_one(ds, i: int, path: str, empty: np.ndarray) -> tuple:
    """(x, height, width, error, is_map, sha256) of item ``i`` of ``ds``; a ``.npy`` map passes through."""
    sha = _sha256(path)
    if path.endswith(".npy"):
        return empty, 0, 0, "", True, sha
    _, x, shape, err = ds[i]
    return x.numpy(), int(shape[0]), int(shape[1]), err, False, sha


def model_pipeline(
    ds: Any,
    pool: ActorPlan,
    *,
    batch_size: int,
    max_side: int,
    input_size: tuple[int, int],
    journal: str,
    model_name: str,
    weights: Any,
    device: str,
    precision: str,
    **finish: Any,
) -> Any:
    """Ray Data's batch-inference recipe on ``ds`` (rows ``i``, ``path``): decoding tasks, then model actors.

    ``finish`` is the actors' finishing step and its settings (:class:`ModelActor`): ``finish="label"``
    with ``objects_root``, or ``finish="assess"`` with ``rule_bases``, ``masks``, ``heatmaps_dir``.
    """
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        decode_batch,
        batch_size=batch_size,
        fn_kwargs={"max_side": max_side, "input_size": tuple(input_size), "journal": journal},
        num_cpus=pool.decode_cpus,
    ).map_batches(
        model_actor(
            model_name=model_name,
            weights=weights,
            device="cuda" if pool.num_gpus else ("cpu" if device == "auto" else device),
            precision=precision,
            torch_threads=pool.torch_threads,
            **finish,
        ),
        batch_size=batch_size,
        compute=ActorPoolStrategy(size=pool.actors),
        num_cpus=pool.num_cpus,
        num_gpus=pool.num_gpus or None,
    )


def _sha256(path: str) -> str:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return ""


def model_actor(**config: Any) -> type:
    """A :class:`ModelActor` class carrying ``config`` (its constructor's keywords) with it.

    The configuration travels with the class itself rather than as constructor arguments in
    Ray's object store, so that an actor Ray restarts after its process died always finds them.
    """
    return type("ModelActor", (ModelActor,), {"CONFIG": dict(config)})


class ModelActor:
    """A Ray actor holding one model: runs it on decoded batches, then ``finish`` per item.

    ``finish`` is ``"label"`` (pre-labels: the map goes to the workspace's object store from
    here and a :class:`~iea_data.workflows.labels.StoredMap` comes back) or ``"assess"`` (the
    rule bases' scores, one flat row per photo). Made with :func:`model_actor`.
    """

    CONFIG: dict[str, Any] = {}

    def __init__(self) -> None:
        self._setup(**self.CONFIG)

    def _setup(
        self,
        *,
        model_name: str,
        weights: Any,
        device: str,
        precision: str,
        torch_threads: int,
        finish: str,
        objects_root: Optional[str] = None,
        rule_bases: Any = None,
        masks: Any = None,
        heatmaps_dir: Optional[str] = None,
    ):
        import torch

        from iea_data.core.model import create_model, resolve_precision

        torch.set_num_threads(max(1, torch_threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.prec = resolve_precision(precision, device)
        self.model = create_model(model_name, weights=weights, device=device).eval()
        if device.startswith("cuda"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.finish = finish
        self.rule_bases = rule_bases
        self.masks = masks
        self.heatmaps_dir = heatmaps_dir
        self.objects = None
        if objects_root is not None:
            from iea_data.store.objects import ObjectStore

            self.objects = ObjectStore(objects_root)
        # precision provenance as the local engine records it, plus where it ran
        self.provenance = json.dumps(
            {"device": str(device), **self.prec.to_provenance(), "_ran": f"{self.prec.name} ({self.prec.reason})"},
            sort_keys=True,
            default=str,
        )
        pid_dir = os.environ.get(ACTOR_PID_DIR_ENV)
        if pid_dir:
            open(os.path.join(pid_dir, str(os.getpid())), "w").close()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from iea_data.core.model import predict_batch

        errs = [str(e) for e in batch["error"]]
        is_map = [bool(m) for m in batch["is_map"]]
        shapes = list(zip(batch["height"].tolist(), batch["width"].tolist()))
        photo = [j for j in range(len(errs)) if not is_map[j]]
        out: dict[int, tuple[Optional[np.ndarray], str]] = {}
        if photo:
            preds = predict_batch(
                self.model,
                np.asarray(batch["x"])[photo],
                [shapes[j] for j in photo],
                [errs[j] for j in photo],
                device=self.device,
                dtype=self.prec.dtype,
            )
            out.update(zip(photo, preds))
        for j in range(len(errs)):
            if is_map[j]:
                out[j] = self._load_map(str(batch["path"][j]))
        if self.finish == "label":
            return self._labels(batch, out)
        return self._rows(batch, out)

    @staticmethod
    def _load_map(path: str) -> tuple[Optional[np.ndarray], str]:
        from iea_data.core.errors import IeaError
        from iea_data.workflows.assess import load_residual

        try:
            return load_residual(path), ""
        except IeaError as exc:
            return None, str(exc)

    def _labels(self, batch, out) -> dict[str, Any]:
        from iea_data.workflows.labels import store_label_map

        keys, hs, ws, stats, errors = [], [], [], [], []
        for j in range(len(batch["i"])):
            residual, err = out[j]
            key, h, w, st = "", 0, 0, "{}"
            if not err and residual is not None:
                try:
                    stored = store_label_map(self.objects, residual)
                    key, h, w, st = stored.map_object, stored.height, stored.width, json.dumps(dict(stored.stats))
                except (OSError, ValueError) as exc:
                    err = str(exc)
            keys.append(key)
            hs.append(h)
            ws.append(w)
            stats.append(st)
            errors.append(err or ("" if residual is not None else "no map was computed"))
        return {
            "i": np.asarray(batch["i"], np.int64),
            "map_object": np.asarray(keys, dtype=object),
            "height": np.asarray(hs, np.int64),
            "width": np.asarray(ws, np.int64),
            "stats": np.asarray(stats, dtype=object),
            "error": np.asarray(errors, dtype=object),
            "provenance": np.asarray([self.provenance] * len(keys), dtype=object),
        }

    def _rows(self, batch, out) -> dict[str, Any]:
        from iea_data.core.errors import IeaError
        from iea_data.workflows.assess import result_row, score_residual, write_heatmap

        rows = []
        for j in range(len(batch["i"])):
            path, sha = str(batch["path"][j]), str(batch["sha256"][j]) or None
            residual, err = out[j]
            if err or residual is None:
                row = result_row(path, self.rule_bases, sha256=sha, error=err or "no map was computed")
                rows.append({**row, "heatmap": None} if self.heatmaps_dir is not None else row)
                continue
            try:
                res = score_residual(path, residual, self.rule_bases, masks=self.masks)
                if self.heatmaps_dir is not None:
                    # named by content too: actors on other nodes cannot see each other's names
                    stem = f"{os.path.splitext(os.path.basename(path))[0]}-{(sha or 'nosha')[:10]}"
                    res.heatmap = str(
                        write_heatmap(path, residual, res.scores, os.path.join(self.heatmaps_dir, f"{stem}.png"))
                    )
                row = result_row(path, self.rule_bases, res, sha256=sha)
                row["heatmap"] = res.heatmap
                rows.append(row)
            except IeaError as exc:
                row = result_row(path, self.rule_bases, sha256=sha, error=str(exc))
                rows.append({**row, "heatmap": None} if self.heatmaps_dir is not None else row)
        return {
            "i": np.asarray(batch["i"], np.int64),
            "row": np.asarray([json.dumps(r) for r in rows], dtype=object),
        }
