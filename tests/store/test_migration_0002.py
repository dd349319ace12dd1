"""Migration 0002 upgrades a populated 0001 catalog and downgrades cleanly (both backends)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from iea_data.store import current_revision, get_engine, upgrade_database


def test_0002_upgrades_a_populated_catalog_and_downgrades(db_url):
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0001") == "0001"
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, role, enabled, created_at) VALUES ('old', 'admin', true, CURRENT_TIMESTAMP)")
        )
    assert upgrade_database(engine, "0002") == "0002"  # 0003 (issue 14) is tested in test_migration_0003
    tables = set(inspect(engine).get_table_names())
    assert {"drafts", "login_throttle"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["old"]
    command.downgrade(alembic_config(engine), "0001")
    assert current_revision(engine) == "0001"
    assert not {"drafts", "login_throttle"} & set(inspect(engine).get_table_names())
