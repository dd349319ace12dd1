"""Migration 0004 (team admin: users.must_change_password, the user_events audit log) upgrades a populated
0003 catalog, keeps every row, and downgrades (both backends)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from iea_data.store import current_revision, get_engine, upgrade_database


def test_0004_upgrades_a_populated_catalog_and_downgrades(db_url):
    from alembic import command

    from iea_data.store import alembic_config

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0003") == "0003"
    with engine.begin() as conn:
        for name, role in (("boss", "admin"), ("ann", "annotator")):
            conn.execute(
                text(
                    "INSERT INTO users (name, role, password_hash, enabled, created_at) "
                    "VALUES (:n, :r, '$argon2id$x', true, CURRENT_TIMESTAMP)"
                ),
                {"n": name, "r": role},
            )
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(  # a row that refers to a user, so the downgrade cannot copy-and-drop ``users``
            text(
                "INSERT INTO drafts (user_id, image_id, base_kind, object, created_at, updated_at) "
                "SELECT u.id, i.id, 'zero', 'cd', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP "
                "FROM users u, images i WHERE u.name = 'ann'"
            )
        )
    assert upgrade_database(engine, "0004") == "0004"
    assert "must_change_password" in {c["name"] for c in inspect(engine).get_columns("users")}
    assert "user_events" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT name, role, enabled, must_change_password FROM users ORDER BY name")).all()
        assert rows == [("ann", "annotator", True, False), ("boss", "admin", True, False)]
        uid = conn.execute(text("SELECT id FROM users WHERE name = 'ann'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO user_events (at, action, user_id, operator, old_role, new_role) "
                "VALUES (CURRENT_TIMESTAMP, 'role_changed', :u, 'root', 'annotator', 'reviewer')"
            ),
            {"u": uid},
        )
    command.downgrade(alembic_config(engine), "0003")
    assert current_revision(engine) == "0003"
    assert "must_change_password" not in {c["name"] for c in inspect(engine).get_columns("users")}
    assert "user_events" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users ORDER BY name")).scalars().all() == ["ann", "boss"]
        assert conn.execute(text("SELECT count(*) FROM drafts")).scalar_one() == 1


def test_a_catalog_with_photos_and_drafts_upgrades_from_0002_to_head_and_back(db_url):
    """Rows that refer to ``images`` and ``users`` must not stop 0003/0004 (SQLite checks foreign keys)."""
    from alembic import command

    from iea_data.store import alembic_config, head_revision

    engine = get_engine(db_url)
    assert upgrade_database(engine, "0002") == "0002"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, password_hash, enabled, created_at) "
                "VALUES ('ann', 'annotator', '$argon2id$x', true, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO images (sha256, name, status, created_at, updated_at) "
                "VALUES ('ab', 'old.png', 'ok', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO image_paths (image_id, path, size, mtime_ns, seen_at) "
                "SELECT id, '/photos/old.png', 1, 1, CURRENT_TIMESTAMP FROM images"
            )
        )
        conn.execute(
            text(
                "INSERT INTO drafts (user_id, image_id, base_kind, object, created_at, updated_at) "
                "SELECT u.id, i.id, 'zero', 'cd', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM users u, images i"
            )
        )
    assert upgrade_database(engine) == head_revision()
    command.downgrade(alembic_config(engine), "0002")
    with engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("images", "image_paths", "drafts")
        ]
    assert counts == [1, 1, 1]
