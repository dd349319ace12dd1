"""Review: submitted labels awaiting a decision, every expert's map for an image, their spread,
accept / reject, and a per-annotator summary.

Only reviewers and admins decide (``require(user, "review")``); nobody reviews their own
label; a rejection needs a comment, which the annotator sees in their queue. A decision
applies to a chain head in status ``submitted`` only, and exactly one of two reviewers
deciding at once wins.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import aliased

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError, StaleRevisionError
from iea_data.store import Image, Label, Review, Scene, User, UserInfo, aware, refresh_image, require, utcnow
from iea_data.workflows.users import load_actor

from ._drafts import MAX_COMMENT_LENGTH, _check_int
from ._stale import mark_consensus_stale

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "ExpertLabel",
    "ReviewItem",
    "DECISIONS",
    "review_queue",
    "expert_labels",
    "expert_spread",
    "review_label",
    "annotator_summary",
    "agreement",
    "REVIEW_ORDERS",
]

log = logging.getLogger(__name__)

DECISIONS = ("accept", "reject")
_DECIDED = {"accept": "accepted", "reject": "rejected"}
EXPERT_STATUSES = ("submitted", "accepted")


@dataclass
class ReviewItem:
    """A submitted label awaiting review.

    Attributes
    ----------
    label_id, image_id : int
    image_name : str
    scene : str or None
    author_id : int
    author_name : str
    revision : int
    submitted_at : datetime (UTC)
    score : float or None
        The annotator's image score (0–10).
    comment : str or None
        The annotator's comment.
    rebased : bool
        The revision was made by a target change (same correction, new base): re-review it.
    """

    label_id: int
    image_id: int
    image_name: str
    scene: Optional[str]
    author_id: int
    author_name: str
    revision: int
    submitted_at: dt.datetime
    score: Optional[float]
    comment: Optional[str]
    rebased: bool


@dataclass(frozen=True)
class ExpertLabel:
    """An expert's newest revision of an image, as :func:`expert_labels` returns it (plain data, no ORM row).

    Attributes
    ----------
    id, image_id : int
    author_id : int
    chain : str
        ``"user:<author_id>"``.
    revision : int
    status : str
        ``submitted`` or ``accepted`` (by default).
    """

    id: int
    image_id: int
    author_id: int
    chain: str
    revision: int
    status: str


def _heads_query(*conditions, columns=None):
    """Annotation chain heads (newest revision of each (image, chain)) matching ``conditions``."""
    newest = (
        select(Label.image_id, Label.chain, func.max(Label.revision).label("rev"))
        .where(Label.kind == "annotation")
        .group_by(Label.image_id, Label.chain)
        .subquery()
    )
    return (
        select(*(columns or (Label,)))
        .select_from(Label)
        .join(
            newest,
            and_(Label.image_id == newest.c.image_id, Label.chain == newest.c.chain, Label.revision == newest.c.rev),
        )
        .where(*conditions)
    )


REVIEW_ORDERS = ("oldest", "disagreement")


def _disagreement(session, image_ids: list[int]) -> dict[int, float]:
    """image id -> how much its experts disagree: the mean spread stored with its newest consensus revision
    (issue 15), else from the experts' label statistics (range of ``mean`` plus range of ``mean_abs``)."""
    out: dict[int, float] = {}
    if not image_ids:
        return out
    for image_id, params in session.execute(
        select(Label.image_id, Label.params)
        .where(Label.chain == "consensus", Label.image_id.in_(image_ids))
        .order_by(Label.image_id, Label.revision)
    ):
        spread = (json.loads(params) if params else {}).get("spread_mean")
        if spread is not None:
            out[image_id] = float(spread)
    rows = session.execute(
        _heads_query(
            Label.image_id.in_([i for i in image_ids if i not in out]),
            Label.status.in_(EXPERT_STATUSES),
            columns=(
                Label.image_id,
                func.max(Label.mean) - func.min(Label.mean),
                func.max(Label.mean_abs) - func.min(Label.mean_abs),
            ),
        ).group_by(Label.image_id)
    )
    for image_id, d_mean, d_abs in rows:
        out[image_id] = float((d_mean or 0.0) + (d_abs or 0.0))
    return out


def review_queue(
    ws: Workspace, user: UserInfo, *, limit: Optional[int] = None, order: str = "oldest"
) -> list[ReviewItem]:
    """Submitted labels (chain heads) awaiting review, oldest first, without ``user``'s own; commits (reads only).

    Needs ``"review"`` (reviewer or admin). ``limit``: at most this many (the first in ``order``).
    ``order="disagreement"`` (issue 15): the images whose experts disagree most first (the mean
    spread of their consensus revision, else the spread of the experts' label statistics),
    then oldest first.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.users import add_user
    >>> ws, ann, image_id = example_workspace()
    >>> rev = add_user(ws, "rev", role="reviewer", password="otter lamp quietly")
    >>> review_queue(ws, rev)
    []
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if order not in REVIEW_ORDERS:
        raise ValueError(f"order must be one of {', '.join(REVIEW_ORDERS)}, got {order!r}")
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "review")
        author = aliased(User)
        stmt = (
            _heads_query(
                Label.status == "submitted",
                Label.author_id != actor.id,
                columns=(
                    Label.id,
                    Label.image_id,
                    Image.name,
                    Scene.name,
                    Label.author_id,
                    author.name,
                    Label.revision,
                    Label.updated_at,
                    Label.params,
                ),
            )
            .join(Image, Image.id == Label.image_id)
            .outerjoin(Scene, Scene.id == Image.scene_id)
            .join(author, author.id == Label.author_id)
            .order_by(Label.updated_at, Label.id)
        )
        if limit is not None and order == "oldest":
            stmt = stmt.limit(limit)
        rows = session.connection().execute(stmt).all()
        if order == "disagreement":
            spread = _disagreement(session, sorted({r[1] for r in rows}))
            rows = sorted(rows, key=lambda r: -spread.get(r[1], 0.0))  # stable: oldest first among equals
            rows = rows if limit is None else rows[:limit]
    out = []
    for label_id, image_id, image_name, scene_name, author_id, author_name, revision, updated, params in rows:
        p = json.loads(params) if params else {}
        out.append(
            ReviewItem(
                label_id,
                image_id,
                image_name,
                scene_name,
                author_id,
                author_name,
                revision,
                aware(updated),
                p.get("score"),
                p.get("comment"),
                "rebased_from" in p,
            )
        )
    return out


def expert_labels(
    ws: Workspace, image_id: int, *, statuses: Sequence[str] = EXPERT_STATUSES
) -> list[tuple[ExpertLabel, np.ndarray]]:
    """Every expert's newest revision of an image (status in ``statuses``) with its map; commits (reads only).

    Returns
    -------
    list of (ExpertLabel, ndarray float32 (h, w) in [-1, 1])
        One per expert chain, by author id.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> expert_labels(ws, image_id)
    []
    """
    image_id = _check_int(image_id, "image_id")
    with ws.unit() as uow:
        session = uow.session
        if session.get(Image, image_id) is None:
            raise NotFoundError(f"no image with id {image_id}")
        labels = list(
            session.scalars(
                _heads_query(Label.image_id == image_id, Label.status.in_(list(statuses))).order_by(Label.author_id)
            )
        )
    return [
        (
            ExpertLabel(lab.id, lab.image_id, lab.author_id, lab.chain, lab.revision, lab.status),
            ws.objects.get_array(lab.map_object).astype(np.float32),
        )
        for lab in labels
    ]


def expert_spread(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel spread across experts: the population standard deviation of their maps.

    Accumulated in float64. For residuals in [-1, 1] the spread lies in [0, 1]: 0 where all
    experts agree; 1 only where half say -1 and half +1. A single map has zero spread.

    Parameters
    ----------
    maps : sequence of ndarray, float32 (h, w)
        The experts' maps, all of one shape (at least one).

    Returns
    -------
    ndarray, float32 (h, w)

    Examples
    --------
    >>> a = np.array([[0.2, -0.5]], np.float32); b = np.array([[0.2, 0.5]], np.float32)
    >>> expert_spread([a, b]).tolist()
    [[0.0, 0.5]]
    """
    if isinstance(maps, np.ndarray) or len(maps) == 0:
        raise ValueError("maps must be a non-empty list of (h, w) arrays, one per expert")
    arrays = []
    for i, m in enumerate(maps):
        if not isinstance(m, np.ndarray) or m.ndim != 2 or not np.issubdtype(m.dtype, np.floating):
            got = f"{m.dtype} array of shape {m.shape}" if isinstance(m, np.ndarray) else type(m).__name__
            raise TypeError(f"maps[{i}] must be a float (h, w) array, got {got}")
        if m.shape != maps[0].shape:
            raise ValueError(
                f"maps[{i}] has shape {m.shape}, maps[0] has {maps[0].shape}; all experts' maps must match"
            )
        arrays.append(m.astype(np.float64))
    return np.std(np.stack(arrays), axis=0).astype(np.float32)


def agreement(a: np.ndarray, others: Sequence[np.ndarray]) -> float:
    """``1 − mean|a − mean(others)| / 2`` in [0, 1]: 1 when ``a`` equals the others' mean (float64).

    >>> agreement(np.zeros((2, 2), np.float32), [np.full((2, 2), 0.5, np.float32)])
    0.75
    """
    ref = np.mean(np.stack([o.astype(np.float64) for o in others]), axis=0)
    return float(1.0 - np.abs(a.astype(np.float64) - ref).mean() / 2.0)


def review_label(
    ws: Workspace, user: UserInfo, label_id: int, *, decision: str, comment: Optional[str] = None
) -> Review:
    """Accept or reject a submitted label; commits.

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        Needs ``"review"``; may not be the label's author.
    label_id : int
        A submitted annotation that is its chain's newest revision.
    decision : {"accept", "reject"}
    comment : str, optional
        Required (non-blank) to reject: the annotator sees it in their queue.

    Returns
    -------
    Review
        The new review row; the label's status becomes ``accepted`` / ``rejected``.

    Raises
    ------
    PermissionDeniedError
        Not a reviewer or admin, or the reviewer's own label.
    StaleRevisionError
        The label is no longer its chain's head, or another reviewer decided first.
    IeaError
        Not an annotation, not submitted, or a rejection without a comment.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.labels import open_annotation, save_annotation
    >>> from iea_data.workflows.users import add_user
    >>> ws, ann, image_id = example_workspace()
    >>> rev = add_user(ws, "rev", role="reviewer", password="otter lamp quietly")
    >>> label = save_annotation(ws, ann, open_annotation(ws, ann, image_id, base="zero"), submit=True)
    >>> review_label(ws, rev, label.id, decision="accept").decision
    'accept'
    """
    label_id = _check_int(label_id, "label_id")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be 'accept' or 'reject', got {decision!r}")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_LENGTH):
        raise ValueError(f"comment must be a str of at most {MAX_COMMENT_LENGTH} characters or None")
    if decision == "reject" and not (comment and comment.strip()):
        raise IeaError("a rejection needs a comment telling the annotator what to fix")
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "review")
        label = session.get(Label, label_id, populate_existing=True)
        if label is None:
            raise NotFoundError(f"no label with id {label_id}")
        if label.kind != "annotation":
            raise IeaError(f"label {label_id} is a {label.kind} label; only expert annotations are reviewed")
        if label.author_id == actor.id:
            raise PermissionDeniedError(f"user {actor.name!r} may not review their own label {label_id}")
        newest = session.scalar(
            select(func.max(Label.revision)).where(Label.image_id == label.image_id, Label.chain == label.chain)
        )
        if newest != label.revision:
            raise StaleRevisionError(
                f"label {label_id} is revision {label.revision}, but its author has saved revision "
                f"{newest} since; review the newest one"
            )
        if label.status != "submitted":
            raise IeaError(f"label {label_id} is {label.status}; only submitted labels can be reviewed")
        n = session.execute(
            update(Label)
            .where(Label.id == label_id, Label.status == "submitted")
            .values(status=_DECIDED[decision], updated_at=utcnow())
        ).rowcount
        if n != 1:
            raise StaleRevisionError(f"another reviewer decided on label {label_id} meanwhile; reload the review queue")
        review = Review(
            label_id=label_id, reviewer_id=actor.id, decision=decision, comment=comment.strip() if comment else None
        )
        session.add(review)
        session.flush()
        refresh_image(session, label.image_id, label.author_id)  # issue 15: the quality summary, same transaction
        mark_consensus_stale(uow, label.image_id)  # issue 15: accepted or withdrawn, the consensus changes
    log.info("%s %sed label %d", actor.name, decision, label_id)
    return review


def annotator_summary(ws: Workspace, *, max_images: Optional[int] = 500) -> list[dict]:
    """Per expert with annotations: counts and mean agreement with the other experts; commits (reads only).

    Each dict has ``user_id``, ``name``, ``role``, ``images`` (images with a revision of
    theirs), ``done`` (newest revision submitted or accepted), ``accepted``, ``rejected``,
    ``pending`` (submitted, not yet reviewed), ``drafts`` (newest revision a draft),
    ``compared`` (done images that another expert has also done) and ``agreement``: the mean
    over those images of :func:`agreement` between their map and the mean of the others'
    (None when nothing to compare). Sorted by name.

    The counts are exact; the agreement loads maps, so it is computed over the
    ``max_images`` images most recently labelled by two or more experts (None: all).

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> annotator_summary(ws)
    []
    """
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    with ws.unit() as uow:
        conn = uow.session.connection()
        users = {uid: (name, role) for uid, name, role in conn.execute(select(User.id, User.name, User.role))}
        counts = conn.execute(
            _heads_query(columns=(Label.author_id, Label.status, func.count())).group_by(Label.author_id, Label.status)
        ).all()
        done = Label.status.in_(EXPERT_STATUSES)
        shared = (
            _heads_query(done, columns=(Label.image_id,))
            .group_by(Label.image_id)
            .having(func.count() >= 2)
            .order_by(func.max(Label.id).desc())
        )
        if max_images is not None:
            shared = shared.limit(max_images)
        shared_ids = [i for (i,) in conn.execute(shared)]
        heads = (
            conn.execute(
                _heads_query(
                    done,
                    Label.image_id.in_(shared_ids),
                    columns=(Label.image_id, Label.author_id, Label.height, Label.width, Label.map_object),
                )
            ).all()
            if shared_ids
            else []
        )
    by_user: dict[int, dict] = {}
    for author_id, status, n in counts:
        if author_id not in users:
            continue
        name, role = users[author_id]
        d = by_user.setdefault(
            author_id,
            {
                "user_id": author_id,
                "name": name,
                "role": role,
                "images": 0,
                "done": 0,
                "accepted": 0,
                "rejected": 0,
                "pending": 0,
                "drafts": 0,
                "compared": 0,
                "agreement": None,
            },
        )
        d["images"] += n
        d["done"] += n if status in EXPERT_STATUSES else 0
        key = {"accepted": "accepted", "rejected": "rejected", "submitted": "pending", "draft": "drafts"}.get(status)
        if key:
            d[key] += n
    by_image: dict[int, list] = {}
    for row in heads:
        by_image.setdefault(row.image_id, []).append(row)
    sums: dict[int, list[float]] = {}
    for labs in by_image.values():
        maps = {
            lab.author_id: ws.objects.get_array(lab.map_object).astype(np.float32) for lab in labels_same_shape(labs)
        }
        for uid, m in maps.items():
            others = [o for k, o in maps.items() if k != uid]
            if others:
                sums.setdefault(uid, []).append(agreement(m, others))
    for uid, vals in sums.items():
        if uid in by_user:
            by_user[uid]["compared"] = len(vals)
            by_user[uid]["agreement"] = round(float(np.mean(vals)), 6)
    return sorted(by_user.values(), key=lambda d: d["name"])


def labels_same_shape(labs: list) -> list:
    """The labels sharing the most common map shape (maps of another resolution are not compared)."""
    shapes: dict[tuple[int, int], int] = {}
    for lab in labs:
        shapes[(lab.height, lab.width)] = shapes.get((lab.height, lab.width), 0) + 1
    best = max(shapes, key=shapes.get)
    return [lab for lab in labs if (lab.height, lab.width) == best]
