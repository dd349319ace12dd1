"""Running the team: reset a password, change a role, a user's own new password, the audit log.

Every function here checks the acting user (``by``, re-read from the database) against
:data:`~iea_data.store.PERMISSIONS` and writes one :class:`~iea_data.store.UserEvent` in the
same transaction as the change. ``by=None`` is the local operator (the ``iea users`` command).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import aliased

from iea_data.core.errors import IeaError, PermissionDeniedError
from iea_data.store import ROLES, AuthError, LoginThrottle, User, UserEvent, UserInfo, aware

from ._accounts import (
    _check_actor,
    _check_name,
    _hasher,
    _is_last_enabled_admin,
    _load_actor,
    _stamp,
    _user_row,
    _verify,
    auth_log,
)
from ._audit import UserEventInfo, record_user_event
from ._policy import check_password_policy
from ._throttle import throttle_key

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "PasswordReset",
    "generate_password",
    "reset_password",
    "set_role",
    "change_own_password",
    "list_user_events",
]

#: Letters and digits of generated passwords: no 0/o, 1/l/i, so a password read aloud or copied by hand survives.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: How many entries :func:`list_user_events` returns unless told otherwise.
DEFAULT_LIMIT = 200


@dataclass(frozen=True)
class PasswordReset:
    """What :func:`reset_password` did: the account, its temporary password, and whether it was generated.

    The password is left out of the repr (so it never lands in a log by accident); show it once.
    """

    name: str
    password: str = field(repr=False)
    generated: bool


def generate_password(name: str = "") -> str:
    """A random temporary password: four groups of four letters and digits (about 79 bits).

    It follows :func:`~iea_data.workflows.users.check_password_policy` for ``name``.

    Examples
    --------
    >>> pw = generate_password("ann")
    >>> len(pw), pw.count("-")
    (19, 3)
    >>> generate_password() != generate_password()
    True
    """
    while True:
        pw = "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
        try:
            return check_password_policy(pw, name=name)
        except IeaError:  # pragma: no cover - the name happened to be inside it: draw again
            continue


def _by(by: Optional[UserInfo]) -> str:
    return ascii(by.name) if by is not None else "local-operator"


def reset_password(
    ws: Workspace, name: str, *, password: Optional[str] = None, by: Optional[UserInfo] = None
) -> PasswordReset:
    """Give ``name`` a temporary password they must replace at their next sign-in; commits.

    The account's ``must_change_password`` is set: the user signs in with the temporary
    password and is asked for a new one (:func:`change_own_password`) before anything else,
    and until then the library refuses them every action. Their login throttle is lifted.

    Parameters
    ----------
    ws : Workspace
    name : str
        The account.
    password : str, optional
        The temporary password (it must follow the password policy); None: one is generated
        (:func:`generate_password`). Either way it is returned once and only its hash is kept.
    by : UserInfo, optional
        The acting admin (``"manage_users"``); None for the local operator. An admin cannot
        reset their own password (they change it instead).

    Returns
    -------
    PasswordReset
        ``password`` is the temporary password: show it once, store it nowhere.

    Raises
    ------
    NotFoundError
        No such user.
    PermissionDeniedError
        ``by`` may not manage users, or is ``name``.
    IeaError
        ``password`` breaks the policy.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> from iea_data.workflows.users import add_user, authenticate
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> reset = reset_password(ws, "ann")
    >>> reset
    PasswordReset(name='ann', generated=True)
    >>> authenticate(ws, "ann", reset.password).must_change_password
    True
    """
    _check_name(name)
    generated = password is None
    temporary = generate_password(name) if password is None else check_password_policy(password, name=name)
    hashed = _hasher.hash(temporary)  # slow on purpose: outside the transaction
    with ws.unit(by) as uow:
        session = uow.session
        actor = _check_actor(session, by, "manage_users")
        row = _user_row(session, name)
        if actor is not None and actor.id == row.id:
            raise PermissionDeniedError(
                "you cannot reset your own password; ask another admin, or use `iea users passwd` on the server"
            )
        row.password_hash = hashed
        row.must_change_password = True
        session.execute(delete(LoginThrottle).where(LoginThrottle.name.in_([throttle_key("n", name), name])))
        record_user_event(session, "password_reset", row.id, actor)
    auth_log.info("password reset: user=%s by=%s at=%s", ascii(name), _by(by), _stamp())
    return PasswordReset(name=name, password=temporary, generated=generated)


def set_role(ws: Workspace, name: str, role: str, *, by: Optional[UserInfo] = None) -> UserInfo:
    """Change ``name``'s role; commits. It applies at once (every write re-reads the role).

    The last enabled admin cannot be demoted, and an admin in the app cannot change their own
    role (another admin does). Setting the role a user already has changes and logs nothing.

    Parameters
    ----------
    ws : Workspace
    name : str
    role : {"annotator", "reviewer", "admin"}
    by : UserInfo, optional
        The acting admin (``"manage_users"``); None for the local operator.

    Returns
    -------
    UserInfo
        The user with the new role.

    Raises
    ------
    IeaError
        Unknown role, or ``name`` is the last enabled admin.
    NotFoundError
        No such user.
    PermissionDeniedError
        ``by`` may not manage users, or is ``name``.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> from iea_data.workflows.users import add_user
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> set_role(ws, "ann", "reviewer")
    UserInfo(id=1, name='ann', role='reviewer', enabled=True)
    """
    _check_name(name)
    if role not in ROLES:
        raise IeaError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    with ws.unit(by) as uow:
        session = uow.session
        actor = _check_actor(session, by, "manage_users")
        row = _user_row(session, name)
        if actor is not None and actor.id == row.id:
            raise PermissionDeniedError("you cannot change your own role; ask another admin")
        old = row.role
        if old == role:
            return UserInfo.from_row(row)
        if old == "admin" and _is_last_enabled_admin(session, row):
            raise IeaError(
                f"{name!r} is the only enabled admin and cannot be made {role}; make another user admin first"
            )
        row.role = role
        record_user_event(session, "role_changed", row.id, actor, old_role=old, new_role=role)
        info = UserInfo.from_row(row)
    auth_log.info("role changed: user=%s %s -> %s by=%s at=%s", ascii(name), old, role, _by(by), _stamp())
    return info


def change_own_password(ws: Workspace, user: UserInfo, current_password: str, new_password: str) -> UserInfo:
    """The signed-in ``user`` replaces their password (the temporary one after a reset); commits.

    ``current_password`` is checked against the stored hash; the new password must follow
    :func:`~iea_data.workflows.users.check_password_policy` and differ from the current one.
    Clears ``must_change_password``.

    Parameters
    ----------
    ws : Workspace
    user : UserInfo
        The signed-in user (from :func:`~iea_data.workflows.users.authenticate` or ``current_user``).
    current_password, new_password : str

    Returns
    -------
    UserInfo
        The user as stored now (``must_change_password`` False).

    Raises
    ------
    AuthError
        ``current_password`` is wrong, or the account was disabled or deleted.
    IeaError
        The new password breaks the policy or equals the current one.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> from iea_data.workflows.users import add_user
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> from iea_data.workflows.users import authenticate
    >>> _ = reset_password(ws, "ann", password="kettle north violet")
    >>> ann = authenticate(ws, "ann", "kettle north violet")
    >>> change_own_password(ws, ann, "kettle north violet", "a quiet river at dawn").must_change_password
    False
    """
    if not isinstance(user, UserInfo):
        raise TypeError(f"user must be a UserInfo (from authenticate or current_user), got {type(user).__name__}")
    for arg, value in (("current_password", current_password), ("new_password", new_password)):
        if not isinstance(value, str):
            raise TypeError(f"{arg} must be a str, got {type(value).__name__}")
    with ws.unit() as uow:
        actor = _load_actor(uow.session, user.id)  # AuthError when disabled or deleted
        hashed = _user_row(uow.session, actor.name).password_hash
    if not _verify(hashed, current_password):  # ~0.2 s of CPU: outside any transaction
        auth_log.warning("password change refused, current password wrong: user=%s at=%s", ascii(actor.name), _stamp())
        raise AuthError("the current password is wrong; type the password you signed in with")
    if new_password == current_password:
        raise IeaError("the new password must differ from the current one")
    check_password_policy(new_password, name=actor.name)
    new_hash = _hasher.hash(new_password)
    with ws.unit(actor) as uow:
        session = uow.session
        row = session.get(User, actor.id, populate_existing=True)
        if row is None or not row.enabled:
            raise AuthError("your account no longer exists or was disabled; you have been logged out")
        if row.password_hash != hashed:
            raise AuthError("your password was changed meanwhile (by an admin?); sign in again")
        row.password_hash = new_hash
        row.must_change_password = False
        record_user_event(session, "password_changed", row.id, actor)
        info = UserInfo.from_row(row)
    auth_log.info("password changed: user=%s by=%s at=%s", ascii(actor.name), ascii(actor.name), _stamp())
    return info


def list_user_events(
    ws: Workspace,
    *,
    user: Optional[str] = None,
    limit: Optional[int] = DEFAULT_LIMIT,
    by: Optional[UserInfo] = None,
) -> list[UserEventInfo]:
    """The audit log of account changes, newest first.

    Parameters
    ----------
    ws : Workspace
    user : str, optional
        Only the entries about this account.
    limit : int or None
        At most this many entries (default 200); None for all.
    by : UserInfo, optional
        The acting user when called from the app (must be allowed ``"manage_users"``);
        None for the local operator.

    Returns
    -------
    list of UserEventInfo

    Raises
    ------
    PermissionDeniedError
        ``by`` may not manage users.
    NotFoundError
        ``user`` names no account.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> from iea_data.workflows.users import add_user, disable_user
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> disable_user(ws, "ann")
    >>> [(e.action, e.user, e.actor) for e in list_user_events(ws)]
    [('disabled', 'ann', None), ('added', 'ann', None)]
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    if user is not None:
        _check_name(user)
    with ws.unit(by) as uow:
        session = uow.session
        _check_actor(session, by, "manage_users")
        subject, actor = aliased(User), aliased(User)
        q = (
            select(UserEvent, subject.name, actor.name)
            .join(subject, UserEvent.user_id == subject.id)
            .outerjoin(actor, UserEvent.actor_id == actor.id)
            .order_by(UserEvent.id.desc())
        )
        if user is not None:
            q = q.where(UserEvent.user_id == _user_row(session, user).id)
        if limit is not None:
            q = q.limit(limit)
        return [
            UserEventInfo(
                id=int(e.id),
                at=aware(e.at),
                action=str(e.action),
                user=str(who),
                actor=None if by_name is None else str(by_name),
                operator=e.operator,
                old_role=e.old_role,
                new_role=e.new_role,
            )
            for e, who, by_name in session.execute(q).all()
        ]
