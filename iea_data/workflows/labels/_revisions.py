"""Label revisions: residual maps that are never overwritten, with optimistic concurrency.

Each image has one revision chain per author: ``user:<id>`` for an expert's annotations,
``model:<name>`` for model pre-labels, ``refdiff`` and ``consensus``. A save names the
revision it was based on (``parent_id``); if the chain moved on meanwhile (the same user
in two tabs, two processes), the save is refused with :class:`StaleRevisionError` and
nothing is written. The check is enforced by the database (unique image, chain,
revision), so it holds across processes on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from iea_data.core.errors import IeaError, NotFoundError, StaleRevisionError
from iea_data.core.imaging import check_residual
from iea_data.core.residuals import label_stats
from iea_data.store import (
    LABEL_KINDS,
    LABEL_STATUSES,
    Image,
    Label,
    UnitOfWork,
    User,
    begin_annotation,
    record_consensus,
    refresh_image,
    utcnow,
)
from iea_data.store.objects import ObjectStore

from ._stale import CONSENSUS_INPUT_STATUSES, mark_consensus_stale

__all__ = [
    "chain_key",
    "save_label",
    "save_label_batch",
    "chain_head",
    "chain_heads",
    "set_label_status",
    "load_label_map",
    "StoredMap",
    "store_label_map",
]


def chain_key(kind: str, *, author_id: int | None = None, model_name: str | None = None) -> str:
    """The revision chain a label belongs to.

    >>> chain_key("annotation", author_id=3), chain_key("model", model_name="pieanet"), chain_key("refdiff")
    ('user:3', 'model:pieanet', 'refdiff')
    """
    if kind not in LABEL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(LABEL_KINDS)}, got {kind!r}")
    if kind == "annotation":
        if author_id is None:
            raise ValueError("an annotation needs author_id (the expert who made it)")
        return f"user:{author_id}"
    if kind == "model":
        if not model_name:
            raise ValueError("a model pre-label needs model_name")
        return f"model:{model_name}"
    return kind


@dataclass(frozen=True)
class StoredMap:
    """A residual map already in the object store: its key, size and summary statistics.

    What :func:`store_label_map` returns where the map is computed (a worker process, a Ray
    actor), so that only this small record travels to the process that commits the label.
    """

    map_object: str
    height: int
    width: int
    stats: Mapping[str, float]


def store_label_map(objects: ObjectStore, residual: np.ndarray) -> StoredMap:
    """Put a label's map into ``objects`` (float16, content-addressed) and summarise it.

    Parameters
    ----------
    objects : ObjectStore
        The workspace's object store (any process that sees the workspace's folder).
    residual : ndarray, float32, shape (h, w), values in [-1, 1]

    Examples
    --------
    >>> import tempfile
    >>> stored = store_label_map(ObjectStore(tempfile.mkdtemp()), np.full((2, 3), -0.5, np.float32))
    >>> stored.height, stored.width, stored.stats["mean"]
    (2, 3, -0.5)
    """
    residual = check_residual(residual, "residual")
    key = objects.put_array(residual.astype(np.float16))
    return StoredMap(key, int(residual.shape[0]), int(residual.shape[1]), label_stats(residual))


def chain_head(uow: UnitOfWork, image_id: int, chain: str) -> Optional[Label]:
    """The newest revision of ``chain`` for ``image_id`` (None if the chain is empty), inside the caller's unit.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     chain_head(uow, 1, chain_key("refdiff")) is None
    True
    """
    return uow.session.scalar(
        select(Label).where(Label.image_id == image_id, Label.chain == chain).order_by(Label.revision.desc()).limit(1)
    )


def save_label(
    uow: UnitOfWork,
    residual: Union[np.ndarray, StoredMap],
    *,
    image_id: int,
    kind: str,
    parent_id: int | None = None,
    author_id: int | None = None,
    model_name: str | None = None,
    model_sha256: str | None = None,
    params: Mapping[str, Any] | None = None,
    base_id: int | None = None,
    correction: np.ndarray | None = None,
    strokes: bytes | None = None,
    target_id: int | None = None,
    status: str = "draft",
) -> Label:
    """Save a new revision of an image's residual map inside the caller's unit of work.

    The save is a savepoint of ``uow``: a refused save (:class:`StaleRevisionError`) leaves
    the rest of the unit intact; the unit commits when its block ends.

    Parameters
    ----------
    uow : UnitOfWork
        The caller's unit; its object store receives the arrays (the map as float16, the
        correction as float32).
    residual : ndarray, float32, shape (h, w), values in [-1, 1], or StoredMap
        ``Y(photo) - Y(ideal)``; negative = too dark. A :class:`StoredMap` is a map another
        process already put into this workspace's object store (:func:`store_label_map`).
    image_id : int
        The image labelled.
    kind : {"model", "refdiff", "annotation", "consensus"}
    parent_id : int or None
        The revision this one was edited from; must be the chain's newest revision
        (None only for the first revision of a chain).
    author_id, model_name, model_sha256, params
        Provenance: a person (annotations) or a model with its weights hash and the
        parameters of the run (stored as JSON).
    base_id, correction, strokes
        For annotations: the label painted on and the painted correction, so that
        ``map = base + correction``; the stroke log (bytes) for audit and replay.

    Returns
    -------
    Label
        The new row (revision = parent's revision + 1).

    Raises
    ------
    StaleRevisionError
        When ``parent_id`` is not the newest revision of the chain (nothing is written).

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import Image, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add(Image(name="a.png", status="ok", width=4, height=2)); uow.session.flush()
    ...     label = save_label(uow, np.zeros((2, 4), np.float32), image_id=1, kind="refdiff")
    >>> label.chain, label.revision
    ('refdiff', 1)
    """
    session, store = uow.session, uow.objects
    if status not in LABEL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(LABEL_STATUSES)}, got {status!r}")
    chain = chain_key(kind, author_id=author_id, model_name=model_name)
    # Arrays first (content-addressed, harmless if the save is refused), then one short transaction.
    if isinstance(residual, StoredMap):
        if not store.exists(residual.map_object):
            raise NotFoundError(
                f"map {residual.map_object} is not in this workspace's object store; the process that computed "
                f"it wrote to another folder (the workspace must be on storage every node sees)"
            )
        stored = residual
    else:
        stored = store_label_map(store, residual)
    map_key = stored.map_object
    corr_key = store.put_array(np.asarray(correction, np.float32)) if correction is not None else None
    strokes_key = store.put_bytes(strokes) if strokes is not None else None
    try:
        with session.begin_nested():
            if session.get(Image, image_id) is None:
                raise NotFoundError(f"no image with id {image_id}")
            if author_id is not None:
                user = session.get(User, author_id)
                if user is None:
                    raise NotFoundError(f"no user with id {author_id}")
                if not user.enabled:
                    raise IeaError(f"user {user.name!r} is disabled and cannot save labels")
            head = chain_head(uow, image_id, chain)
            head_id, head_rev = (head.id, head.revision) if head is not None else (None, 0)
            if parent_id != head_id:
                newest = f"revision {head_rev} (label {head_id})" if head_id is not None else "no revision yet"
                raise StaleRevisionError(
                    f"this save is based on label {parent_id}, but {chain} of image {image_id} is now at {newest}; "
                    f"reload the newest revision and re-apply your changes (your draft is kept)"
                )
            # issue 15: the quality summary moves in this transaction (the author's row locked first)
            times: dict[str, Any] = {}
            if kind == "annotation" and author_id is not None:
                created_at, gap_s = begin_annotation(session, author_id, params)
                times = {"created_at": created_at, "updated_at": created_at, "gap_s": gap_s}
            label = Label(
                image_id=image_id,
                kind=kind,
                chain=chain,
                revision=head_rev + 1,
                status=status,
                author_id=author_id,
                model_name=model_name,
                model_sha256=model_sha256,
                params=json.dumps(dict(params), sort_keys=True, default=str) if params else None,
                parent_id=parent_id,
                base_id=base_id,
                target_id=target_id,
                map_object=map_key,
                correction_object=corr_key,
                strokes_object=strokes_key,
                height=stored.height,
                width=stored.width,
                **stored.stats,
                **times,
            )
            session.add(label)
            session.flush()
            if kind == "annotation":  # a draft replacing a submitted head takes the expert off the image
                refresh_image(session, image_id, author_id)
                if status in CONSENSUS_INPUT_STATUSES:
                    mark_consensus_stale(uow, image_id)  # issue 15: the consensus of this image is out of date
            elif kind == "consensus":
                record_consensus(session, [(image_id, label.id, params)])
    except IntegrityError:
        raise StaleRevisionError(
            f"another save of {chain} for image {image_id} landed first; reload the newest revision and re-apply "
            f"your changes (your draft is kept)"
        ) from None
    return label


def chain_heads(uow: UnitOfWork, image_ids: Sequence[int], chain: str) -> dict[int, tuple[int, int]]:
    """``image id -> (label id, revision)`` of the newest revision of ``chain``, for many images in one query.

    Images whose chain is empty are absent. Inside the caller's unit (what :func:`chain_head`
    does for one image).

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     chain_heads(uow, [image_id], chain_key("refdiff"))
    {}
    """
    ids = sorted({int(i) for i in image_ids})
    if not ids:
        return {}
    newest = (
        select(Label.image_id, func.max(Label.revision).label("rev"))
        .where(Label.chain == chain, Label.image_id.in_(ids))
        .group_by(Label.image_id)
        .subquery()
    )
    q = (
        select(Label.image_id, Label.id, Label.revision)
        .join(newest, (Label.image_id == newest.c.image_id) & (Label.revision == newest.c.rev))
        .where(Label.chain == chain)
    )
    return {int(i): (int(lid), int(rev)) for i, lid, rev in uow.session.execute(q)}


def save_label_batch(
    uow: UnitOfWork,
    revisions: Sequence[tuple[int, StoredMap, Optional[int], Optional[Mapping[str, Any]]]],
    *,
    kind: str,
    status: str = "accepted",
    model_name: Optional[str] = None,
    model_sha256: Optional[str] = None,
    target_ids: Optional[Sequence[Optional[int]]] = None,
) -> list[int]:
    """Save many revisions of one chain kind without an author (``consensus``, ``refdiff``, ``model``) in one statement.

    What :func:`save_label` does for one revision, for a batch inside the caller's unit of
    work: the heads of every image's chain are read in one query and checked against the
    parents given, then all rows are inserted at once (no per-row ORM objects). Either every
    revision is written or none (a savepoint).

    Parameters
    ----------
    uow : UnitOfWork
    revisions : sequence of (image_id, StoredMap, parent_id, params)
        Maps already in the unit's object store (:func:`store_label_map`); ``parent_id`` must be
        the chain's newest revision of that image (None for the first); ``params`` stored as JSON.
        Each image at most once.
    kind : {"consensus", "refdiff", "model"}
        Chains without an author (annotations go through :func:`save_label`, which also moves the
        quality summary).
    status : str
    model_name, model_sha256 : str, optional
        For ``kind="model"``: the model (its chain, ``model:<name>``) and its weights hash.
    target_ids : sequence of (int or None), optional
        For ``kind="refdiff"``: the painted target each revision's ideal came from, one per revision.

    Returns
    -------
    list of int
        The new label ids, in the order given.

    Raises
    ------
    StaleRevisionError
        A parent is not its chain's newest revision (nothing is written).

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import Image, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add(Image(name="a.png", status="ok", width=2, height=1)); uow.session.flush()
    ...     m = store_label_map(uow.objects, np.zeros((1, 2), np.float32))
    ...     first = save_label_batch(uow, [(1, m, None, {"method": "mean"})], kind="consensus")
    ...     second = save_label_batch(uow, [(1, m, first[0], None)], kind="consensus")
    >>> with ws.unit() as uow:
    ...     chain_head(uow, 1, "consensus").revision
    2
    """
    if kind not in ("consensus", "refdiff", "model"):
        raise ValueError(f"kind must be 'consensus', 'refdiff' or 'model' (use save_label for {kind!r}), got {kind!r}")
    if status not in LABEL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(LABEL_STATUSES)}, got {status!r}")
    if (model_name is not None or model_sha256 is not None) and kind != "model":
        raise ValueError(f"model_name and model_sha256 are for kind='model', got kind={kind!r}")
    if target_ids is not None and (kind != "refdiff" or len(target_ids) != len(revisions)):
        raise ValueError(
            f"target_ids must be given for kind='refdiff' only, one per revision; got {len(target_ids)} for "
            f"{len(revisions)} revisions of kind {kind!r}"
        )
    if not revisions:
        return []
    chain = chain_key(kind, model_name=model_name)
    ids = [int(r[0]) for r in revisions]
    if len(set(ids)) != len(ids):
        raise ValueError("revisions must name each image at most once")
    for _i, stored, _p, _params in revisions:
        if not isinstance(stored, StoredMap):
            raise TypeError(f"each revision's map must be a StoredMap (store_label_map), got {type(stored).__name__}")
    session = uow.session
    now = utcnow()
    try:
        with session.begin_nested():
            known = set(session.scalars(select(Image.id).where(Image.id.in_(ids))))
            missing = [i for i in ids if i not in known]
            if missing:
                raise NotFoundError(f"no image with id {missing[0]}")
            heads = chain_heads(uow, ids, chain)
            rows = []
            for k, (image_id, stored, parent_id, params) in enumerate(revisions):
                head_id, head_rev = heads.get(int(image_id), (None, 0))
                if parent_id != head_id:
                    raise StaleRevisionError(
                        f"this save is based on label {parent_id}, but {chain} of image {image_id} is now at "
                        f"{f'revision {head_rev} (label {head_id})' if head_id is not None else 'no revision yet'}; "
                        f"run it again"
                    )
                rows.append(
                    {
                        "image_id": int(image_id),
                        "kind": kind,
                        "chain": chain,
                        "revision": head_rev + 1,
                        "status": status,
                        "params": json.dumps(dict(params), sort_keys=True, default=str) if params else None,
                        "parent_id": parent_id,
                        "model_name": model_name,
                        "model_sha256": model_sha256,
                        "target_id": target_ids[k] if target_ids is not None else None,
                        "map_object": stored.map_object,
                        "height": stored.height,
                        "width": stored.width,
                        "created_at": now,
                        "updated_at": now,
                        **stored.stats,
                    }
                )
            session.execute(insert(Label), rows)
            new_ids = _new_ids(session, chain, rows)
            if kind == "consensus":
                record_consensus(session, [(int(r[0]), new_ids[int(r[0])], r[3]) for r in revisions])
    except IntegrityError:
        raise StaleRevisionError(
            f"another save of {chain} landed first for one of {len(ids)} images; run it again"
        ) from None
    return [new_ids[int(r[0])] for r in revisions]


def _new_ids(session, chain: str, rows: list[dict]) -> dict[int, int]:
    """image id -> id of the row just inserted (by image, chain and revision)."""
    out: dict[int, int] = {}
    by_rev: dict[int, list[int]] = {}
    for r in rows:
        by_rev.setdefault(r["revision"], []).append(r["image_id"])
    for rev, image_ids in by_rev.items():
        q = select(Label.image_id, Label.id).where(
            Label.chain == chain, Label.revision == rev, Label.image_id.in_(image_ids)
        )
        out.update(dict(session.execute(q).all()))
    return out


def set_label_status(uow: UnitOfWork, label_id: int, status: str) -> None:
    """Change a revision's status (the only field ever updated in place) inside the caller's unit.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     set_label_status(uow, 1, "accepted")
    Traceback (most recent call last):
    ...
    iea_data.core.errors.NotFoundError: no label with id 1
    """
    if status not in LABEL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(LABEL_STATUSES)}, got {status!r}")
    with uow.session.begin_nested():
        n = uow.session.execute(
            update(Label).where(Label.id == label_id).values(status=status, updated_at=utcnow())
        ).rowcount
    if not n:
        raise NotFoundError(f"no label with id {label_id}")
    row = uow.session.execute(select(Label.kind, Label.image_id, Label.author_id).where(Label.id == label_id)).first()
    if row is not None and row.kind == "annotation":  # issue 15: any status change moves the consensus inputs
        refresh_image(uow.session, row.image_id, row.author_id)
        mark_consensus_stale(uow, row.image_id)


def load_label_map(store: ObjectStore, label: Label) -> np.ndarray:
    """The label's residual map as float32 (h, w)."""
    return store.get_array(label.map_object).astype(np.float32)
