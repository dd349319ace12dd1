"""Read-only views of the catalog for listings and summaries."""

from __future__ import annotations

from typing import Any, Optional

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
)

__all__ = ["catalog_stats", "list_images", "list_errors", "list_runs", "image_path"]


def catalog_stats(s: Session) -> dict[str, Any]:
    """Counts for ``iea catalog stats``: images by status, scenes, scores, labels, splits, runs."""
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
        "open_errors": len(list_errors(s)),
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
    s.rollback()
    return out


def list_images(
    s: Session,
    *,
    scene: Optional[str] = None,
    split: Optional[str] = None,
    status: Optional[str] = None,
    limit: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Images with their scene, variant, size and luma mean, filtered by scene name, split and status."""
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
    rows = [dict(r._mapping) for r in s.execute(q)]
    for r in rows:
        r["is_reference"] = bool(r["is_reference"])
    s.rollback()
    return rows


def list_errors(s: Session, *, run_id: Optional[int] = None, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Files that failed to ingest.

    By default: the newest error of each path that still has no image (fixing the file and
    ingesting again resolves it). ``run_id`` restricts to one run; ``include_resolved``
    lists every error row.
    """
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
    s.rollback()
    return out


def list_runs(s: Session, *, limit: int = 20) -> list[dict[str, Any]]:
    runs = s.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(limit)).all()
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
    s.rollback()
    return out


def image_path(s: Session, image_id: int) -> Optional[str]:
    """The first recorded path of the image that still exists on disk (None if none does)."""
    import os

    for p in s.scalars(select(ImagePath.path).where(ImagePath.image_id == image_id).order_by(ImagePath.id)):
        if os.path.exists(p):
            return p
    return None
