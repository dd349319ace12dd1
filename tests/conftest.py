"""Shared fixtures: workspaces on SQLite and (when IEA_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_URL = os.environ.get("IEA_TEST_POSTGRES_URL")


def run_iea(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run the ``iea`` command as a user would (a subprocess), without IEA_HOME/IEA_DATABASE_URL leaking in."""
    e = dict(os.environ)
    e.pop("IEA_HOME", None)
    e.pop("IEA_DATABASE_URL", None)
    e["PYTHONPATH"] = str(REPO)
    e["COLUMNS"] = "200"
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout
    )


PG_SKIP_REASON = (
    "PostgreSQL tests need IEA_TEST_POSTGRES_URL (postgresql+psycopg://USER@HOST:PORT/DB); "
    ".ci/run starts a throwaway cluster and sets it"
)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with the reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} is absent (../shared is only beside the repo in CI and dev checkouts)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def _pg_database():
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"iea_t_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), name, admin


def _drop_pg(name: str, admin: str) -> None:
    import psycopg

    from iea_data.store import dispose_engines

    dispose_engines()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        from iea_data.store import dispose_engines

        dispose_engines()
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    url, name, admin = _pg_database()
    yield url
    _drop_pg(name, admin)


@pytest.fixture
def workspace(tmp_path, db_url, monkeypatch):
    """An initialised workspace whose catalog is on the parametrised backend."""
    from iea_data.store.workspace import init_workspace

    if db_url.startswith("postgresql"):
        monkeypatch.setenv("IEA_DATABASE_URL", db_url)
    else:
        monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    return init_workspace(tmp_path / "ws")


@pytest.fixture
def sqlite_workspace(tmp_path, monkeypatch):
    """An initialised workspace on SQLite only (for tests about files, not the backend)."""
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace

    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = init_workspace(tmp_path / "ws")
    yield ws
    dispose_engines()


@pytest.fixture(scope="session")
def demo_photos(tmp_path_factory):
    """Two demo scenes (astronaut, coffee): reference + four EV variants each, 10 PNGs."""
    from iea_data.workflows.demo import write_demo_photos

    folder = tmp_path_factory.mktemp("demo-photos")
    write_demo_photos(folder, photos=("astronaut", "coffee"))
    return folder


_APP_TESTS = Path(__file__).resolve().parent / "app"


def pytest_collection_modifyitems(config, items):
    """Everything under tests/app is a browser-lane test (``-m "not browser"`` leaves it out)."""
    browser = pytest.mark.browser
    for item in items:
        if _APP_TESTS in Path(str(item.path)).resolve().parents:
            item.add_marker(browser)
