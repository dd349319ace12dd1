"""One transaction per workflow call (shared by :mod:`iea_data.workflows.users`, the annotation workflow and targets)."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

__all__ = ["transaction", "aware"]


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Run the block in a transaction of its own that commits on success and rolls back on error.

    A transaction the caller left open (often an implicit one from earlier reads) is
    committed first: on SQLite every transaction holds the write lock (``BEGIN
    IMMEDIATE``), so workflow calls never leave one open behind them.
    """
    if session.in_transaction():
        session.commit()
    with session.begin():
        yield session


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as a timezone-aware UTC datetime (SQLite hands back naive UTC values)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.timezone.utc)
