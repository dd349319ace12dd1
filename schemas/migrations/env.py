"""Alembic environment for the iea catalog.

The library passes its engine in ``config.attributes["engine"]``; the command-line
``alembic -c schemas/alembic.ini`` uses ``IEA_DATABASE_URL`` or ``sqlalchemy.url``.
"""

from alembic import context
from sqlalchemy import create_engine

from iea_data.store import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        import os

        url = os.environ.get("IEA_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
        engine = create_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table's constraints only by rebuilding it (copy, DROP, rename), and with
            # foreign keys on, DROP TABLE of a table other rows refer to fails. SQLite's documented
            # procedure: foreign keys off for the migration (set outside any transaction, the only place
            # the pragma takes effect), then `foreign_key_check` before the commit, then on again.
            _driver_execute(connection, "PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"the migration would leave {len(broken)} rows referring to missing rows "
                            f"(first: table {broken[0][0]}, rowid {broken[0][1]} -> {broken[0][2]}); "
                            "nothing was changed"
                        )
            connection.commit()
        finally:
            if sqlite:
                _driver_execute(connection, "PRAGMA foreign_keys=ON")


def _driver_execute(connection, sql: str) -> None:
    """Run ``sql`` on the DBAPI connection itself: SQLAlchemy would open a transaction first."""
    connection.connection.driver_connection.execute(sql)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `iea db upgrade`")
run_migrations_online()
