"""Fixtures for the annotation workflow: users of every role and a small hand-built catalog."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from argon2 import PasswordHasher

PASSWORD = "correct horse battery"

_READ_ENGINES: dict = {}


def _fresh_session(bind):
    """A session whose reads always return the database's current rows (never stale cached objects)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    class Fresh(Session):
        def get(self, *args, **kwargs):
            kwargs.setdefault("populate_existing", True)
            return super().get(*args, **kwargs)

    s = Fresh(bind=bind, expire_on_commit=False)

    @event.listens_for(s, "do_orm_execute")
    def _refresh(state):
        if state.is_select:
            state.update_execution_options(populate_existing=True)

    return s


@contextlib.contextmanager
def reader(ws) -> Iterator:
    """A session for a test's own checks and fixture rows, which never keeps the SQLite write lock.

    Workflow calls open their own unit of work (``BEGIN IMMEDIATE`` on SQLite); a test
    session that kept a transaction open between its reads would make them wait. On SQLite
    this session's statements commit one by one (no ``BEGIN``); on PostgreSQL, where readers
    never block writers, it is an ordinary session. Reads always return the current rows.
    """
    from sqlalchemy import create_engine, event

    url = ws.database_url
    if url.startswith("sqlite"):
        engine = _READ_ENGINES.get(url)
        if engine is None:
            engine = create_engine(url, connect_args={"isolation_level": None, "timeout": 60})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

            _READ_ENGINES[url] = engine
    else:
        engine = ws.engine()
    with _fresh_session(engine) as s:
        yield s


@contextlib.contextmanager
def reader_unit(ws) -> Iterator:
    """A :class:`~iea_data.store.UnitOfWork` over :func:`reader`'s session, for a test's own reads with the
    library's composable queries (``chain_head(uow, ...)``) between workflow calls."""
    from iea_data.store import UnitOfWork

    with reader(ws) as s:
        yield UnitOfWork(workspace=ws, session=s)


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch):
    """Cheap argon2 parameters so that tests can create many users (the algorithm is the same)."""
    import iea_data.workflows.users._accounts as accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(accounts, "_dummy_hash", None)


@pytest.fixture
def people(workspace):
    """admin, rev (reviewer), rev2 (reviewer), ann1, ann2 (annotators) as UserInfo, by name."""
    from iea_data.workflows.users import add_user

    roles = {"admin": "admin", "rev": "reviewer", "rev2": "reviewer", "ann1": "annotator", "ann2": "annotator"}
    return {name: add_user(workspace, name, role=role, password=PASSWORD) for name, role in roles.items()}


H, W = 6, 8


def model_map(i: int) -> np.ndarray:
    return np.full((H, W), -0.1 * (i % 5), np.float32)


def refdiff_of(i: int) -> np.ndarray:
    return np.full((H, W), 0.05 * (i % 3), np.float32)


@pytest.fixture
def catalog(workspace):
    """One scene ``s`` with a reference and three variants (H x W images), each with a model and a refdiff label.

    Returns a dict: ``scene_id``, ``ref_id``, ``images`` (variant ids), ``model`` and ``refdiff``
    (image id -> label id).
    """
    from iea_data.store import Image, Scene
    from iea_data.workflows.labels import save_label

    with workspace.session() as s, s.begin():
        scene = Scene(name="s")
        s.add(scene)
        s.flush()
        ref = Image(name="s.png", status="ok", width=W, height=H, scene_id=scene.id)
        variants = [
            Image(name=f"s_N{i}.png", status="ok", width=W, height=H, scene_id=scene.id, variant=f"N{i}")
            for i in range(1, 4)
        ]
        s.add_all([ref, *variants])
        s.flush()
        scene.reference_image_id = ref.id
    out = {"scene_id": scene.id, "ref_id": ref.id, "images": [v.id for v in variants], "model": {}, "refdiff": {}}
    with workspace.unit() as uow:
        for i, image_id in enumerate(out["images"]):
            out["model"][image_id] = save_label(
                uow, model_map(i), image_id=image_id, kind="model", model_name="pieanet"
            ).id
            out["refdiff"][image_id] = save_label(uow, refdiff_of(i), image_id=image_id, kind="refdiff").id
    return out
