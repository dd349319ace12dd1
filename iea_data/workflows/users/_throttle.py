"""Login throttling per name, per client address and for the whole server, stored in ``login_throttle``.

Every row of ``login_throttle`` is keyed by a kind prefix and the SHA-256 of what it counts,
so the table never holds a typed name (which may be a password typed in the wrong field)
nor an address in clear:

============================ ====================================================================
``n:<sha256(name)>``         failed sign-ins in a row for a typed name (known or not); exponential
                             backoff from ``max_failures`` on, capped at :data:`THROTTLE_MAX_SECONDS`
``a:<sha256(address)>``      failed sign-ins from one client address; locked from
                             :data:`ADDRESS_MAX_FAILURES` on (30 s, doubling, at most 15 min)
``k:<sha256(name, addr)>``   a successful sign-in of that name from that address (``last_failure_at``
                             holds its time): such a pair passes name and global limits
``g:server``                 failed sign-ins in the current window of :data:`GLOBAL_WINDOW_SECONDS`
                             (``locked_until`` holds the window's end)
============================ ====================================================================

Counts of ``n:`` and ``a:`` rows are forgotten after :data:`THROTTLE_WINDOW_SECONDS` without a
failure; :func:`prune_login_throttle` deletes such rows (``authenticate`` calls it), and ``k:``
rows after :data:`KNOWN_ADDRESS_DAYS` days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import math
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from iea_data.store import LoginThrottle, aware, insert_ignore

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UnitOfWork, Workspace

__all__ = [
    "THROTTLE_BASE_SECONDS",
    "THROTTLE_MAX_SECONDS",
    "THROTTLE_WINDOW_SECONDS",
    "ADDRESS_MAX_FAILURES",
    "ADDRESS_LOCK_SECONDS",
    "ADDRESS_LOCK_MAX_SECONDS",
    "GLOBAL_MAX_FAILURES",
    "GLOBAL_WINDOW_SECONDS",
    "KNOWN_ADDRESS_DAYS",
    "LOCAL_ADDRESS",
    "client_address",
    "prune_login_throttle",
    "throttle_key",
]

#: After ``max_failures`` failed sign-ins in a row a name is refused for 1 s, then 2 s, 4 s, …
THROTTLE_BASE_SECONDS = 1.0
#: … at most 5 minutes: the owner can always try again after this long (and at once from a
#: known or clean address), so knowing a name is not enough to lock its owner out.
THROTTLE_MAX_SECONDS = 300.0
#: Failure counts of a name or an address are forgotten after this long without a failure.
THROTTLE_WINDOW_SECONDS = 900.0
#: Failed sign-ins from one address (within the window) after which the address is refused …
ADDRESS_MAX_FAILURES = 20
#: … for 30 s, doubling with each further failure …
ADDRESS_LOCK_SECONDS = 30.0
#: … at most 15 minutes.
ADDRESS_LOCK_MAX_SECONDS = 900.0
#: Failed sign-ins for the whole server per window (each costs one argon2 check, ~0.2 s of CPU) …
GLOBAL_MAX_FAILURES = 60
#: … of this many seconds; beyond it only known (name, address) pairs are checked.
GLOBAL_WINDOW_SECONDS = 60.0
#: A successful sign-in keeps its (name, address) pair "known" this long.
KNOWN_ADDRESS_DAYS = 90
#: The address used when the caller passes none (the CLI, tests, a browser on the same machine).
LOCAL_ADDRESS = "local"

_GLOBAL_KEY = "g:server"


def throttle_key(kind: str, *parts: str) -> str:
    """The ``login_throttle.name`` of a counter: ``kind:`` and the SHA-256 of ``parts`` (never the text)."""
    if kind not in ("n", "a", "k"):
        raise ValueError(f"kind must be one of n, a, k, got {kind!r}")
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return f"{kind}:{hashlib.sha256(joined).hexdigest()}"


def client_address(
    peer: Optional[str], forwarded_for: Optional[str] = None, trusted_proxies: Iterable[str] = ()
) -> str:
    """The address to throttle a sign-in by.

    Parameters
    ----------
    peer : str or None
        The remote address of the connection (None: the same machine).
    forwarded_for : str, optional
        The ``X-Forwarded-For`` header. Used only when ``peer`` is one of ``trusted_proxies``
        (anyone can send the header): then the right-most entry that is not itself a trusted
        proxy is the client.
    trusted_proxies : iterable of str
        Addresses of reverse proxies in front of the app (``local`` for one on the same machine).

    Returns
    -------
    str
        A normalised IP address, or :data:`LOCAL_ADDRESS`.

    Examples
    --------
    >>> client_address("203.0.113.7")
    '203.0.113.7'
    >>> client_address(None, "198.51.100.2, 203.0.113.9", trusted_proxies=["local"])
    '203.0.113.9'
    >>> client_address("203.0.113.7", "10.0.0.1")  # header from an untrusted peer: ignored
    '203.0.113.7'
    """
    trusted = {_norm(p) for p in trusted_proxies if str(p).strip()}
    addr = _norm(peer)
    if addr in trusted and forwarded_for:
        for hop in reversed([h.strip() for h in str(forwarded_for).split(",") if h.strip()]):
            hop = _norm(hop)
            if hop not in trusted:
                return hop
    return addr


def _norm(address: Optional[str]) -> str:
    if address is None or str(address).strip() in ("", "localhost", LOCAL_ADDRESS):
        return LOCAL_ADDRESS
    text = str(address).strip()[:100]
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text
    if ip.is_loopback:
        return LOCAL_ADDRESS
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@dataclasses.dataclass(frozen=True)
class Limits:
    max_failures: int
    per_address: int
    global_: int


@dataclasses.dataclass
class _Counter:
    failures: int
    locked_until: Optional[dt.datetime]
    last_failure_at: Optional[dt.datetime]


def _counter(row, now: dt.datetime, *, decays: bool) -> _Counter:
    """The row's state as of ``now`` (a count forgotten after a quiet window)."""
    if row is None:
        return _Counter(0, None, None)
    until, last = aware(row.locked_until), aware(row.last_failure_at)
    failures = int(row.failures or 0)
    if (
        decays
        and (until is None or until <= now)
        and (last is None or (now - last).total_seconds() > THROTTLE_WINDOW_SECONDS)
    ):
        return _Counter(0, None, None)
    return _Counter(failures, until, last)


def _wait(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


@dataclasses.dataclass(frozen=True)
class Refusal:
    kind: str  # "address", "global" or "name"
    message: str
    until: Optional[dt.datetime] = None


def _address_refusal(until: dt.datetime, now: dt.datetime) -> Refusal:
    return Refusal(
        "address", f"too many failed sign-ins from this address; wait {_wait(until, now)} s and try again", until
    )


# Address locks seen in this process, per database: a sprayed attempt from a locked address is
# refused from memory, without a database round trip (the database stays the authority).
_seen_locks: dict[tuple[str, str], dt.datetime] = {}
_seen_guard = threading.Lock()


def database_id(ws: Workspace) -> str:
    """Which database the workspace talks to (its URL without the password)."""
    return str(ws.engine().url)


def seen_address_lock(db: str, keys: Keys, now: dt.datetime) -> Optional[Refusal]:
    with _seen_guard:
        until = _seen_locks.get((db, keys.address))
    return _address_refusal(until, now) if until is not None and until > now else None


def remember_address_lock(db: str, keys: Keys, refusal: Refusal, now: dt.datetime) -> None:
    if refusal.kind != "address" or refusal.until is None:
        return
    with _seen_guard:
        if len(_seen_locks) > 10_000:
            for k in [k for k, v in _seen_locks.items() if v <= now]:
                del _seen_locks[k]
        _seen_locks[(db, keys.address)] = refusal.until


def forget_address_lock(db: str, keys: Keys) -> None:
    with _seen_guard:
        _seen_locks.pop((db, keys.address), None)


def _name_lock_seconds(failures: int, max_failures: int) -> float:
    if failures < max_failures:
        return 0.0
    return min(THROTTLE_BASE_SECONDS * 2.0 ** min(failures - max_failures, 40), THROTTLE_MAX_SECONDS)


def _address_lock_seconds(failures: int, per_address: int) -> float:
    if failures < per_address:
        return 0.0
    return min(ADDRESS_LOCK_SECONDS * 2.0 ** min(failures - per_address, 40), ADDRESS_LOCK_MAX_SECONDS)


class Keys:
    def __init__(self, name: str, address: str):
        self.name = throttle_key("n", name)
        self.address = throttle_key("a", address)
        self.known = throttle_key("k", name, address)
        self.all = sorted([self.name, self.address, _GLOBAL_KEY])  # one lock order for every caller


def _rows(session: Session, keys: Keys, *, lock: bool) -> dict[str, LoginThrottle]:
    stmt = select(LoginThrottle).where(LoginThrottle.name.in_(keys.all)).order_by(LoginThrottle.name)
    if lock:
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    return {r.name: r for r in session.scalars(stmt)}


def _is_known(session: Session, keys: Keys) -> bool:
    return session.scalar(select(LoginThrottle.id).where(LoginThrottle.name == keys.known)) is not None


def evaluate(uow: UnitOfWork, keys: Keys, now: dt.datetime, limits: Limits, *, lock: bool):
    """(refusal or None, rows, known) for an attempt now, inside the caller's unit; reads only."""
    session = uow.session
    rows = _rows(session, keys, lock=lock)
    known = _is_known(session, keys)
    addr = _counter(rows.get(keys.address), now, decays=True)
    name = _counter(rows.get(keys.name), now, decays=True)
    glob = rows.get(_GLOBAL_KEY)
    if addr.locked_until is not None and addr.locked_until > now:
        return _address_refusal(addr.locked_until, now), rows, known
    if glob is not None and not known:
        window_end = aware(glob.locked_until)
        if window_end is not None and window_end > now and int(glob.failures or 0) >= limits.global_:
            return (
                Refusal(
                    "global",
                    f"too many failed sign-ins on this server right now; wait {_wait(window_end, now)} s and try again",
                ),
                rows,
                known,
            )
    if name.locked_until is not None and name.locked_until > now and not (known or addr.failures == 0):
        return (
            Refusal("name", f"too many failed sign-ins for this name; try again in {_wait(name.locked_until, now)} s"),
            rows,
            known,
        )
    return None, rows, known


def charge(uow: UnitOfWork, keys: Keys, now: dt.datetime, limits: Limits):
    """Count the attempt as a failure before its password is checked (so concurrent attempts
    cannot exceed a limit); returns a refusal instead when a limit was reached meanwhile."""
    rows_in = [{"name": k, "failures": 0} for k in keys.all]
    insert_ignore(uow.session, LoginThrottle.__table__, rows_in, conflict=["name"])
    refusal, rows, _ = evaluate(uow, keys, now, limits, lock=True)
    if refusal is not None:
        return refusal
    for key, lock_seconds, limit in (
        (keys.name, _name_lock_seconds, limits.max_failures),
        (keys.address, _address_lock_seconds, limits.per_address),
    ):
        row = rows[key]
        state = _counter(row, now, decays=True)
        row.failures = state.failures + 1
        row.last_failure_at = now
        seconds = lock_seconds(row.failures, limit)
        row.locked_until = now + dt.timedelta(seconds=seconds) if seconds else None
    glob = rows[_GLOBAL_KEY]
    window_end = aware(glob.locked_until)
    if window_end is None or window_end <= now:
        glob.failures = 0
        glob.locked_until = now + dt.timedelta(seconds=GLOBAL_WINDOW_SECONDS)
    glob.failures = int(glob.failures or 0) + 1
    glob.last_failure_at = now
    return None


def refund(uow: UnitOfWork, keys: Keys, now: dt.datetime, limits: Limits, *, remember: bool) -> None:
    """The password was right: take back the charge, clear the name's count, remember the pair."""
    session = uow.session
    rows = _rows(session, keys, lock=True)
    session.execute(delete(LoginThrottle).where(LoginThrottle.name == keys.name))
    addr = rows.get(keys.address)
    if addr is not None:
        addr.failures = max(0, int(addr.failures or 0) - 1)
        seconds = _address_lock_seconds(addr.failures, limits.per_address)
        if not seconds:
            addr.locked_until = None
    glob = rows.get(_GLOBAL_KEY)
    if glob is not None and glob.locked_until is not None and aware(glob.locked_until) > now:
        glob.failures = max(0, int(glob.failures or 0) - 1)
    if remember:
        insert_ignore(session, LoginThrottle.__table__, [{"name": keys.known, "failures": 0}], conflict=["name"])
        row = session.scalar(
            select(LoginThrottle).where(LoginThrottle.name == keys.known).execution_options(populate_existing=True)
        )
        row.last_failure_at = now


def prune_login_throttle(uow: UnitOfWork, now: Optional[dt.datetime] = None) -> int:
    """Delete throttle rows that no longer count anything, inside the caller's unit; returns how many.

    A name or address row goes once its lock is over and its last failure is more than
    :data:`THROTTLE_WINDOW_SECONDS` old; a known-address row after :data:`KNOWN_ADDRESS_DAYS`;
    rows in the old format (keyed by the name in clear) after the window too.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     prune_login_throttle(uow)
    0
    """
    now = aware(now) if now is not None else dt.datetime.now(dt.UTC)
    stale = now - dt.timedelta(seconds=THROTTLE_WINDOW_SECONDS)
    known_stale = now - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    lock_over = or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)
    result = uow.session.execute(
        delete(LoginThrottle)
        .where(
            or_(
                and_(
                    LoginThrottle.name.like("k:%"),
                    or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < known_stale),
                ),
                and_(
                    ~LoginThrottle.name.like("k:%"),
                    LoginThrottle.name != _GLOBAL_KEY,
                    lock_over,
                    or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < stale),
                ),
            )
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
