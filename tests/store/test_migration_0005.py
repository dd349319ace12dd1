"""Migration 0005 (gold images, workspace settings, stale consensus, ``imported`` labels) on a populated catalog."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from iea_data.store import current_revision, get_engine, upgrade_database

NEW_TABLES = {"gold_images", "workspace_settings", "consensus_stale"}

_LABEL = (
    "INSERT INTO labels (image_id, kind, chain, revision, status, map_object, height, width, created_at, updated_at) "
    "VALUES (1, '{kind}', '{kind}', {rev}, 'accepted', 'ab', 2, 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def test_0005_upgrades_a_populated_catalog_and_downgrades(db_url):
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0003") == "0003"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text(_LABEL.format(kind="refdiff", rev=1)))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # 0003 refuses the new kind
        conn.execute(text(_LABEL.format(kind="imported", rev=1)))
    assert upgrade_database(engine, "0005") == "0005"
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        assert conn.execute(text("SELECT kind, chain FROM labels")).all() == [("refdiff", "refdiff")]
        conn.execute(text(_LABEL.format(kind="imported", rev=1)))
        conn.execute(
            text(
                "INSERT INTO gold_images (image_id, label_id, added_at) "
                "SELECT 1, id, CURRENT_TIMESTAMP FROM labels WHERE kind = 'imported'"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one gold row per image
        conn.execute(
            text(
                "INSERT INTO gold_images (image_id, label_id, added_at) "
                "SELECT 1, id, CURRENT_TIMESTAMP FROM labels WHERE kind = 'refdiff'"
            )
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM gold_images"))
        conn.execute(text("DELETE FROM labels WHERE kind = 'imported'"))
    command.downgrade(alembic_config(engine), "0003")
    assert current_revision(engine) == "0003"
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM labels")).all() == [("refdiff",)]
