"""The quality summary: per-image and per-annotator figures kept up to date in the writer's transaction.

The Quality page lists, per image, the experts whose chain head is a consensus input and the
newest consensus revision, and per annotator the images done, strokes and time per image.
Scanning every revision for them took ≈ 2.5 s at 40,000 images × 12 experts; instead every
write that changes them updates two small tables (:class:`QualityImage`,
:class:`QualityAnnotator`) and stores on each annotation revision the gap to its author's
previous one (``labels.gap_s``), so reading them is a few indexed queries.

Concurrency (two replicas saving at once on PostgreSQL): counters move by atomic
``UPDATE … SET n = n + 1`` upserts, never read-modify-write in Python. An annotation save first
locks its author's row (:func:`begin_annotation`, so the author's previous revision and the new
one's time are read and set in order), then every annotation write re-derives its image's row
from the image's labels after locking that row (:func:`refresh_image`: writers of one image
queue on the lock, and each statement after it sees what the one before committed). Locks are
taken author first, then image, by every writer.

:func:`rebuild_quality_summary` recomputes everything from the labels (the migration's
backfill, ``iea quality rebuild-summary``, the bulk synthetic catalog, and the tests' oracle).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Optional, Union

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Float,
    Integer,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, aliased

from ._models import Label, QualityAnnotator, QualityImage
from ._unit import aware

__all__ = [
    "CONSENSUS_INPUT_STATUSES",
    "MAX_GAP_SECONDS",
    "json_field",
    "begin_annotation",
    "refresh_image",
    "record_consensus",
    "rebuild_quality_summary",
    "expert_heads_query",
]

#: Statuses of an expert's chain head that a consensus is built from.
CONSENSUS_INPUT_STATUSES = ("submitted", "accepted")
#: A gap longer than this between an expert's two saves is a break, not time spent on the image.
MAX_GAP_SECONDS = 15 * 60

Bind = Union[Session, Connection]


def _dialect(bind: Bind) -> str:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def json_field(bind: Bind, column: Any, key: str) -> Any:
    """``column[key]`` of a JSON text column in SQL (SQLite: JSON_EXTRACT; PostgreSQL: the text cast to json)."""
    if _dialect(bind) == "sqlite":  # CAST(... AS JSON) has numeric affinity on SQLite
        return type_coerce(column, JSON)[key]
    return cast(column, JSON)[key]


def _upsert(
    bind: Bind, table: Any, rows: Sequence[Mapping[str, Any]], key: str, set_: Callable[[Any], Mapping[str, Any]]
) -> None:
    """``INSERT rows ON CONFLICT (key) DO UPDATE SET set_(excluded)`` on SQLite and PostgreSQL."""
    if _dialect(bind) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    bind.execute(stmt.on_conflict_do_update(index_elements=[key], set_=dict(set_(stmt.excluded))), list(rows))


_ANNOTATOR_ZERO = {"images_done": 0, "strokes_sum": 0.0, "strokes_n": 0, "gaps_sum": 0.0, "gaps_n": 0}
_A: Any = QualityAnnotator.__table__
_I: Any = QualityImage.__table__


def _own_and_strokes(params: Optional[Mapping[str, Any]]) -> tuple[bool, Optional[float]]:
    """(not imported, ``n_strokes``) of a revision's params, as :func:`rebuild_quality_summary` reads them in SQL."""
    if not params:
        return True, None
    own = params.get("imported_from") is None
    v = params.get("n_strokes")
    strokes = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return own, strokes


def begin_annotation(
    session: Session, author_id: int, params: Optional[Mapping[str, Any]]
) -> tuple[dt.datetime, Optional[float]]:
    """Before inserting an annotation revision of ``author_id``: its time and gap, and the author's sums moved.

    Locks the author's :class:`QualityAnnotator` row (created if missing), reads the author's
    previous annotation revision, and adds this revision's strokes and gap (when not imported,
    and the gap in (0, :data:`MAX_GAP_SECONDS`]). Call inside the insert's transaction;
    returns ``(created_at, gap_s)`` for the new row (``created_at`` not before the previous
    revision's, so time order is insert order).
    """
    own, strokes = _own_and_strokes(params)
    _lock_author(session, author_id)
    previous = session.scalar(
        select(Label.created_at)
        .where(Label.author_id == author_id, Label.kind == "annotation")
        .order_by(Label.created_at.desc(), Label.id.desc())
        .limit(1)
    )
    now = dt.datetime.now(dt.UTC)
    previous = aware(previous)
    if previous is not None and previous > now:  # another replica's clock is ahead: keep the order
        now = previous
    gap = (now - previous).total_seconds() if previous is not None and own else None
    counted = gap is not None and 0 < gap <= MAX_GAP_SECONDS
    if strokes is not None and own or counted:
        session.execute(
            update(_A)
            .where(_A.c.user_id == author_id)
            .values(
                strokes_sum=_A.c.strokes_sum + (strokes if own and strokes is not None else 0.0),
                strokes_n=_A.c.strokes_n + (1 if own and strokes is not None else 0),
                gaps_sum=_A.c.gaps_sum + (gap if counted and gap is not None else 0.0),
                gaps_n=_A.c.gaps_n + (1 if counted else 0),
            )
        )
    return now, gap


def expert_heads_query(*where: Any) -> Any:
    """``(image_id, author_id, created_at)`` of every expert chain head that is a consensus input.

    ``NOT EXISTS`` on the unique (image, chain, revision) index.
    """
    newer = aliased(Label)
    has_newer = exists().where(
        newer.image_id == Label.image_id, newer.chain == Label.chain, newer.revision > Label.revision
    )
    return select(Label.image_id, Label.author_id, Label.created_at).where(
        Label.kind == "annotation", Label.status.in_(CONSENSUS_INPUT_STATUSES), ~has_newer, *where
    )


def _experts_text(authors: Iterable[int]) -> str:
    return ",".join(str(a) for a in sorted(set(authors)))


def _parse_experts(text: Optional[str]) -> set[int]:
    return {int(x) for x in text.split(",")} if text else set()


def _lock_author(session: Session, author_id: int) -> None:
    _upsert(
        session,
        _A,
        [{"user_id": int(author_id), **_ANNOTATOR_ZERO}],
        "user_id",
        lambda ex: {"images_done": _A.c.images_done},  # a no-op update: it takes the row's lock
    )


def refresh_image(session: Session, image_id: int, author_id: Optional[int] = None) -> None:
    """After an annotation write to ``image_id`` (save, status change, review): its row and its experts' counts.

    Locks the row of ``author_id`` (the written revision's author: authors before images, in
    every writer), then the image's :class:`QualityImage` row, re-derives the image's experts
    from its labels (about a dozen rows, by index), and moves ``images_done`` of each author
    who joined or left by one, atomically.
    """
    image_id = int(image_id)
    if author_id is not None:
        _lock_author(session, author_id)
    _upsert(
        session,
        _I,
        [{"image_id": image_id, "n_experts": 0, "experts": ""}],
        "image_id",
        lambda ex: {"n_experts": _I.c.n_experts},  # a no-op update: it takes the row's lock
    )
    old = _parse_experts(session.scalar(select(_I.c.experts).where(_I.c.image_id == image_id)))
    heads = session.execute(expert_heads_query(Label.image_id == image_id)).all()
    new = {a for _i, a, _t in heads}
    times = [t for t in (aware(t) for _i, _a, t in heads) if t is not None]
    session.execute(
        update(_I)
        .where(_I.c.image_id == image_id)
        .values(n_experts=len(new), experts=_experts_text(new), newest_at=max(times) if times else None)
    )
    for author, delta in [(a, 1) for a in sorted(new - old)] + [(a, -1) for a in sorted(old - new)]:
        _move_done(session, author, delta)


def _move_done(session: Session, author_id: int, delta: int) -> None:
    """``images_done += delta`` of one author, atomically (the row created if missing)."""

    def moved(_ex: Any) -> dict[str, Any]:
        return {"images_done": _A.c.images_done + delta}

    _upsert(session, _A, [{"user_id": author_id, **_ANNOTATOR_ZERO, "images_done": delta}], "user_id", moved)


def record_consensus(session: Session, rows: Sequence[tuple[int, int, Optional[Mapping[str, Any]]]]) -> None:
    """After inserting consensus revisions ``(image_id, label_id, params)``: they are their images' newest."""
    if not rows:
        return
    values = []
    for image_id, label_id, params in rows:
        method = (params or {}).get("method")
        spread = (params or {}).get("spread_mean")
        values.append(
            {
                "image_id": int(image_id),
                "n_experts": 0,
                "experts": "",
                "consensus_label_id": int(label_id),
                "consensus_method": None if method is None else str(method),
                "consensus_spread_mean": float(spread) if isinstance(spread, (int, float)) else None,
            }
        )
    _upsert(
        session,
        _I,
        values,
        "image_id",
        lambda ex: {
            "consensus_label_id": ex.consensus_label_id,
            "consensus_method": ex.consensus_method,
            "consensus_spread_mean": ex.consensus_spread_mean,
        },
    )


def _sqlite_seconds(value: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(whole Unix seconds, fraction) of an SQLite ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text, both exact.

    ``julianday`` keeps only milliseconds (and a day count's float error), so a gap read with it
    differs from the writer's microsecond one by up to a millisecond.
    """
    whole = cast(func.strftime("%s", func.substr(value, 1, 19)), Integer)
    return whole, cast(func.substr(value, 20), Float)


def _gap_seconds(bind: Bind, later: Any, earlier: Any) -> ColumnElement[Any]:
    """Seconds from ``earlier`` to ``later`` to the microsecond, as :func:`begin_annotation` computes them."""
    if _dialect(bind) == "sqlite":
        (lw, lf), (ew, ef) = _sqlite_seconds(later), _sqlite_seconds(earlier)
        return cast(lw - ew, Float) + (lf - ef)
    return func.extract("epoch", later - earlier)


def rebuild_quality_summary(bind: Bind) -> dict[str, int]:
    """Recompute ``labels.gap_s`` and both summary tables from the labels alone, in the caller's transaction.

    The definition the incremental writers keep: per annotation revision, the gap to its
    author's previous one by (time, id) when not imported; per author, images whose chain head
    is submitted / accepted, and sums and counts of ``n_strokes`` (revisions not imported) and of
    the gaps in (0, :data:`MAX_GAP_SECONDS`]; per image, the experts of those heads, the newest
    head's time, and the newest consensus revision's id, method and mean spread. Works on SQLite
    and PostgreSQL (used by migration 0006, so it reads only columns that exist from 0006 on).

    Returns
    -------
    dict
        ``images``, ``annotators``: rows written.
    """
    own = json_field(bind, Label.params, "imported_from").as_string().is_(None)
    previous = func.lag(Label.created_at).over(partition_by=Label.author_id, order_by=(Label.created_at, Label.id))
    lagged = (
        select(Label.id.label("id"), case((own, _gap_seconds(bind, Label.created_at, previous))).label("gap"))
        .where(Label.kind == "annotation")
        .subquery()
    )
    labels: Any = Label.__table__
    bind.execute(update(labels).where(labels.c.id == lagged.c.id).values(gap_s=lagged.c.gap))
    strokes = json_field(bind, Label.params, "n_strokes").as_float()
    counted_strokes = and_(own, strokes.is_not(None))
    counted_gap = and_(Label.gap_s > 0, Label.gap_s <= MAX_GAP_SECONDS)
    annotators: dict[int, dict[str, Any]] = {}
    for uid, s_sum, s_n, g_sum, g_n in bind.execute(
        select(
            Label.author_id,
            func.coalesce(func.sum(case((counted_strokes, strokes))), 0.0),
            func.count(case((counted_strokes, 1))),
            func.coalesce(func.sum(case((counted_gap, Label.gap_s))), 0.0),
            func.count(case((counted_gap, 1))),
        )
        .where(Label.kind == "annotation", Label.author_id.is_not(None))
        .group_by(Label.author_id)
    ):
        annotators[int(uid)] = {
            "user_id": int(uid),
            "images_done": 0,
            "strokes_sum": float(s_sum),
            "strokes_n": int(s_n),
            "gaps_sum": float(g_sum),
            "gaps_n": int(g_n),
        }
    experts: dict[int, set[int]] = defaultdict(set)
    newest: dict[int, dt.datetime] = {}
    for image_id, author, created in bind.execute(expert_heads_query()):
        experts[image_id].add(author)
        t = aware(created)
        if t is not None and (image_id not in newest or t > newest[image_id]):
            newest[image_id] = t
        if author in annotators:
            annotators[author]["images_done"] += 1
    images: dict[int, dict[str, Any]] = {
        i: {
            "image_id": i,
            "n_experts": len(a),
            "experts": _experts_text(a),
            "newest_at": newest.get(i),
            "consensus_label_id": None,
            "consensus_method": None,
            "consensus_spread_mean": None,
        }
        for i, a in experts.items()
    }
    cons = (
        select(Label.image_id, func.max(Label.revision).label("rev"))
        .where(Label.chain == "consensus")
        .group_by(Label.image_id)
        .subquery()
    )
    for image_id, lid, method, spread in bind.execute(
        select(
            Label.image_id,
            Label.id,
            json_field(bind, Label.params, "method").as_string(),
            json_field(bind, Label.params, "spread_mean").as_float(),
        )
        .join(cons, and_(Label.image_id == cons.c.image_id, Label.revision == cons.c.rev))
        .where(Label.chain == "consensus")
    ):
        row = images.setdefault(image_id, {"image_id": image_id, "n_experts": 0, "experts": "", "newest_at": None})
        row.update(consensus_label_id=lid, consensus_method=method, consensus_spread_mean=spread)
    bind.execute(delete(_A))
    bind.execute(delete(_I))
    if annotators:
        bind.execute(insert(_A), list(annotators.values()))
    rows = list(images.values())
    for k in range(0, len(rows), 5000):
        bind.execute(insert(_I), rows[k : k + 5000])
    return {"images": len(images), "annotators": len(annotators)}
