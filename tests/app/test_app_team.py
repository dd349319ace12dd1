"""The team deployment (issue 13): replicas behind HAProxy on PostgreSQL, in real Chromium.

One team of two replicas for the module (``pg_team``); the killed-replica test runs last (it
leaves r1 dead). The config writer, the SQLite refusal and SIGTERM need no browser.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import select

from pipelines.benchmarks.painting import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.app.conftest import PG_URL, _pg_create, _pg_drop, need_browser, need_haproxy, pg_team, team_logs
from tests.app.test_app_browser import chain_labels, drag, login, open_painter, wait_ack, wait_status
from tests.workflows.conftest import reader

PASSWORD = "browser-test-pw"  # the default of the browser tests' helpers

# ------------------------------------------------------------------ no browser


def test_haproxy_config_sticky_cookie_health_checks_header_and_long_tunnel():
    from annotator_app.replicas import haproxy_config

    cfg = haproxy_config({"r1": 8601, "r2": 8602}, bind="0.0.0.0:8501")
    assert "bind 0.0.0.0:8501" in cfg
    assert "cookie iea_replica insert indirect nocache httponly" in cfg
    assert "option httpchk GET /_stcore/health" in cfg and "option redispatch" in cfg
    assert "timeout tunnel 1h" in cfg and "http-response set-header X-IEA-Replica %s" in cfg
    assert "server r1 127.0.0.1:8601 check cookie r1" in cfg and "server r2 127.0.0.1:8602 check cookie r2" in cfg
    with pytest.raises(ValueError, match="servers must name at least one replica"):
        haproxy_config({})
    with pytest.raises(ValueError, match="bind must be one line"):
        haproxy_config({"r1": 1}, bind="x\nlisten evil")
    with pytest.raises(ValueError, match="servers must be"):
        haproxy_config([("r 1", "127.0.0.1", 1)])


def test_written_and_shipped_configs_are_valid_haproxy(tmp_path):
    need_haproxy()
    from annotator_app.replicas import TEMPLATE, find_haproxy, haproxy_config

    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config([("r1", "10.0.0.5", 8601), ("r2", "10.0.0.6", 8601)], bind="*:8501"))
    for path in (cfg, TEMPLATE):
        r = subprocess.run([find_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr


def test_replicas_on_a_sqlite_catalog_are_refused_with_why_and_how(sqlite_workspace, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "-w", str(sqlite_workspace.root), "app", "--replicas", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = " ".join(r.stderr.split())
    assert r.returncode == 1, r.stdout + r.stderr
    assert "SQLite" in err and "single writer" in err and "IEA_DATABASE_URL=postgresql+psycopg://" in err
    assert "Traceback" not in r.stderr + r.stdout


def test_without_haproxy_the_error_says_how_to_install_it(monkeypatch):
    import annotator_app.replicas as replicas

    monkeypatch.setattr(replicas.shutil, "which", lambda name: None)
    monkeypatch.setattr(replicas.os, "access", lambda path, mode: False)
    with pytest.raises(replicas.TeamError, match=r"apt-get install haproxy"):
        replicas.find_haproxy()


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        out.update(kids)
        todo.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill-9"])
def test_sigterm_stops_the_proxy_and_every_replica(tmp_path, sig):
    """SIGTERM stops everything; after ``kill -9`` of the command, its children get SIGTERM (Linux)."""
    need_haproxy()
    if not PG_URL:
        pytest.skip("replicas need PostgreSQL: set IEA_TEST_POSTGRES_URL (.ci/start-postgres)")
    from iea_data.store import init_workspace, upgrade_database

    url, name, admin = _pg_create()
    try:
        env = dict(os.environ, IEA_DATABASE_URL=url)
        os.environ["IEA_DATABASE_URL"] = url
        try:
            ws = init_workspace(tmp_path / "ws")
            upgrade_database(ws.engine())
        finally:
            from iea_data.store import dispose_engines

            dispose_engines()
            os.environ.pop("IEA_DATABASE_URL", None)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "-w", str(ws.root), "app", "--replicas", "2", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            t0 = time.monotonic()
            while True:
                assert proc.poll() is None, proc.stdout.read()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        if r.status == 200 and r.headers.get("X-IEA-Replica") in ("r1", "r2"):
                            break
                except OSError:
                    pass
                assert time.monotonic() - t0 < 90, "the team did not come up"
                time.sleep(0.2)
            children = _descendants(proc.pid)
            assert len(children) >= 3, children  # haproxy and two Streamlit replicas
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == (0 if sig == signal.SIGTERM else -signal.SIGKILL), out
        deadline = time.monotonic() + 20
        while [p for p in children if _alive(p)] and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in children if _alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert left == [], f"processes left after {sig.name}"
        assert (ws.root / "deploy" / "haproxy.cfg").is_file()
        if sig == signal.SIGTERM:  # a killed command may be killed before its banner (the proxy answers first)
            assert "2 replicas" in " ".join(out.split())
    finally:
        _pg_drop(name, admin)


# ------------------------------------------------------------------ through the proxy, in Chromium


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    need_browser()
    need_haproxy()
    if not PG_URL:
        pytest.skip("the team tests need PostgreSQL: set IEA_TEST_POSTGRES_URL (.ci/start-postgres)")
    root = tmp_path_factory.mktemp("team")
    with pg_team(root) as (t, ws):
        from iea_data.workflows.users import add_user

        for name in ("tm_a", "tm_b", "tm_c", "tm_d"):
            add_user(ws, name, role="annotator", password=PASSWORD)
        t.root = root
        yield t, ws


@pytest.fixture(scope="module")
def browser(team):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def on_replica(browser, team, request):
    """A factory: a fresh browser context pinned to replica ``name`` by the proxy's cookie; (page, response)."""
    contexts = []

    def make(name: str):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(ctx)
        ctx.add_cookies([{"name": "iea_replica", "value": name, "url": team[0].url}])
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        response = page.goto(team[0].url)
        page.wait_for_load_state("networkidle")
        return page, response

    yield make
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(team_logs(team[0].root))
    for ctx in contexts:
        ctx.close()


def _footer(page, name):
    page.get_by_text(f"replica {name}", exact=True).wait_for()


def _draft_strokes(ws, user_name):
    from iea_data.store import Draft
    from iea_data.workflows.labels import open_annotation
    from iea_data.workflows.users import get_user

    user = get_user(ws, user_name)
    with reader(ws) as s:
        image_ids = list(s.scalars(select(Draft.image_id).where(Draft.user_id == user.id)))
    assert len(image_ids) == 1, f"{user_name} has {len(image_ids)} drafts"
    state = open_annotation(ws, user, image_ids[0])
    assert state.from_draft
    return [int(st["id"]) for st in state.strokes]


def test_two_annotators_on_two_replicas_each_save_in_their_own_chain(on_replica, team):
    ws = team[1]
    pa, ra = on_replica("r1")
    pb, rb = on_replica("r2")
    assert ra.headers["x-iea-replica"] == "r1" and rb.headers["x-iea-replica"] == "r2"
    _footer(pa, "r1")
    _footer(pb, "r2")
    for page, name in ((pa, "tm_a"), (pb, "tm_b")):
        open_painter(page, name)
    drag(pa, 0.2, 0.3, 0.6, 0.3)
    drag(pb, 0.3, 0.6, 0.7, 0.6)
    for page in (pa, pb):
        wait_ack(page, 1)
        page.get_by_role("button", name="Save revision").click()
    for page in (pa, pb):
        page.get_by_text("saved (label", exact=False).wait_for()
    _footer(pa, "r1")  # still on the replica each began on
    _footer(pb, "r2")
    for name in ("tm_a", "tm_b"):
        labels = chain_labels(ws, name)
        assert len(labels) == 1 and labels[0].revision == 1
    assert chain_labels(ws, "tm_a")[0].chain != chain_labels(ws, "tm_b")[0].chain


def test_a_killed_replica_loses_no_acknowledged_stroke_and_leaves_the_other_session_alone(on_replica, team):
    t, ws = team
    pa, _ = on_replica("r1")
    pb, _ = on_replica("r2")
    open_painter(pa, "tm_c")
    open_painter(pb, "tm_d")
    n = 5
    for i in range(n):
        drag(pa, 0.1 + 0.15 * i, 0.2, 0.15 + 0.15 * i, 0.7, steps=10)
    wait_ack(pa, n)
    assert _draft_strokes(ws, "tm_c") == list(range(1, n + 1))  # acknowledged = stored
    drag(pb, 0.2, 0.5, 0.7, 0.5)
    wait_ack(pb, 1)

    t.kill("r1")
    # the browser reconnects through the proxy, which sends it to r2: a new session. Streamlit reruns
    # a reconnected page only at its next action (its last run was a whole page: strokes go by the
    # stroke channel); the next stroke finds no painter on r2 (404 from another server process), the
    # painter reloads the page, and it asks to sign in again. That stroke was never acknowledged.
    pa.wait_for_timeout(3000)  # the proxy marks r1 down; the page reconnects
    drag(pa, 0.1, 0.9, 0.6, 0.9, steps=10)
    pa.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    _footer(pa, "r2")
    login(pa, "tm_c", PASSWORD)
    pa.locator(".iea-painter[data-ack]").wait_for()
    wait_status(pa, f"{n} stroke(s)")
    assert _draft_strokes(ws, "tm_c") == list(range(1, n + 1))

    # the other annotator's session on r2 went on untouched: still signed in, still painting
    assert pb.get_by_role("button", name="Sign in").count() == 0
    drag(pb, 0.2, 0.3, 0.7, 0.3)
    wait_ack(pb, 2)
    pb.get_by_role("button", name="Save revision").click()
    pb.get_by_text("saved (label", exact=False).wait_for()
    assert len(chain_labels(ws, "tm_d")) == 1
