"""The unit of work: one transaction on a workspace's catalog, with its object store and acting user.

Every workflow does its database work inside one :class:`UnitOfWork`, opened with
:meth:`Workspace.unit <iea_data.store.Workspace.unit>`: it commits when the block ends and
rolls back when it raises. Functions that compose inside a caller's unit of work take the
unit (never a bare session and a store that could disagree); entry points take the
:class:`~iea_data.store.Workspace` and open their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from iea_data.core.errors import PermissionDeniedError

if TYPE_CHECKING:  # pragma: no cover - types only
    from sqlalchemy.orm import Session

    from ._roles import UserInfo
    from .objects import ObjectStore
    from .workspace import Workspace

__all__ = ["UnitOfWork", "unit_of_work", "transaction", "aware"]


@dataclass
class UnitOfWork:
    """One open transaction: the workspace, its ORM session, its object store and the acting user.

    Attributes
    ----------
    workspace : Workspace
        The workspace the unit works on.
    session : sqlalchemy.orm.Session
        The catalog session; its transaction is the unit's.
    actor : UserInfo or None
        Who acts (None for maintenance commands of the command line).

    Examples
    --------
    >>> import tempfile
    >>> from sqlalchemy import func, select
    >>> from iea_data.store import Image, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.scalar(select(func.count()).select_from(Image))
    0
    """

    workspace: Workspace
    session: Session
    actor: Optional[UserInfo] = None

    @property
    def objects(self) -> ObjectStore:
        """The workspace's content-addressed object store."""
        return self.workspace.objects

    def require_actor(self) -> UserInfo:
        """The acting user; raises :class:`PermissionDeniedError` when the unit has none."""
        if self.actor is None:
            raise PermissionDeniedError("this action needs a signed-in user; open the unit with ws.unit(actor=user)")
        return self.actor


@contextmanager
def unit_of_work(workspace: Workspace, actor: Optional[UserInfo] = None) -> Iterator[UnitOfWork]:
    """Open a :class:`UnitOfWork` on ``workspace``: commit on success, roll back on error, always close."""
    with workspace.session() as session:
        with transaction(session):
            yield UnitOfWork(workspace=workspace, session=session, actor=actor)


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
    return value.replace(tzinfo=dt.UTC)
