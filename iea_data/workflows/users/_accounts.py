"""User accounts: argon2 password hashes, the password policy, login with throttling that survives restarts,
idle expiry.

Authentication events (signed in, failed, throttled, disabled, signed out, password changed)
go to the ``iea.auth`` logger with the user name (escaped; an unknown name only as a short
hash, since it may be a password typed in the wrong field, and so is any name refused by an
address lock, which is decided without looking the name up), the client address and the
time, never a password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError
from iea_data.store import ROLES, AuthError, LoginThrottle, User, UserInfo, aware, require, utcnow

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UnitOfWork, Workspace

from . import _throttle
from ._audit import record_user_event
from ._policy import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_password_policy
from ._throttle import (
    ADDRESS_MAX_FAILURES,
    GLOBAL_MAX_FAILURES,
    THROTTLE_BASE_SECONDS,
    THROTTLE_MAX_SECONDS,
    client_address,
    prune_login_throttle,
    throttle_key,
)

__all__ = [
    "NAME_PATTERN",
    "MIN_PASSWORD_LENGTH",
    "THROTTLE_BASE_SECONDS",
    "THROTTLE_MAX_SECONDS",
    "add_user",
    "set_password",
    "disable_user",
    "enable_user",
    "list_users",
    "get_user",
    "current_user",
    "load_actor",
    "authenticate",
    "session_expired",
    "failed_logins",
    "log_sign_out",
    "configure_auth_log",
]

log = logging.getLogger(__name__)
#: Authentication events: one line each, user name escaped, never a password.
auth_log = logging.getLogger("iea.auth")

#: Login names: letters, digits and ``_ . @ -``, starting with a letter or digit, at most 128 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_WRONG = "wrong user name or password"

_hasher = PasswordHasher()  # argon2id, salted, the library's recommended cost
_dummy_hash: Optional[str] = None


def _check_name(name) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise IeaError(
            f"user name must be 1-128 characters of letters, digits and _ . @ - (starting with a letter or digit), "
            f"got {name!r}"
        )
    return name


def _check_password(password, name: str, *, policy: bool = True) -> str:
    if policy:
        return check_password_policy(password, name=name)
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, got {type(password).__name__}")
    if not 1 <= len(password) <= MAX_PASSWORD_LENGTH:
        raise IeaError(f"password must be 1 to {MAX_PASSWORD_LENGTH} characters long, got {len(password)}")
    return password


def _stamp(now: Optional[dt.datetime] = None) -> str:
    return (now or utcnow()).astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _who(name: str, exists: bool) -> str:
    """A name for the log: escaped when it is a user's; an unknown name only as a short hash."""
    if exists:
        return ascii(name)
    return f"<unknown name #{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}>"


def _check_actor(session: Session, by: Optional[UserInfo], action: str) -> Optional[UserInfo]:
    """The acting user re-read from the database (None: the local operator, e.g. the CLI)."""
    if by is None:
        return None
    actor = _load_actor(session, by.id)
    require(actor, action)
    return actor


def _user_row(session: Session, name: str) -> User:
    row = session.scalar(select(User).where(User.name == name))
    if row is None:
        raise NotFoundError(f"no user named {name!r}; list them with `iea users ls`")
    return row


def add_user(ws: Workspace, name: str, *, role: str, password: str, by: Optional[UserInfo] = None) -> UserInfo:
    """Create a user with an argon2id password hash; commits.

    Parameters
    ----------
    ws : Workspace
    name : str
        Login name (see :data:`NAME_PATTERN`); must be new.
    role : {"annotator", "reviewer", "admin"}
    password : str
        At least 12 characters (at most 1024), not containing the name, not a common password
        (see :func:`~iea_data.workflows.users.check_password_policy`); only its salted argon2id hash is stored.
    by : UserInfo, optional
        The acting user when called from the app (must be allowed ``"manage_users"``);
        None for the local operator (the ``iea users`` command).

    Returns
    -------
    UserInfo

    Raises
    ------
    IeaError
        Bad name or password, or the name is taken.
    PermissionDeniedError
        ``by`` may not manage users.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    UserInfo(id=1, name='ann', role='annotator', enabled=True)
    """
    return _add_user(ws, name, role=role, password=password, by=by, policy=True)


def _add_user(ws: Workspace, name: str, *, role: str, password: str, by: Optional[UserInfo], policy: bool) -> UserInfo:
    """:func:`add_user`; ``policy=False`` only for the demo accounts of a demo workspace."""
    _check_name(name)
    if role not in ROLES:
        raise IeaError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    _check_password(password, name, policy=policy)
    hashed = _hasher.hash(password)  # slow on purpose: outside the transaction
    try:
        with ws.unit(by) as uow:
            session = uow.session
            by = _check_actor(session, by, "manage_users")
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise IeaError(
                    f"a user named {name!r} already exists; change the password with `iea users passwd {name}`"
                )
            row = User(name=name, role=role, password_hash=hashed, enabled=True, must_change_password=False)
            session.add(row)
            session.flush()
            record_user_event(session, "added", row.id, by, new_role=role)
            info = UserInfo.from_row(row)
    except IntegrityError:
        raise IeaError(f"a user named {name!r} already exists") from None
    log.info("added user %s (%s)", name, role)
    return info


def set_password(ws: Workspace, name: str, password: str, *, by: Optional[UserInfo] = None) -> None:
    """Replace a user's password hash and clear the name's login throttle; commits.

    ``by`` (the app's acting user) may change their own password; changing someone
    else's needs ``"manage_users"``. None is the local operator. The password must follow
    :func:`~iea_data.workflows.users.check_password_policy`. Logged in the audit log
    (``password_set``; ``password_changed`` when ``by`` is the user, which also clears
    ``must_change_password``). To hand out a temporary password the user must replace, use
    :func:`~iea_data.workflows.users.reset_password`.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> set_password(ws, "ann", "a new and longer phrase")
    """
    _check_name(name)
    _check_password(password, name)
    hashed = _hasher.hash(password)  # slow on purpose: outside the transaction
    with ws.unit(by) as uow:
        session = uow.session
        actor = None
        if by is not None:
            actor = _load_actor(session, by.id)
            if actor.name != name:
                require(actor, "manage_users")
        row = _user_row(session, name)
        row.password_hash = hashed
        own = actor is not None and actor.id == row.id
        if own:
            row.must_change_password = False
        record_user_event(session, "password_changed" if own else "password_set", row.id, actor)
        session.execute(delete(LoginThrottle).where(LoginThrottle.name.in_([throttle_key("n", name), name])))
    auth_log.info(
        "password changed: user=%s by=%s at=%s", ascii(name), ascii(by.name) if by else "local-operator", _stamp()
    )


def _is_last_enabled_admin(session: Session, row: User) -> bool:
    """True when ``row`` is the only enabled admin.

    The enabled admins' rows are locked (``FOR UPDATE`` on PostgreSQL; SQLite's writers are
    serialised by ``BEGIN IMMEDIATE``), so two admins demoting or disabling each other at the
    same moment cannot leave the team without one: the second waits and then counts again.
    """
    if row.role != "admin" or not row.enabled:
        return False
    admins = session.scalars(
        select(User.id).where(User.role == "admin", User.enabled.is_(True)).with_for_update()
    ).all()
    return set(admins) <= {row.id}


def _set_enabled(ws: Workspace, name: str, enabled: bool, by: Optional[UserInfo]) -> bool:
    """Enable or disable ``name``; True when that changed anything (then it is logged)."""
    _check_name(name)
    with ws.unit(by) as uow:
        session = uow.session
        actor = _check_actor(session, by, "manage_users")
        row = _user_row(session, name)
        if not enabled:
            if actor is not None and actor.id == row.id:
                raise PermissionDeniedError("you cannot disable your own account; ask another admin")
            if _is_last_enabled_admin(session, row):
                raise IeaError(f"{name!r} is the only enabled admin; add another admin before disabling it")
        if bool(row.enabled) == enabled:
            return False
        row.enabled = enabled
        record_user_event(session, "enabled" if enabled else "disabled", row.id, actor)
    return True


def disable_user(ws: Workspace, name: str, *, by: Optional[UserInfo] = None) -> None:
    """Disable a user: they can no longer log in or write, and the app logs them out; commits.

    Their labels stay. The last enabled admin cannot be disabled, nor can ``by`` disable
    themselves. Logged in the audit log with who did it (a user already disabled: nothing changes).

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> disable_user(ws, "ann"); get_user(ws, "ann").enabled
    False
    """
    if not _set_enabled(ws, name, False, by):
        return
    auth_log.info(
        "account disabled: user=%s by=%s at=%s", ascii(name), ascii(by.name) if by else "local-operator", _stamp()
    )


def enable_user(ws: Workspace, name: str, *, by: Optional[UserInfo] = None) -> None:
    """Enable a disabled user again; commits. Logged in the audit log with who did it.

    ``by`` is the acting admin in the app (``"manage_users"``); None the local operator.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> disable_user(ws, "ann"); enable_user(ws, "ann"); get_user(ws, "ann").enabled
    True
    """
    if not _set_enabled(ws, name, True, by):
        return
    auth_log.info(
        "account enabled: user=%s by=%s at=%s", ascii(name), ascii(by.name) if by else "local-operator", _stamp()
    )


def list_users(ws: Workspace) -> list[UserInfo]:
    """Every user, by name.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> list_users(ws)
    []
    """
    with ws.unit() as uow:
        return [UserInfo.from_row(r) for r in uow.session.scalars(select(User).order_by(User.name))]


def get_user(ws: Workspace, name: str) -> UserInfo:
    """The user called ``name`` (:class:`NotFoundError` if there is none).

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> get_user(ws, "ann").role
    'annotator'
    """
    with ws.unit() as uow:
        return UserInfo.from_row(_user_row(uow.session, _check_name(name)))


def current_user(ws: Workspace, user_id: int) -> UserInfo:
    """The signed-in user as the database has them now.

    The app calls this on every rerun, and every library write calls it for the acting
    user, so a disabled (or deleted) user is logged out at once and a role change
    applies immediately.

    Raises
    ------
    AuthError
        The user no longer exists or is disabled.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> ann = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> current_user(ws, ann.id) == ann
    True
    """
    with ws.unit() as uow:
        return load_actor(uow, user_id)


def load_actor(uow: UnitOfWork, user_id: int) -> UserInfo:
    """:func:`current_user` inside the caller's unit of work (used by every library write).

    Raises
    ------
    AuthError
        The user no longer exists or is disabled.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     load_actor(uow, 1)
    Traceback (most recent call last):
    ...
    iea_data.store._roles.AuthError: your account no longer exists or was disabled; you have been logged out
    """
    return _load_actor(uow.session, user_id)


def _load_actor(session: Session, user_id: int) -> UserInfo:
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise TypeError(f"user_id must be an int, got {type(user_id).__name__}")
    row = session.get(User, user_id, populate_existing=True)
    if row is None or not row.enabled:
        raise AuthError("your account no longer exists or was disabled; you have been logged out")
    return UserInfo.from_row(row)


def _verify(hashed: Optional[str], password: str) -> bool:
    global _dummy_hash
    if hashed is None:
        # the same work as a real check, so the timing says nothing about whether the name exists
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not a password of anyone")
        hashed = _dummy_hash
        try:
            _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(
    ws: Workspace,
    name: str,
    password: str,
    *,
    address: Optional[str] = None,
    max_failures: int = 5,
    max_failures_per_address: int = ADDRESS_MAX_FAILURES,
    max_failures_global: int = GLOBAL_MAX_FAILURES,
    now: Optional[dt.datetime] = None,
) -> UserInfo:
    """Check a login, throttled per name, per client address and for the whole server.

    Every limit is checked before the password: a throttled attempt costs no argon2 work and
    writes nothing. An attempt that passes is counted as a failure *before* its password is
    checked (so concurrent attempts cannot exceed a limit) and refunded when the password is
    right. The argon2 check runs outside any database transaction. Counts live in
    ``login_throttle`` (keyed by hashes, see :mod:`iea_data.workflows.users._throttle`) and survive restarts.

    A sequence of short units of work (check and charge, then refund) with the argon2 check
    between them, outside any transaction.

    Parameters
    ----------
    ws : Workspace
    name, password : str
        What was typed.
    address : str, optional
        The client's address (see :func:`~iea_data.workflows.users.client_address`); None: this machine
        (the CLI, a browser on localhost).
    max_failures : int
        Failed attempts in a row for one name after which it is throttled: the attempt that
        reaches it locks the name for 1 s, each further failure doubles the lock, at most
        :data:`THROTTLE_MAX_SECONDS` (5 min). A name lock does not apply to an address that
        signed in as that name before, nor to an address with no failures in the last 15 min,
        so knowing a name cannot lock its owner out. Unknown names are throttled alike. The
        app passes the workspace's ``app.login_max_failures``.
    max_failures_per_address : int
        Failed attempts from one address within 15 min after which the address is refused
        (30 s, doubling, at most 15 min) whatever name it tries.
    max_failures_global : int
        Failed attempts on the whole server per minute after which only (name, address)
        pairs that signed in before are checked; this bounds the CPU that failed checks use.
    now : datetime, optional
        The current time (tests); default the clock.

    Returns
    -------
    UserInfo

    Raises
    ------
    AuthError
        ``"wrong user name or password"`` for an unknown name and for a wrong password
        alike; a throttled name, address or server (with the seconds to wait); a disabled
        account.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> _ = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    >>> authenticate(ws, "ann", "otter lamp quietly", address="203.0.113.7")
    UserInfo(id=1, name='ann', role='annotator', enabled=True)
    """
    if not isinstance(name, str) or not isinstance(password, str):
        raise TypeError("name and password must be str")
    for arg, value in (
        ("max_failures", max_failures),
        ("max_failures_per_address", max_failures_per_address),
        ("max_failures_global", max_failures_global),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address must be a str or None, got {type(address).__name__}")
    now = aware(now) if now is not None else utcnow()
    addr = client_address(address)
    keys = _throttle.Keys(name, addr)
    limits = _throttle.Limits(max_failures, max_failures_per_address, max_failures_global)
    db = _throttle.database_id(ws)
    refusal = _throttle.seen_address_lock(db, keys, now)  # a locked address: no database work at all
    who = _who(name, False)
    if refusal is None:
        with ws.unit() as uow:
            session = uow.session
            row = session.scalar(select(User).where(User.name == name)) if NAME_PATTERN.fullmatch(name) else None
            who = _who(name, row is not None)
            refusal, _, _ = _throttle.evaluate(uow, keys, now, limits, lock=False)
            if refusal is None:
                refusal = _throttle.charge(uow, keys, now, limits)
            if refusal is None:
                prune_login_throttle(uow, now)
                user_id, hashed = (row.id, row.password_hash) if row is not None else (None, None)
        if refusal is not None:
            _throttle.remember_address_lock(db, keys, refusal, now)
    if refusal is not None:
        auth_log.warning(
            "sign-in throttled (%s): user=%s address=%s at=%s", refusal.kind, who, ascii(addr), _stamp(now)
        )
        raise AuthError(refusal.message)
    ok = _verify(hashed, password)  # ~0.2 s of CPU: outside any transaction
    if ok:
        with ws.unit() as uow:
            row = uow.session.get(User, user_id, populate_existing=True)
            ok = row is not None and row.password_hash == hashed  # not deleted or changed meanwhile
            if ok:
                enabled = bool(row.enabled)
                _throttle.refund(uow, keys, now, limits, remember=enabled)
                _throttle.forget_address_lock(db, keys)
                if enabled and _hasher.check_needs_rehash(row.password_hash):
                    row.password_hash = _hasher.hash(password)
                info = UserInfo.from_row(row)
    if not ok:
        auth_log.warning("sign-in failed: user=%s address=%s at=%s", who, ascii(addr), _stamp(now))
        raise AuthError(_WRONG)
    if not enabled:
        auth_log.warning("sign-in refused, account disabled: user=%s address=%s at=%s", who, ascii(addr), _stamp(now))
        raise AuthError("this account is disabled; ask an admin")
    auth_log.info("signed in: user=%s role=%s address=%s at=%s", who, info.role, ascii(addr), _stamp(now))
    return info


def log_sign_out(name: str, *, reason: str = "signed out", address: Optional[str] = None) -> None:
    """Log that ``name`` left the app (``reason``: signed out, idle expiry, disabled) on ``iea.auth``."""
    auth_log.info(
        "signed out (%s): user=%s address=%s at=%s",
        ascii(str(reason)),
        ascii(str(name)),
        ascii(client_address(address)),
        _stamp(),
    )


def configure_auth_log(stream=None) -> logging.Logger:
    """Send ``iea.auth`` events at INFO and above to ``stream`` (default stderr), once per process.

    The app calls this so that sign-ins and sign-outs reach the server's log; calling it again
    adds nothing.
    """
    import sys

    if not any(getattr(h, "_iea_auth", False) for h in auth_log.handlers):
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._iea_auth = True  # type: ignore[attr-defined]
        auth_log.addHandler(handler)
    if auth_log.getEffectiveLevel() > logging.INFO:
        auth_log.setLevel(logging.INFO)
    return auth_log


def failed_logins(ws: Workspace, name: str, *, now: Optional[dt.datetime] = None) -> int:
    """Failed sign-ins in a row for ``name`` (known or not) that still count towards its throttle.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> failed_logins(init_workspace(tempfile.mkdtemp()), "ann")
    0
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    now = aware(now) if now is not None else utcnow()
    with ws.unit() as uow:
        row = uow.session.scalar(select(LoginThrottle).where(LoginThrottle.name == throttle_key("n", name)))
        return _throttle._counter(row, now, decays=True).failures


def session_expired(last_seen: dt.datetime, now: dt.datetime, idle_minutes: int) -> bool:
    """True when more than ``idle_minutes`` passed between ``last_seen`` and ``now``.

    Both datetimes must be timezone-aware, or both naive. A ``now`` before ``last_seen``
    (clock adjusted) does not expire the session.

    Examples
    --------
    >>> t = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    >>> session_expired(t, t + dt.timedelta(minutes=60), 60), session_expired(t, t + dt.timedelta(minutes=61), 60)
    (False, True)
    """
    for arg, value in (("last_seen", last_seen), ("now", now)):
        if not isinstance(value, dt.datetime):
            raise TypeError(f"{arg} must be a datetime, got {type(value).__name__}")
    if (last_seen.tzinfo is None) != (now.tzinfo is None):
        raise ValueError("last_seen and now must both be timezone-aware or both naive; use datetime.now(timezone.utc)")
    if not isinstance(idle_minutes, int) or isinstance(idle_minutes, bool) or idle_minutes < 1:
        raise ValueError(f"idle_minutes must be a positive int, got {idle_minutes!r}")
    return now - last_seen > dt.timedelta(minutes=idle_minutes)
