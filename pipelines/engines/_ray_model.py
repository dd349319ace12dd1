"""The pieces of a Ray Data pipeline that runs the model: decoding and model actors.

The model runs in a pool of stateful actors (one model load per actor, ``num_gpus=1`` each
where the cluster has GPUs), Ray Data's batch-inference recipe. Decoding runs either in plain
Ray tasks ahead of the model (GPU actors, or CPUs left free beside the actors' threads), or in
the actor itself, on its threads just before the model runs the batch (CPU-only clusters where
the actors' threads take every CPU): the choice is :attr:`ActorPlan.decode_in_actor`, the
local engine's rule (:func:`iea_data.core.model.predict_files`) applied to the cluster. Both
call the library's own functions (:class:`iea_data.core.model.ImageFileDataset` items,
:func:`iea_data.core.model.predict_batch`), so the maps are those of the local engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._ray_journal import CRASHED_KIND, CRASHED_MESSAGE, CrashJournal

__all__ = [
    "ActorPlan",
    "plan_actors",
    "default_cpu_actors",
    "decode_batch",
    "ModelActor",
    "model_actor",
    "model_pipeline",
    "path_dataset",
    "ACTOR_PID_DIR_ENV",
    "DECODE_IN_ACTOR_ENV",
]

#: Test hook: a folder where each model actor writes a file named by its process id.
ACTOR_PID_DIR_ENV = "IEA_TEST_ACTOR_PID_DIR"

#: CPU-only default: at most this many torch threads per model actor; more CPUs get more actors.
#: Two single-threaded actors on 2 cores ran 1.35x the steady rate of one actor with 2 threads
#: (docs/benchmarks.md, Ray round 4): the network is small (0.6 M parameters), so intra-op threads
#: spend much of each operator at its barrier, and processes do not share one.
CPU_THREADS_PER_ACTOR = 4

#: CPU-only default: node memory to keep per model actor (Ray's ``memory`` resource). Measured:
#: 0.4 GiB peak for the model at batch 8 of 256 x 256, plus the Ray worker and Ray Data's buffers.
ACTOR_MEMORY_BYTES = 1 << 30

#: Environment variable: ``1`` decodes in the model actors, ``0`` in separate tasks (default: :func:`plan_actors`).
DECODE_IN_ACTOR_ENV = "IEA_RAY_DECODE_IN_ACTOR"


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors, with what resources each, and where decoding runs.

    Attributes
    ----------
    actors : int
        Model actors in the pool.
    num_cpus, num_gpus : float
        Ray resources of each actor.
    decode_cpus : float
        Ray CPUs of each decoding task (0 where the actors decode).
    torch_threads : int
        Each actor's intra-op threads (and, where it decodes, its decoding threads).
    decode_in_actor : bool
        Each actor decodes its batches itself, on its threads, just before the model runs them
        (one fused stage), rather than separate decoding tasks running ahead of it.
    decode_reason : str
        Why (for the report).
    """

    actors: int
    num_cpus: float
    num_gpus: float
    decode_cpus: float
    torch_threads: int
    decode_in_actor: bool = False
    decode_reason: str = ""

    def describe(self) -> str:
        gpu = f", {self.num_gpus:g} GPU" if self.num_gpus else ""
        where = "decoding in the actors" if self.decode_in_actor else "decoding in separate tasks"
        return f"{self.actors} model actor(s) ({self.num_cpus:g} CPU{gpu} each; {where})"


def plan_actors(
    actors: Optional[int],
    cpus: float,
    gpus: float,
    *,
    nodes: int = 1,
    memory: Optional[float] = None,
    decode_in_actor: Optional[bool] = None,
) -> ActorPlan:
    """Actor pool size, resources and decoding placement for a cluster of ``cpus`` CPUs and ``gpus`` GPUs.

    GPUs: one actor per GPU (default: all of them), ``num_gpus=1`` and one CPU each; decoding
    runs ahead in separate CPU tasks, so that the GPU is never starved. CPU only: default one
    actor; each actor's torch threads share its node's CPUs with the node's other actors.
    Where the actors' threads take every CPU of a node (always, unless told otherwise), a
    decoding process beside them preempts one of an actor's threads and the others wait for it
    at every operator's barrier (measured on 2 cores: the steady rate 20-26 % below the local
    engine's, docs/benchmarks.md), so each actor decodes its batch itself, on its threads, just
    before the model runs it, as the local engine does (:func:`iea_data.core.model.predict_files`).
    Otherwise the actors share the CPUs but a quarter CPU per decoding task, so that decoding
    always has room to run ahead of the model.

    Parameters
    ----------
    actors : int or None
        Pool size (``--actors``); None for the default.
    cpus, gpus : float
        The cluster's resources.
    nodes : int, optional
        Alive nodes (the CPUs are taken as spread evenly over them), default 1.
    memory : float, optional
        The cluster's memory for tasks and actors in bytes (Ray's ``memory`` resource), spread
        evenly over the nodes like the CPUs; None: not a limit.
    decode_in_actor : bool, optional
        Force the placement of decoding; default the environment variable
        :data:`DECODE_IN_ACTOR_ENV` (``1`` or ``0``) if set, else the rule above.

    Examples
    --------
    >>> plan_actors(None, 2, 0).describe()
    '2 model actor(s) (1 CPU each; decoding in the actors)'
    >>> plan_actors(None, 64, 0, nodes=2, memory=2 * 6 * 2**30).actors  # 6 GiB a node: 6 actors each
    12
    >>> plan_actors(1, 2, 0).torch_threads
    2
    >>> plan_actors(2, 2, 0, decode_in_actor=False).num_cpus
    0.75
    >>> p = plan_actors(None, 64, 8, nodes=8); (p.actors, p.decode_in_actor)
    (8, False)
    >>> plan_actors(None, 0, 0)
    Traceback (most recent call last):
    ...
    iea_data.core.errors.IeaError: the Ray cluster offers no CPU (and no GPU) to the model actors (cpus=0); ...
    """
    if actors is not None and actors < 1:
        raise ValueError(f"--actors must be >= 1, got {actors}")
    if nodes < 1:
        raise ValueError(f"nodes must be >= 1, got {nodes}")
    if gpus < 1 and not cpus > 0:
        from iea_data.core.errors import IeaError

        raise IeaError(
            f"the Ray cluster offers no CPU (and no GPU) to the model actors (cpus={cpus!r}); start its "
            "workers with CPUs (`ray start --num-cpus N`) or point --ray-address at another cluster"
        )
    forced = _forced_decode_in_actor() if decode_in_actor is None else decode_in_actor
    node_cpus = cpus / nodes
    if gpus >= 1:
        n = actors or int(gpus)
        threads = max(1, int(node_cpus // max(1, math.ceil(n / nodes))) - 1)
        fused = bool(forced)
        why = "forced" if forced is not None else "GPU actors: CPU tasks decode ahead of them"
        return ActorPlan(n, 1.0, 1, 0.0 if fused else 1.0, threads, fused, why)
    n = actors or default_cpu_actors(node_cpus, nodes, memory)
    per_node = max(1, math.ceil(n / nodes))  # actors on the fullest node
    threads = max(1, int(round(node_cpus / per_node))) if per_node <= node_cpus else 1
    if forced is None:
        fused = per_node * threads >= node_cpus
        why = (
            "the actors' threads take every CPU: a decoding process beside them would stall them"
            if fused
            else "CPUs left beside the actors' threads: decoding runs ahead in them"
        )
    else:
        fused, why = forced, "forced"
    if fused:
        per = max(0.25, int(node_cpus / per_node * 4) / 4)  # Ray's fractional resources: quarters
        return ActorPlan(n, per, 0, 0.0, threads, True, why)
    decode = 0.25
    per = max(0.25, (node_cpus - 2 * decode) / per_node)
    per = max(0.25, int(per * 4) / 4)
    return ActorPlan(n, per, 0, decode, threads, False, why)


def default_cpu_actors(node_cpus: float, nodes: int, memory: Optional[float] = None) -> int:
    """The default model actors of a CPU-only cluster (see :func:`plan_actors`).

    Examples
    --------
    >>> [default_cpu_actors(c, 1) for c in (1, 2, 4, 8, 16, 64)]
    [1, 2, 2, 2, 4, 16]
    >>> default_cpu_actors(16, 1, memory=1.5 * 2**30)  # room for one actor only
    1
    >>> default_cpu_actors(16, 1, memory=-1)
    Traceback (most recent call last):
    ...
    ValueError: memory must be a positive number of bytes (the cluster's 'memory' resource) or None, got -1
    """
    if not (isinstance(node_cpus, (int, float)) and math.isfinite(node_cpus) and node_cpus > 0):
        raise ValueError(f"node_cpus must be a positive number of CPUs a node, got {node_cpus!r}")
    if not (isinstance(nodes, int) and nodes >= 1):
        raise ValueError(f"nodes must be an integer >= 1, got {nodes!r}")
    if memory is not None and not (
        isinstance(memory, (int, float)) and not isinstance(memory, bool) and math.isfinite(memory) and memory > 0
    ):
        raise ValueError(
            f"memory must be a positive number of bytes (the cluster's 'memory' resource) or None, got {memory!r}"
        )
    threads = min(CPU_THREADS_PER_ACTOR, max(1, int(node_cpus // 2)))
    per_node = max(1, int(node_cpus // threads))
    if memory is not None:
        per_node = max(1, min(per_node, int(memory / nodes // ACTOR_MEMORY_BYTES)))
    return per_node * nodes


def _forced_decode_in_actor() -> Optional[bool]:
    """:data:`DECODE_IN_ACTOR_ENV` as a choice (None: unset), or a ValueError naming it."""
    raw = os.environ.get(DECODE_IN_ACTOR_ENV, "").strip()
    if raw in ("", "auto"):
        return None
    if raw not in ("0", "1"):
        raise ValueError(f"{DECODE_IN_ACTOR_ENV} must be 1, 0 or auto; got {raw!r}")
    return raw == "1"


def decode_batch(
    batch: dict[str, np.ndarray],
    *,
    max_side: int,
    input_size: tuple[int, int],
    journal: Optional[str] = None,
    hash_files: bool = True,
) -> dict[str, Any]:
    """A Ray task: decode a batch of files into network inputs (or errors), with each file's sha256.

    ``batch["path"]``; a path ending in ``.npy`` is a residual map (assessment), passed through
    for the actor to load. Output columns: ``i``, ``path``, ``x`` (N, 3, H, W) float32,
    ``height``, ``width`` (label resolution), ``error``, ``is_map``, ``sha256`` (empty where
    ``hash_files`` is false: pre-labels do not use it). ``journal``: the run's
    :class:`~._ray_journal.JournalDir` path; a file an earlier attempt of this task died on
    comes back as a ``worker-crashed`` error instead of being decoded again.
    """
    columns, crash = decode_columns(
        batch, max_side=max_side, input_size=input_size, journal=journal, hash_files=hash_files
    )
    if crash is not None:
        crash.close()
    return columns


def decode_columns(
    batch: dict[str, np.ndarray],
    *,
    max_side: int,
    input_size: tuple[int, int],
    journal: Optional[str],
    hash_files: bool,
    threads: int = 1,
    strikes: int = 1,
) -> tuple[dict[str, Any], Optional[CrashJournal]]:
    """:func:`decode_batch`'s columns, decoded on ``threads`` threads, and the open journal (or None).

    With a journal, a file suspected by an earlier attempt's death (:attr:`CrashJournal.suspects`)
    is decoded alone, before the others, so that a second death names it; ``strikes`` as for
    :class:`~._ray_journal.CrashJournal`. The caller closes the journal once the batch's results
    are made (a model actor: after the model, so that a batch whose model step kills the actor
    every time runs out of attempts instead of restarting it forever).
    """
    from iea_data.core.model import ImageFileDataset

    paths = [str(p) for p in batch["path"]]
    ds = ImageFileDataset(paths, max_side, input_size)
    empty = np.zeros((3, *input_size), np.float32)
    crashed = (empty, 0, 0, f"{CRASHED_KIND}: {CRASHED_MESSAGE}", False, "")
    crash = CrashJournal(journal, paths, strikes=strikes) if journal else None

    def one(k: int) -> tuple:  # (x, height, width, error, is_map, sha256)
        p = paths[k]
        if crash is None:
            return _decode_one(ds, k, p, empty, hash_files)
        if crash.is_culprit(p):
            return crashed
        crash.start(p)
        try:
            return _decode_one(ds, k, p, empty, hash_files)
        finally:
            crash.done(p)

    alone = [k for k, p in enumerate(paths) if crash is not None and p in crash.suspects]
    rest = [k for k in range(len(paths)) if k not in alone]  # a handful of suspects at most
    rows: dict[int, tuple] = {k: one(k) for k in alone}
    if threads > 1 and len(rest) > 1:
        from concurrent.futures import ThreadPoolExecutor

        # decoding and resizing release the GIL: the batch on all the actor's cores, as the local engine
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="iea-decode") as pool:
            rows.update(zip(rest, pool.map(one, rest)))
    else:
        rows.update((k, one(k)) for k in rest)
    xs, hs, ws, errs, maps, shas = zip(*(rows[k] for k in range(len(paths)))) if paths else ((),) * 6
    columns = {
        "i": np.asarray(batch["i"], np.int64),
        "path": np.asarray(paths, dtype=object),
        "x": np.stack(xs).astype(np.float32) if xs else np.zeros((0, 3, *input_size), np.float32),
        "height": np.asarray(hs, np.int64),
        "width": np.asarray(ws, np.int64),
        "error": np.asarray(errs, dtype=object),
        "is_map": np.asarray(maps, bool),
        "sha256": np.asarray(shas, dtype=object),
    }
    return columns, crash


def _decode_one(ds, i: int, path: str, empty: np.ndarray, hash_files: bool) -> tuple:
    """(x, height, width, error, is_map, sha256) of item ``i`` of ``ds``; a ``.npy`` map passes through."""
    sha = _sha256(path) if hash_files else ""
    if path.endswith(".npy"):
        return empty, 0, 0, "", True, sha
    _, x, shape, err = ds[i]
    return x.numpy(), int(shape[0]), int(shape[1]), err, False, sha


def path_dataset(paths: list[str], batch_size: int) -> Any:
    """A Ray dataset of rows ``i`` (position) and ``path``: one block per batch of ``batch_size`` rows.

    Ray Data's ``from_items`` makes one block per row (up to 200 blocks), which every actor task
    then bundles into a batch; ``from_items(..., override_num_blocks=...)`` splits the rows
    evenly (66 rows: 9 blocks of 7 or 8, two blocks, so two batches, per task). Blocks of
    exactly one batch make each task one batch, whose result streams back when it is done.
    """
    import pyarrow as pa
    import ray.data

    if not paths:
        return ray.data.from_items([])
    n = len(paths)
    return ray.data.from_arrow(
        [
            pa.table(
                {"i": pa.array(range(s, min(s + batch_size, n)), pa.int64()), "path": list(paths[s : s + batch_size])}
            )
            for s in range(0, n, batch_size)
        ]
    )


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
    """Ray Data's batch-inference recipe on ``ds`` (rows ``i``, ``path``): decoding, then model actors.

    Decoding runs in separate tasks ahead of the actors, or in the actors themselves where
    ``pool.decode_in_actor`` (one stage). ``finish`` is the actors' finishing step and its
    settings (:class:`ModelActor`): ``finish="label"`` with ``objects_root``, or
    ``finish="assess"`` with ``rule_bases``, ``masks``, ``heatmaps_dir``. Files are hashed
    (sha256) for assessment only: its rows carry it, pre-labels do not use it.
    """
    from ray.data import ActorPoolStrategy

    decode = {
        "max_side": max_side,
        "input_size": tuple(input_size),
        "journal": journal,
        "hash_files": finish.get("finish") == "assess",
    }
    if not pool.decode_in_actor:
        ds = ds.map_batches(decode_batch, batch_size=batch_size, fn_kwargs=decode, num_cpus=pool.decode_cpus)
    return ds.map_batches(
        model_actor(
            model_name=model_name,
            weights=weights,
            device="cuda" if pool.num_gpus else ("cpu" if device == "auto" else device),
            precision=precision,
            torch_threads=pool.torch_threads,
            decode=decode if pool.decode_in_actor else None,
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
    rule bases' scores, one flat row per photo). With ``decode`` (:func:`decode_columns`'
    settings) the actor takes batches of paths and decodes each itself, on its
    ``torch_threads`` threads, just before the model runs it, keeping the crash journal with
    ``strikes=2`` (see :mod:`._ray_journal`). Made with :func:`model_actor`.
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
        decode: Optional[dict[str, Any]] = None,
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
        self.decode = decode
        self.threads = max(1, torch_threads)
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
        if self.decode is None:
            return self._run(batch)
        decoded, crash = decode_columns(batch, threads=self.threads, strikes=2, **self.decode)
        out = self._run(decoded)
        if crash is not None:
            crash.close()
        return out

    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """The model, then the finishing step, on a decoded batch (:func:`decode_batch`'s columns)."""
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
