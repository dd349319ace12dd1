"""Pre-labels: residual maps from reference differences and from the model, with provenance.

Both write label revisions (kind ``refdiff`` or ``model``) at the image's label resolution
(long side ≤ the workspace's ``labels.max_side``, never larger than the image), float16 in
the object store. Both are resumable: an image that already has a revision of that chain is
skipped unless ``redo=True``. A missing or broken file is reported and skipped.

Each run has three steps, so that another engine (``iea prelabel --engine ray``) runs the
same code and gets the same labels by construction:

1. :func:`plan_prelabel` — what is missing (resumable): one picklable :class:`PrelabelItem` each;
2. compute one item, pure, in any process that sees the workspace's folder:
   :func:`refdiff_result`, or the model (:func:`iea_data.core.model.predict_batch`) then
   :func:`model_result`; the map goes to the object store from there (a :class:`StoredMap`);
3. :func:`commit_prelabels` — a batch of results in one unit of work, idempotent (a result
   whose label already landed is skipped, never saved twice).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from sqlalchemy import select

from iea_data.core.errors import IeaError, ImageDecodeError, StaleRevisionError
from iea_data.core.imaging import read_image
from iea_data.core.progress import ProgressFn
from iea_data.core.residuals import ideal_from_ev, variant_refdiff
from iea_data.store import Scene
from iea_data.store.objects import ObjectStore
from iea_data.workflows.catalog import image_path, list_images

from ._revisions import StoredMap, chain_head, chain_heads, chain_key, save_label, save_label_batch, store_label_map

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "PrelabelReport",
    "select_images",
    "prelabel_refdiff",
    "prelabel_model",
    "PrelabelItem",
    "PrelabelPlan",
    "PrelabelResult",
    "LabelWriter",
    "ModelRun",
    "plan_prelabel",
    "refdiff_result",
    "model_result",
    "model_run",
    "commit_prelabels",
]

log = logging.getLogger(__name__)


@dataclass
class PrelabelReport:
    """What a pre-labelling run did."""

    method: str
    n_selected: int = 0
    n_saved: int = 0
    n_skipped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (image name, message)
    precision: str = ""  # model pre-labels: the precision used and why
    engine: str = ""  # another engine than this process (e.g. "ray (2 model actors; ...)")


def select_images(
    ws: Workspace,
    *,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    status: str = "ok",
    variants_only: bool = False,
) -> list[tuple[int, str, Optional[int]]]:
    """``(id, name, scene_id)`` of catalog images chosen by scene name, split and status (default: decoded ones).

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> [name for _, name, _ in select_images(ws, variants_only=True)]
    ['s_N1.png']
    """
    rows = list_images(ws, scene=scene, split=split, status=status)
    return [(r["id"], r["name"], r["scene_id"]) for r in rows if not variants_only or r["variant"] is not None]


@dataclass(frozen=True)
class PrelabelItem:
    """One image to pre-label: everything a worker needs, as plain picklable values.

    ``parent_id`` is the chain's newest revision when the plan was made (None: first one).
    Reference differences also carry the reference (``reference_path``, ``reference_image_id``)
    and the scene's newest painted target (``target_id``, its EV map ``ev_object``), if any.
    """

    image_id: int
    name: str
    path: str
    parent_id: Optional[int] = None
    reference_image_id: Optional[int] = None
    reference_path: Optional[str] = None
    target_id: Optional[int] = None
    ev_object: Optional[str] = None


@dataclass
class PrelabelPlan:
    """What a pre-labelling run has to do: the items, and what it already knows (skips, errors)."""

    method: str
    chain: str
    items: list[PrelabelItem] = field(default_factory=list)
    n_selected: int = 0
    n_skipped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def report(self, precision: str = "") -> PrelabelReport:
        """A report that starts from the plan's counts (the commits add to it)."""
        return PrelabelReport(self.method, self.n_selected, 0, self.n_skipped, list(self.errors), precision=precision)


@dataclass(frozen=True)
class PrelabelResult:
    """One computed item: the stored map (or the error) and the label's per-item provenance."""

    item: PrelabelItem
    stored: Optional[StoredMap]
    error: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRun:
    """The model's provenance for every label of a run (plain values: it travels to workers)."""

    model_name: str
    weights_sha256: Optional[str]
    params: Mapping[str, Any]


def plan_prelabel(
    workspace: Workspace,
    method: str,
    *,
    model_name: str = "pieanet",
    scene: Optional[str] = None,
    split: Optional[str] = None,
    redo: bool = False,
) -> PrelabelPlan:
    """The images a ``method`` pre-labelling run still has to do (``"refdiff"`` or ``"model"``).

    Images whose chain already has a revision are counted as skipped (unless ``redo``);
    images without a readable file (or, for reference differences, without a reference)
    are errors. One short unit of work.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> plan = plan_prelabel(ws, "refdiff")
    >>> plan.n_selected, len(plan.items), len(plan.errors)
    (1, 0, 1)
    """
    from iea_data.store import Target

    if method not in ("refdiff", "model"):
        raise ValueError(f"method must be 'refdiff' or 'model', got {method!r}")
    refdiff = method == "refdiff"
    chain = chain_key("refdiff") if refdiff else chain_key("model", model_name=model_name)
    images = select_images(workspace, scene=scene, split=split, variants_only=refdiff)
    plan = PrelabelPlan(method, chain, n_selected=len(images))
    with workspace.unit() as uow:
        s = uow.session
        refs: dict[int, Optional[int]] = {}
        targets: dict[int, tuple[int, str]] = {}  # scene id -> newest target (id, EV map object)
        if refdiff:
            refs = {sc.id: sc.reference_image_id for sc in s.scalars(select(Scene))}
            for t in s.scalars(select(Target).order_by(Target.scene_id, Target.revision)):
                if t.ev_map_object:
                    targets[t.scene_id] = (t.id, t.ev_map_object)
        for image_id, name, scene_id in images:
            ref_id = refs.get(scene_id) if scene_id is not None else None
            if refdiff and (ref_id is None or ref_id == image_id):
                plan.errors.append((name, "its scene has no reference; set one with `iea scenes set-reference`"))
                continue
            head = chain_head(uow, image_id, chain)
            if head is not None and not redo:
                plan.n_skipped += 1
                continue
            path = image_path(uow, image_id)
            rpath = image_path(uow, ref_id) if refdiff and ref_id is not None else None
            if path is None or (refdiff and rpath is None):
                plan.errors.append(
                    (
                        name,
                        "the image or its reference has no readable file; ingest it again"
                        if refdiff
                        else "no readable file; ingest it again",
                    )
                )
                continue
            target_id, ev_object = targets.get(scene_id, (None, None)) if scene_id is not None else (None, None)
            plan.items.append(
                PrelabelItem(
                    image_id,
                    name,
                    path,
                    head.id if head is not None else None,
                    reference_image_id=ref_id,
                    reference_path=rpath,
                    target_id=target_id,
                    ev_object=ev_object,
                )
            )
    return plan


def refdiff_result(
    item: PrelabelItem,
    objects: ObjectStore,
    *,
    max_side: int,
    align: bool = False,
    cache: Optional[dict[Any, np.ndarray]] = None,
) -> PrelabelResult:
    """Compute one reference-difference item and put its map into ``objects``; never raises for a bad file.

    ``cache`` (optional, kept by the caller) holds the last ideal image, so that the variants of
    one scene decode their reference once.
    """
    try:
        key = (item.reference_image_id, item.target_id)
        ideal = cache.get(key) if cache is not None else None
        if ideal is None:
            if item.reference_path is None:
                raise IeaError("the reference has no readable file; ingest it again")
            ideal = read_image(item.reference_path).rgb
            if item.ev_object is not None:
                ideal = ideal_from_ev(ideal, objects.get_array(item.ev_object).astype(np.float32))
            if cache is not None:
                cache.clear()
                cache[key] = ideal
        m = variant_refdiff(read_image(item.path).rgb, ideal, max_side, align=align)
        stored = store_label_map(objects, m)
    except (ImageDecodeError, IeaError, OSError, ValueError) as exc:
        return PrelabelResult(item, None, str(exc))
    params: dict[str, Any] = {"reference_image_id": item.reference_image_id, "align": align, "luma": "rec601-srgb"}
    if item.target_id is not None:
        params["target_id"] = item.target_id
    return PrelabelResult(item, stored, "", params)


def model_result(
    item: PrelabelItem, objects: ObjectStore, residual: Optional[np.ndarray], error: str = ""
) -> PrelabelResult:
    """The result of one model item: its map (from :func:`iea_data.core.model.predict_batch`) put into ``objects``."""
    if error or residual is None:
        return PrelabelResult(item, None, error or "no map was computed")
    try:
        return PrelabelResult(item, store_label_map(objects, residual))
    except (ValueError, OSError) as exc:
        return PrelabelResult(item, None, str(exc))


def model_run(model_name: str, weights, device: str, precision) -> ModelRun:
    """The provenance of a model pre-labelling run: weights hash, input size, version, device, precision.

    ``precision`` is a resolved :class:`iea_data.core.model.Precision`. A checkpoint file (e.g.
    from ``iea train``) is recorded by its own hash.
    """
    from iea_data import __version__
    from iea_data.core.model import get_model_cfg, sha256_file

    cfg = get_model_cfg(model_name)
    weights_sha = cfg.sha256 if weights == "official" else (sha256_file(weights) if weights is not None else None)
    params = {
        "input_size": list(cfg.input_size),
        "package_version": __version__,
        "device": str(device),
        **precision.to_provenance(),
    }
    return ModelRun(model_name, weights_sha, params)


def commit_prelabels(
    workspace: Workspace,
    results: Iterable[PrelabelResult],
    report: PrelabelReport,
    *,
    model: Optional[ModelRun] = None,
    extra_params: Optional[Mapping[str, Any]] = None,
) -> None:
    """Save a batch of results as label revisions in one unit of work, counting them in ``report``.

    Idempotent: a result whose chain moved past the planned parent (its label already landed,
    from an earlier attempt of this batch or another process) is counted as skipped, never
    saved twice; the database's unique (image, chain, revision) is the backstop. Errors are
    recorded in ``report`` and write nothing. ``model`` is the run's provenance for model
    labels (None: reference differences); ``extra_params`` are added to every label's
    parameters (e.g. the engine that computed them).
    """
    results = list(results)
    for r in results:
        if r.error or r.stored is None:
            report.errors.append((r.item.name, r.error or "no map was computed"))
    todo = [r for r in results if not r.error and r.stored is not None]
    if not todo:
        return
    kind = "refdiff" if model is None else "model"
    model_name = model.model_name if model is not None else None
    chain = chain_key(kind, model_name=model_name)
    saved = skipped = 0
    failed: list[tuple[str, str]] = []
    with workspace.unit() as uow:
        heads = chain_heads(uow, [r.item.image_id for r in todo], chain)
        fresh: list[PrelabelResult] = []
        seen: set[int] = set()
        for r in todo:
            head = heads.get(r.item.image_id)
            if (head[0] if head is not None else None) != r.item.parent_id or r.item.image_id in seen:
                skipped += 1  # already saved (a retried batch, a resumed run) or moved on meanwhile
                continue
            seen.add(r.item.image_id)
            fresh.append(r)
        params = [{**(model.params if model is not None else {}), **r.params, **(extra_params or {})} for r in fresh]
        # one statement for the batch (issue 16: a query and a flush per label cost ~2 ms each); a missing map
        # (a worker wrote to another folder), a concurrent save or a deleted image: row by row, which names each
        batched = all(uow.objects.exists(r.stored.map_object) for r in fresh)
        if batched:
            try:
                save_label_batch(
                    uow,
                    [(r.item.image_id, r.stored, r.item.parent_id, p) for r, p in zip(fresh, params)],
                    kind=kind,
                    status="draft",
                    model_name=model_name,
                    model_sha256=model.weights_sha256 if model is not None else None,
                    target_ids=[r.item.target_id for r in fresh] if model is None else None,
                )
                saved += len(fresh)
            except IeaError:
                batched = False
        if not batched:
            for r, p in zip(fresh, params):
                try:
                    save_label(
                        uow,
                        r.stored,  # type: ignore[arg-type]  # filtered above
                        image_id=r.item.image_id,
                        kind=kind,
                        parent_id=r.item.parent_id,
                        target_id=r.item.target_id if model is None else None,
                        model_name=model_name,
                        model_sha256=model.weights_sha256 if model is not None else None,
                        params=p,
                    )
                    saved += 1
                except StaleRevisionError:
                    skipped += 1
                except IeaError as exc:
                    failed.append((r.item.name, str(exc)))
    # counted once the unit has committed: a failed commit counts nothing
    report.n_saved += saved
    report.n_skipped += skipped
    report.errors.extend(failed)


def prelabel_refdiff(
    workspace: Workspace,
    *,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    align: bool = False,
    redo: bool = False,
    progress: Optional[ProgressFn] = None,
) -> PrelabelReport:
    """Reference-difference pre-labels for every variant whose scene has a reference.

    The ideal is the scene's newest painted target (``iea_data.workflows.targets``: the reference scaled
    by ``2**EV`` in linear light) where one exists, else the reference itself; the label's
    ``params`` record which (``reference_image_id`` and ``target_id``).

    The database work is a sequence of short units of work (the plan, then one per save) so
    that the SQLite write lock is never held while photos are decoded.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> report = prelabel_refdiff(ws)   # the example images have no files
    >>> report.n_selected, report.n_saved, len(report.errors)
    (1, 0, 1)
    """
    plan = plan_prelabel(workspace, "refdiff", scene=scene, split=split, redo=redo)
    report = plan.report()
    max_side = workspace.settings.label_max_side
    cache: dict[Any, np.ndarray] = {}
    n = len(plan.items)
    for i, item in enumerate(plan.items):
        commit_prelabels(
            workspace, [refdiff_result(item, workspace.objects, max_side=max_side, align=align, cache=cache)], report
        )
        if progress:
            progress(i + 1, n)
    return report


class LabelWriter:
    """Stores model maps and commits their label revisions, in a thread beside the model or between its batches.

    Results are grouped into units of ``batch_size``, each unit one transaction (a process
    killed at any point leaves whole units; a re-run saves the rest). With ``beside=True`` a
    unit goes to one writer thread, so the model never waits for a map's ``fsync`` or a
    commit; with ``beside=False`` it is written at once, while the model waits for its next
    batch: where the model's threads take every CPU core, a thread beside them stalls them
    at every barrier (:func:`iea_data.core.model.work_beside_model`; on 2 cores the writer
    beside the model cost ~10 % of its speed, docs/benchmarks.md). Either way at most two
    units wait, so memory stays bounded and an error in the writer (the catalog
    unreachable) stops the run within two batches. Leaving the ``with`` block waits for
    every unit handed over, also when the model's loop raised, then re-raises the first
    writer error.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> report = PrelabelReport(method="model")
    >>> with LabelWriter(ws, report, batch_size=8) as w:
    ...     pass
    >>> report.n_saved
    0
    """

    def __init__(
        self,
        workspace: Workspace,
        report: PrelabelReport,
        *,
        model: Optional[ModelRun] = None,
        batch_size: int = 8,
        progress: Optional[ProgressFn] = None,
        total: int = 0,
        beside: bool = True,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.workspace, self.report, self.model = workspace, report, model
        self.beside = bool(beside)
        self.batch_size = max(1, int(batch_size))
        self.progress, self.total, self.done = progress, total, 0
        self._unit: list[tuple[PrelabelItem, Optional[np.ndarray], str]] = []
        self._pending: list[Any] = []  # (future, n) of the units handed over, oldest first
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iea-label-writer")

    def add(self, item: PrelabelItem, residual: Optional[np.ndarray], error: str = "") -> None:
        """Queue one item's map (or its error); a full unit goes to the writer."""
        self._unit.append((item, residual, error))
        if len(self._unit) >= self.batch_size:
            self._hand_over()

    def _hand_over(self) -> None:
        unit, self._unit = self._unit, []
        if self.beside:
            future = self._pool.submit(self._write, unit)
        else:  # now, while the model waits; an error is kept for the same place as a thread's
            from concurrent.futures import Future

            future = Future()
            try:
                future.set_result(self._write(unit))
            except Exception as exc:
                future.set_exception(exc)
        self._pending.append((future, len(unit)))
        if not self.beside and len(self._pending) == 1 and future.exception() is None:
            self._finish_oldest()  # a unit written in this thread counts at once, unless an error waits before it
        while len(self._pending) > 2:
            self._finish_oldest()

    def _write(self, unit: list[tuple[PrelabelItem, Optional[np.ndarray], str]]) -> None:
        results = [model_result(item, self.workspace.objects, residual, error) for item, residual, error in unit]
        commit_prelabels(self.workspace, results, self.report, model=self.model)

    def _finish_oldest(self) -> None:
        future, n = self._pending.pop(0)
        future.result()
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._unit:
                self._hand_over()
            error: Optional[BaseException] = None
            while self._pending:
                try:
                    self._finish_oldest()
                except BaseException as e:  # keep waiting: every unit handed over lands or fails whole
                    error = error or e
            if error is not None and exc_type is None:
                raise error
        finally:
            self._pool.shutdown(wait=True)


def prelabel_model(
    workspace: Workspace,
    *,
    model_name: str = "pieanet",
    weights="official",
    device: str = "auto",
    batch_size: int = 8,
    num_workers: int = 2,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    redo: bool = False,
    progress: Optional[ProgressFn] = None,
    precision: str = "auto",
) -> PrelabelReport:
    """Model pre-labels: decoding threads feed the model, a :class:`LabelWriter` stores and commits.

    Decoding, storing and committing run beside the model on a GPU or where CPU cores are
    free, and between its batches where its threads take every core
    (:func:`iea_data.core.model.work_beside_model`).

    ``precision`` is ``"auto"`` (bf16 where the device computes it natively and its recorded
    error is within the stated bound, else fp32), ``"fp32"`` or ``"bf16"``; see
    :func:`iea_data.core.model.resolve_precision`. The report's ``precision`` says what ran.

    Provenance stored with each label: model name, weights sha256, input size, package
    version, device, dtype, the precision used (and asked for) and its measured error
    against float32 (``precision_error``: bound and measured max |delta| of the stored map
    and of the rule-base scores, with the date and CPU of the measurement).
    """
    import torch

    from iea_data.core.model import create_model, get_model_cfg, predict_files, resolve_precision, work_beside_model

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    prec = resolve_precision(precision, device)
    cfg = get_model_cfg(model_name)
    model = create_model(model_name, weights=weights, device=device)
    plan = plan_prelabel(workspace, "model", model_name=model_name, scene=scene, split=split, redo=redo)
    report = plan.report(precision=f"{prec.name} ({prec.reason})")
    run = model_run(model_name, weights, device, prec)
    model.eval()
    maps = predict_files(
        model,
        [item.path for item in plan.items],
        max_side=workspace.settings.label_max_side,
        input_size=tuple(cfg.input_size),
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        dtype=prec.dtype,
    )
    with LabelWriter(
        workspace,
        report,
        model=run,
        batch_size=batch_size,
        progress=progress,
        total=len(plan.items),
        beside=work_beside_model(device),
    ) as w:
        for fm in maps:
            w.add(plan.items[fm.index], fm.residual, fm.error)
    return report
