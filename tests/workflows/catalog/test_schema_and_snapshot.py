"""Migrations match the models on each backend; snapshots read back in pandas, pyarrow and DuckDB."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from iea_data.store import Base, current_revision, head_revision
from iea_data.workflows.catalog import (
    ARROW_SCHEMA_VERSION,
    derive_arrow_schema,
    ingest,
    load_arrow_schema,
    snapshot_tables,
    write_snapshot,
)


def test_migrations_produce_exactly_the_models(workspace):
    engine = workspace.engine()
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_sqlite_catalog_runs_in_wal_mode(sqlite_workspace):
    with sqlite_workspace.engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("table", snapshot_tables(include_users=True))
def test_frozen_arrow_schemas_match_the_models(table):
    """A model change without a new schemas/arrow version fails here."""
    assert load_arrow_schema(table).equals(derive_arrow_schema(table))


def test_frozen_arrow_schemas_are_exactly_the_snapshot_tables():
    """The snapshot contract: schemas/arrow/v<N> lists the tables a snapshot can write, and no secret column."""
    from iea_data.workflows.catalog._snapshot import ARROW_SCHEMA_DIR

    frozen = sorted(p.stem for p in (ARROW_SCHEMA_DIR / f"v{ARROW_SCHEMA_VERSION}").glob("*.json"))
    assert frozen == snapshot_tables(include_users=True)
    assert "login_throttle" not in frozen and "password_hash" not in load_arrow_schema("users").names


def test_snapshot_reads_back_in_pandas_pyarrow_and_duckdb(workspace, demo_photos, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    ingest(workspace, [demo_photos], workers=1)
    out = tmp_path / "snap"
    counts = write_snapshot(workspace, out)
    assert counts["images"] == 10 and counts["scenes"] == 2 and counts["labels"] == 0
    t = pq.read_table(out / "images.parquet")
    assert t.schema.metadata[b"iea.schema_version"] == str(ARROW_SCHEMA_VERSION).encode()
    assert t.schema.remove_metadata().equals(load_arrow_schema("images"))
    import pandas as pd

    df = pd.read_parquet(out / "images.parquet")
    assert sorted(df["name"])[:2] == ["astronaut.png", "astronaut_+1EV.png"]
    assert str(df["created_at"].dt.tz) == "UTC"
    n = duckdb.sql(
        f"select count(*) from '{out}/images.parquet' i join '{out}/scenes.parquet' s "
        "on i.scene_id = s.id where s.name = 'coffee'"
    ).fetchall()[0][0]
    assert n == 5
    empty = pq.read_table(out / "labels.parquet")
    assert empty.num_rows == 0 and empty.schema.remove_metadata().equals(load_arrow_schema("labels"))
    info = json.loads((out / "snapshot.json").read_text())
    assert info["catalog_revision"] == head_revision() and info["tables"]["images"] == 10
    assert not list(out.glob(".*tmp"))
