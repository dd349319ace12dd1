"""Opening and saving an expert's annotation: base + painted correction, in their own revision chain.

An annotation revision stores its base label (a model pre-label, the reference difference,
or none for a zero base), the painted correction (float32) and the stroke log, so that
``map = clip(base + correction, -1, 1)`` and the correction can be laid over a new base
later (rebase, see :mod:`iea_data.workflows.targets`). Every expert writes only their own chain
``user:<id>``; a save based on a revision that is no longer the chain head is refused and
the work is kept as a draft.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import delete, select

from iea_data.core.errors import IeaError, NotFoundError, StaleRevisionError
from iea_data.core.imaging import label_shape
from iea_data.store import Draft, Image, Label, Score, UnitOfWork, UserInfo, require
from iea_data.workflows.users import load_actor

from ._drafts import (
    BASES,
    AnnotationState,
    _check_int,
    check_state,
    drop_object,
    load_draft,
    save_draft,
    strokes_bytes,
    strokes_from_bytes,
)
from ._revisions import chain_head, chain_key, save_label

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["open_annotation", "save_annotation", "change_base", "base_label", "score_source"]

log = logging.getLogger(__name__)


def score_source(user_name: str) -> str:
    """The ``scores.source`` of an annotator's image score.

    >>> score_source("ann")
    'annotator:ann'
    """
    return f"annotator:{user_name}"


def base_label(uow: UnitOfWork, image_id: int, kind: str) -> Optional[Label]:
    """The newest pre-label of ``kind`` ("model": of any model; "refdiff") for an image, or None.

    Reads inside the caller's unit of work.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     base_label(uow, image_id, "refdiff") is None
    True
    """
    if kind not in ("model", "refdiff"):
        raise ValueError(f"kind must be 'model' or 'refdiff', got {kind!r}")
    return uow.session.scalar(
        select(Label).where(Label.image_id == image_id, Label.kind == kind).order_by(Label.id.desc()).limit(1)
    )


def _label_array(store, key: Optional[str]) -> Optional[np.ndarray]:
    return None if key is None else store.get_array(key).astype(np.float32)


def _base_kind(label: Optional[Label]) -> str:
    return "zero" if label is None else label.kind


def open_annotation(ws: Workspace, user: UserInfo, image_id: int, *, base: str = "model") -> AnnotationState:
    """The state the painter starts from for ``user`` on ``image_id``; commits (reads only).

    In this order: the user's autosaved draft, else their chain head (its base and
    correction), else a zero correction over the newest ``base`` pre-label. When that
    pre-label does not exist the state starts from a zero base with ``base_fallback=True``
    and a ``notice`` saying so. A draft older than the chain head (the same user saved in
    another tab) is resumed with ``parent_id`` set to the head and a ``notice``: saving it
    then replaces that revision's content; :func:`discard_draft` starts from the head instead.

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        Needs ``"annotate"``.
    image_id : int
        A catalog id (never a path).
    base : {"model", "refdiff", "zero"}
        The base of a fresh start (ignored when a draft or a revision exists).

    Returns
    -------
    AnnotationState

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> st = open_annotation(ws, ann, image_id, base="refdiff")
    >>> st.base_kind, st.base_fallback, st.correction.shape
    ('zero', True, (6, 8))
    >>> st.correction[1:3, 1:3] -= 0.1; save_draft(ws, ann, st)
    """
    image_id = _check_int(image_id, "image_id")
    if base not in BASES:
        raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
    store = ws.objects
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        image = session.get(Image, image_id)
        if image is None:
            raise NotFoundError(f"no image with id {image_id}")
        chain = chain_key("annotation", author_id=actor.id)
        head = chain_head(uow, image_id, chain)
        head_id = head.id if head is not None else None
        draft = load_draft(uow, actor.id, image_id)
        if draft is not None:
            row, corr, strokes = draft
            base_row = session.get(Label, row.base_label_id) if row.base_label_id is not None else None
            base_map = _label_array(store, base_row.map_object) if base_row is not None else np.zeros_like(corr)
            notice = None
            if row.parent_id != head_id:
                notice = (
                    f"your draft was started from label {row.parent_id}, but you saved revision "
                    f"{head.revision if head else '?'} (label {head_id}) since, probably in another tab; saving "
                    f"this draft will make it the newest revision, or discard the draft to continue from the newest"
                )
            return AnnotationState(
                image_id,
                chain,
                head_id,
                row.base_kind,
                row.base_label_id,
                base_map,
                corr,
                strokes,
                row.score,
                row.comment,
                from_draft=True,
                notice=notice,
            )
        if head is not None:
            base_row = session.get(Label, head.base_id) if head.base_id is not None else None
            base_map = (
                _label_array(store, base_row.map_object)
                if base_row is not None
                else np.zeros((head.height, head.width), np.float32)
            )
            corr = _label_array(store, head.correction_object)
            if corr is None:  # a revision saved without a correction: derive it from its map
                corr = (store.get_array(head.map_object).astype(np.float32) - base_map).astype(np.float32)
            strokes = strokes_from_bytes(store.get_bytes(head.strokes_object)) if head.strokes_object else []
            params = json.loads(head.params) if head.params else {}
            kind = base_row.kind if base_row is not None and base_row.kind in BASES else "zero"
            return AnnotationState(
                image_id,
                chain,
                head.id,
                kind,
                base_row.id if base_row is not None else None,
                base_map,
                corr,
                strokes,
                params.get("score"),
                params.get("comment"),
            )
        if image.height is None or image.width is None:
            raise IeaError(
                f"image {image_id} ({image.name}) has no decoded size (status {image.status}); ingest its file first"
            )
        pre = base_label(uow, image_id, base) if base != "zero" else None
        notice, fallback = None, False
        if base != "zero" and pre is None:
            fallback = True
            notice = (
                f"image {image.name} has no {base} pre-label yet; starting from a zero base "
                f"(run `iea prelabel --method {base}` to make one)"
            )
        if pre is not None:
            base_map = _label_array(store, pre.map_object)
        else:
            base_map = np.zeros(label_shape(image.height, image.width, ws.settings.label_max_side), np.float32)
        return AnnotationState(
            image_id,
            chain,
            None,
            _base_kind(pre),
            pre.id if pre is not None else None,
            base_map,
            np.zeros_like(base_map),
            [],
            None,
            None,
            base_fallback=fallback,
            notice=notice,
        )


def save_annotation(ws: Workspace, user: UserInfo, state: AnnotationState, *, submit: bool = False) -> Label:
    """Save ``state`` as a new revision of the user's chain; commits.

    Two short units of work: the check, then (after the map is computed, outside any
    transaction so that the SQLite write lock is not held meanwhile) the save.

    The revision has kind ``"annotation"``, ``parent_id=state.parent_id``, the base label,
    the correction (float32) and the stroke log as objects, map ``clip(base + correction,
    -1, 1)`` with the base re-read from the catalog by id, status ``"submitted"`` when
    ``submit`` else ``"draft"``, and ``params`` recording base kind, score and comment. The
    score (and comment) also go to the ``scores`` row of source ``annotator:<name>``
    (removed when ``state.score`` is None). The user's draft for the image is deleted.

    Raises
    ------
    StaleRevisionError
        The chain head is no longer ``state.parent_id`` (another tab saved meanwhile).
        Nothing is written except the draft: ``state`` is kept as the user's draft.
    PermissionDeniedError
        Another user's chain, or a role without ``"annotate"``.
    AuthError
        The user was disabled or deleted.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> state = open_annotation(ws, ann, image_id, base="zero")
    >>> state.correction[:] = 0.2; state.score = 6.0
    >>> label = save_annotation(ws, ann, state, submit=True)
    >>> label.status, label.kind, label.revision
    ('submitted', 'annotation', 1)
    """
    store = ws.objects
    with ws.unit(user) as uow:
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        _, base_row = check_state(uow, actor, state)
        base_key = base_row.map_object if base_row is not None else None
    strokes = strokes_bytes(state.strokes)
    base_map = _label_array(store, base_key) if base_key is not None else np.zeros_like(state.correction)
    residual = np.clip(base_map + state.correction, -1.0, 1.0).astype(np.float32)
    score = None if state.score is None else float(state.score)
    params = {"base_kind": state.base_kind, "score": score, "comment": state.comment, "n_strokes": len(state.strokes)}
    draft_key = None
    try:
        with ws.unit(user) as uow:
            session = uow.session
            actor = load_actor(uow, user.id)
            label = save_label(
                uow,
                residual,
                image_id=int(state.image_id),
                kind="annotation",
                parent_id=state.parent_id,
                author_id=actor.id,
                params=params,
                base_id=state.base_label_id,
                correction=state.correction,
                strokes=strokes,
                status="submitted" if submit else "draft",
            )
            source = score_source(actor.name)
            row = session.scalar(select(Score).where(Score.image_id == label.image_id, Score.source == source))
            if score is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    Score(
                        image_id=label.image_id, value=score, source=source, author_id=actor.id, comment=state.comment
                    )
                )
            else:
                row.value, row.comment, row.author_id = score, state.comment, actor.id
            draft_key = session.scalar(
                select(Draft.object).where(Draft.user_id == actor.id, Draft.image_id == label.image_id)
            )
            session.execute(delete(Draft).where(Draft.user_id == actor.id, Draft.image_id == label.image_id))
    except StaleRevisionError:
        save_draft(ws, user, state)  # the work is never lost
        raise
    drop_object(store, draft_key)
    log.info(
        "%s saved %s revision %d of image %d (%s)",
        actor.name,
        label.chain,
        label.revision,
        label.image_id,
        label.status,
    )
    return label


def change_base(ws: Workspace, user: UserInfo, state: AnnotationState, base: str) -> AnnotationState:
    """The same painted correction over another base (``"model"``, ``"refdiff"`` or ``"zero"``); commits (reads only).

    Nothing is saved: the returned state is what the painter shows next, and the next save
    (or autosave) records the new base. Use it when an expert wants to start over from
    another pre-label without losing their strokes.

    Raises
    ------
    IeaError
        The image has no pre-label of that kind.
    ValueError
        The new base has another shape than the correction.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> st = open_annotation(ws, ann, image_id, base="zero")
    >>> change_base(ws, ann, st, "zero").base_kind
    'zero'
    """
    if base not in BASES:
        raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
    with ws.unit(user) as uow:
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        check_state(uow, actor, state)
        pre = base_label(uow, int(state.image_id), base) if base != "zero" else None
        if base != "zero" and pre is None:
            raise IeaError(f"image {state.image_id} has no {base} pre-label; run `iea prelabel --method {base}`")
        key = pre.map_object if pre is not None else None
    new_base = _label_array(ws.objects, key) if key is not None else np.zeros_like(state.correction)
    if new_base.shape != state.correction.shape:
        raise ValueError(f"the {base} pre-label has shape {new_base.shape}, the correction {state.correction.shape}")
    return dataclasses.replace(
        state,
        base_kind=base,
        base_label_id=pre.id if pre is not None else None,
        base=new_base,
        correction=state.correction.copy(),
        base_fallback=False,
        notice=f"now painting over the {base} base (your correction is kept)",
    )
