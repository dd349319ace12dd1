"""The annotation queue: the images still to do for one expert, in the maintainer's priority order.

An image is in an expert's queue until their chain's head is ``submitted`` or ``accepted``;
a ``rejected`` head brings it back with the reviewer's comment. Scene references are not
annotated (their residual is zero by definition), nor are images without a decoded file.

Priority (``order="disagreement"``, the default): how much the two pre-labels disagree,
``|mean(model) − mean(refdiff)| + |mean_abs(model) − mean_abs(refdiff)|`` from the summary
statistics stored with every label (so the queue needs no map loading and stays fast on a
40k-image catalog); an image missing one of the two pre-labels has priority 0. Ties go to
the image with the fewest experts so far (distinct authors with a submitted or accepted
revision), then by name.

Gold images (issue 15) are taken out of that order and put back at the workspace's gold
rate in slots of the annotator's own deterministic sequence (:mod:`._gold_mix`); the items
look like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from iea_data.store import Draft, GoldImage, Image, Label, Review, Scene, UserInfo, require
from iea_data.workflows.users import load_actor

from ._gold_mix import gold_rate, mix_gold
from ._revisions import chain_key

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["QueueItem", "QUEUE_ORDERS", "annotation_queue", "annotation_progress"]

QUEUE_ORDERS = ("disagreement", "fewest_experts", "name")
DONE_STATUSES = ("submitted", "accepted")


@dataclass(slots=True)
class QueueItem:
    """One image still to do for an expert.

    Attributes
    ----------
    image_id : int
    name : str
        Image name (file name).
    scene : str or None
        Scene name.
    priority : float
        Disagreement between the model pre-label and the reference difference (see module doc).
    n_experts : int
        Distinct experts with a submitted or accepted revision of this image.
    status : {"todo", "draft", "rejected"}
        ``draft``: the expert has an autosaved draft or an unsubmitted revision.
    rejected_comment : str or None
        The reviewer's comment when ``status == "rejected"``.
    """

    image_id: int
    name: str
    scene: Optional[str]
    priority: float
    n_experts: int
    status: str
    rejected_comment: Optional[str] = None


def _annotatable():
    refs = select(Scene.reference_image_id).where(Scene.reference_image_id.is_not(None))
    return (Image.status == "ok", Image.id.not_in(refs))


def _heads(session: Session, chain: str) -> dict[int, tuple[int, str]]:
    """image_id -> (label id, status) of ``chain``'s head on each image."""
    newest = (
        select(Label.image_id, func.max(Label.revision).label("rev"))
        .where(Label.chain == chain)
        .group_by(Label.image_id)
        .subquery()
    )
    rows = session.execute(
        select(Label.image_id, Label.id, Label.status)
        .join(newest, and_(Label.image_id == newest.c.image_id, Label.revision == newest.c.rev))
        .where(Label.chain == chain)
    )
    return {i: (lid, st) for i, lid, st in rows}


def _candidates(session: Session):
    """(image id, name, scene name, priority) of every annotatable image, in one query.

    The newest model and refdiff pre-label of each image are found through the
    (image_id, kind) index; the priority is computed by the database.
    """

    def newest(kind: str):
        lab = aliased(Label, name=f"pre_{kind}")
        sub = (
            select(func.max(Label.id))
            .where(Label.image_id == Image.id, Label.kind == kind)
            .correlate(Image)
            .scalar_subquery()
        )
        return lab, sub

    m, m_id = newest("model")
    r, r_id = newest("refdiff")
    priority = func.coalesce(func.abs(m.mean - r.mean) + func.abs(m.mean_abs - r.mean_abs), 0.0)
    stmt = (
        select(Image.id, Image.name, Scene.name, priority)
        .select_from(Image)
        .outerjoin(Scene, Scene.id == Image.scene_id)
        .outerjoin(m, m.id == m_id)
        .outerjoin(r, r.id == r_id)
        .where(*_annotatable())
    )
    return session.connection().execute(stmt).all()


def _n_experts(session: Session) -> dict[int, int]:
    return dict(
        session.execute(
            select(Label.image_id, func.count(func.distinct(Label.author_id)))
            .where(Label.kind == "annotation", Label.status.in_(DONE_STATUSES))
            .group_by(Label.image_id)
        ).all()
    )


def annotation_queue(
    ws: Workspace, user: UserInfo, *, order: str = "disagreement", limit: Optional[int] = None
) -> list[QueueItem]:
    """The images still to do for ``user``, highest priority first; commits (reads only).

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        Needs ``"annotate"``.
    order : {"disagreement", "fewest_experts", "name"}
        ``disagreement`` (default): most disagreement between the model pre-label and the
        reference difference, then fewest experts, then name. ``fewest_experts``: fewest
        experts, then most disagreement, then name. ``name``: by image name.
    limit : int, optional
        Return at most this many items.

    Returns
    -------
    list of QueueItem

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> [(q.name, q.status) for q in annotation_queue(ws, ann)]
    [('s_N1.png', 'todo')]
    """
    if order not in QUEUE_ORDERS:
        raise ValueError(f"order must be one of {', '.join(QUEUE_ORDERS)}, got {order!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        chain = chain_key("annotation", author_id=actor.id)
        images = _candidates(session)
        experts = _n_experts(session)
        heads = _heads(session, chain)
        drafts = set(session.scalars(select(Draft.image_id).where(Draft.user_id == actor.id)))
        rejected = [i for i, (_, st) in heads.items() if st == "rejected"]
        comments: dict[int, str] = {}
        if rejected:  # the newest rejection on the chain (a rebased revision carries its predecessor's)
            for image_id, comment in session.execute(
                select(Label.image_id, Review.comment)
                .join(Review, Review.label_id == Label.id)
                .where(Label.chain == chain, Label.image_id.in_(rejected), Review.decision == "reject")
                .order_by(Review.id)
            ):
                comments[image_id] = comment
        gold_ids = set(session.scalars(select(GoldImage.image_id)))
        rate = gold_rate(session) if gold_ids else 0.0
    rows = []
    heads_get, experts_get = heads.get, experts.get
    for image_id, name, scene, priority in images:
        head = heads_get(image_id)
        if head is None:
            status, comment = ("draft" if image_id in drafts else "todo"), None
        elif head[1] in DONE_STATUSES:
            continue
        elif head[1] == "rejected":
            status, comment = "rejected", comments.get(image_id)
        else:
            status, comment = "draft", None
        rows.append((image_id, name, scene, float(priority), experts_get(image_id, 0), status, comment))
    if order == "disagreement":
        rows.sort(key=lambda r: (-r[3], r[4], r[1], r[0]))
    elif order == "fewest_experts":
        rows.sort(key=lambda r: (r[4], -r[3], r[1], r[0]))
    else:
        rows.sort(key=lambda r: (r[1], r[0]))
    if gold_ids:  # issue 15: gold images at the workspace rate, in slots of this annotator's own sequence
        rows = mix_gold(
            [r for r in rows if r[0] not in gold_ids],
            [(r[0], r) for r in rows if r[0] in gold_ids],
            rate=rate,
            user_id=actor.id,
        )
    return [QueueItem(*r) for r in (rows if limit is None else rows[:limit])]


def annotation_progress(ws: Workspace, user: UserInfo) -> tuple[int, int]:
    """``(done, total)`` for ``user``: images whose head is submitted or accepted, of all annotatable images.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> annotation_progress(ws, ann)
    (0, 1)
    """
    with ws.unit(user) as uow:
        session = uow.session
        actor = load_actor(uow, user.id)
        require(actor, "annotate")
        ids = set(session.connection().execute(select(Image.id).where(*_annotatable())).scalars())
        heads = _heads(session, chain_key("annotation", author_id=actor.id))
    done = sum(1 for i, (_, st) in heads.items() if st in DONE_STATUSES and i in ids)
    return done, len(ids)
