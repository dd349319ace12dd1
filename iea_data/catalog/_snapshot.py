"""Parquet snapshots of the catalog, one file per table, with versioned Arrow schemas.

The Arrow schema of each table is derived from the SQLAlchemy model and frozen in
``schemas/arrow/v<N>/<table>.json``; a snapshot is written with the frozen schema, so
readers (pandas, pyarrow, DuckDB) see stable column types. When a migration changes a
table, write a new schema version with ``python -m iea_data.catalog._snapshot --write``.
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

from ..errors import IeaError
from ..files import atomic_write
from ._db import current_revision
from ._models import Base

__all__ = ["ARROW_SCHEMA_VERSION", "ARROW_SCHEMA_DIR", "derive_arrow_schema", "load_arrow_schema", "write_snapshot"]

ARROW_SCHEMA_VERSION = 2
ARROW_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "arrow"


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
    """The Arrow schema the current SQLAlchemy model implies for ``table_name``."""
    table = Base.metadata.tables[table_name]
    return pa.schema([pa.field(c.name, _arrow_type(c), nullable=bool(c.nullable)) for c in table.columns])


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
    """Freeze the current models' Arrow schemas as ``schemas/arrow/v<version>/*.json`` (developer tool)."""
    out = ARROW_SCHEMA_DIR / f"v{version}"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in sorted(Base.metadata.tables):
        p = out / f"{name}.json"
        p.write_text(json.dumps(_schema_to_json(derive_arrow_schema(name), name, version), indent=2) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def _column_values(rows: list, name: str, typ: pa.DataType) -> list:
    vals = [r[name] for r in rows]
    if pa.types.is_timestamp(typ) and typ.tz:
        # SQLite returns naive datetimes for UTC columns; make them explicit
        vals = [v.replace(tzinfo=dt.timezone.utc) if isinstance(v, dt.datetime) and v.tzinfo is None else v for v in vals]
    return vals


def write_snapshot(session: Session, out: str | os.PathLike[str], *, batch_rows: int = 50_000) -> dict[str, int]:
    """Write every catalog table to ``out/<table>.parquet`` plus ``out/snapshot.json``.

    Files are written to temporary names and renamed, so a reader never sees half a table.
    Returns the row count per table.

    Examples
    --------
    >>> counts = write_snapshot(session, "snap/")          # doctest: +SKIP
    >>> import duckdb; duckdb.sql("select count(*) from 'snap/images.parquet'")  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name, table in sorted(Base.metadata.tables.items()):
        schema = load_arrow_schema(name).with_metadata(
            {b"iea.table": name.encode(), b"iea.schema_version": str(ARROW_SCHEMA_VERSION).encode()}
        )
        tmp = out / f".{name}.parquet.tmp"
        n = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            result = session.execute(select(table).order_by(table.c.id)).mappings()
            while True:
                rows = result.fetchmany(batch_rows)
                if not rows:
                    break
                arrays = [pa.array(_column_values(rows, f.name, f.type), type=f.type) for f in schema]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                n += len(rows)
            if n == 0:
                writer.write_table(schema.empty_table())
        os.replace(tmp, out / f"{name}.parquet")
        counts[name] = n
    session.rollback()  # end the read before another connection asks for the revision
    info = {
        "arrow_schema_version": ARROW_SCHEMA_VERSION,
        "catalog_revision": current_revision(session.get_bind()),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "tables": counts,
    }
    atomic_write(out / "snapshot.json", (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    session.rollback()
    return counts


if __name__ == "__main__":  # python -m iea_data.catalog._snapshot --write [VERSION]
    if len(sys.argv) >= 2 and sys.argv[1] == "--write":
        for p in write_schemas(int(sys.argv[2]) if len(sys.argv) > 2 else ARROW_SCHEMA_VERSION):
            print(p)
