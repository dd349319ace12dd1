"""The annotation state the painter works on, its validation, and autosaved drafts.

A draft is an expert's unsaved work on one image (one per user and image): a row in
``drafts`` plus one object-store bundle (the float32 correction and the stroke log).
It is replaced in place after every stroke (the superseded bundle is deleted), turned into
a label revision by :func:`save_annotation` (then deleted), or dropped by
:func:`discard_draft`. Because it lives in the database and the object store, a closed tab
or a server restart loses nothing that reached the server.
"""

from __future__ import annotations

import io
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import delete, select

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError
from iea_data.core.imaging import label_shape
from iea_data.store import BASE_KINDS, Draft, Image, Label, UnitOfWork, UserInfo, insert_ignore, require, utcnow
from iea_data.workflows.users import load_actor

from ._revisions import chain_key

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "BASES",
    "AnnotationState",
    "save_draft",
    "discard_draft",
    "CORRECTION_LIMIT",
    "MAX_COMMENT_LENGTH",
    "strokes_bytes",
    "strokes_from_bytes",
]

log = logging.getLogger(__name__)

#: What an annotation can start from: the model pre-label, the reference difference, or zero.
BASES = BASE_KINDS
#: A correction may move a pixel from -1 to +1, so its values lie in [-2, 2].
CORRECTION_LIMIT = 2.0
MAX_COMMENT_LENGTH = 10_000


@dataclass
class AnnotationState:
    """What the painter edits for one image in one expert's chain.

    Attributes
    ----------
    image_id : int
    chain : str
        ``"user:<id>"`` — only that user may save it.
    parent_id : int or None
        The chain head this work is based on (None for the chain's first revision).
    base_kind : {"model", "refdiff", "zero"}
    base_label_id : int or None
        The pre-label painted on (None for a zero base).
    base : ndarray, float32 (h, w), [-1, 1]
        The base map at label resolution (for display; saves re-read it by id).
    correction : ndarray, float32 (h, w), [-2, 2]
        The painted correction; the label is ``clip(base + correction, -1, 1)``.
    strokes : list of dict
        The stroke log (JSON-serialisable), kept with the revision for audit and replay.
    score : float or None
        Image-level score 0–10.
    comment : str or None
    from_draft : bool
        True when this state was resumed from an autosaved draft.
    base_fallback : bool
        True when the requested pre-label does not exist and the state starts from zero.
    notice : str or None
        A sentence for the user about the above (fallback, a draft older than the chain head).
    """

    image_id: int
    chain: str
    parent_id: Optional[int]
    base_kind: str
    base_label_id: Optional[int]
    base: np.ndarray
    correction: np.ndarray
    strokes: list = field(default_factory=list)
    score: Optional[float] = None
    comment: Optional[str] = None
    from_draft: bool = False
    base_fallback: bool = False
    notice: Optional[str] = None

    @property
    def map(self) -> np.ndarray:
        """``clip(base + correction, -1, 1)`` as float32: what a save stores."""
        return np.clip(self.base + self.correction, -1.0, 1.0).astype(np.float32)


def _check_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (a catalog id), got {type(value).__name__}")
    return int(value)


def check_state(uow: UnitOfWork, actor: UserInfo, state: AnnotationState) -> tuple[Image, Optional[Label]]:
    """Validate ``state`` for ``actor`` against the catalog, inside the caller's unit of work.

    Returns the image and the base label (None for a zero base). The label shape follows
    the workspace's ``labels.max_side``.
    """
    session, max_side = uow.session, uow.workspace.settings.label_max_side
    if not isinstance(state, AnnotationState):
        raise TypeError(f"state must be an AnnotationState (from open_annotation), got {type(state).__name__}")
    image_id = _check_int(state.image_id, "state.image_id")
    own = chain_key("annotation", author_id=actor.id)
    if state.chain != own:
        raise PermissionDeniedError(
            f"user {actor.name!r} may only write their own revision chain {own}, not {state.chain!r}"
        )
    image = session.get(Image, image_id)
    if image is None:
        raise NotFoundError(f"no image with id {image_id}")
    if state.base_kind not in BASES:
        raise ValueError(f"state.base_kind must be one of {', '.join(BASES)}, got {state.base_kind!r}")
    base_label = None
    if state.base_kind == "zero":
        if state.base_label_id is not None:
            raise ValueError(f"a zero base has no base label, got state.base_label_id={state.base_label_id!r}")
        if image.height is None or image.width is None:
            raise IeaError(f"image {image_id} ({image.name}) has no decoded size; ingest its file first")
        shape = label_shape(image.height, image.width, max_side)
    else:
        base_id = _check_int(state.base_label_id, "state.base_label_id")
        base_label = session.get(Label, base_id)
        if base_label is None or base_label.image_id != image_id or base_label.kind != state.base_kind:
            raise ValueError(
                f"state.base_label_id={base_id} is not a {state.base_kind} label of image {image_id}; reopen the image"
            )
        shape = (base_label.height, base_label.width)
    corr = state.correction
    if not isinstance(corr, np.ndarray) or corr.dtype != np.float32 or corr.ndim != 2:
        got = f"{corr.dtype} array of shape {corr.shape}" if isinstance(corr, np.ndarray) else type(corr).__name__
        raise TypeError(f"state.correction must be a float32 (h, w) array, got {got}")
    if corr.shape != tuple(shape):
        raise ValueError(f"state.correction must have the label shape {tuple(shape)}, got {corr.shape}")
    if not np.isfinite(corr).all():
        raise ValueError("state.correction must be finite (no NaN or inf)")
    lo, hi = (float(corr.min()), float(corr.max())) if corr.size else (0.0, 0.0)
    if lo < -CORRECTION_LIMIT or hi > CORRECTION_LIMIT:
        raise ValueError(f"state.correction must lie in [-2, 2] (residual units), got [{lo:.4g}, {hi:.4g}]")
    if state.score is not None:
        if (
            not isinstance(state.score, (int, float, np.floating))
            or isinstance(state.score, bool)
            or not math.isfinite(float(state.score))
            or not 0 <= float(state.score) <= 10
        ):
            raise ValueError(f"state.score must be a number in [0, 10] or None, got {state.score!r}")
    if state.comment is not None and (not isinstance(state.comment, str) or len(state.comment) > MAX_COMMENT_LENGTH):
        raise ValueError(f"state.comment must be a str of at most {MAX_COMMENT_LENGTH} characters or None")
    if state.parent_id is not None:
        parent = session.get(Label, _check_int(state.parent_id, "state.parent_id"))
        if parent is None or parent.image_id != image_id or parent.chain != state.chain:
            raise ValueError(
                f"state.parent_id={state.parent_id} is not a revision of {state.chain} for image {image_id}"
            )
    if not isinstance(state.strokes, list):
        raise TypeError(f"state.strokes must be a list of dicts, got {type(state.strokes).__name__}")
    return image, base_label


def strokes_bytes(strokes: list) -> bytes:
    """The stroke log as UTF-8 JSON (a ValueError names what is not serialisable)."""
    try:
        return json.dumps(strokes, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"state.strokes must be JSON-serialisable (numbers finite): {exc}") from None


def strokes_from_bytes(data: bytes) -> list:
    out = json.loads(data.decode("utf-8"))
    return out if isinstance(out, list) else []


def _bundle(correction: np.ndarray, strokes: bytes, user_id: int, image_id: int) -> bytes:
    # the meta (with a nonce) makes every bundle's bytes, hence its key, unique to one save of one
    # draft, so deleting a superseded bundle can never remove an object anything else refers to
    meta = json.dumps({"user_id": user_id, "image_id": image_id, "nonce": uuid.uuid4().hex}).encode()
    buf = io.BytesIO()
    np.savez(buf, correction=correction, strokes=np.frombuffer(strokes, np.uint8), meta=np.frombuffer(meta, np.uint8))
    return buf.getvalue()


def read_bundle(store, key: str) -> tuple[np.ndarray, list]:
    """(correction, strokes) of a draft bundle."""
    with np.load(io.BytesIO(store.get_bytes(key)), allow_pickle=False) as z:
        return z["correction"].astype(np.float32), strokes_from_bytes(z["strokes"].tobytes())


def drop_object(store, key: Optional[str]) -> None:
    """Delete a superseded draft bundle (never an object that a revision refers to)."""
    if not key:
        return
    try:
        store.path(key).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # a leftover bundle is harmless garbage
        log.warning("could not delete superseded draft object %s: %s", key, exc)


def save_draft(ws: Workspace, user: UserInfo, state: AnnotationState) -> None:
    """Autosave ``state`` as the user's draft for its image; commits.

    Idempotent and cheap enough to call after every stroke (about 10 ms at a 1024-px
    map: one uncompressed bundle write, one row upsert). One draft per (user, image): the
    newest save wins, the previous bundle is deleted. Survives tab closes and server
    restarts; :func:`open_annotation` resumes it.

    Two short units of work: the check, then (after the bundle is written, outside any
    transaction so that the SQLite write lock is not held during the write) the row upsert.

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        The acting user (re-read from the database; needs ``"annotate"``).
    state : AnnotationState
        From :func:`open_annotation`, painted on. Only ``user``'s own chain is accepted.

    Raises
    ------
    PermissionDeniedError
        Another user's chain, or a role without ``"annotate"``.
    AuthError
        The user was disabled or deleted.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> from iea_data.workflows.labels import open_annotation
    >>> st = open_annotation(ws, ann, image_id, base="zero")
    >>> st.correction[0, 0] = 0.25
    >>> save_draft(ws, ann, st)
    >>> open_annotation(ws, ann, image_id).from_draft
    True
    """
    with ws.unit(user) as uow:
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        check_state(uow, actor, state)
    data = _bundle(
        np.ascontiguousarray(state.correction, np.float32), strokes_bytes(state.strokes), actor.id, int(state.image_id)
    )
    key = ws.objects.put_bytes(data, durable=False)
    old = None
    try:
        with ws.unit(user) as uow:
            session = uow.session
            insert_ignore(
                session,
                Draft.__table__,
                [
                    {
                        "user_id": actor.id,
                        "image_id": int(state.image_id),
                        "parent_id": state.parent_id,
                        "base_kind": state.base_kind,
                        "base_label_id": state.base_label_id,
                        "object": key,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                ],
                conflict=["user_id", "image_id"],
            )
            row = session.scalar(
                select(Draft)
                .where(Draft.user_id == actor.id, Draft.image_id == int(state.image_id))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            old = row.object if row.object != key else None
            row.parent_id = state.parent_id
            row.base_kind = state.base_kind
            row.base_label_id = state.base_label_id
            row.object = key
            row.score = None if state.score is None else float(state.score)
            row.comment = state.comment
            row.updated_at = utcnow()
    except BaseException:
        drop_object(ws.objects, key)
        raise
    drop_object(ws.objects, old)


def load_draft(uow: UnitOfWork, user_id: int, image_id: int) -> Optional[tuple[Draft, np.ndarray, list]]:
    """The user's draft row, correction and strokes, inside the caller's unit.

    None if there is none, or if its bundle is unreadable (the row is then dropped).
    """
    session = uow.session
    row = session.scalar(
        select(Draft)
        .where(Draft.user_id == user_id, Draft.image_id == image_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return None
    try:
        corr, strokes = read_bundle(uow.objects, row.object)
    except (IeaError, OSError, ValueError, KeyError) as exc:
        log.warning("draft of user %s on image %s is unreadable (%s); dropping it", user_id, image_id, exc)
        session.execute(delete(Draft).where(Draft.id == row.id))
        return None
    return row, corr, strokes


def discard_draft(ws: Workspace, user: UserInfo, image_id: int) -> None:
    """Drop the user's draft for ``image_id`` (nothing happens if there is none); commits.

    Only the user's own draft: the acting user is the owner by construction.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> discard_draft(ws, ann, image_id)  # no draft: harmless
    """
    image_id = _check_int(image_id, "image_id")
    with ws.unit(user) as uow:
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        s = uow.session
        key = s.scalar(select(Draft.object).where(Draft.user_id == actor.id, Draft.image_id == image_id))
        s.execute(delete(Draft).where(Draft.user_id == actor.id, Draft.image_id == image_id))
    drop_object(ws.objects, key)
