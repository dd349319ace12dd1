"""User accounts: argon2 password hashes, login with throttling that survives restarts, idle expiry."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..catalog._models import ROLES, LoginThrottle, User, utcnow
from ..catalog._upsert import insert_ignore
from ..errors import IeaError, NotFoundError, PermissionDeniedError
from ._roles import AuthError, UserInfo, require
from ._tx import aware, transaction

__all__ = [
    "NAME_PATTERN", "MIN_PASSWORD_LENGTH", "THROTTLE_BASE_SECONDS", "THROTTLE_MAX_SECONDS",
    "add_user", "set_password", "disable_user", "enable_user", "list_users", "get_user", "current_user", "load_actor",
    "authenticate", "session_expired",
]

log = logging.getLogger(__name__)

#: Login names: letters, digits and ``_ . @ -``, starting with a letter or digit, at most 128 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
#: After ``max_failures`` failed logins in a row a name is refused for 1 s, then 2 s, 4 s, …
THROTTLE_BASE_SECONDS = 1.0
#: … at most 15 minutes per further failure.
THROTTLE_MAX_SECONDS = 900.0
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


def _check_password(password) -> str:
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, got {type(password).__name__}")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise IeaError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long, got {len(password)}"
        )
    return password


def _check_actor(session: Session, by: Optional[UserInfo], action: str) -> Optional[UserInfo]:
    """The acting user re-read from the database (None: the local operator, e.g. the CLI)."""
    if by is None:
        return None
    actor = load_actor(session, by.id)
    require(actor, action)
    return actor


def _user_row(session: Session, name: str) -> User:
    row = session.scalar(select(User).where(User.name == name))
    if row is None:
        raise NotFoundError(f"no user named {name!r}; list them with `iea users ls`")
    return row


def add_user(session: Session, name: str, *, role: str, password: str, by: Optional[UserInfo] = None) -> UserInfo:
    """Create a user with an argon2id password hash; commits.

    Parameters
    ----------
    session : Session
        Catalog session.
    name : str
        Login name (see :data:`NAME_PATTERN`); must be new.
    role : {"annotator", "reviewer", "admin"}
    password : str
        8 to 1024 characters; only its salted argon2id hash is stored.
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
    >>> add_user(session, "ann", role="annotator", password="a long secret")  # doctest: +SKIP
    UserInfo(id=1, name='ann', role='annotator', enabled=True)
    """
    _check_name(name)
    if role not in ROLES:
        raise IeaError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    _check_password(password)
    hashed = _hasher.hash(password)  # slow on purpose: outside the transaction
    try:
        with transaction(session):
            _check_actor(session, by, "manage_users")
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise IeaError(f"a user named {name!r} already exists; change the password with `iea users passwd {name}`")
            row = User(name=name, role=role, password_hash=hashed, enabled=True)
            session.add(row)
            session.flush()
            info = UserInfo.from_row(row)
    except IntegrityError:
        raise IeaError(f"a user named {name!r} already exists") from None
    log.info("added user %s (%s)", name, role)
    return info


def set_password(session: Session, name: str, password: str, *, by: Optional[UserInfo] = None) -> None:
    """Replace a user's password hash and clear the name's login throttle; commits.

    ``by`` (the app's acting user) may change their own password; changing someone
    else's needs ``"manage_users"``. None is the local operator.
    """
    _check_name(name)
    _check_password(password)
    hashed = _hasher.hash(password)
    with transaction(session):
        if by is not None:
            actor = load_actor(session, by.id)
            if actor.name != name:
                require(actor, "manage_users")
        row = _user_row(session, name)
        row.password_hash = hashed
        session.execute(delete(LoginThrottle).where(LoginThrottle.name == name))
    log.info("password of %s changed", name)


def _set_enabled(session: Session, name: str, enabled: bool, by: Optional[UserInfo]) -> None:
    _check_name(name)
    with transaction(session):
        actor = _check_actor(session, by, "manage_users")
        row = _user_row(session, name)
        if not enabled:
            if actor is not None and actor.id == row.id:
                raise PermissionDeniedError("you cannot disable your own account; ask another admin")
            if row.role == "admin" and row.enabled:
                n_admins = session.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.enabled.is_(True)))
                if n_admins <= 1:
                    raise IeaError(f"{name!r} is the only enabled admin; add another admin before disabling it")
        row.enabled = enabled


def disable_user(session: Session, name: str, *, by: Optional[UserInfo] = None) -> None:
    """Disable a user: they can no longer log in or write, and the app logs them out; commits.

    Their labels stay. The last enabled admin cannot be disabled, nor can ``by`` disable
    themselves.
    """
    _set_enabled(session, name, False, by)
    log.info("disabled user %s", name)


def enable_user(session: Session, name: str, *, by: Optional[UserInfo] = None) -> None:
    """Enable a disabled user again; commits."""
    _set_enabled(session, name, True, by)


def list_users(session: Session) -> list[UserInfo]:
    """Every user, by name."""
    with transaction(session):
        return [UserInfo.from_row(r) for r in session.scalars(select(User).order_by(User.name))]


def get_user(session: Session, name: str) -> UserInfo:
    """The user called ``name`` (:class:`NotFoundError` if there is none)."""
    with transaction(session):
        return UserInfo.from_row(_user_row(session, _check_name(name)))


def current_user(session: Session, user_id: int) -> UserInfo:
    """The signed-in user as the database has them now.

    The app calls this on every rerun, and every library write calls it for the acting
    user, so a disabled (or deleted) user is logged out at once and a role change
    applies immediately.

    Raises
    ------
    AuthError
        The user no longer exists or is disabled.
    """
    with transaction(session):
        return load_actor(session, user_id)


def load_actor(session: Session, user_id: int) -> UserInfo:
    """:func:`current_user` inside a transaction the caller already holds (used by every library write)."""
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


def _lock_seconds(failures: int, max_failures: int) -> float:
    if failures < max_failures:
        return 0.0
    return min(THROTTLE_BASE_SECONDS * 2.0 ** min(failures - max_failures, 40), THROTTLE_MAX_SECONDS)


def authenticate(
    session: Session, name: str, password: str, *, max_failures: int = 5, now: Optional[dt.datetime] = None
) -> UserInfo:
    """Check a login; commits the outcome (failure counts live in the database).

    Parameters
    ----------
    session : Session
        Catalog session.
    name, password : str
        What was typed.
    max_failures : int
        Failed attempts in a row after which the name is throttled: the attempt that reaches
        it locks the name for 1 s, each further failure doubles the lock (at most 15 min),
        and every attempt during a lock is refused without checking the password. A
        successful login resets the count. Unknown names are throttled the same way.
        The app passes the workspace's ``app.login_max_failures``.
    now : datetime, optional
        The current time (tests); default the clock.

    Returns
    -------
    UserInfo

    Raises
    ------
    AuthError
        ``"wrong user name or password"`` for an unknown name and for a wrong password
        alike; a throttled name (with the seconds to wait); a disabled account.

    Examples
    --------
    >>> authenticate(session, "ann", "a long secret")  # doctest: +SKIP
    UserInfo(id=1, name='ann', role='annotator', enabled=True)
    """
    if not isinstance(name, str) or not isinstance(password, str):
        raise TypeError("name and password must be str")
    if not isinstance(max_failures, int) or max_failures < 1:
        raise ValueError(f"max_failures must be a positive int, got {max_failures!r}")
    now = aware(now) if now is not None else utcnow()
    key = name[:128]
    with transaction(session):
        throttle = session.scalar(select(LoginThrottle).where(LoginThrottle.name == key))
        until = aware(throttle.locked_until) if throttle is not None else None
        if until is not None and until > now:
            wait = math.ceil((until - now).total_seconds())
            refused = f"too many failed logins for this name; try again in {wait} s"
        else:
            refused = None
            row = session.scalar(select(User).where(User.name == name)) if len(name) <= 128 else None
            ok = _verify(row.password_hash if row is not None else None, password)
            if ok and row is not None:
                session.execute(delete(LoginThrottle).where(LoginThrottle.name == key))
                if not row.enabled:
                    refused = "this account is disabled; ask an admin"
                else:
                    if _hasher.check_needs_rehash(row.password_hash):
                        row.password_hash = _hasher.hash(password)
                    info = UserInfo.from_row(row)
            else:
                insert_ignore(session, LoginThrottle.__table__, [{"name": key, "failures": 0}], conflict=["name"])
                throttle = session.scalar(select(LoginThrottle).where(LoginThrottle.name == key).with_for_update()
                                          .execution_options(populate_existing=True))
                throttle.failures += 1
                throttle.last_failure_at = now
                lock = _lock_seconds(throttle.failures, max_failures)
                throttle.locked_until = now + dt.timedelta(seconds=lock) if lock else None
                refused = _WRONG
    if refused is not None:
        log.info("login refused for %r: %s", key, refused)
        raise AuthError(refused)
    return info


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
