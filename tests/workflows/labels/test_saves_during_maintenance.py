"""A maintainer's ``iea prelabel`` and ``iea release build`` running during annotation do not block
saves (issue 13, PostgreSQL).

Each command runs as its own process (as a maintainer's command does) over a workspace of 40
scenes while this process autosaves a draft in a loop; a save that waited for the command's
transactions would take about as long as the command itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

PG_URL = os.environ.get("IEA_TEST_POSTGRES_URL")


COMMANDS = {
    "prelabel": ["prelabel", "--method", "refdiff", "--redo"],
    # the generated scenes repeat four disc layouts (tinted apart): perceptual near-duplicates across
    # splits, which the build refuses; this test is about saves during a build, not about its leak check
    "release": ["release", "build", "team", "--version", "1.0.0", "--labels", "refdiff", "--allow-leaks"],
}


@pytest.mark.postgres
@pytest.mark.parametrize("command", list(COMMANDS))
def test_saves_go_on_while_a_maintainer_command_runs(tmp_path, monkeypatch, command):
    if not PG_URL:
        pytest.skip("needs IEA_TEST_POSTGRES_URL (.ci/start-postgres)")
    from tests.app.conftest import _pg_create, _pg_drop

    url, name, admin = _pg_create()
    monkeypatch.setenv("IEA_DATABASE_URL", url)
    try:
        from iea_data.store import dispose_engines
        from iea_data.workflows.labels import annotation_queue, open_annotation, save_draft
        from iea_data.workflows.users import get_user
        from pipelines.benchmarks.painting import build_app_workspace

        scenes = tuple(f"s{i:02d}" for i in range(40))
        ws = build_app_workspace(tmp_path / "ws", size=(384, 512), scenes=scenes)
        user = get_user(ws, "annotator1")
        state = open_annotation(ws, user, annotation_queue(ws, user)[0].image_id)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "-w", str(ws.root), *COMMANDS[command]],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        t_start = time.perf_counter()
        times = []
        try:
            while proc.poll() is None:
                state.strokes = [*state.strokes, {"id": len(state.strokes) + 1}]
                state.correction[0, len(state.strokes) % state.correction.shape[1]] = 0.01
                t0 = time.perf_counter()
                save_draft(ws, user, state)
                times.append(time.perf_counter() - t0)
                time.sleep(0.05)
            out = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
        run_s = time.perf_counter() - t_start
        assert proc.returncode == 0, out
        print(
            f"iea {command} ran {run_s:.1f} s; {len(times)} draft saves meanwhile, "
            f"max {max(times) * 1000:.0f} ms, load {os.getloadavg()[0]:.2f}"
        )
        assert len(times) >= 10
        assert max(times) < min(2.0, run_s / 2), f"a save waited {max(times):.2f} s of a {run_s:.1f} s run"
        back = open_annotation(ws, user, state.image_id)
        assert back.from_draft and len(back.strokes) == len(times)
        dispose_engines()
    finally:
        _pg_drop(name, admin)
