"""Ideal-exposure targets: EV maps painted on a scene's reference, as revisions, with refdiff recompute and rebase.

A target revision stores an EV map (float32, label resolution of the reference) and its
stroke log; the ideal image is the reference scaled by ``2**EV`` in linear light
(:func:`ideal_from_ev`). Saving a target (reviewers and admins: action ``"paint_target"``)
never overwrites: it adds revision n+1 of the scene and is refused when the scene's newest
target is no longer the one painted on. Then, for every variant of the scene:

1. the reference difference is recomputed against the new ideal (a new ``refdiff``
   revision with ``target_id`` set);
2. every expert annotation whose newest revision was painted over a reference difference
   is rebased: a new revision of that expert's chain with the same correction over the new
   base (``map = clip(new base + correction, -1, 1)``), ``params.rebased_from`` = the
   previous revision, ``params.rebased_target_id`` and ``params.needs_review = true``.
   A revision that was submitted or accepted comes back as ``submitted`` (so it is in the
   review queue again, flagged as rebased); a draft stays a draft; a rejected one stays
   rejected (its comment still shows). Annotations over a model or zero base are untouched.
3. drafts painted over the old reference difference follow: their base becomes the new one
   and, when they were based on the rebased revision, their parent too.

One unreadable variant never stops the others; it is reported.

The ideal comes from the reference's pixels (:func:`ideal_from_ev`), except for a reference
rendered from camera RAW and ingested with ``iea ingest --from-render`` (issue 14): its ideal
is computed from the RAW's linear render (:func:`iea_data.core.raw.ideal_from_linear`,
16-bit, nothing clipped before the EV map applies) with the reference's EV, so darkening
a region where the reference is white recovers the highlights the sensor kept. When that
RAW is no longer found (or fails to decode), the reference's pixels are used and the report
says why (``ideal_source``, ``notes``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from iea_data.core.errors import IeaError, NotFoundError, StaleRevisionError
from iea_data.core.imaging import label_shape, read_image
from iea_data.core.progress import ProgressFn
from iea_data.core.raw import ideal_from_linear, render_linear
from iea_data.core.residuals import check_ev_map, ideal_from_ev, variant_refdiff
from iea_data.store import Draft, Image, Label, Scene, Target, UnitOfWork, User, UserInfo, require, utcnow
from iea_data.workflows.brackets import RawSource, raw_source
from iea_data.workflows.catalog import image_path
from iea_data.workflows.labels import chain_head, chain_key, save_label, strokes_bytes, strokes_from_bytes
from iea_data.workflows.users import load_actor

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["TargetState", "TargetSaveReport", "open_target", "save_target", "apply_target", "target_head"]

log = logging.getLogger(__name__)


@dataclass
class TargetState:
    """What the target painter edits for one scene.

    Attributes
    ----------
    scene_id : int
    parent_id : int or None
        The scene's newest target revision painted on (None: no target yet).
    reference_image_id : int
        The scene's reference image the EV map applies to.
    ev_map : ndarray, float32 (h, w), stops in [-10, 10]
        At the reference's label resolution; zeros for a scene without a target.
    strokes : list of dict
        The stroke log (JSON-serialisable).
    """

    scene_id: int
    parent_id: Optional[int]
    reference_image_id: int
    ev_map: np.ndarray
    strokes: list = field(default_factory=list)


@dataclass
class TargetSaveReport:
    """What :func:`save_target` did."""

    target_id: int
    revision: int
    n_variants: int = 0
    n_refdiff: int = 0
    n_rebased: int = 0
    n_drafts_moved: int = 0
    n_skipped: int = 0  # variants already recomputed against this target (apply_target run again)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (image name, message)
    #: where the ideal came from: "reference" (its pixels) or "raw-linear" (the RAW it was rendered from)
    ideal_source: str = "reference"
    notes: list[str] = field(default_factory=list)  # e.g. why a RAW-derived reference fell back to its pixels


def target_head(uow: UnitOfWork, scene_id: int) -> Optional[Target]:
    """The scene's newest target revision (None when it has none), inside the caller's unit.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     target_head(uow, 1) is None
    True
    """
    return uow.session.scalar(
        select(Target).where(Target.scene_id == scene_id).order_by(Target.revision.desc()).limit(1)
    )


def _scene_and_reference(session: Session, scene_id) -> tuple[Scene, Image]:
    if not isinstance(scene_id, (int, np.integer)) or isinstance(scene_id, bool):
        raise TypeError(f"scene_id must be an int (a catalog id), got {type(scene_id).__name__}")
    scene = session.get(Scene, int(scene_id))
    if scene is None:
        raise NotFoundError(f"no scene with id {scene_id}")
    if scene.reference_image_id is None:
        raise IeaError(f"scene {scene.name!r} has no reference image; set one with `iea scenes set-reference`")
    ref = session.get(Image, scene.reference_image_id)
    if ref.height is None or ref.width is None:
        raise IeaError(f"the reference {ref.name!r} of scene {scene.name!r} has no decoded file; ingest it first")
    return scene, ref


def open_target(ws: Workspace, user: UserInfo, scene_id: int) -> TargetState:
    """The target painter's starting point for a scene: its newest target, else a zero EV map; commits (reads only).

    Any signed-in user may look; saving needs ``"paint_target"``.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> st = open_target(ws, ann, 1)
    >>> st.parent_id, st.ev_map.shape, st.strokes
    (None, (6, 8), [])
    """
    with ws.unit(user) as uow:
        load_actor(uow, user.id)
        scene, ref = _scene_and_reference(uow.session, scene_id)
        head = target_head(uow, scene.id)
        if head is not None and head.ev_map_object:
            ev = ws.objects.get_array(head.ev_map_object).astype(np.float32)
            strokes = strokes_from_bytes(ws.objects.get_bytes(head.strokes_object)) if head.strokes_object else []
        else:
            ev = np.zeros(label_shape(ref.height, ref.width, ws.settings.label_max_side), np.float32)
            strokes = []
        return TargetState(scene.id, head.id if head is not None else None, ref.id, ev, strokes)


def save_target(
    ws: Workspace, user: UserInfo, state: TargetState, *, progress: Optional[ProgressFn] = None
) -> TargetSaveReport:
    """Save a new target revision, recompute the scene's reference differences and rebase annotations.

    A sequence of short units of work (check, save, then one per variant in
    :func:`apply_target`) so that the SQLite write lock is never held while photos are decoded.

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        Needs ``"paint_target"`` (reviewer or admin).
    state : TargetState
        From :func:`open_target`, painted on.
    progress : callable(done, total), optional
        Called after each variant.

    Returns
    -------
    TargetSaveReport

    Raises
    ------
    StaleRevisionError
        The scene's newest target is no longer ``state.parent_id``, or its reference changed.
    PermissionDeniedError
        An annotator.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.users import add_user
    >>> ws, ann, image_id = example_workspace()
    >>> rev = add_user(ws, "rev", role="reviewer", password="otter lamp quietly")
    >>> st = open_target(ws, rev, 1)
    >>> st.ev_map[:, :4] += 0.5
    >>> report = save_target(ws, rev, st)   # the example's reference has no file to recompute from
    >>> report.revision, report.n_rebased, len(report.errors)
    (1, 0, 1)
    """
    if not isinstance(state, TargetState):
        raise TypeError(f"state must be a TargetState (from open_target), got {type(state).__name__}")
    ev = check_ev_map(state.ev_map, "state.ev_map")
    strokes = strokes_bytes(state.strokes)
    with ws.unit(user) as uow:
        actor = load_actor(uow, user.id)
        require(actor, "paint_target")
        scene, ref = _scene_and_reference(uow.session, state.scene_id)
        if ref.id != state.reference_image_id:
            raise StaleRevisionError(
                f"the reference of scene {scene.name!r} changed since the painter opened; reopen it"
            )
    ev_key = ws.objects.put_array(ev)
    strokes_key = ws.objects.put_bytes(strokes)
    try:
        with ws.unit(user) as uow:
            session = uow.session
            actor = load_actor(uow, user.id)
            head = target_head(uow, scene.id)
            head_id, head_rev = (head.id, head.revision) if head is not None else (None, 0)
            if state.parent_id != head_id:
                raise StaleRevisionError(
                    f"this target was painted on revision {state.parent_id}, but scene {scene.name!r} is now at "
                    f"revision {head_rev} (target {head_id}); reopen the newest target and re-apply your changes"
                )
            target = Target(
                scene_id=scene.id,
                base_image_id=ref.id,
                revision=head_rev + 1,
                parent_id=head_id,
                ev_map_object=ev_key,
                strokes_object=strokes_key,
                author_id=actor.id,
                status="accepted",
            )
            session.add(target)
            session.flush()
            revision = target.revision
    except IntegrityError:
        raise StaleRevisionError(
            f"another target of scene {scene.name!r} was saved first; reopen the newest one"
        ) from None
    log.info("%s saved target revision %d of scene %s", actor.name, revision, scene.name)
    return apply_target(ws, user, scene.id, progress=progress)


def apply_target(
    ws: Workspace, user: UserInfo, scene_id: int, *, progress: Optional[ProgressFn] = None
) -> TargetSaveReport:
    """Recompute the reference differences against the scene's newest target and rebase; resumable.

    :func:`save_target` calls it. Variants whose reference difference already comes from
    the newest target are skipped (``n_skipped``), so after an interruption (a killed
    process, an unreadable file fixed since) running it again does the rest. Each variant
    (its new reference difference and its rebased annotations) is one unit of work.
    Needs ``"paint_target"``.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.users import add_user
    >>> ws, ann, image_id = example_workspace()
    >>> rev = add_user(ws, "rev", role="reviewer", password="otter lamp quietly")
    >>> apply_target(ws, rev, 1)
    Traceback (most recent call last):
    ...
    iea_data.core.errors.NotFoundError: scene 's' has no target yet; paint and save one first
    """
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "paint_target")
        scene, ref = _scene_and_reference(session, scene_id)
        target = target_head(uow, scene.id)
        if target is None:
            raise NotFoundError(f"scene {scene.name!r} has no target yet; paint and save one first")
        if target.base_image_id != ref.id:
            raise IeaError(
                f"the newest target of scene {scene.name!r} was painted on another reference; "
                f"paint a new target on the current reference"
            )
        ev = ws.objects.get_array(target.ev_map_object).astype(np.float32)
        variants = list(
            session.execute(
                select(Image.id, Image.name)
                .where(Image.scene_id == scene.id, Image.id != ref.id, Image.status == "ok")
                .order_by(Image.name)
            )
        )
        refdiff_head: dict[int, Optional[int]] = {}
        for image_id, target_id in session.execute(
            select(Label.image_id, Label.target_id)
            .where(Label.image_id.in_([v[0] for v in variants]), Label.chain == chain_key("refdiff"))
            .order_by(Label.revision)
        ):
            refdiff_head[image_id] = target_id  # the newest revision wins
        current = {i for i, t in refdiff_head.items() if t == target.id}
        rpath = image_path(uow, ref.id)
        source = raw_source(uow, ref, resolve=False)  # the RAW is hashed below, outside the transaction
        ref_size = (ref.height, ref.width)
    report = TargetSaveReport(target.id, target.revision, n_variants=len(variants))
    todo = [(i, n) for i, n in variants if i not in current]
    report.n_skipped = len(variants) - len(todo)
    if not todo:
        return report
    try:
        if rpath is None:
            raise IeaError(f"the reference {ref.name!r} has no readable file; ingest it again")
        ideal = _raw_ideal(source, ev, ref_size, report, max_pixels=ws.settings.max_pixels)
        if ideal is None:
            ideal = ideal_from_ev(read_image(rpath).rgb, ev)
    except (IeaError, OSError) as exc:
        report.errors.append(
            (ref.name, f"reference differences not recomputed: {exc}; run apply_target again once it is readable")
        )
        return report
    for i, (image_id, name) in enumerate(todo):
        try:
            _recompute_variant(ws, actor, target, ideal, image_id, report, source)
        except (IeaError, OSError, ValueError) as exc:  # the variant's unit of work was rolled back
            report.errors.append((name, str(exc)))
        finally:
            if progress:
                progress(i + 1, len(todo))
    return report


def _raw_ideal(
    source: Optional[RawSource],
    ev: np.ndarray,
    ref_size: tuple[int, int],
    report: TargetSaveReport,
    *,
    max_pixels: int,
) -> Optional[np.ndarray]:
    """The ideal from the linear RAW render of a RAW-derived reference; None (and a note) otherwise."""
    if source is None:
        return None
    source = source.resolve()
    if source.path is None:
        report.notes.append(f"ideal from the reference's pixels: {source.problem}")
        return None
    try:
        render = render_linear(source.path, wb=source.wb, max_pixels=max_pixels)
    except (IeaError, OSError, MemoryError) as exc:
        report.notes.append(f"ideal from the reference's pixels: the RAW {source.path} failed to render ({exc})")
        return None
    if render.linear.shape[:2] != ref_size:
        report.notes.append(
            f"ideal from the reference's pixels: the RAW {source.path} renders at {render.linear.shape[1]} x "
            f"{render.linear.shape[0]}, the reference is {ref_size[1]} x {ref_size[0]}"
        )
        return None
    report.ideal_source = "raw-linear"
    return ideal_from_linear(render.linear, ev, reference_ev=source.ev)


def _recompute_variant(
    ws: Workspace,
    actor: UserInfo,
    target: Target,
    ideal: np.ndarray,
    image_id: int,
    report: TargetSaveReport,
    source: Optional[RawSource] = None,
) -> None:
    # two units: the path lookup, then (after decoding, with no write lock held) the saves
    store = ws.objects
    with ws.unit(actor) as uow:
        vpath = image_path(uow, image_id)
    if vpath is None:
        raise IeaError("no readable file; ingest it again")
    new_map = variant_refdiff(read_image(vpath).rgb, ideal, ws.settings.label_max_side)
    with ws.unit(actor) as uow:
        session = uow.session
        head = chain_head(uow, image_id, chain_key("refdiff"))
        new_base = save_label(
            uow,
            new_map,
            image_id=image_id,
            kind="refdiff",
            parent_id=head.id if head is not None else None,
            target_id=target.id,
            params={
                "reference_image_id": target.base_image_id,
                "target_id": target.id,
                "target_revision": target.revision,
                "luma": "rec601-srgb",
                "ideal": report.ideal_source,
                **(
                    {"raw_sha256": source.raw_sha256, "reference_ev": source.ev}
                    if report.ideal_source == "raw-linear" and source is not None
                    else {}
                ),
            },
        )
        report.n_refdiff += 1
        old_bases = set(
            session.scalars(
                select(Label.id).where(Label.image_id == image_id, Label.kind == "refdiff", Label.id != new_base.id)
            )
        )
        chains = session.scalars(
            select(Label.chain).where(Label.image_id == image_id, Label.kind == "annotation").distinct()
        ).all()
        moved: dict[int, int] = {}  # old head id -> rebased revision id
        for chain in sorted(chains):
            old = chain_head(uow, image_id, chain)
            if old is None or old.base_id not in old_bases:
                continue
            author = session.get(User, old.author_id)
            if author is None or not author.enabled:
                report.errors.append((f"image {image_id} {chain}", "not rebased: its author is disabled"))
                continue
            corr = (
                store.get_array(old.correction_object).astype(np.float32)
                if old.correction_object
                else store.get_array(old.map_object).astype(np.float32)
                - store.get_array(session.get(Label, old.base_id).map_object).astype(np.float32)
            )
            if corr.shape != new_map.shape:
                report.errors.append(
                    (
                        f"image {image_id} {chain}",
                        f"not rebased: correction {corr.shape} does not match the new base {new_map.shape}",
                    )
                )
                continue
            params = json.loads(old.params) if old.params else {}
            params.update(rebased_from=old.id, rebased_target_id=target.id, rebased_by=actor.id, needs_review=True)
            status = "submitted" if old.status in ("submitted", "accepted") else old.status
            lab = save_label(
                uow,
                np.clip(new_map + corr, -1.0, 1.0).astype(np.float32),
                image_id=image_id,
                kind="annotation",
                parent_id=old.id,
                author_id=old.author_id,
                params=params,
                base_id=new_base.id,
                correction=corr,
                target_id=target.id,
                status=status,
                strokes=store.get_bytes(old.strokes_object) if old.strokes_object else None,
            )
            moved[old.id] = lab.id
            report.n_rebased += 1
        for d in session.scalars(select(Draft).where(Draft.image_id == image_id, Draft.base_label_id.in_(old_bases))):
            d.base_label_id = new_base.id
            if d.parent_id in moved:
                d.parent_id = moved[d.parent_id]
            d.updated_at = utcnow()
            report.n_drafts_moved += 1
