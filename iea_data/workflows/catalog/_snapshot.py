"""Parquet snapshots of the catalog, one file per table, with versioned Arrow schemas.

The Arrow schema of each table is derived from the SQLAlchemy model and frozen in
``schemas/arrow/v<N>/<table>.json``; a snapshot is written with the frozen schema, so
readers (pandas, pyarrow, DuckDB) see stable column types. When a migration changes a
table, write a new schema version with ``python -m iea_data.workflows.catalog._snapshot --write``.

Snapshots are made to be shared, so they hold no secret: ``login_throttle`` (names typed at
the login form, where a password may have been typed by mistake) is never written, and
``users`` only on request (:data:`SNAPSHOT_PRIVATE_COLUMNS` — the password hashes — left
out). Schema v3 is v2 less those, v4 is v3 plus the camera RAW columns of ``images``;
``schemas/arrow/v4`` lists exactly the tables a snapshot
can hold.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Session

from iea_data.core.errors import IeaError
from iea_data.core.files import atomic_write
from iea_data.store import Base, Workspace, current_revision
from schemas import SCHEMAS_DIR

__all__ = [
    "ARROW_SCHEMA_VERSION",
    "ARROW_SCHEMA_DIR",
    "SNAPSHOT_MARKER",
    "SNAPSHOT_PRIVATE_COLUMNS",
    "SNAPSHOT_PRIVATE_TABLES",
    "derive_arrow_schema",
    "load_arrow_schema",
    "snapshot_tables",
    "write_snapshot",
]

ARROW_SCHEMA_VERSION = 5  # v4 = v3 + the camera RAW columns of images (migration 0003); v5 = v4 + gold_images (0005)
ARROW_SCHEMA_DIR = SCHEMAS_DIR / "arrow"
SNAPSHOT_MARKER = "snapshot.json"  # written last; a folder holding it was written by write_snapshot
# never in a snapshot: user_events (the account audit log says whose password was reset and when);
# consensus_stale and workspace_settings (operational state of this catalog, issue 15); the quality
# summary (quality_images, quality_annotators, labels.gap_s: derived from the labels, migration 0006)
SNAPSHOT_PRIVATE_TABLES = frozenset(
    {"login_throttle", "user_events", "consensus_stale", "workspace_settings", "quality_images", "quality_annotators"}
)
SNAPSHOT_OPTIONAL_TABLES = frozenset({"users"})  # only with include_users=True
# never in a snapshot: the hashes, and which accounts hold a temporary password (easier targets)
SNAPSHOT_PRIVATE_COLUMNS = {
    "users": frozenset({"password_hash", "must_change_password"}),
    "labels": frozenset({"gap_s"}),
}
_WRITTEN_BY = "iea catalog snapshot"


def snapshot_tables(*, include_users: bool = False) -> list[str]:
    """The tables a snapshot writes, sorted: every catalog table but the private ones.

    Parameters
    ----------
    include_users : bool
        Add ``users`` (id, name, role, enabled, created_at; never the password hash).
    """
    skip = SNAPSHOT_PRIVATE_TABLES | (frozenset() if include_users else SNAPSHOT_OPTIONAL_TABLES)
    return sorted(name for name in Base.metadata.tables if name not in skip)


def _arrow_type(col) -> pa.DataType:
    t = col.type
    if isinstance(t, (Integer, BigInteger)):
        return pa.int64()
    if isinstance(t, Float):
        return pa.float64()
    if isinstance(t, Boolean):
        return pa.bool_()
    if isinstance(t, DateTime):
        return pa.timestamp("us", tz="UTC") if t.timezone else pa.timestamp("us")
    if isinstance(t, (String, Text)):
        return pa.string()
    raise TypeError(f"no Arrow type for column {col.table.name}.{col.name} of type {t!r}")


def derive_arrow_schema(table_name: str) -> pa.Schema:
    """The Arrow schema the current SQLAlchemy model implies for ``table_name`` in a snapshot.

    Columns in :data:`SNAPSHOT_PRIVATE_COLUMNS` are left out; a table in
    :data:`SNAPSHOT_PRIVATE_TABLES` has no snapshot schema (``ValueError``).
    """
    if table_name in SNAPSHOT_PRIVATE_TABLES:
        raise ValueError(f"table_name: {table_name!r} is never written to a snapshot (it holds secrets)")
    if table_name not in Base.metadata.tables:
        raise ValueError(
            f"table_name: no catalog table {table_name!r}; tables: {', '.join(sorted(Base.metadata.tables))}"
        )
    table = Base.metadata.tables[table_name]
    private = SNAPSHOT_PRIVATE_COLUMNS.get(table_name, frozenset())
    return pa.schema(
        [pa.field(c.name, _arrow_type(c), nullable=bool(c.nullable)) for c in table.columns if c.name not in private]
    )


def _schema_to_json(schema: pa.Schema, table: str, version: int) -> dict:
    return {
        "table": table,
        "version": version,
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
    }


_TYPES = {
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    "timestamp[us]": pa.timestamp("us"),
}


def load_arrow_schema(table_name: str, version: int = ARROW_SCHEMA_VERSION) -> pa.Schema:
    """The frozen Arrow schema of ``table_name`` at ``version`` from ``schemas/arrow``."""
    path = ARROW_SCHEMA_DIR / f"v{version}" / f"{table_name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IeaError(f"no Arrow schema for table {table_name!r} version {version} at {path}") from None
    return pa.schema([pa.field(f["name"], _TYPES[f["type"]], nullable=f["nullable"]) for f in data["fields"]])


def write_schemas(version: int = ARROW_SCHEMA_VERSION) -> list[Path]:
    """Freeze the current models' snapshot schemas as ``schemas/arrow/v<version>/*.json`` (developer tool)."""
    out = ARROW_SCHEMA_DIR / f"v{version}"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in snapshot_tables(include_users=True):
        p = out / f"{name}.json"
        p.write_text(
            json.dumps(_schema_to_json(derive_arrow_schema(name), name, version), indent=2) + "\n", encoding="utf-8"
        )
        paths.append(p)
    return paths


def _column_values(rows: list, name: str, typ: pa.DataType) -> list:
    vals = [r[name] for r in rows]
    if pa.types.is_timestamp(typ) and typ.tz:
        # SQLite returns naive datetimes for UTC columns; make them explicit
        vals = [v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v for v in vals]
    return vals


def _previous_snapshot_files(out: Path) -> set[str]:
    """Names of the files a previous snapshot wrote in ``out``; raise if ``out`` holds anything else."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise IeaError(f"--out {out} is a file, not a folder; pass a new or empty folder for the snapshot")
    entries = sorted(out.iterdir())
    if not entries:
        return set()
    refuse = (
        f"--out {out} already holds files that `iea catalog snapshot` did not write (e.g. {{name}}); "
        f"pass a new or empty folder (a folder holding an earlier snapshot is replaced)"
    )
    marker = out / SNAPSHOT_MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() and not marker.is_symlink() else None
    except (OSError, UnicodeDecodeError, ValueError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("tables"), dict):
        raise IeaError(refuse.format(name=entries[0].name))
    listed = info.get("files")
    files = {str(f) for f in listed} if isinstance(listed, list) else {f"{t}.parquet" for t in info["tables"]}
    files = {f for f in files if f == Path(f).name and f.endswith(".parquet")}  # plain names in out/ only
    ours = files | {f".{f}.tmp" for f in files} | {SNAPSHOT_MARKER, f".{SNAPSHOT_MARKER}.tmp"}
    for e in entries:
        if e.name not in ours or e.is_symlink() or not e.is_file():
            if (
                any(e.name.startswith(f".{f}.") for f in (*files, SNAPSHOT_MARKER))
                and e.name.endswith(".tmp")
                and e.is_file()
                and not e.is_symlink()
            ):
                continue  # atomic_write's temporary file of an interrupted write
            raise IeaError(refuse.format(name=e.name))
    return files


def _write_marker(out: Path, info: dict) -> None:
    atomic_write(out / SNAPSHOT_MARKER, (json.dumps(info, indent=2) + "\n").encode("utf-8"))


def write_snapshot(
    ws: Workspace, out: str | os.PathLike[str], *, include_users: bool = False, batch_rows: int = 50_000
) -> dict[str, int]:
    """Write the catalog's tables to ``out/<table>.parquet`` plus ``out/snapshot.json``.

    A snapshot holds no secret: ``login_throttle`` is never written and ``users`` only with
    ``include_users`` (without password hashes). ``out`` must be new, empty, or hold an
    earlier snapshot (its ``snapshot.json`` lists the files it wrote; they are replaced,
    and those this snapshot does not write — e.g. an old ``users.parquet`` — removed).
    Files are written to temporary names and renamed, so a reader never sees half a table.

    Parameters
    ----------
    ws : Workspace
        The workspace whose catalog is written (read in one unit of work, so the tables are
        consistent with each other).
    out : path-like
        The snapshot folder.
    include_users : bool
        Also write ``users.parquet``: id, name, role, enabled, created_at.
    batch_rows : int
        Rows read and written per batch (bounds memory), at least 1.

    Returns
    -------
    dict of str to int
        The row count per table written.

    Raises
    ------
    IeaError
        When ``out`` is a file or holds files a snapshot did not write (a release's
        ``native/`` folder, say): nothing is written then.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from iea_data.store import init_workspace
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> counts = write_snapshot(init_workspace(root / "ws"), root / "snap")
    >>> counts["images"], (root / "snap" / "images.parquet").exists()
    (0, True)
    """
    with ws.unit() as uow:
        return _write_snapshot(uow.session, out, include_users=include_users, batch_rows=batch_rows)


def _write_snapshot(
    session: Session, out: str | os.PathLike[str], *, include_users: bool, batch_rows: int
) -> dict[str, int]:
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ValueError(f"batch_rows must be an integer >= 1, got {batch_rows!r}")
    out = Path(out)
    previous = _previous_snapshot_files(out)
    tables = snapshot_tables(include_users=include_users)
    files = [f"{name}.parquet" for name in tables]
    out.mkdir(parents=True, exist_ok=True)
    if previous:  # a crash from here on leaves a folder this function still recognises as its own
        _write_marker(
            out, {"written_by": _WRITTEN_BY, "complete": False, "tables": {}, "files": sorted(previous | set(files))}
        )
    counts: dict[str, int] = {}
    for name in tables:
        table = Base.metadata.tables[name]
        schema = load_arrow_schema(name).with_metadata(
            {b"iea.table": name.encode(), b"iea.schema_version": str(ARROW_SCHEMA_VERSION).encode()}
        )
        n = 0

        def write_table(fh, table=table, schema=schema) -> None:  # streamed: one batch of rows in memory
            nonlocal n
            with pq.ParquetWriter(fh, schema) as writer:
                query = select(*[table.c[f.name] for f in schema]).order_by(table.c.id)
                result = session.execute(query).mappings()
                while True:
                    rows = result.fetchmany(batch_rows)
                    if not rows:
                        break
                    arrays = [pa.array(_column_values(rows, f.name, f.type), type=f.type) for f in schema]
                    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                    n += len(rows)
                if n == 0:
                    writer.write_table(schema.empty_table())

        atomic_write(out / f"{name}.parquet", write_table)
        counts[name] = n
    session.rollback()  # end the read before another connection asks for the revision
    for stale in sorted(previous - set(files)):  # e.g. users.parquet with hashes from an older snapshot
        (out / stale).unlink(missing_ok=True)
    info = {
        "written_by": _WRITTEN_BY,
        "arrow_schema_version": ARROW_SCHEMA_VERSION,
        "catalog_revision": current_revision(session.get_bind()),
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": counts,
        "files": files,
    }
    _write_marker(out, info)
    session.rollback()
    return counts


if __name__ == "__main__":  # python -m iea_data.workflows.catalog._snapshot --write [VERSION]
    if len(sys.argv) >= 2 and sys.argv[1] == "--write":
        for p in write_schemas(int(sys.argv[2]) if len(sys.argv) > 2 else ARROW_SCHEMA_VERSION):
            print(p)
