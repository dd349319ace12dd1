"""Read-only views of the catalog for listings and summaries.

Each function reads in one unit of work of its own and returns plain dicts (never ORM rows),
except :func:`image_path`, which composes inside the caller's unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from iea_data.core.errors import IeaError
from iea_data.store import (
    IMAGE_STATUSES,
    Image,
    ImagePath,
    IngestError,
    IngestRun,
    Label,
    Scene,
    Score,
    SplitMember,
    UnitOfWork,
)

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["catalog_stats", "list_images", "list_errors", "list_runs", "image_path"]


def catalog_stats(ws: Workspace) -> dict[str, Any]:
    """Counts for ``iea catalog stats``: images by status, scenes, scores, labels, splits, runs.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> stats = catalog_stats(init_workspace(tempfile.mkdtemp()))
    >>> stats["images"], stats["open_errors"], stats["last_run"]
    (0, 0, None)
    """
    with ws.unit() as uow:
        return _catalog_stats(uow.session)


def _catalog_stats(s: Session) -> dict[str, Any]:
    by_status = dict(s.execute(select(Image.status, func.count()).group_by(Image.status)).all())
    labels = {
        f"{kind}/{status}": n
        for kind, status, n in s.execute(
            select(Label.kind, Label.status, func.count()).group_by(Label.kind, Label.status)
        )
    }
    splits = dict(s.execute(select(SplitMember.split, func.count()).group_by(SplitMember.split)).all())
    last = s.scalar(select(IngestRun).order_by(IngestRun.id.desc()).limit(1))
    out = {
        "images": sum(by_status.values()),
        "images_by_status": {k: by_status.get(k, 0) for k in IMAGE_STATUSES},
        "paths": s.scalar(select(func.count()).select_from(ImagePath)),
        "scenes": s.scalar(select(func.count()).select_from(Scene)),
        "scenes_with_reference": s.scalar(
            select(func.count()).select_from(Scene).where(Scene.reference_image_id.is_not(None))
        ),
        "scores": s.scalar(select(func.count()).select_from(Score)),
        "labels": labels,
        "splits": splits,
        "ingest_runs": s.scalar(select(func.count()).select_from(IngestRun)),
        "open_errors": len(_list_errors(s, run_id=None, include_resolved=False)),
        "last_run": None
        if last is None
        else {
            "id": last.id,
            "kind": last.kind,
            "status": last.status,
            "started_at": str(last.started_at),
            "errors": last.n_errors,
        },
    }
    return out


def list_images(
    ws: Workspace,
    *,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    status: Optional[str] = None,
    limit: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Images with their scene, variant, size and luma mean, filtered by scene name, split and status.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> [(r["name"], r["is_reference"]) for r in list_images(ws)]
    [('s.png', True), ('s_N1.png', False)]
    """
    if status is not None and status not in IMAGE_STATUSES:
        raise IeaError(f"status must be one of {', '.join(IMAGE_STATUSES)}, got {status!r}")
    first_path = (
        select(func.min(ImagePath.path)).where(ImagePath.image_id == Image.id).correlate(Image).scalar_subquery()
    )
    q = (
        select(
            Image.id,
            Image.name,
            Image.status,
            Image.scene_id,
            Scene.name.label("scene"),
            Image.variant,
            Image.ev,
            Image.width,
            Image.height,
            Image.bit_depth,
            Image.format,
            Image.luma_mean,
            Image.sha256,
            (Scene.reference_image_id == Image.id).label("is_reference"),
            first_path.label("path"),
        )
        .select_from(Image)
        .join(Scene, Scene.id == Image.scene_id, isouter=True)
        .order_by(Image.id)
    )
    if scene is not None:
        q = q.where(Scene.name == scene)
    if split is not None:
        q = q.join(SplitMember, and_(SplitMember.image_id == Image.id, SplitMember.split == split))
    if status is not None:
        q = q.where(Image.status == status)
    if limit is not None:
        q = q.limit(limit)
    with ws.unit() as uow:
        rows = [dict(r._mapping) for r in uow.session.execute(q)]
    for r in rows:
        r["is_reference"] = bool(r["is_reference"])
    return rows


def list_errors(ws: Workspace, *, run_id: Optional[int] = None, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Files that failed to ingest.

    By default: the newest error of each path that still has no image (fixing the file and
    ingesting again resolves it). ``run_id`` restricts to one run; ``include_resolved``
    lists every error row.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> list_errors(init_workspace(tempfile.mkdtemp()))
    []
    """
    with ws.unit() as uow:
        return _list_errors(uow.session, run_id=run_id, include_resolved=include_resolved)


def _list_errors(s: Session, *, run_id: Optional[int], include_resolved: bool) -> list[dict[str, Any]]:
    q = select(IngestError).order_by(IngestError.id)
    if run_id is not None:
        q = q.where(IngestError.run_id == run_id)
    errors = s.scalars(q).all()
    if not include_resolved:
        newest: dict[str, IngestError] = {}
        for e in errors:
            newest[e.path] = e
        ok_paths = (
            set(s.scalars(select(ImagePath.path).where(ImagePath.path.in_(list(newest)))).all()) if newest else set()
        )
        errors = [e for p, e in newest.items() if p not in ok_paths]
    out = [
        {"run_id": e.run_id, "path": e.path, "reason": e.reason, "message": e.message, "created_at": str(e.created_at)}
        for e in errors
    ]
    return out


def list_runs(ws: Workspace, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` ingest runs, newest first, as dicts.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> list_runs(init_workspace(tempfile.mkdtemp()))
    []
    """
    with ws.unit() as uow:
        runs = uow.session.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(limit)).all()
    out = [
        {
            k: getattr(r, k)
            for k in (
                "id",
                "kind",
                "status",
                "n_files",
                "n_new",
                "n_duplicate",
                "n_unchanged",
                "n_errors",
                "started_at",
                "finished_at",
            )
        }
        for r in runs
    ]
    return out


def image_path(uow: UnitOfWork, image_id: int) -> Optional[str]:
    """The first recorded path of the image that still exists on disk (None if none does), in the caller's unit.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     image_path(uow, image_id) is None
    True
    """
    import os

    for p in uow.session.scalars(select(ImagePath.path).where(ImagePath.image_id == image_id).order_by(ImagePath.id)):
        if os.path.exists(p):
            return p
    return None
