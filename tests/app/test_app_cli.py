"""`iea app` starts Streamlit on the workspace and serves the login page."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from pipelines.benchmarks.painting import free_port, wait_healthy


def test_iea_app_serves_the_workspace(sqlite_workspace):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "-w", str(sqlite_workspace.root), "app", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read(2000).lower()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    out = "".join(out.split())  # Rich wraps long lines
    assert f"http://127.0.0.1:{port}" in out and "".join(str(sqlite_workspace.root).split()) in out
    assert proc.returncode is not None


def test_iea_app_refuses_a_folder_without_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_HOME", raising=False)
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "-w", str(tmp_path), "app", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "not an iea workspace" in " ".join(r.stderr.split())
