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
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `iea db upgrade`")
run_migrations_online()
