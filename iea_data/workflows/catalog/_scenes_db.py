"""Scenes in the catalog: grouping images into exposure brackets and choosing references.

The pure grouping rules (file-name tokens, EXIF brackets, sidecar CSVs) live in
:mod:`iea_data.core.scenes`; this module applies them to catalog rows.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from iea_data.core import scenes as scene_rules
from iea_data.core.errors import IeaError, NotFoundError
from iea_data.store import Image, ImagePath, Scene, UnitOfWork, insert_ignore, utcnow

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "SceneSummary",
    "assign_scenes_by_filename",
    "ungrouped_images_under",
    "group_scenes_by_exif",
    "apply_sidecar",
    "list_scenes",
    "set_reference",
    "resolve_image",
]


@dataclass(frozen=True)
class SceneSummary:
    id: int
    name: str
    source: str
    reference: Optional[str]
    n_variants: int
    variants: tuple[str, ...]


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def _get_or_create_scene(s: Session, name: str, source: str) -> tuple[Scene, bool]:
    scene = s.scalar(select(Scene).where(Scene.name == name))
    if scene is not None:
        return scene, False
    scene = Scene(name=name, source=source)
    s.add(scene)
    s.flush()
    return scene, True


def _attach_reference(s: Session, scene: Scene) -> None:
    """Give ``scene`` a reference if it has none: an ungrouped-or-own image named ``<scene>.<ext>``."""
    if scene.reference_image_id is not None:
        return
    ref = s.scalar(
        select(Image)
        .where(
            Image.name.like(
                scene.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%", escape="\\"
            ),
            Image.variant.is_(None),
            (Image.scene_id.is_(None)) | (Image.scene_id == scene.id),
        )
        .order_by(Image.id)
        .limit(1)
    )
    if ref is not None and _stem(ref.name) == scene.name:
        ref.scene_id = scene.id
        scene.reference_image_id = ref.id


def ungrouped_images_under(uow: UnitOfWork, roots: Sequence[str]) -> list[int]:
    """Ids of the ``ok`` images without a scene that have a recorded path under one of ``roots``.

    What file-name grouping after an ingest over ``roots`` looks at: derived from the
    catalog, so images committed by a run that was killed before it grouped them are
    grouped by the next run over the same folders. ``roots`` are absolute paths of
    folders or single files. Reads inside the caller's unit of work.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> with init_workspace(tempfile.mkdtemp()).unit() as uow:
    ...     ungrouped_images_under(uow, ["/photos"])
    []
    """
    s = uow.session
    prefixes = tuple(r.rstrip(os.sep) + os.sep for r in roots)
    exact = set(roots)
    rows = s.execute(
        select(Image.id, ImagePath.path)
        .join(ImagePath, ImagePath.image_id == Image.id)
        .where(Image.scene_id.is_(None), Image.status == "ok")
    ).all()
    return sorted({image_id for image_id, path in rows if path in exact or path.startswith(prefixes)})


def assign_scenes_by_filename(uow: UnitOfWork, image_ids: Sequence[int]) -> int:
    """Group the given images (those without a scene) by the ``<scene>_<variant>.<ext>`` convention.

    A variant joins (or creates) the scene named by its prefix; a file named ``<scene>.<ext>``
    becomes that scene's reference when it has none. Runs inside the caller's unit of work
    with a few set-based statements per 500 images.

    Returns
    -------
    int
        The number of scenes created.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import Image, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add_all([Image(name="a.png", status="ok"), Image(name="a_N1.png", status="ok")])
    ...     uow.session.flush()
    ...     assign_scenes_by_filename(uow, [1, 2])
    1
    """
    s = uow.session
    created = 0
    ids = list(image_ids)
    img = Image.__table__
    for start in range(0, len(ids), 500):
        rows = s.execute(
            select(Image.id, Image.name)
            .where(Image.id.in_(ids[start : start + 500]), Image.scene_id.is_(None))
            .order_by(Image.id)
        ).all()
        parsed = {image_id: scene_rules.parse_variant_name(name) for image_id, name in rows}
        variant_scenes = sorted({p.scene for p in parsed.values() if p.variant is not None})
        plain = {image_id: p.scene for image_id, p in parsed.items() if p.variant is None}
        before = set(s.scalars(select(Scene.name).where(Scene.name.in_(variant_scenes))))
        insert_ignore(
            s,
            Scene.__table__,
            [{"name": n, "source": "filename", "created_at": utcnow()} for n in variant_scenes if n not in before],
            conflict=["name"],
        )
        created += len(set(variant_scenes) - before)
        wanted = set(variant_scenes) | set(plain.values())
        scenes = {
            name: (sid, ref)
            for sid, name, ref in s.execute(
                select(Scene.id, Scene.name, Scene.reference_image_id).where(Scene.name.in_(wanted))
            )
        }
        updates = [
            {"b_id": image_id, "b_scene": scenes[p.scene][0], "b_variant": p.variant, "b_ev": p.ev}
            for image_id, p in parsed.items()
            if p.variant is not None
        ]
        if updates:
            s.execute(
                update(img)
                .where(img.c.id == bindparam("b_id"))
                .values(scene_id=bindparam("b_scene"), variant=bindparam("b_variant"), ev=bindparam("b_ev")),
                updates,
            )
        # references: a plain <scene>.<ext> among these images, else one already in the catalog
        for image_id, scene_name in sorted(plain.items()):
            if scene_name in scenes and scenes[scene_name][1] is None:
                sid = scenes[scene_name][0]
                s.execute(update(img).where(img.c.id == image_id).values(scene_id=sid))
                s.execute(update(Scene).where(Scene.id == sid).values(reference_image_id=image_id))
                scenes[scene_name] = (sid, image_id)
        for name in variant_scenes:
            if scenes[name][1] is None:
                scene = s.get(Scene, scenes[name][0])
                _attach_reference(s, scene)
        s.flush()
    return created


def group_scenes_by_exif(ws: Workspace, *, window_s: float = 10.0) -> int:
    """Group images that have no scene yet into brackets by EXIF (camera, capture time, exposure); commits.

    Members get a variant tag from their EV offset to the bracket's median exposure
    (``-1EV``, ``0EV``, ``+1EV``, …). The reference is left for a person to choose
    (``iea scenes set-reference``). Returns the number of scenes created.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> group_scenes_by_exif(init_workspace(tempfile.mkdtemp()))
    0
    """
    with ws.unit() as uow:
        return _group_scenes_by_exif(uow.session, window_s=window_s)


def _group_scenes_by_exif(s: Session, *, window_s: float) -> int:
    rows = s.scalars(
        select(Image)
        .where(Image.scene_id.is_(None), Image.status == "ok", Image.exif_capture_time.is_not(None))
        .order_by(Image.exif_capture_time, Image.id)
    ).all()
    by_id = {im.id: im for im in rows}
    records = [
        dict(
            key=im.id,
            camera=" ".join(x for x in (im.exif_camera_make, im.exif_camera_model) if x) or None,
            capture_time=im.exif_capture_time,
            exposure_time=im.exif_exposure_time,
            exposure_bias=im.exif_exposure_bias,
            iso=im.exif_iso,
            f_number=im.exif_f_number,
        )
        for im in rows
    ]
    created = 0
    for group in scene_rules.group_by_exif(records, window_s=window_s):
        members = [by_id[k] for k in group]
        first = members[0]
        stamp = (
            first.exif_capture_time.strftime("%Y%m%dT%H%M%S")
            if isinstance(first.exif_capture_time, dt.datetime)
            else "unknown"
        )
        camera = (first.exif_camera_model or first.exif_camera_make or "camera").replace(" ", "-")
        scene, new = _get_or_create_scene(s, f"{camera}_{stamp}", "exif")
        created += new
        offsets = scene_rules.ev_offsets([r for r in records if r["key"] in set(group)])
        for im in members:
            ev = offsets.get(im.id)
            im.scene_id = scene.id
            im.ev = ev
            im.variant = scene_rules.format_ev_tag(ev) if ev is not None else None
    s.flush()
    return created


def apply_sidecar(ws: Workspace, csv_path: str | os.PathLike[str]) -> int:
    """Assign scenes, variants, EVs and references from a sidecar CSV (``path,scene[,variant,ev,is_reference]``).

    Paths are matched against recorded image paths (absolute, or relative to the CSV's folder)
    and then against image names. The whole file applies (one unit of work) or nothing does.

    Returns the number of images assigned.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> csv = pathlib.Path(ws.root) / "brackets.csv"
    >>> _ = csv.write_text("path,scene" + chr(10))
    >>> apply_sidecar(ws, csv)
    0
    """
    rows = scene_rules.read_sidecar(csv_path)
    with ws.unit() as uow:
        return _apply_sidecar(uow.session, rows, csv_path)


def _apply_sidecar(s: Session, rows: list, csv_path: str | os.PathLike[str]) -> int:
    base = os.path.dirname(os.path.abspath(os.fspath(csv_path)))
    n = 0
    for row in rows:
        p = row.path if os.path.isabs(row.path) else os.path.normpath(os.path.join(base, row.path))
        image = s.scalar(select(Image).join(ImagePath, ImagePath.image_id == Image.id).where(ImagePath.path == p))
        if image is None:
            image = s.scalar(select(Image).where(Image.name == os.path.basename(row.path)).order_by(Image.id).limit(1))
        if image is None:
            raise NotFoundError(f"{csv_path}: line {row.line}: no catalog image at {row.path!r}; ingest the file first")
        scene, _ = _get_or_create_scene(s, row.scene, "sidecar")
        image.scene_id = scene.id
        if row.is_reference:
            scene.reference_image_id = image.id
            image.variant = None
        else:
            image.variant = row.variant
            image.ev = row.ev
        n += 1
    s.flush()
    return n


def list_scenes(ws: Workspace, *, pattern: str | None = None, limit: int | None = None) -> list[SceneSummary]:
    """Scenes with their reference and variant tags, ordered by name.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> [(x.name, x.reference, x.variants) for x in list_scenes(ws)]
    [('s', 's.png', ('N1',))]
    """
    with ws.unit() as uow:
        return _list_scenes(uow.session, pattern=pattern, limit=limit)


def _list_scenes(s: Session, *, pattern: str | None, limit: int | None) -> list[SceneSummary]:
    q = select(Scene).order_by(Scene.name)
    if pattern:
        q = q.where(Scene.name.like(pattern.replace("*", "%")))
    if limit:
        q = q.limit(limit)
    scenes = s.scalars(q).all()
    out = []
    for sc in scenes:
        variants = sorted(
            s.scalars(select(Image.variant).where(Image.scene_id == sc.id, Image.variant.is_not(None))),
            key=scene_rules.variant_sort_key,
        )
        ref = s.scalar(select(Image.name).where(Image.id == sc.reference_image_id)) if sc.reference_image_id else None
        out.append(SceneSummary(sc.id, sc.name, sc.source, ref, len(variants), tuple(variants)))
    return out


def resolve_image(uow: UnitOfWork, ref: str | int) -> Image:
    """Find an image by id, sha256 (or a unique prefix of ≥ 8 hex digits), name or recorded path, in the caller's unit.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     resolve_image(uow, "s_N1.png").id == resolve_image(uow, image_id).id
    True
    """
    s = uow.session
    text = str(ref)
    if text.isdigit():
        image = s.get(Image, int(text))
        if image is not None:
            return image
    if len(text) >= 8 and all(c in "0123456789abcdef" for c in text):
        hits = s.scalars(select(Image).where(Image.sha256.like(text + "%")).limit(2)).all()
        if len(hits) == 1:
            return hits[0]
    hits = s.scalars(select(Image).where(Image.name == os.path.basename(text)).limit(2)).all()
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise IeaError(f"{text!r} names several images; use the image id or sha256 instead")
    image = s.scalar(select(Image).join(ImagePath).where(ImagePath.path == os.path.abspath(text)))
    if image is None:
        raise NotFoundError(f"no image {text!r} in the catalog (try `iea catalog ls`)")
    return image


def set_reference(ws: Workspace, scene_name: str, image_ref: str | int) -> Scene:
    """Make ``image_ref`` the ideal reference of ``scene_name`` (each scene has at most one); commits.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> set_reference(ws, "s", "s_N1.png").reference_image_id == image_id
    True
    """
    with ws.unit() as uow:
        return _set_reference(uow, scene_name, image_ref)


def _set_reference(uow: UnitOfWork, scene_name: str, image_ref: str | int) -> Scene:
    s = uow.session
    scene = s.scalar(select(Scene).where(Scene.name == scene_name))
    if scene is None:
        close = difflib.get_close_matches(scene_name, s.scalars(select(Scene.name)).all(), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise NotFoundError(f"no scene {scene_name!r}.{hint}")
    image = resolve_image(uow, image_ref)
    if image.scene_id not in (None, scene.id):
        other = s.scalar(select(Scene.name).where(Scene.id == image.scene_id))
        raise IeaError(f"image {image.name!r} belongs to scene {other!r}, not {scene_name!r}")
    image.scene_id = scene.id
    image.variant = None
    image.ev = None
    scene.reference_image_id = image.id
    s.flush()
    return scene
