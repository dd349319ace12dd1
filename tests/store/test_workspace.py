"""Workspace creation and discovery."""

from __future__ import annotations

import pytest

from iea_data.core.errors import IeaError, WorkspaceNotFoundError
from iea_data.store.objects import ObjectStore
from iea_data.store.workspace import Settings, Workspace, find_workspace, init_workspace


def test_init_creates_layout_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = init_workspace(tmp_path / "w")
    for p in ("iea.toml", "objects", "releases", "catalog.sqlite"):
        assert (ws.root / p).exists(), p
    text = (ws.root / "iea.toml").read_text()
    assert "max_pixels = 150000000" in text and "max_side = 1024" in text
    (ws.root / "iea.toml").write_text(text.replace("max_side = 1024", "max_side = 512"))
    assert init_workspace(tmp_path / "w").settings.label_max_side == 512  # kept, not overwritten


def test_find_order_explicit_then_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    a = init_workspace(tmp_path / "a", upgrade=False)
    b = init_workspace(tmp_path / "b", upgrade=False)
    c = init_workspace(tmp_path / "c", upgrade=False)
    monkeypatch.chdir(c.root)
    monkeypatch.setenv("IEA_HOME", str(b.root))
    assert find_workspace(a.root).root == a.root
    assert find_workspace().root == b.root
    monkeypatch.delenv("IEA_HOME")
    assert find_workspace().root == c.root


def test_missing_workspace_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceNotFoundError, match="iea init"):
        find_workspace()
    monkeypatch.setenv("IEA_HOME", str(tmp_path / "nope"))
    with pytest.raises(WorkspaceNotFoundError, match="IEA_HOME"):
        find_workspace()


def test_bad_settings_are_named(tmp_path):
    (tmp_path / "iea.toml").write_text("[ingest]\nmax_pixel = 3\n")
    with pytest.raises(IeaError, match="unknown setting ingest.max_pixel"):
        Workspace.open(tmp_path)
    (tmp_path / "iea.toml").write_text("[ingest]\nworkers = -1\n")
    with pytest.raises(IeaError, match="workers"):
        Workspace.open(tmp_path)
    (tmp_path / "iea.toml").write_text("[ingest\n")
    with pytest.raises(IeaError, match="not valid TOML"):
        Workspace.open(tmp_path)


def test_database_url_env_overrides_and_relative_sqlite_resolves(tmp_path, monkeypatch):
    ws = Workspace(root=tmp_path, settings=Settings())
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    assert ws.database_url == f"sqlite:///{tmp_path.resolve() / 'catalog.sqlite'}"
    monkeypatch.setenv("IEA_DATABASE_URL", "postgresql+psycopg://u@h:5432/db")
    assert ws.database_url == "postgresql+psycopg://u@h:5432/db"


def test_object_store_is_content_addressed_and_atomic(tmp_path, rng):
    store = ObjectStore(tmp_path / "objects")
    arr = rng.random((5, 7)).astype("float32")
    k = store.put_array(arr)
    assert store.put_array(arr.copy()) == k
    assert (store.get_array(k) == arr).all()
    assert store.path(k).parent.name == k[:2]
    assert not list(store.root.rglob(".*.tmp"))
    store.path(k).write_bytes(b"tampered")
    with pytest.raises(IeaError, match="corrupt"):
        store.get_array(k)
    with pytest.raises(ValueError, match="sha256"):
        store.path("../../etc/passwd")
