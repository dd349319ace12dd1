"""The team load test (issue 13) on a short run: its counting is real, and a dropped stroke shows as lost."""

from __future__ import annotations

import json
import os
import shutil

import pytest

PG_URL = os.environ.get("IEA_TEST_POSTGRES_URL")

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def run():
    """(result, workspace, database URL, database name): K=2 for 0.3 min, database and workspace kept."""
    from pipelines.benchmarks.painting import CHROMIUM
    from pipelines.benchmarks.team import run_one, team_available

    if not PG_URL:
        pytest.skip("the team load test needs IEA_TEST_POSTGRES_URL (.ci/start-postgres)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"the team load test needs Debian chromium at {CHROMIUM}")
    pytest.importorskip("playwright.async_api")
    # N=2 behind HAProxy when the team deployment is there; else one app without a proxy
    replicas = 2 if team_available() is None else 1
    result = run_one(2, replicas, 0.3, PG_URL, keep=True, seed=3)
    from sqlalchemy.engine import make_url

    from iea_data.store import Workspace, dispose_engines

    url = make_url(PG_URL).set(database=result["database"]).render_as_string(hide_password=False)
    saved = os.environ.get("IEA_DATABASE_URL")
    os.environ["IEA_DATABASE_URL"] = url
    try:
        yield result, Workspace.open(result["workspace"]), url
    finally:
        dispose_engines()
        if saved is None:
            os.environ.pop("IEA_DATABASE_URL", None)
        else:
            os.environ["IEA_DATABASE_URL"] = saved
        from pipelines.benchmarks.team import drop_database

        admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        drop_database(result["database"], admin)
        shutil.rmtree(os.path.dirname(result["workspace"]), ignore_errors=True)


def _heads(ws, url):
    """(label id, image id, chain, stroke ids of the head) per annotator chain, read with plain SQL."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (image_id, chain) id, image_id, chain, strokes_object FROM labels "
            "WHERE chain LIKE 'user:%' ORDER BY image_id, chain, revision DESC"
        ).fetchall()
    return [
        (lid, img, chain, [s["id"] for s in json.loads(ws.objects.get_bytes(key))] if key else [])
        for lid, img, chain, key in rows
    ]


def test_counts_match_the_catalog_and_nothing_is_lost(run):
    result, ws, url = run
    heads = _heads(ws, url)
    assert result["strokes_sent"] >= 2, result["error_lines"]  # both annotators painted
    assert result["strokes_stored"] == sum(len(ids) for *_, ids in heads)
    # a stroke drawn while a save's rerun is still running can go unacknowledged (then it is redrawn): counted apart
    assert result["strokes_acked"] + result["strokes_unacked"] == result["strokes_sent"], result["error_lines"]
    assert result["strokes_acked"] >= 2
    assert (result["lost"], result["duplicated"], result["mixed_chains"]) == (0, 0, 0), result["problems"]
    # no error in the annotators' pages (a stroke not acknowledged is counted apart, the reviewer's page reported)
    shown = [e for e in result["error_lines"] if not e.startswith("reviewer:") and "not acknowledged" not in e]
    assert shown == [], result["error_lines"]
    assert set(result["replica_of"]) == {"team01", "team02", "reviewer"}
    if "HAProxy" in result["deployment"]:  # each browser stayed on one replica, cookie and footer agreeing
        assert set(result["replica_of"].values()) <= {"r1", "r2"}, result["replica_of"]
    assert len({chain for _, _, chain, _ in heads}) == 2  # one chain per annotator
    assert result["overlay_p95_ms"] is not None and result["save_p50_ms"] is not None
    assert result["server_cpu_s"] > 0
    # everyone signed in before anyone painted (the start line), each sign-in timed
    assert result["start_line"] is True
    assert 0 < result["sign_in_p50_s"] <= result["sign_in_max_s"] < 60


def test_a_dropped_stroke_is_reported_as_lost(run):
    from sqlalchemy import update

    from iea_data.store import Label
    from iea_data.workflows.labels import strokes_bytes, strokes_from_bytes
    from pipelines.benchmarks.team import count_catalog

    result, ws, url = run
    sent = {name: {int(k): v for k, v in images.items()} for name, images in result["sent"].items()}
    assert count_catalog(ws, sent)["lost"] == 0
    lid, _, _, ids = next(h for h in _heads(ws, url) if h[3])
    with ws.unit() as uow:
        row = uow.session.get(Label, lid)
        log = strokes_from_bytes(ws.objects.get_bytes(row.strokes_object))
        key = ws.objects.put_bytes(strokes_bytes(log[:-1]))  # the newest stroke never reached the catalog
        uow.session.execute(update(Label).where(Label.id == lid).values(strokes_object=key))
    counts = count_catalog(ws, sent)
    assert counts["lost"] == 1, counts
    assert counts["stored"] == result["strokes_stored"] - 1
    assert any(f"[{ids[-1]}]" in line for line in counts["details"]), counts["details"]
    # and a stroke stored twice is a duplicate
    with ws.unit() as uow:
        key = ws.objects.put_bytes(strokes_bytes(log + log[-1:]))
        uow.session.execute(update(Label).where(Label.id == lid).values(strokes_object=key))
    counts = count_catalog(ws, sent)
    assert (counts["lost"], counts["duplicated"]) == (0, 1), counts


def test_the_table_stays_whole():
    from pipelines.benchmarks.team import render

    r = {
        "annotators": 8,
        "deployment": "2 replica(s) behind HAProxy",
        "saves": 3,
        "submits": 1,
        "reviews": 1,
        "replica_of": {"team01": "r1", "reviewer": "r2"},
        "load_before": [1.0, 2.0, 3.0],
        "load_after": [1.5, 2.0, 3.0],
        "cpu": "AMD EPYC, 2 cores",
        "browsers": "9, one per person",
        "cpu_steal_pct": 0.4,
        "date": "2026-12-02",
        "lost": 0,
    }
    text = render([r])
    assert "\x1b" not in text and "│" not in text
    lines = text.splitlines()
    assert ["lost", "0"] in [line.split() for line in lines]
    assert lines[0].split()[-1] == "8" and any(line.startswith("replicas landed on") for line in lines)
    assert [line.split()[-1] for line in lines if line.startswith("CPU steal")] == ["0.4"]
    assert [line.rsplit("  ", 1)[-1].strip() for line in lines if line.startswith("headless Chromium")] == [
        "9, one per person"
    ]


def test_the_steal_share_is_read_from_proc_stat():
    """Two readings of /proc/stat: ticks only grow, the steal is part of them, and the share is a percentage."""
    import time

    from pipelines.benchmarks.team import cpu_ticks, steal_pct

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat on this system")
    a = cpu_ticks()
    t = time.perf_counter()
    while time.perf_counter() - t < 0.3:  # burn a few ticks
        pass
    b = cpu_ticks()
    assert b[0] > a[0] >= a[1] >= 0 and b[1] >= a[1]
    share = steal_pct(a, b)
    assert share is not None and 0.0 <= share <= 100.0


def test_the_sampler_keeps_an_exited_process_kind():
    """A child that has exited but is not reaped yet (a zombie: empty command line) keeps its kind and its CPU."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from pipelines.benchmarks.team import ProcessSampler, process_kind

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(0.6)"
    with ProcessSampler(period=0.05) as sampler:
        child = subprocess.Popen([sys.executable, "-c", burn])
        cmd = Path(f"/proc/{child.pid}/cmdline")
        kind = process_kind([sys.executable, "-c", burn])
        deadline = time.monotonic() + 10
        while cmd.read_bytes() and time.monotonic() < deadline:  # until it has exited (not reaped)
            time.sleep(0.02)
        assert cmd.read_bytes() == b"", "the child did not exit in 10 s"
        time.sleep(0.2)  # the sampler reads the zombie a few times
    child.wait()
    by_kind = sampler.by_kind()
    # its CPU under its kind (a loaded machine's readings may lag by a period: not the whole 0.5 s), none as "other"
    assert by_kind.get(kind, 0) >= 0.15 and by_kind.get("other", 0) < 0.05, by_kind


class _Refused:
    """A browser whose pages cannot reach the app: the sign-in fails at once."""

    async def new_context(self, **kw):
        return self

    async def new_page(self):
        return self

    async def close(self):
        pass

    def set_default_timeout(self, ms):
        pass

    def on(self, event, handler):
        pass

    async def goto(self, url):
        raise RuntimeError(f"connection refused: {url}")

    def locator(self, selector):
        return self

    def get_by_text(self, text, exact=False):
        return self

    async def count(self):
        return 0


def test_the_start_line_waits_for_everyone_and_a_failed_sign_in_arrives_too():
    """Nobody paints before all have signed in; one whose sign-in fails does not hold the others back."""
    import asyncio

    from pipelines.benchmarks.team import Record, StartLine, annotator

    start = StartLine(["team01", "team02", "reviewer"])
    rec = Record("team02")

    async def signed_in(name):
        await start.reach(name)
        return "painting"

    async def main():
        first = asyncio.create_task(signed_in("team01"))
        await asyncio.sleep(0.05)
        assert not start.go.is_set() and not first.done()  # 1 of 3 at the line
        await annotator(_Refused(), "http://127.0.0.1:9", "team02", 0.05, 0, rec, start)
        assert not start.go.is_set() and start.waiting == {"reviewer"}  # 2 of 3: the failed one arrived
        start.arrive("team02")  # arriving again counts once
        assert not start.go.is_set()
        second = asyncio.create_task(signed_in("reviewer"))
        return await asyncio.wait_for(asyncio.gather(first, second), 5)

    assert asyncio.run(main()) == ["painting", "painting"]
    assert start.go.is_set() and not start.waiting
    assert rec.strokes_sent == 0 and rec.sign_in_s is None
    assert len(rec.errors) == 1 and "connection refused" in rec.errors[0], rec.errors
    assert StartLine(["team01"], enabled=False).go.is_set()  # --no-start-line: each starts after its own sign-in
