"""A killed ingest leaves a consistent catalog; two writers at once lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from iea_data.store import Image, ImagePath, IngestRun
from iea_data.workflows.catalog import ingest

from ..conftest import reader

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory):
    """120 small, distinct PNGs (noise over a gradient)."""
    from iea_data.core.imaging import write_image

    d = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 1, 96, dtype=np.float32)[None, :, None]
    for i in range(120):
        img = np.clip(ramp * 0.8 + rng.random((96, 96, 3), dtype=np.float32) * 0.2, 0, 1).astype(np.float32)
        write_image(d / f"shot{i:03d}.png", img)
    return d


def _env(ws) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    if "IEA_DATABASE_URL" in os.environ:
        env["IEA_DATABASE_URL"] = os.environ["IEA_DATABASE_URL"]
    return env


SLOW_INGEST = """
import sys, time
from iea_data.store.workspace import Workspace
from iea_data.workflows.catalog import ingest
ws = Workspace.open(sys.argv[1])
ingest(ws, [sys.argv[2]], workers=1, commit_every=4, progress=lambda done, total: time.sleep(0.03))
"""


def test_kill_9_mid_ingest_leaves_a_consistent_catalog_and_rerun_finishes(workspace, many_photos):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_INGEST, str(workspace.root), str(many_photos)], env=_env(workspace)
    )
    deadline = time.monotonic() + 60
    committed = 0
    try:
        while time.monotonic() < deadline:
            with reader(workspace) as s:
                committed = s.scalar(select(func.count()).select_from(Image))
            if committed >= 20:
                break
            assert proc.poll() is None, "the ingest finished before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 20 <= committed < 120
    with reader(workspace) as s:
        if workspace.database_url.startswith("sqlite"):
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert s.execute(text("PRAGMA foreign_key_check")).all() == []
        n_images = s.scalar(select(func.count()).select_from(Image))
        n_paths = s.scalar(select(func.count()).select_from(ImagePath))
        # every committed image is complete: a path, decoded facts, a thumbnail object
        assert n_images == n_paths
        rows = s.execute(select(Image.width, Image.luma_mean, Image.thumbnail)).all()
        assert all(w == 96 and m is not None and workspace.objects.exists(t) for w, m, t in rows)
        assert s.scalar(select(IngestRun.status).order_by(IngestRun.id.desc()).limit(1)) == "running"
    report = ingest(workspace, [many_photos], workers=2)
    assert report.n_errors == 0
    assert report.n_unchanged == n_paths
    assert report.n_unchanged + report.n_new == 120
    with reader(workspace) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 120


WRITER = """
import sys
from iea_data.store.workspace import Workspace
from iea_data.workflows.catalog import ingest
ws = Workspace.open(sys.argv[1])
r = ingest(ws, sys.argv[2:], workers=1, commit_every=3)
sys.exit(1 if r.errors else 0)
"""


def test_two_processes_ingesting_at_once_lose_nothing(workspace, many_photos, tmp_path):
    # overlapping inputs: both see the same 120 files, in opposite order of folders
    files = sorted(str(p) for p in many_photos.iterdir())
    a = subprocess.Popen([sys.executable, "-c", WRITER, str(workspace.root), *files], env=_env(workspace))
    b = subprocess.Popen([sys.executable, "-c", WRITER, str(workspace.root), *files[::-1]], env=_env(workspace))
    assert a.wait(120) == 0
    assert b.wait(120) == 0
    with reader(workspace) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 120
        assert s.scalar(select(func.count()).select_from(ImagePath)) == 120
        assert s.scalar(select(func.count(func.distinct(Image.sha256)))) == 120
