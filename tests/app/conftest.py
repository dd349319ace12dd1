"""Browser-test plumbing: one app server per module on a small generated workspace, Chromium via Playwright."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.benchmarks.painting import CHROMIUM, CHROMIUM_FLAGS, free_port, wait_healthy


def need_browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian chromium at {CHROMIUM} (.ci/run installs it with apt)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need the playwright package (pip install -e '.[test]')")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


PG_URL = os.environ.get("IEA_TEST_POSTGRES_URL")


def _pg_create(server_url: str | None = None) -> tuple[str, str, str]:
    """A fresh database in the test server (or ``server_url``): (its URL, its name, the admin URL to drop it)."""
    from pipelines.benchmarks.team import create_database

    return create_database(server_url or PG_URL)


def _pg_drop(name: str, admin: str) -> None:
    from pipelines.benchmarks.team import drop_database

    drop_database(name, admin)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app_server(request, tmp_path_factory):
    """(url, workspace, log path): the app on a fresh workspace with two generated scenes, on each backend."""
    need_browser()
    pg = None
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("the PostgreSQL run of the browser tests needs IEA_TEST_POSTGRES_URL (.ci/start-postgres)")
        pg = _pg_create()
    from annotator_app.server import app_env, streamlit_command
    from iea_data.store import dispose_engines
    from pipelines.benchmarks.painting import build_app_workspace

    root = tmp_path_factory.mktemp("appws")
    saved = os.environ.pop("IEA_DATABASE_URL", None)
    if pg is not None:
        os.environ["IEA_DATABASE_URL"] = pg[0]
    try:
        ws = build_app_workspace(root / "ws")
        port = free_port()
        log_path = root / "app.log"
        env = app_env(ws.root)  # carries IEA_DATABASE_URL on the PostgreSQL run
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(streamlit_command(port), env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            yield url, ws, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            dispose_engines()
    finally:
        os.environ.pop("IEA_DATABASE_URL", None)
        if saved is not None:
            os.environ["IEA_DATABASE_URL"] = saved
        if pg is not None:
            _pg_drop(pg[1], pg[2])


@pytest.fixture(scope="module")
def browser(app_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, app_server, request, tmp_path):
    """A factory of fresh browser tabs (each its own Streamlit session); screenshots kept on failure."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.goto(app_server[0])
        page.wait_for_load_state("networkidle")
        return page

    yield make
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        folder = Path(os.environ.get("IEA_TEST_SCREENSHOTS", tmp_path))
        for i, ctx in enumerate(contexts):
            for j, page in enumerate(ctx.pages):
                path = folder / f"{request.node.name}-{i}-{j}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    print(f"screenshot on failure: {path}")
                except Exception as exc:  # a crashed page still lets the others be kept
                    print(f"no screenshot of page {i}-{j}: {exc}")
        log = app_server[2]
        print(f"app log: {log}\n" + log.read_text(errors="replace")[-3000:])
    for ctx in contexts:
        ctx.close()


def need_haproxy():
    import shutil

    if not (shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy")):
        pytest.skip("team tests need HAProxy (`apt-get install haproxy`; .ci/run installs it)")


@contextlib.contextmanager
def pg_team(root: Path, server_url: str | None = None, replicas: int = 2):
    """(team, workspace): the app workspace on a fresh PostgreSQL database of ``server_url`` (default
    IEA_TEST_POSTGRES_URL), ``replicas`` replicas behind HAProxy; everything stopped and dropped after."""
    from annotator_app.replicas import start_team
    from iea_data.store import dispose_engines
    from pipelines.benchmarks.painting import build_app_workspace

    pg = _pg_create(server_url)
    saved = os.environ.pop("IEA_DATABASE_URL", None)
    os.environ["IEA_DATABASE_URL"] = pg[0]
    try:
        ws = build_app_workspace(root / "ws")
        with start_team(ws, replicas=replicas, log_dir=root / "logs") as team:
            yield team, ws
    finally:
        dispose_engines()
        os.environ.pop("IEA_DATABASE_URL", None)
        if saved is not None:
            os.environ["IEA_DATABASE_URL"] = saved
        try:
            _pg_drop(pg[1], pg[2])
        except Exception as exc:  # a stopped test server: nothing left to drop
            print(f"database {pg[1]} not dropped: {exc}")


def team_logs(team_root: Path) -> str:
    out = []
    for f in sorted((team_root / "logs").glob("*.log")):
        out.append(f"--- {f.name}\n" + f.read_text(errors="replace")[-2000:])
    return "\n".join(out)
