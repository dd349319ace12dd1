"""Migration 0003 (camera RAW facts on images) upgrades a populated 0002 catalog and downgrades (both backends)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from iea_data.store import current_revision, get_engine, upgrade_database

RAW_COLUMNS = {"raw", "raw_width", "raw_height", "raw_cfa_pattern", "raw_black_level", "raw_white_level", "raw_info"}


def test_0003_upgrades_a_populated_catalog_and_downgrades(db_url):
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0002") == "0002"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    assert upgrade_database(engine, "0003") == "0003"
    assert RAW_COLUMNS <= {c["name"] for c in inspect(engine).get_columns("images")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, raw, raw_width FROM images")).all() == [("old.png", False, None)]
    command.downgrade(alembic_config(engine), "0002")
    assert current_revision(engine) == "0002"
    assert not RAW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("images")}
