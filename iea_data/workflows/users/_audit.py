"""The team's audit log: every change to an account (added, disabled, enabled, password set, reset or
changed, role changed), written in the transaction of the change, with who made it.

An entry names the account, the acting admin (or the user, for their own password), or for the
``iea users`` command the local operator with their operating-system login. It never holds a
password nor a hash.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from typing import Optional

from sqlalchemy.orm import Session

from iea_data.store import USER_EVENT_ACTIONS, UserEvent, UserInfo, utcnow

__all__ = ["UserEventInfo", "USER_EVENT_ACTIONS", "record_user_event"]


@dataclass(frozen=True)
class UserEventInfo:
    """One entry of the audit log, as the CLI and the app show it.

    Attributes
    ----------
    id : int
        ``user_events.id`` (entries are numbered in the order they were written).
    at : datetime
        When (timezone-aware, UTC).
    action : str
        One of :data:`~iea_data.store.USER_EVENT_ACTIONS`.
    user : str
        The account changed.
    actor : str or None
        The app user who made the change; None for the local operator (the ``iea users`` command).
    operator : str or None
        The local operator's operating-system login (when ``actor`` is None).
    old_role, new_role : str or None
        For ``role_changed`` (both) and ``added`` (``new_role``).
    """

    id: int
    at: dt.datetime
    action: str
    user: str
    actor: Optional[str]
    operator: Optional[str]
    old_role: Optional[str]
    new_role: Optional[str]

    @property
    def by(self) -> str:
        """Who made the change, in words: the app user's name, or ``local operator (<login>)``.

        Examples
        --------
        >>> t = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
        >>> UserEventInfo(1, t, "enabled", "ann", None, "root", None, None).by
        'local operator (root)'
        """
        if self.actor is not None:
            return self.actor
        return f"local operator ({self.operator})" if self.operator else "local operator"

    @property
    def change(self) -> str:
        """What changed, in words: the action, with ``old → new`` role where one changed.

        Examples
        --------
        >>> t = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
        >>> UserEventInfo(2, t, "role_changed", "ann", "boss", None, "annotator", "reviewer").change
        'role_changed annotator → reviewer'
        """
        if self.action == "role_changed":
            return f"{self.action} {self.old_role} → {self.new_role}"
        if self.action == "added" and self.new_role:
            return f"{self.action} as {self.new_role}"
        return self.action


def _operator() -> Optional[str]:
    try:
        return getpass.getuser()[:128]
    except Exception:  # no login name in this environment (a container without one)
        return None


def record_user_event(
    session: Session,
    action: str,
    user_id: int,
    actor: Optional[UserInfo],
    *,
    old_role: Optional[str] = None,
    new_role: Optional[str] = None,
) -> None:
    """Add one audit entry in the caller's transaction (it commits or rolls back with the change).

    ``actor`` None is the local operator, whose operating-system login is recorded.
    """
    if action not in USER_EVENT_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(USER_EVENT_ACTIONS)}, got {action!r}")
    session.add(
        UserEvent(
            at=utcnow(),
            action=action,
            user_id=user_id,
            actor_id=actor.id if actor is not None else None,
            operator=_operator() if actor is None else None,
            old_role=old_role,
            new_role=new_role,
        )
    )
