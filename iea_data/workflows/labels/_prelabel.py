"""Pre-labels: residual maps from reference differences and from the model, with provenance.

Both write label revisions (kind ``refdiff`` or ``model``) at the image's label resolution
(long side ≤ the workspace's ``labels.max_side``, never larger than the image), float16 in
the object store. Both are resumable: an image that already has a revision of that chain is
skipped unless ``redo=True``. A missing or broken file is reported and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import select

from iea_data.core.errors import IeaError, ImageDecodeError
from iea_data.core.imaging import read_image
from iea_data.core.progress import ProgressFn
from iea_data.core.residuals import ideal_from_ev, variant_refdiff
from iea_data.store import Scene
from iea_data.workflows.catalog import image_path, list_images

from ._revisions import chain_head, chain_key, save_label

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["PrelabelReport", "select_images", "prelabel_refdiff", "prelabel_model"]

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

    The database work is a sequence of short units of work (the selection, then per image a
    read and a save) so that the SQLite write lock is never held while photos are decoded.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> report = prelabel_refdiff(ws)   # the example images have no files
    >>> report.n_selected, report.n_saved, len(report.errors)
    (1, 0, 1)
    """
    from iea_data.store import Target

    report = PrelabelReport("refdiff")
    max_side = workspace.settings.label_max_side
    chain = chain_key("refdiff")
    images = select_images(workspace, scene=scene, split=split, variants_only=True)
    with workspace.unit() as uow:
        s = uow.session
        refs = {sc.id: sc.reference_image_id for sc in s.scalars(select(Scene))}
        targets: dict[int, tuple[int, str]] = {}  # scene id -> newest target (id, EV map object)
        for t in s.scalars(select(Target).order_by(Target.scene_id, Target.revision)):
            if t.ev_map_object:
                targets[t.scene_id] = (t.id, t.ev_map_object)
    report.n_selected = len(images)
    cache: dict[int, np.ndarray] = {}
    for i, (image_id, name, scene_id) in enumerate(images):
        try:
            ref_id = refs.get(scene_id)
            if ref_id is None or ref_id == image_id:
                report.errors.append((name, "its scene has no reference; set one with `iea scenes set-reference`"))
                continue
            with workspace.unit() as uow:  # released before decoding: no write lock held meanwhile
                head = chain_head(uow, image_id, chain)
                skip = head is not None and not redo
                parent = head.id if head is not None else None
                vpath, rpath = (None, None) if skip else (image_path(uow, image_id), image_path(uow, ref_id))
            if skip:
                report.n_skipped += 1
                continue
            if vpath is None or rpath is None:
                report.errors.append((name, "the image or its reference has no readable file; ingest it again"))
                continue
            target_id, ev_object = targets.get(scene_id, (None, None))
            if (ref_id, target_id) not in cache:
                cache.clear()
                ideal = read_image(rpath).rgb
                if ev_object is not None:
                    ideal = ideal_from_ev(ideal, workspace.objects.get_array(ev_object).astype(np.float32))
                cache[(ref_id, target_id)] = ideal
            m = variant_refdiff(read_image(vpath).rgb, cache[(ref_id, target_id)], max_side, align=align)
            params = {"reference_image_id": ref_id, "align": align, "luma": "rec601-srgb"}
            if target_id is not None:
                params["target_id"] = target_id
            with workspace.unit() as uow:
                save_label(
                    uow,
                    m,
                    image_id=image_id,
                    kind="refdiff",
                    parent_id=parent,
                    target_id=target_id,
                    params=params,
                )
            report.n_saved += 1
        except (ImageDecodeError, IeaError, OSError) as exc:
            report.errors.append((name, str(exc)))
        finally:
            if progress:
                progress(i + 1, len(images))
    return report


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
    """Model pre-labels through a DataLoader (worker processes decode while the model runs).

    ``precision`` is ``"auto"`` (bf16 where the device computes it natively and its recorded
    error is within the stated bound, else fp32), ``"fp32"`` or ``"bf16"``; see
    :func:`iea_data.core.model.resolve_precision`. The report's ``precision`` says what ran.

    Provenance stored with each label: model name, weights sha256, input size, package
    version, device, dtype, the precision used (and asked for) and its measured error
    against float32 (``precision_error``: bound and measured max |delta| of the stored map
    and of the rule-base scores, with the date and CPU of the measurement).
    """
    import torch

    from iea_data import __version__
    from iea_data.core.model import create_model, get_model_cfg, predict_files, resolve_precision, sha256_file

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    prec = resolve_precision(precision, device)
    cfg = get_model_cfg(model_name)
    model = create_model(model_name, weights=weights, device=device)
    report = PrelabelReport("model", precision=f"{prec.name} ({prec.reason})")
    chain = chain_key("model", model_name=model_name)
    images = select_images(workspace, scene=scene, split=split)
    todo, paths, parents = [], [], []
    with workspace.unit() as uow:
        for image_id, name, _ in images:
            head = chain_head(uow, image_id, chain)
            if head is not None and not redo:
                report.n_skipped += 1
                continue
            p = image_path(uow, image_id)
            if p is None:
                report.errors.append((name, "no readable file; ingest it again"))
                continue
            todo.append((image_id, name))
            paths.append(p)
            parents.append(head.id if head is not None else None)
    report.n_selected = len(images)
    # a checkpoint file (e.g. from `iea train`) is recorded by its own hash
    weights_sha = cfg.sha256 if weights == "official" else (sha256_file(weights) if weights is not None else None)
    params = {
        "input_size": list(cfg.input_size),
        "package_version": __version__,
        "device": str(device),
        **prec.to_provenance(),
    }
    model.eval()
    # one short unit of work per save: the write lock is never held while the model runs
    for done, fm in enumerate(
        predict_files(
            model,
            paths,
            max_side=workspace.settings.label_max_side,
            input_size=tuple(cfg.input_size),
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
            dtype=prec.dtype,
        ),
        start=1,
    ):
        image_id, name = todo[fm.index]
        if fm.error:
            report.errors.append((name, fm.error))
        else:
            try:
                with workspace.unit() as uow:
                    save_label(
                        uow,
                        fm.residual,
                        image_id=image_id,
                        kind="model",
                        parent_id=parents[fm.index],
                        model_name=model_name,
                        model_sha256=weights_sha,
                        params=params,
                    )
                report.n_saved += 1
            except IeaError as exc:
                report.errors.append((name, str(exc)))
        if progress:
            progress(done, len(todo))
    return report
