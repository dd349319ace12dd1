"""Demo accounts for demo workspaces only (``make run``): never use these passwords on real data."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..catalog._models import User
from ._accounts import add_user
from ._roles import UserInfo
from ._tx import transaction

__all__ = ["DEMO_USERS", "seed_demo_users"]

#: name -> (role, password). Public on purpose: for the demo workspace that ``make run`` builds.
DEMO_USERS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "admin-demo"),
    "reviewer": ("reviewer", "reviewer-demo"),
    "annotator1": ("annotator", "annotator1-demo"),
    "annotator2": ("annotator", "annotator2-demo"),
}


def seed_demo_users(session: Session) -> list[UserInfo]:
    """Create the demo accounts of :data:`DEMO_USERS` that do not exist yet; commits.

    For demo workspaces only: the passwords are printed by ``make run`` and written in the
    docs. Existing users of those names are left as they are (running it twice is harmless).

    Returns
    -------
    list of UserInfo
        The four demo users, in the order of :data:`DEMO_USERS`.

    Examples
    --------
    >>> [u.name for u in seed_demo_users(session)]  # doctest: +SKIP
    ['admin', 'reviewer', 'annotator1', 'annotator2']
    """
    with transaction(session):
        existing = set(session.scalars(select(User.name).where(User.name.in_(list(DEMO_USERS)))))
    for name, (role, password) in DEMO_USERS.items():
        if name not in existing:
            add_user(session, name, role=role, password=password)
    with transaction(session):
        rows = {r.name: r for r in session.scalars(select(User).where(User.name.in_(list(DEMO_USERS))))}
        return [UserInfo.from_row(rows[n]) for n in DEMO_USERS]
