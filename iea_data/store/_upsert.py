"""Dialect-aware ``INSERT … ON CONFLICT DO NOTHING`` used by the writers of the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

__all__ = ["insert_ignore"]


def insert_ignore(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, conflict: Iterable[str]
) -> None:
    """Insert ``rows`` into ``table``, silently skipping those that collide on the unique ``conflict`` columns.

    Works on SQLite and PostgreSQL, so two processes inserting the same image or path never
    fail each other's transaction.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        stmt: Executable = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    else:  # pragma: no cover - other backends are not supported
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    session.execute(stmt, list(rows))
