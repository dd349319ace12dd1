"""Engines, sessions and migrations for the catalog database (SQLite in WAL mode, or PostgreSQL)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from iea_data.core.errors import IeaError
from iea_data.core.redaction import redact_url
from schemas import SCHEMAS_DIR

if TYPE_CHECKING:  # pragma: no cover - types only
    from alembic.config import Config

__all__ = [
    "get_engine",
    "make_session",
    "upgrade_database",
    "current_revision",
    "head_revision",
    "check_schema",
    "dispose_engines",
    "alembic_config",
    "MIGRATIONS_DIR",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SCHEMAS_DIR / "migrations"
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Take the write lock at BEGIN: two writers then queue on busy_timeout instead of
    # failing with "database is locked" when a reader upgrades to a writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str) -> Engine:
    """Return a cached engine for ``url``.

    SQLite connections use WAL journaling, enforce foreign keys, wait up to 60 s for a
    lock and begin every transaction ``IMMEDIATE`` so concurrent writers serialise
    cleanly. The same ORM code runs on PostgreSQL (``postgresql+psycopg://…``).

    Statement parameters (password hashes, names typed at a login form) are never written
    into an error's text (``hide_parameters``), and error messages show the URL without
    its password.
    """
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        try:
            if url.startswith("sqlite"):
                engine = create_engine(
                    url,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "isolation_level": None},
                    hide_parameters=True,
                )
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _sqlite_begin_immediate)
            else:
                engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
        except (ArgumentError, ImportError, ModuleNotFoundError) as exc:
            raise IeaError(
                f"cannot use database URL {redact_url(url)!r}: {redact_url(str(exc))}. "
                "For PostgreSQL install the driver "
                f"(`pip install 'psycopg[binary]'`) and use postgresql+psycopg://USER@HOST:PORT/DB."
            ) from None
        _ENGINES[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (used after ``fork`` and in tests)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def make_session(engine: Engine) -> Session:
    """A new ORM session (``expire_on_commit=False`` so returned objects stay readable)."""
    return sessionmaker(bind=engine, expire_on_commit=False)()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise IeaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def catalog_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the catalog database could not be
    reached: the server is down or restarting, the connection dropped. Such a failure is worth
    retrying once the database is back (the engine's ``pool_pre_ping`` replaces dead connections).

    Examples
    --------
    >>> catalog_unreachable(ValueError("a bad value"))
    False
    """
    from sqlalchemy.exc import DBAPIError

    seen: BaseException | None = exc
    for _ in range(10):  # the chain of causes, bounded
        if seen is None:
            return False
        if isinstance(seen, OperationalError) or (isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def upgrade_database(engine: Engine, revision: str = "head") -> str:
    """Apply the Alembic migrations in ``schemas/migrations`` up to ``revision``; return the new revision."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise IeaError(f"cannot migrate the catalog at {engine.url!r}: {redact_url(str(exc.orig))}") from None
    return current_revision(engine) or "base"  # Alembic's name for "no migration applied"


def check_schema(engine: Engine) -> None:
    """Raise a clear error if the database is not at the newest schema."""
    try:
        cur = current_revision(engine)
    except OperationalError as exc:
        raise IeaError(f"cannot open the catalog at {engine.url!r}: {redact_url(str(exc.orig))}") from None
    head = head_revision()
    if cur != head:
        if cur is None and not inspect(engine).get_table_names():
            raise IeaError(f"the catalog at {engine.url!r} is empty; run `iea db upgrade` (or `iea init`)")
        raise IeaError(f"the catalog schema is at revision {cur}, this code needs {head}; run `iea db upgrade`")
