"""The team deployment while PostgreSQL restarts (issue 13): saves during the outage fail with a
clear "could not save, retrying" state, nothing is lost, and they succeed once it is back.

The test starts its own throwaway PostgreSQL cluster (as ``.ci/start-postgres`` does) and stops
and starts it; the shared server of ``IEA_TEST_POSTGRES_URL`` is never touched.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import tempfile

import pytest

from pipelines.benchmarks.painting import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.app.conftest import need_browser, need_haproxy, pg_team, team_logs
from tests.app.test_app_browser import drag, open_painter, wait_ack, wait_status
from tests.app.test_app_team import _draft_strokes


class Cluster:
    """A PostgreSQL cluster of our own in a temporary folder (trust auth, 127.0.0.1, a free port)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            pytest.skip("the PostgreSQL-restart test needs the PostgreSQL server binaries (apt-get install postgresql)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="iea-pg-restart-")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [f"{self.bin}/{tool}", *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["su", "postgres", "-s", "/bin/bash", "-c", shlex.join(cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w", "-o", opts, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    need_browser()
    need_haproxy()
    cluster = Cluster()
    root = tmp_path_factory.mktemp("team-pg")
    try:
        with pg_team(root, server_url=cluster.url) as (t, ws):
            from iea_data.workflows.users import add_user

            add_user(ws, "pg_a", role="annotator", password="browser-test-pw")
            t.root = root
            yield t, ws, cluster
    finally:
        cluster.remove()


def test_saves_during_a_postgresql_restart_retry_and_lose_nothing(team, request):
    from playwright.sync_api import sync_playwright

    t, ws, cluster = team
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.goto(t.url)
            open_painter(page, "pg_a")
            drag(page, 0.2, 0.3, 0.6, 0.3)
            drag(page, 0.2, 0.5, 0.6, 0.5)
            wait_ack(page, 2)

            cluster.stop()
            drag(page, 0.2, 0.7, 0.6, 0.7)
            page.get_by_text("Could not save — the catalog is unreachable; retrying", exact=False).wait_for()
            wait_status(page, "not saved yet, retrying")
            assert page.locator(".iea-painter").get_attribute("data-ack") == "2"  # not acknowledged
            body = page.locator("body").inner_text()
            assert "Traceback" not in body and "psycopg" not in body and "OperationalError" not in body

            cluster.start()
            wait_ack(page, 3)  # the browser re-sends the stroke; the write succeeds once PostgreSQL is back
            wait_status(page, "3 stroke(s) · autosaved as a draft")
            assert page.get_by_text("Could not save", exact=False).count() == 0
            assert _draft_strokes(ws, "pg_a") == [1, 2, 3]
            page.get_by_role("button", name="Save revision").click()
            page.get_by_text("saved (label", exact=False).wait_for()
        except Exception:
            print(team_logs(t.root))
            raise
        finally:
            browser.close()
