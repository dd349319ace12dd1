"""Fixtures for the release tests: small catalogs with files, labels of every kind, and experts."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory, demo_photos):
    """Built once: a SQLite workspace with the demo scenes ingested and pre-labelled (copied per test)."""
    import os

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import ingest
    from iea_data.workflows.labels import prelabel_refdiff

    saved = os.environ.pop("IEA_DATABASE_URL", None)
    try:
        ws = init_workspace(tmp_path_factory.mktemp("release-template") / "ws")
        assert ingest(ws, [demo_photos], workers=1).n_errors == 0
        assert prelabel_refdiff(ws).n_saved == 8
        dispose_engines()  # checkpoint the WAL so that a file copy is the whole catalog
    finally:
        if saved is not None:
            os.environ["IEA_DATABASE_URL"] = saved
    return ws.root


@pytest.fixture
def demo_ws(_demo_template, tmp_path, monkeypatch):
    """SQLite workspace: 2 demo scenes (astronaut, coffee), 8 variants with refdiff pre-labels."""
    import shutil

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import Workspace

    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    shutil.copytree(_demo_template, tmp_path / "ws")
    yield Workspace.open(tmp_path / "ws")
    dispose_engines()


@pytest.fixture
def demo_ws_any(workspace, demo_photos):
    """The same on the parametrised backend (SQLite and PostgreSQL)."""
    from iea_data.workflows.catalog import ingest
    from iea_data.workflows.labels import prelabel_refdiff

    assert ingest(workspace, [demo_photos], workers=1).n_errors == 0
    assert prelabel_refdiff(workspace).n_saved == 8
    return workspace


def add_expert(ws, name: str) -> int:
    from iea_data.store import User

    with ws.session() as s:
        with s.begin():
            u = User(name=name, role="annotator")
            s.add(u)
            s.flush()
            return u.id


def annotate(ws, image_id: int, author_id: int, residual: np.ndarray, *, status: str = "accepted") -> int:
    """Save an annotation revision (newest of the expert's chain) and set its status."""
    from iea_data.workflows.labels import chain_head, save_label, set_label_status

    with ws.unit() as uow:
        head = chain_head(uow, image_id, f"user:{author_id}")
        label = save_label(
            uow,
            residual.astype(np.float32),
            image_id=image_id,
            kind="annotation",
            author_id=author_id,
            parent_id=head.id if head else None,
        )
        set_label_status(uow, label.id, status)
    return label.id


def image_ids(ws) -> dict[str, int]:
    from sqlalchemy import select

    from iea_data.store import Image

    with ws.session() as s:
        return dict(s.execute(select(Image.name, Image.id)).all())


def tamperable(root) -> None:
    """Let a test damage a built (read-only) release as a non-root user would have to: folders get their write
    bit back, and so do the files the release wrote itself (not the hard links to the workspace's image store)."""
    import os

    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for fn in files:
            p = os.path.join(dirpath, fn)
            if os.stat(p).st_nlink == 1:
                os.chmod(p, 0o644)
