"""Liveness of ingest runs: a run holds a lock for as long as its process lives.

A run killed with ``kill -9`` cannot mark itself finished, so its row stays ``running``.
Each run therefore holds a lock that the operating system (SQLite: ``flock`` on a small
file beside the database) or the database server (PostgreSQL: a session-level advisory
lock on the run's own connection) drops the moment the process dies. The next run that
starts tries each ``running`` run's lock: one it can take belongs to a dead process, and
that run is marked ``interrupted``; a live run (another ingest going on at the same time,
on any host for PostgreSQL) keeps its lock and is left alone.

The lock is taken inside the transaction that creates the run's row, so no other process
can ever see a ``running`` row whose lock is not yet held.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine

from iea_data.store import IngestRun, utcnow

__all__ = ["RunLock", "start_run", "mark_interrupted_runs"]

log = logging.getLogger(__name__)

#: First key of PostgreSQL's two-key advisory locks used for ingest runs (the second is the run id).
PG_LOCK_CLASS = 0x1EA0


def _lock_dir(engine: Engine) -> Path:
    db = engine.url.database
    if not db or db == ":memory:":
        raise ValueError("ingest runs need a file-backed SQLite database (not :memory:)")
    return Path(os.path.abspath(db + "-runs"))


def _lock_path(engine: Engine, run_id: int) -> Path:
    return _lock_dir(engine) / f"ingest-{run_id}.lock"


class RunLock:
    """The lock one live run holds; :meth:`release` it when the run's row says it ended."""

    def __init__(self, engine: Engine, run_id: int, *, fd: int | None = None, conn: Connection | None = None):
        self.engine = engine
        self.run_id = run_id
        self._fd = fd
        self._conn = conn

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            try:
                _lock_path(self.engine, self.run_id).unlink(missing_ok=True)
            finally:
                os.close(self._fd)  # closing the file drops the flock
                self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
                conn.commit()
                conn.close()
            except Exception:  # the connection is gone: so is its lock
                conn.invalidate()


def start_run(engine: Engine, values: dict) -> RunLock:
    """Insert an ``ingest_runs`` row from ``values`` and take its liveness lock in the same transaction."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            run_id = conn.execute(IngestRun.__table__.insert().values(**values).returning(IngestRun.id)).scalar_one()
            # session-level: it outlives this transaction and ends with the connection
            conn.execute(text("SELECT pg_advisory_lock(:k, :id)"), {"k": PG_LOCK_CLASS, "id": run_id})
            conn.commit()
        except BaseException:
            conn.invalidate()
            raise
        return RunLock(engine, run_id, conn=conn)
    lock_dir = _lock_dir(engine)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        run_id = conn.execute(IngestRun.__table__.insert().values(**values)).inserted_primary_key[0]
        fd = os.open(_lock_path(engine, run_id), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
    return RunLock(engine, run_id, fd=fd)


def _dead_sqlite(engine: Engine) -> Callable[[int], bool]:
    def probe(run_id: int) -> bool:
        path = _lock_path(engine, run_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return True  # a live run creates its file before its row is visible
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return True

    return probe


def mark_interrupted_runs(engine: Engine) -> list[int]:
    """Mark every ``running`` run whose process is gone as ``interrupted``; return their ids.

    Runs still going (their lock is held) are left as they are, so two ingests may run at
    once. Call it before starting a run.
    """
    with engine.connect() as conn:
        running = list(conn.scalars(select(IngestRun.id).where(IngestRun.status == "running").order_by(IngestRun.id)))
        conn.rollback()
        if not running:
            return []
        dead: list[int] = []
        pg = engine.dialect.name == "postgresql"
        try:
            if pg:
                for run_id in running:
                    got = conn.execute(
                        text("SELECT pg_try_advisory_lock(:k, :id)"), {"k": PG_LOCK_CLASS, "id": run_id}
                    ).scalar()
                    if got:  # nobody holds it: the run's connection, hence its process, is gone
                        dead.append(run_id)
                conn.commit()
            else:
                probe = _dead_sqlite(engine)
                dead = [run_id for run_id in running if probe(run_id)]
            if dead:
                conn.execute(
                    update(IngestRun)
                    .where(IngestRun.id.in_(dead), IngestRun.status == "running")
                    .values(status="interrupted", finished_at=utcnow())
                )
                conn.commit()
        finally:
            if pg and dead:  # never hand a pooled connection back holding a dead run's lock
                try:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock_all()"))
                    conn.commit()
                except Exception:
                    conn.invalidate()
    if dead:
        log.warning("ingest runs %s were killed before they finished; marked interrupted", ", ".join(map(str, dead)))
    return dead
