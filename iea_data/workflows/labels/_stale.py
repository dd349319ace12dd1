"""The cheap hook that keeps catalogued consensus revisions honest: mark an image stale.

Whenever an expert's revision of an image becomes ``submitted`` or ``accepted`` (a save, an
import, a review), the image gets one row in ``consensus_stale``; ``iea quality consensus``
(:func:`iea_data.workflows.quality.compute_consensus`) recomputes those images first and
clears their marks. Marking costs one ``INSERT … ON CONFLICT DO NOTHING`` in the caller's
transaction, so the save path stays fast and a rolled-back save marks nothing.
"""

from __future__ import annotations

from iea_data.store import CONSENSUS_INPUT_STATUSES, ConsensusStale, UnitOfWork, insert_ignore, utcnow

__all__ = ["CONSENSUS_INPUT_STATUSES", "mark_consensus_stale"]


def mark_consensus_stale(uow: UnitOfWork, image_id: int) -> None:
    """Mark ``image_id``'s consensus out of date, inside the caller's unit (idempotent).

    Examples
    --------
    >>> import tempfile
    >>> from sqlalchemy import func, select
    >>> from iea_data.store import ConsensusStale, Image, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add(Image(name="a.png", status="ok")); uow.session.flush()
    ...     mark_consensus_stale(uow, 1); mark_consensus_stale(uow, 1)
    ...     uow.session.scalar(select(func.count()).select_from(ConsensusStale))
    1
    """
    insert_ignore(
        uow.session,
        ConsensusStale.__table__,
        [{"image_id": int(image_id), "marked_at": utcnow()}],
        conflict=["image_id"],
    )
