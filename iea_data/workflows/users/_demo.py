"""Demo accounts for demo workspaces only (``make run``): never use these passwords on real data.

A demo workspace is one whose catalog was filled by :func:`iea_data.workflows.demo.build_demo` (``iea
demo``) alone: it has an ingest run of kind ``"demo"`` and no run of another kind (an
``iea ingest`` of real photos or a manifest import makes it a real workspace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from iea_data.core.errors import IeaError
from iea_data.store import IngestRun, User, UserInfo

from ._accounts import _add_user

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["DEMO_USERS", "DEMO_RUN_KIND", "is_demo_workspace", "seed_demo_users"]

#: The ``ingest_runs.kind`` that :func:`iea_data.workflows.demo.build_demo` writes.
DEMO_RUN_KIND = "demo"

#: name -> (role, password). Public on purpose: for the demo workspace that ``make run`` builds.
DEMO_USERS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "admin-demo"),
    "reviewer": ("reviewer", "reviewer-demo"),
    "annotator1": ("annotator", "annotator1-demo"),
    "annotator2": ("annotator", "annotator2-demo"),
}


def is_demo_workspace(ws: Workspace) -> bool:
    """True when the catalog holds only what ``iea demo`` ingested (at least one demo run, no other run).

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> is_demo_workspace(init_workspace(tempfile.mkdtemp()))
    False
    """
    with ws.unit() as uow:
        kinds = set(uow.session.scalars(select(IngestRun.kind).distinct()))
    return DEMO_RUN_KIND in kinds and kinds == {DEMO_RUN_KIND}


def seed_demo_users(ws: Workspace) -> list[UserInfo]:
    """Create the demo accounts of :data:`DEMO_USERS` that do not exist yet; commits.

    For demo workspaces only (:func:`is_demo_workspace`): the passwords are printed by
    ``make run`` and written in the docs, and they are exempt from the password policy only
    there. Existing users of those names are left as they are (running it twice is harmless).

    Raises
    ------
    IeaError
        The workspace was not created by ``iea demo`` (it holds real data, or nothing).

    Returns
    -------
    list of UserInfo
        The four demo users, in the order of :data:`DEMO_USERS`.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import IngestRun, init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add(IngestRun(kind=DEMO_RUN_KIND, status="done"))
    >>> [u.name for u in seed_demo_users(ws)]
    ['admin', 'reviewer', 'annotator1', 'annotator2']
    """
    if not is_demo_workspace(ws):
        raise IeaError(
            "demo accounts have public passwords and are only for a workspace made by `iea demo`; "
            "this one was not (it holds other ingests or none): add real accounts with "
            "`iea users add NAME --role ROLE`"
        )
    # short units of work: each account's argon2 hash is computed outside any transaction
    with ws.unit() as uow:
        existing = set(uow.session.scalars(select(User.name).where(User.name.in_(list(DEMO_USERS)))))
    for name, (role, password) in DEMO_USERS.items():
        if name not in existing:
            _add_user(ws, name, role=role, password=password, by=None, policy=False)
    with ws.unit() as uow:
        rows = {r.name: r for r in uow.session.scalars(select(User).where(User.name.in_(list(DEMO_USERS))))}
        return [UserInfo.from_row(rows[n]) for n in DEMO_USERS]
