"""The last step of a build: the catalog row commits after the rename, and a failure on either side of the commit
leaves the catalog and the disk agreeing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import SessionTransaction

import iea_data.workflows.releases._build as build_module
from iea_data.store import Release
from iea_data.workflows.releases import build_release, verify_release


def _row(ws, name: str):
    with ws.unit() as uow:
        return uow.session.scalar(select(Release.path).where(Release.name == name))


def _arm_after_rename(monkeypatch, error: BaseException, *, after_commit: bool) -> None:
    """Raise ``error`` at the first commit after the release folder was renamed (before or after the commit)."""
    armed = {"on": False}
    rename, commit = build_module.os.rename, SessionTransaction.commit

    def renaming(src, dst):
        rename(src, dst)
        armed["on"] = True

    def committing(self, *args, **kwargs):
        if armed["on"] and not after_commit:
            armed["on"] = False
            raise error
        out = commit(self, *args, **kwargs)
        if armed["on"]:
            armed["on"] = False
            raise error
        return out

    monkeypatch.setattr(build_module.os, "rename", renaming)
    monkeypatch.setattr(SessionTransaction, "commit", committing)


def test_an_interrupt_just_after_the_commit_keeps_the_recorded_release(demo_ws, monkeypatch):
    ws = demo_ws
    _arm_after_rename(monkeypatch, KeyboardInterrupt("Ctrl-C"), after_commit=True)
    with pytest.raises(KeyboardInterrupt):
        build_release(ws, "k", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=1)
    monkeypatch.undo()
    final = ws.releases_dir / "k" / "1.0.0"
    assert _row(ws, "k") == str(final)
    assert final.is_dir()
    assert verify_release(final, workspace=ws).ok


def test_a_commit_that_fails_after_the_rename_leaves_neither_row_nor_folder(demo_ws, monkeypatch):
    ws = demo_ws
    _arm_after_rename(monkeypatch, OSError("disk gone"), after_commit=False)
    with pytest.raises(OSError, match="disk gone"):
        build_release(ws, "k", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=1)
    monkeypatch.undo()
    assert _row(ws, "k") is None
    assert not (ws.releases_dir / "k" / "1.0.0").exists()
    assert not list((ws.releases_dir / "k").glob(".1.0.0.tmp-*"))
    build_release(ws, "k", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=1)  # the version can be built then
