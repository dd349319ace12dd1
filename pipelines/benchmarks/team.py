"""Team load test (issue 13): K annotators and a reviewer in headless Chromium through the proxy.

Run: ``python -m pipelines.benchmarks.team --annotators 1 4 8 --replicas 2 --minutes 2 [--db-url URL]
[--json PATH] [--keep] [--server-nice N] [--own-browsers] [--no-start-line]``.

For each K: a fresh PostgreSQL database in the server of ``--db-url`` (default
``IEA_TEST_POSTGRES_URL``) holding a new workspace's catalog (generated brackets, refdiff
pre-labels, the demo accounts and K annotators ``team01``…), the team of ``--replicas``
Streamlit replicas behind HAProxy (:func:`annotator_app.replicas.start_team`; without that
module, one app without a proxy, labelled so), then one headless Chromium with K + 1 browser
contexts driven from one asyncio loop, so that the pages stay independent:

- everyone signs in through the proxy first (each sign-in timed: page opened to the first page
  ready); then, from one start line, the ``--minutes`` begin for all at once (``--no-start-line``:
  each starts after its own sign-in, so the first to sign in paint while the others' first pages
  load);
- each annotator paints at a human rate (one 20-step drag every
  1-2 s with jitter) on the images of its own queue, clicks *Save revision* every 3-5 strokes
  and *Submit* at every second save; when the time is up it saves what it has;
- the reviewer opens *Review* and accepts whatever is submitted, meanwhile.

Figures per K: stroke -> overlay p50/p95 as the painter measures it in the page
(``data-latencies``: pointer-up to the frame that shows the stroke) and to the server's map
(``data-ack-latencies``), save latency p50/p95 (click to the page showing the new revision),
strokes sent / acknowledged / stored, lost (acknowledged but not in the chain's stored stroke
log) and duplicated (a stroke id twice in one log), mixed chains (a revision whose author is
not the chain's annotator, or a chain holding strokes its annotator never sent), server CPU
seconds per stroke (replicas + proxy, from ``/proc``) and the browser side's (Chromium's processes and
Playwright's driver, sampled from ``/proc`` by kind), errors seen in the pages (console
errors, Streamlit exception boxes, "could not save" / "Not saved" states), the replica each
browser landed on, the load average before and after, the hypervisor's steal over the run, and
the CPU model. The browsers share the machine's cores with the servers: the figures say so
(``--server-nice N`` lowers the servers' CPU priority, the nearest thing on one machine to browsers
on machines of their own).

Progress goes to stderr; the table goes to stdout as plain fixed-width text (never wrapped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipelines.benchmarks.painting import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    build_app_workspace,
    free_port,
    wait_healthy,
)

PASSWORD = "team-load-test-pw"
REVIEWER = ("reviewer", "reviewer-demo")  # a demo account of build_app_workspace
SAVE_EVERY = (3, 5)  # strokes between saves
SUBMIT_EVERY = 2  # every second save is a submit
STROKE_GAP_S = (1.0, 2.0)  # one drag every 1-2 s
STEP_TIMEOUT_MS = 60_000
ACK_TIMEOUT_MS = 15_000  # a stroke not acknowledged by then is counted as such and redrawn


def progress(msg: str) -> None:
    print(f"[team {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine facts


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo and the count of cores."""
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        flags = next(
            (
                line.split(":", 1)[1].split()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("flags")
            ),
            [],
        )
    except OSError:  # pragma: no cover - not Linux
        flags = []
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    no_amx = "" if "amx_tile" in flags else ", no AMX"
    return f"{name}, {os.cpu_count()} cores, {' '.join(have) or 'no AVX'}{no_amx}"


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def cpu_ticks() -> tuple[int, int]:
    """All CPU ticks of the machine and those stolen by the hypervisor, from ``/proc/stat``.

    A KVM guest's cores are shared with other guests: the steal share over a run says how much of the
    machine someone else had, which the load average does not (two runs on the "same" machine can differ
    by that alone).

    Returns
    -------
    (total, steal) : tuple of int
        Clock ticks since boot, summed over all cores; ``(0, 0)`` where ``/proc/stat`` is absent.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0, 0
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The hypervisor's steal as a percentage of all CPU ticks between two :func:`cpu_ticks` readings.

    Examples
    --------
    >>> steal_pct((1000, 10), (2000, 60))
    5.0
    >>> steal_pct((0, 0), (0, 0)) is None
    True
    """
    total = after[0] - before[0]
    return round(100 * (after[1] - before[1]) / total, 1) if total > 0 else None


def _descendants(pid: int) -> set[int]:
    out, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def cpu_seconds(pids) -> float:
    """User + system CPU seconds of ``pids`` and their descendants (``/proc/<pid>/stat``)."""
    seen: set[int] = set()
    for pid in pids:
        seen |= _descendants(int(pid))
    return sum(c for c in map(_proc_cpu, seen) if c is not None)


def _proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process (``/proc/<pid>/stat``), or None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def process_kind(cmdline: list[str]) -> str:
    """What a browser-side process is, from its command line: Chromium's ``--type``, or Playwright's driver.

    Chromium's child processes rewrite their command line into one string: it is split on spaces.

    Examples
    --------
    >>> process_kind(["/usr/lib/chromium/chromium --type=renderer --lang=en"])
    'renderer'
    >>> process_kind(["/usr/lib/chromium/chromium", "--type=gpu-process"])
    'gpu'
    >>> process_kind(["/usr/lib/chromium/chromium", "--headless"])
    'browser'
    >>> process_kind(["/x/playwright/driver/node", "/x/playwright/driver/package/cli.js", "run-driver"])
    'playwright driver'
    >>> process_kind(["/usr/bin/python3", "-m", "streamlit"])
    'python3 -m'
    """
    args = [a for c in cmdline for a in c.split(" ") if a]
    if not args:
        return "other"
    for arg in args[1:]:
        if arg.startswith("--type="):
            kind = arg.split("=", 1)[1]
            return {"gpu-process": "gpu"}.get(kind, kind)
    if "chrom" in Path(args[0]).name:
        return "browser"
    if any("playwright" in a for a in args):
        return "playwright driver"
    return " ".join([Path(args[0]).name] + args[1:2])


class ProcessSampler:
    """CPU seconds of this process's descendants by kind (:func:`process_kind`), sampled from ``/proc``.

    A thread reads every descendant's utime + stime every ``period`` seconds, leaving out the
    ``exclude`` processes and their descendants (the servers); a process's figure is its last
    reading, so one that exits between two readings loses at most ``period`` of its CPU. Its kind is
    the last one read from a command line: a process changes kind as it execs (a fork of Playwright's
    driver becomes the browser) or renames itself (a zygote's fork becomes a renderer), and an exited
    process not yet reaped (a zombie) has an empty command line, which would take all its CPU to
    "other" (a closed page's renderer did, in round 7).
    """

    def __init__(self, exclude=(), period: float = 0.5) -> None:
        import threading

        self.exclude, self.period = [int(p) for p in exclude], period
        self.last: dict[int, tuple[str, float]] = {}
        self._base: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._base = self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._update(self._read())

    def _read(self) -> dict[int, tuple[str, float]]:
        skip: set[int] = {os.getpid()}
        for pid in self.exclude:
            skip |= _descendants(pid)
        out = {}
        for pid in _descendants(os.getpid()) - skip:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            cpu = _proc_cpu(pid)
            if cpu is not None:
                out[pid] = (process_kind([c for c in cmd if c]), cpu)
        return out

    def _update(self, readings: dict[int, tuple[str, float]]) -> None:
        for pid, (kind, cpu) in readings.items():
            known = self.last.get(pid, self._base.get(pid, (kind, 0.0)))[0]
            self.last[pid] = (known if kind == "other" else kind, cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._update(self._read())

    def by_kind(self) -> dict[str, float]:
        """CPU seconds per kind over the sampling (what each process had at the start left out)."""
        out: Counter = Counter()
        for pid, (kind, cpu) in self.last.items():
            out[kind] += cpu - self._base.get(pid, (kind, 0.0))[1]
        return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


# --------------------------------------------------------------------------- the deployment


@dataclass
class Deployment:
    """What the benchmark started: the public URL, the server process ids, how to stop it."""

    url: str
    pids: list[int]
    kind: str  # "N replicas behind HAProxy" or "one app, no proxy"
    stop: object = field(repr=False)


def team_available() -> str | None:
    """None when ``start_team`` and haproxy are there; else why not."""
    try:
        from annotator_app.replicas import find_haproxy  # noqa: F401
    except ImportError as exc:
        return f"annotator_app.replicas is not in this tree ({exc})"
    if shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"):
        return "haproxy is not installed (apt-get install haproxy)"
    return None


def start_deployment(ws, replicas: int, log_dir: Path) -> Deployment:
    """The team of ``replicas`` behind HAProxy, or (no ``annotator_app.replicas``) one app alone."""
    why = team_available()
    if why is None:
        from annotator_app.replicas import start_team

        team = start_team(ws, replicas=replicas, log_dir=log_dir)
        return Deployment(
            team.url.rstrip("/"),
            [team.proxy_pid] + [r.pid for r in team.replicas.values()],
            f"{replicas} replica(s) behind HAProxy",
            team.stop,
        )
    import subprocess

    from annotator_app.server import app_env, streamlit_command

    progress(f"no team deployment ({why}): ONE app without a proxy")
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "app.log", "ab")
    proc = subprocess.Popen(streamlit_command(port), env=app_env(ws.root), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    return Deployment(url, [proc.pid], "one app, no proxy (annotator_app.replicas absent)", stop)


# --------------------------------------------------------------------------- the catalog


def create_database(db_url: str) -> tuple[str, str, str]:
    """A fresh database in the server of ``db_url``: (its URL, its name, the admin URL to drop it)."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(db_url)
    name = f"iea_team_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), name, admin


def drop_database(name: str, admin: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def team_workspace(root: Path, annotators: int, n_scenes: int):
    """The workspace (catalog at ``IEA_DATABASE_URL``): ``n_scenes`` brackets, the demo users, K annotators."""
    from iea_data.workflows.users import add_user

    ws = build_app_workspace(root, scenes=tuple(f"s{i:02d}" for i in range(n_scenes)))
    names = [f"team{i + 1:02d}" for i in range(annotators)]
    for name in names:
        add_user(ws, name, role="annotator", password=PASSWORD)
    return ws, names


def count_catalog(ws, sent: dict[str, dict[int, dict]]) -> dict:
    """Strokes stored in the catalog against what the browsers sent; lost, duplicated, mixed chains.

    Parameters
    ----------
    ws : Workspace
    sent : dict
        ``{annotator name: {image id: {"acked": [stroke ids], "sent": [stroke ids]}}}``: what each
        browser sent and saw acknowledged (the painter's ``data-ack``).

    Returns
    -------
    dict
        ``stored`` (stroke entries in the chains' head logs), ``unique_stored``, ``acked``,
        ``lost`` (acknowledged, not in the head log), ``duplicated`` (ids stored twice in one log),
        ``mixed_chains`` and ``details`` (one line per problem).
    """
    from sqlalchemy import select

    from iea_data.store import Label, User
    from iea_data.workflows.labels import strokes_from_bytes

    with ws.unit() as uow:
        s = uow.session
        users = {u.id: u.name for u in s.scalars(select(User))}
        rows = list(s.scalars(select(Label).where(Label.chain.like("user:%")).order_by(Label.revision)))
        chains: dict[tuple[int, str], list] = {}
        for lab in rows:
            chains.setdefault((lab.image_id, lab.chain), []).append((lab.revision, lab.author_id, lab.strokes_object))
    stored = unique = lost = dup = acked = 0
    mixed: list[str] = []
    details: list[str] = []
    seen_chains = set()
    for (image_id, chain), revs in chains.items():
        owner_id = int(chain.split(":", 1)[1])
        owner = users.get(owner_id, str(owner_id))
        authors = {a for _, a, _ in revs}
        if authors != {owner_id}:
            mixed.append(f"{chain} on image {image_id}: revisions by {sorted(users.get(a, a) for a in authors)}")
        head = revs[-1][2]
        ids = [int(x["id"]) for x in strokes_from_bytes(ws.objects.get_bytes(head))] if head else []
        stored += len(ids)
        unique += len(set(ids))
        for sid, n in Counter(ids).items():
            if n > 1:
                dup += n - 1
                details.append(f"stroke {sid} stored {n} times in {chain} on image {image_id}")
        mine = sent.get(owner, {}).get(image_id)
        if mine is None:
            if owner in sent and ids:
                mixed.append(f"{chain} on image {image_id} holds {len(ids)} stroke(s) {owner} never sent")
            continue
        seen_chains.add((owner, image_id))
        a = set(mine["acked"])
        acked += len(a)
        missing = a - set(ids)
        lost += len(missing)
        if missing:
            details.append(f"{owner} image {image_id}: acknowledged strokes {sorted(missing)} not stored")
        foreign = set(ids) - set(mine["sent"]) - a
        if foreign:
            mixed.append(f"{chain} on image {image_id} holds strokes {sorted(foreign)[:5]} {owner} never sent")
    for owner, images in sent.items():
        for image_id, mine in images.items():
            if (owner, image_id) not in seen_chains and mine["acked"]:
                acked += len(mine["acked"])
                lost += len(set(mine["acked"]))
                details.append(f"{owner} image {image_id}: no revision stored for {len(mine['acked'])} stroke(s)")
    return {
        "stored": stored,
        "unique_stored": unique,
        "acked": acked,
        "lost": lost,
        "duplicated": dup,
        "mixed_chains": len(mixed),
        "details": details + mixed,
    }


# --------------------------------------------------------------------------- the browsers


@dataclass
class Record:
    """What one browser saw."""

    name: str
    replica: str = ""
    strokes_sent: int = 0
    unacked: int = 0
    overlay_ms: list = field(default_factory=list)
    # per stroke sent, in order: seconds since the painting minutes started, and what the person did just
    # before it ("start", "submit": the first stroke on the next image, "save", or "stroke")
    stroke_at_s: list = field(default_factory=list)
    stroke_after: list = field(default_factory=list)
    server_map_ms: list = field(default_factory=list)
    save_ms: list = field(default_factory=list)
    saves: int = 0
    submits: int = 0
    reviews: int = 0
    errors: list = field(default_factory=list)
    images: dict = field(default_factory=dict)  # image name -> {"sent": [...], "acked": [...]}
    sign_in_s: float | None = None  # from opening the sign-in page to the first page ready to work on


class StartLine:
    """Everyone signs in first, then the painting minutes start for all at once.

    Without it the first to sign in paint while the others' first pages load (nine sign-ins within the
    first seconds at K = 8): the figures then mix a sign-in burst into K people painting. A person whose
    sign-in fails arrives too (its error is a figure), so nobody waits for it.

    Parameters
    ----------
    names : iterable of str
        Who is expected at the line; the minutes start when every one of them has arrived.
    enabled : bool
        False: nobody waits (each starts after its own sign-in).

    Examples
    --------
    >>> line = StartLine(["team01", "reviewer"])
    >>> line.arrive("team01"); line.arrive("team01"); line.go.is_set()
    False
    >>> line.arrive("reviewer"); line.go.is_set(), sorted(line.waiting)
    (True, [])
    """

    def __init__(self, names: Iterable[str] = (), *, enabled: bool = True) -> None:
        self.waiting = set(names)
        self.go = asyncio.Event()
        if not enabled or not self.waiting:
            self.go.set()

    def arrive(self, name: str) -> None:
        """``name`` is at the line (again: no effect); the last to arrive starts everyone."""
        self.waiting.discard(name)
        if not self.waiting:
            self.go.set()

    async def reach(self, name: str) -> None:
        """Arrive and wait until everyone has."""
        self.arrive(name)
        await self.go.wait()


async def _sign_in(page, url: str, name: str, password: str) -> None:
    await page.goto(url)
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def _replica(page, context) -> str:
    cookie = next((c["value"] for c in await context.cookies() if c["name"] == "iea_replica"), "")
    footer = page.get_by_text(re.compile(r"^replica r\d+$"))
    try:
        await footer.first.wait_for(timeout=5_000)
        shown = (await footer.first.inner_text()).split()[-1]
    except Exception:
        shown = ""
    if cookie and shown and cookie != shown:
        return f"cookie {cookie}, page shows {shown}"
    return cookie or shown or "-"


def _watch(page, rec: Record) -> None:
    def on_console(msg) -> None:
        if msg.type == "error":
            rec.errors.append(f"console: {msg.text[:200]}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: rec.errors.append(f"page error: {str(exc)[:200]}"))


async def _page_errors(page, rec: Record) -> None:
    """Streamlit exception boxes and "could not save" / "Not saved" states shown now."""
    n = await page.locator('[data-testid="stException"]').count()
    if n:
        rec.errors.append(f"{n} exception box(es)")
    for text in ("could not", "Not saved"):
        loc = page.get_by_text(text, exact=False)
        if await loc.count():
            rec.errors.append(f"shown: {(await loc.first.inner_text())[:200]}")


#: The label id of the newest "Revision n of … saved (label id)" message, or "" (none shown).
SAVED_LABEL = """() => { const m = document.body.innerText.match(/saved \\(label (\\d+)\\)/); return m ? m[1] : ""; }"""


def _first_lines(exc: BaseException) -> str:
    """The error's first line, and for Playwright the locator it was waiting for (its call log's first step)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    step = next((ln for ln in lines[1:] if ln.startswith("- waiting for")), "")
    return (lines[0][:200] if lines else "") + (f" ({step[2:200]})" if step else "")


async def _saved(page, before: str) -> None:
    """Wait for a "saved (label n)" message newer than ``before``: the painter stays open across a save.

    Polled every 100 ms, not at every frame (Playwright's default): ``innerText`` of the whole page at 60 Hz
    in nine pages is renderer work no person causes, taken from the frames being measured.
    """
    await page.wait_for_function(
        f"(before) => {{ const id = ({SAVED_LABEL})(); return id !== '' && id !== before; }}", arg=before, polling=100
    )


async def _current_image(page) -> str:
    text = await page.get_by_text("expert(s) so far", exact=False).first.inner_text()
    return text.split(" · ")[0].strip()


async def _next_image(page, token: str | None) -> str:
    """After a submit: wait until the painter shows another painting than ``token`` (the next image's map)."""
    await page.locator(f'.iea-painter[data-ack][data-token]:not([data-token="{token}"])').wait_for()
    return await _current_image(page)


async def _painter_attr(page, name: str) -> str | None:
    return await page.locator(".iea-painter").first.get_attribute(name)


async def _take_latencies(page, rec: Record, n: int) -> None:
    if n <= 0:
        return
    lat = json.loads(await _painter_attr(page, "data-latencies") or "[]")
    ack = json.loads(await _painter_attr(page, "data-ack-latencies") or "[]")
    rec.overlay_ms += lat[-n:]
    rec.server_map_ms += ack[-n:]


async def annotator(
    browser, url: str, name: str, minutes: float, seed: int, rec: Record, start: StartLine | None = None
) -> None:
    """One annotator's session: paint at a human rate, save every few strokes, submit, for ``minutes``.

    The minutes start when everyone has signed in (``start``), or at once after this sign-in (None).
    """
    rng = random.Random(seed)
    start = start or StartLine()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    _watch(page, rec)
    try:
        t_in = time.perf_counter()
        await _sign_in(page, url, name, PASSWORD)
        await page.locator(".iea-painter[data-ack]").wait_for()
        rec.sign_in_s = round(time.perf_counter() - t_in, 2)
        rec.replica = await _replica(page, context)
        progress(f"{name} signed in on {rec.replica} in {rec.sign_in_s:.1f} s")
        await start.reach(rec.name)
        began = time.monotonic()
        deadline = began + minutes * 60
        image = await _current_image(page)
        since_save, saves_on_image = 0, 0
        last = "start"
        next_save = rng.randint(*SAVE_EVERY)
        while True:
            done = time.monotonic() >= deadline
            if done or since_save >= next_save:
                if since_save:
                    await _take_latencies(page, rec, since_save)
                submit = not done and saves_on_image + 1 >= SUBMIT_EVERY
                if since_save or submit:
                    before = await page.evaluate(SAVED_LABEL)
                    token = await _painter_attr(page, "data-token")
                    t0 = time.perf_counter()
                    await page.get_by_role("button", name="Submit" if submit else "Save revision").click()
                    if submit:
                        await page.get_by_text("submitted for review", exact=False).first.wait_for()
                        rec.submits += 1
                        saves_on_image = 0
                        last = "submit"
                    else:
                        await _saved(page, before)  # the painter stays open: paint on at once
                        saves_on_image += 1
                        last = "save"
                    rec.save_ms.append((time.perf_counter() - t0) * 1000)
                    rec.saves += 1
                    await _page_errors(page, rec)
                since_save, next_save = 0, rng.randint(*SAVE_EVERY)
                if done:
                    break
                if submit:
                    if await page.get_by_text("Nothing left to annotate", exact=False).count():
                        rec.errors.append("queue exhausted before the deadline")
                        break
                    image = await _next_image(page, token)
                continue
            await asyncio.sleep(rng.uniform(*STROKE_GAP_S))
            canvas = page.locator("svg.preview")
            await canvas.scroll_into_view_if_needed()  # a click on Save/Submit below it scrolls the page
            box = await canvas.bounding_box()
            ack0 = int(await _painter_attr(page, "data-ack") or 0)
            fx, fy = rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.9)
            x0, y0 = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
            dx, dy = rng.uniform(0.01, 0.02) * box["width"], rng.uniform(-2, 2)
            await page.mouse.move(x0, y0)
            await page.mouse.down()
            for k in range(1, 21):
                await page.mouse.move(x0 + k * dx, y0 + k * dy)
            await page.mouse.up()
            sid = max(ack0, 0) + 1
            mine = rec.images.setdefault(image, {"sent": [], "acked": []})
            mine["sent"].append(sid)
            rec.strokes_sent += 1
            rec.stroke_at_s.append(round(time.monotonic() - began, 2))
            rec.stroke_after.append(last)
            last = "stroke"
            try:
                await page.locator(f'.iea-painter[data-ack="{sid}"]').wait_for(timeout=ACK_TIMEOUT_MS)
                mine["acked"].append(sid)
            except Exception:
                rec.unacked += 1
                rec.errors.append(f"stroke {sid} on {image} not acknowledged within {ACK_TIMEOUT_MS // 1000} s")
            since_save += 1
    except Exception as exc:  # a broken session is a figure, not a crash of the benchmark
        rec.errors.append(f"driver: {type(exc).__name__}: {_first_lines(exc)}")
        await _page_errors(page, rec)
    finally:
        start.arrive(rec.name)
        await context.close()


async def reviewer(browser, url: str, done: asyncio.Event, rec: Record, start: StartLine | None = None) -> None:
    """The reviewer: accept whatever is submitted until the annotators are ``done``."""
    start = start or StartLine()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    _watch(page, rec)
    sidebar = page.locator('[data-testid="stSidebar"]')
    try:
        t_in = time.perf_counter()
        await _sign_in(page, url, *REVIEWER)
        await sidebar.get_by_text("Review", exact=True).wait_for()
        rec.sign_in_s = round(time.perf_counter() - t_in, 2)
        rec.replica = await _replica(page, context)
        await start.reach(rec.name)
        while not done.is_set():
            # a click that lands while the page reflows (images loading above the form) can hit an image's
            # fullscreen button, whose view then covers the sidebar: leave it first
            exit_full = page.get_by_role("button", name="Close fullscreen")
            if await exit_full.count():
                await exit_full.first.click()
            await sidebar.get_by_text("Review", exact=True).click()
            accept = page.get_by_role("button", name="Accept").first
            try:
                await accept.wait_for(timeout=3_000)
            except (
                Exception
            ):  # nothing submitted yet: leave and come back (a click on the open page's link does not rerun it)
                await sidebar.get_by_text("Quality", exact=True).click()
                await _sleep_unless(done, 3)
                continue
            t0 = time.perf_counter()
            await accept.click()
            await page.get_by_text("Accepted", exact=False).first.wait_for()
            rec.save_ms.append((time.perf_counter() - t0) * 1000)
            rec.reviews += 1
            await _page_errors(page, rec)
            await _sleep_unless(done, 2)
    except Exception as exc:
        rec.errors.append(f"driver: {type(exc).__name__}: {_first_lines(exc)}")
        if shot := os.environ.get("IEA_TEAM_SCREENSHOT"):
            await page.screenshot(path=shot, full_page=True)
    finally:
        start.arrive(rec.name)
        await context.close()


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


async def drive(
    url: str,
    names: list[str],
    minutes: float,
    seed: int,
    *,
    own_browsers: bool = False,
    start_line: bool = True,
) -> tuple[list[Record], Record]:
    """K annotators and a reviewer in headless Chromium, one context each, for ``minutes``.

    One browser holds every context, or (``own_browsers``) each person has a browser process of their own, as
    people on their own machines have: no browser process, GPU process or compositor shared between them.
    With ``start_line`` everyone signs in first and all start painting together (:class:`StartLine`).
    """
    from playwright.async_api import async_playwright

    recs = [Record(n) for n in names]
    rev = Record("reviewer")
    async with async_playwright() as pw:
        n = len(names) + 1 if own_browsers else 1
        browsers = [await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS) for _ in range(n)]
        done = asyncio.Event()
        start = StartLine([*names, rev.name], enabled=start_line)

        async def annotators() -> None:
            try:
                await asyncio.gather(
                    *(
                        annotator(browsers[i % n], url, who, minutes, seed + i, r, start)
                        for i, (who, r) in enumerate(zip(names, recs))
                    )
                )
            finally:
                done.set()

        await asyncio.gather(annotators(), reviewer(browsers[-1], url, done, rev, start))
        for b in browsers:
            await b.close()
    return recs, rev


# --------------------------------------------------------------------------- one K


def _pct(values, q) -> float | None:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else None


def renice(pids, nice: int) -> None:
    """Lower the CPU priority of ``pids``, their descendants and the PostgreSQL server's processes by ``nice``."""
    import subprocess

    seen: set[int] = set()
    for pid in pids:
        seen |= _descendants(int(pid))
    pg = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
    for pid in seen | {int(p) for p in pg}:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + nice))
        except OSError:
            pass


def run_one(
    k: int,
    replicas: int,
    minutes: float,
    db_url: str,
    *,
    keep: bool = False,
    seed: int = 0,
    server_nice: int = 0,
    own_browsers: bool = False,
    stroke_channel: bool = True,
    start_line: bool = True,
) -> dict:
    """One load test of ``k`` annotators on ``replicas`` replicas for ``minutes``; the figures as a dict."""
    from iea_data.store import dispose_engines
    from iea_data.workflows.labels import annotation_queue
    from iea_data.workflows.users import get_user

    tmp = Path(tempfile.mkdtemp(prefix=f"iea-team-k{k}-"))
    url, dbname, admin = create_database(db_url)
    saved = os.environ.get("IEA_DATABASE_URL")
    os.environ["IEA_DATABASE_URL"] = url
    # enough images that no queue runs dry: one submit per SUBMIT_EVERY x 4 strokes x 1.5 s
    n_scenes = max(4, int(minutes * 60 / (SUBMIT_EVERY * 3 * 1.2)) + 4)
    dep = None
    try:
        progress(f"K={k}: workspace with {2 * n_scenes} images on database {dbname}")
        ws, names = team_workspace(tmp / "ws", k, n_scenes)
        ids = {q.name: q.image_id for q in annotation_queue(ws, get_user(ws, names[0]))}
        from annotator_app.stroke_channel import SWITCH

        switch = os.environ.get(SWITCH)
        os.environ[SWITCH] = "on" if stroke_channel else "off"  # the replicas inherit it
        try:
            dep = start_deployment(ws, replicas, tmp / "logs")
        finally:
            if switch is None:
                del os.environ[SWITCH]
            else:
                os.environ[SWITCH] = switch
        progress(f"K={k}: {dep.kind} at {dep.url}, stroke channel {'on' if stroke_channel else 'off'}")
        if server_nice:
            renice(dep.pids, server_nice)
        load0, cpu0, t0, ticks0 = load_average(), cpu_seconds(dep.pids), time.perf_counter(), cpu_ticks()
        with ProcessSampler(exclude=dep.pids) as sampler:
            recs, rev = asyncio.run(
                drive(dep.url, names, minutes, seed, own_browsers=own_browsers, start_line=start_line)
            )
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(dep.pids) - cpu0
        by_kind = sampler.by_kind()  # the browser side: Chromium's processes and Playwright's driver
        browser_cpu = sum(by_kind.values())
        load1, steal = load_average(), steal_pct(ticks0, cpu_ticks())
        sent = {r.name: {ids[img]: v for img, v in r.images.items() if img in ids} for r in recs}
        counts = count_catalog(ws, sent)
        strokes = sum(r.strokes_sent for r in recs)
        overlay = [x for r in recs for x in r.overlay_ms]
        server = [x for r in recs for x in r.server_map_ms]
        saves = [x for r in recs for x in r.save_ms]
        signed_in = [r.sign_in_s for r in recs + [rev] if r.sign_in_s is not None]
        result = {
            "annotators": k,
            "replicas": replicas,
            "deployment": dep.kind,
            "minutes": minutes,
            "wall_s": round(wall, 1),
            "strokes_sent": strokes,
            "strokes_acked": counts["acked"],
            "strokes_unacked": sum(r.unacked for r in recs),
            "strokes_stored": counts["stored"],
            "strokes_stored_unique": counts["unique_stored"],
            "lost": counts["lost"],
            "duplicated": counts["duplicated"],
            "mixed_chains": counts["mixed_chains"],
            "problems": counts["details"],
            "overlay_p50_ms": _pct(overlay, 50),
            "overlay_p95_ms": _pct(overlay, 95),
            "overlay_p99_ms": _pct(overlay, 99),
            "server_map_p50_ms": _pct(server, 50),
            "server_map_p95_ms": _pct(server, 95),
            "save_p50_ms": _pct(saves, 50),
            "save_p95_ms": _pct(saves, 95),
            "saves": sum(r.saves for r in recs),
            "submits": sum(r.submits for r in recs),
            "reviews": rev.reviews,
            "review_p50_ms": _pct(rev.save_ms, 50),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_ms_per_stroke": round(1000 * cpu / strokes, 1) if strokes else None,
            "browser_cpu_s": round(browser_cpu, 2),
            "browser_cpu_ms_per_stroke": round(1000 * browser_cpu / strokes, 1) if strokes else None,
            # where the browser side's CPU goes (renderers, the GPU process, Playwright's driver...)
            "browser_cpu_ms_per_stroke_by_kind": (
                {kind: round(1000 * v / strokes, 1) for kind, v in by_kind.items()} if strokes else None
            ),
            "server_nice": server_nice,
            "start_line": start_line,
            "sign_in_p50_s": _pct(signed_in, 50),
            "sign_in_max_s": max(signed_in, default=None),
            "stroke_channel": "on" if stroke_channel else "off",
            "browsers": f"{k + 1}, one per person" if own_browsers else f"1, {k + 1} contexts",
            "errors": sum(len(r.errors) for r in recs) + len(rev.errors),
            "error_lines": [f"{r.name}: {e}" for r in recs + [rev] for e in r.errors][:50],
            "replica_of": {r.name: r.replica for r in recs + [rev]},
            "load_before": load0,
            "load_after": load1,
            "cpu_steal_pct": steal,
            "cpu": cpu_model(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "database": dbname if keep else None,
            "workspace": str(tmp / "ws") if keep else None,
            "sent": sent,
            "browser_records": [asdict(r) for r in recs],
        }
        progress(
            f"K={k}: {strokes} strokes sent, {counts['stored']} stored, lost {counts['lost']}, duplicated "
            f"{counts['duplicated']}, mixed chains {counts['mixed_chains']}, {result['errors']} page error(s)"
        )
        return result
    finally:
        if dep is not None:
            dep.stop()
        dispose_engines()
        if saved is None:
            os.environ.pop("IEA_DATABASE_URL", None)
        else:
            os.environ["IEA_DATABASE_URL"] = saved
        if not keep:
            drop_database(dbname, admin)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept database {dbname} and workspace {tmp / 'ws'}")


# --------------------------------------------------------------------------- report


ROWS = [
    ("deployment", "deployment", "{}"),
    ("strokes sent", "strokes_sent", "{}"),
    ("strokes acknowledged", "strokes_acked", "{}"),
    ("not acknowledged (redrawn)", "strokes_unacked", "{}"),
    ("strokes stored", "strokes_stored", "{}"),
    ("lost", "lost", "{}"),
    ("duplicated", "duplicated", "{}"),
    ("mixed chains", "mixed_chains", "{}"),
    ("stroke->overlay p50 ms", "overlay_p50_ms", "{:.0f}"),
    ("stroke->overlay p95 ms", "overlay_p95_ms", "{:.0f}"),
    ("stroke->overlay p99 ms", "overlay_p99_ms", "{:.0f}"),
    ("stroke->server map p50 ms", "server_map_p50_ms", "{:.0f}"),
    ("stroke->server map p95 ms", "server_map_p95_ms", "{:.0f}"),
    ("save p50 ms", "save_p50_ms", "{:.0f}"),
    ("save p95 ms", "save_p95_ms", "{:.0f}"),
    ("saves / submits / reviews", None, None),
    ("server CPU ms per stroke", "server_cpu_ms_per_stroke", "{}"),
    ("browser CPU ms per stroke (sampled)", "browser_cpu_ms_per_stroke", "{}"),
    ("  of which", "browser_cpu_ms_per_stroke_by_kind", None),
    ("headless Chromium processes", "browsers", "{}"),
    ("server nice", "server_nice", "{}"),
    ("start line (all sign in first)", "start_line", "{}"),
    ("sign-in s p50 / max", None, None),
    ("stroke channel", "stroke_channel", "{}"),
    ("errors in the pages", "errors", "{}"),
    ("replicas landed on", None, None),
    ("load before (1/5/15)", "load_before", None),
    ("load after (1/5/15)", "load_after", None),
    ("CPU steal by the hypervisor %", "cpu_steal_pct", "{}"),
]


def _cell(r: dict, key, fmt, label: str) -> str:
    if label.startswith("saves"):
        return f"{r['saves']}/{r['submits']}/{r['reviews']}"
    if label.startswith("sign-in"):
        p50, top = r.get("sign_in_p50_s"), r.get("sign_in_max_s")
        return "-" if p50 is None else f"{p50:.1f}/{top:.1f}"
    if label.startswith("replicas"):
        return ",".join(f"{n}:{v}" for n, v in r["replica_of"].items())
    v = r.get(key)
    if v is None:
        return "-"
    if isinstance(v, list):
        return " ".join(f"{x:.2f}" for x in v)
    if isinstance(v, dict):
        return " ".join(f"{k.replace(' ', '-')}:{x:.0f}" for k, x in v.items())
    return fmt.format(v)


def render(results: list[dict]) -> str:
    """A plain fixed-width table, one column per K (it stays whole when piped)."""
    head = ["K annotators"] + [str(r["annotators"]) for r in results]
    rows = [head] + [[label] + [_cell(r, key, fmt, label) for r in results] for label, key, fmt in ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    if results:
        r = results[0]
        lines.append(f"CPU: {r['cpu']}; the browsers on the same cores as the servers; {r['date']}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotators", type=int, nargs="+", default=[2], metavar="K", help="one run per K")
    ap.add_argument("--replicas", type=int, default=2, metavar="N")
    ap.add_argument("--minutes", type=float, default=0.5, metavar="M", help="painting time per K")
    ap.add_argument("--db-url", default=os.environ.get("IEA_TEST_POSTGRES_URL"), help="a PostgreSQL server URL")
    ap.add_argument("--json", type=Path, default=Path(".bench/team.json"), metavar="PATH")
    ap.add_argument("--keep", action="store_true", help="keep the databases and workspaces")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--server-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the replicas, HAProxy and PostgreSQL N nice levels lower than the browsers (0: same priority); "
        "on one machine, the nearest thing to annotators' browsers on machines of their own",
    )
    ap.add_argument(
        "--own-browsers",
        action="store_true",
        help="one Chromium process per person (default: one Chromium holding a context per person)",
    )
    ap.add_argument(
        "--stroke-channel",
        choices=("on", "off"),
        default="on",
        help="strokes by the app's stroke channel (on, the default) or through Streamlit's reruns (off)",
    )
    ap.add_argument(
        "--no-start-line",
        dest="start_line",
        action="store_false",
        help="each person starts painting as soon as they have signed in (default: all sign in first, then all "
        "paint together, so that the sign-ins' first pages are not inside the measured minutes)",
    )
    args = ap.parse_args(argv)
    if any(k < 1 for k in args.annotators):
        ap.error(f"--annotators must be at least 1, got {args.annotators}")
    if args.replicas < 1:
        ap.error(f"--replicas must be at least 1, got {args.replicas}")
    if args.minutes <= 0:
        ap.error(f"--minutes must be positive, got {args.minutes}")
    if not args.db_url:
        print("team benchmark skipped: it needs PostgreSQL (--db-url or IEA_TEST_POSTGRES_URL)")
        return []
    if not os.path.exists(CHROMIUM):
        print(f"team benchmark skipped: it needs Debian chromium at {CHROMIUM}")
        return []
    if args.replicas > 1 and (why := team_available()):
        print(f"team benchmark skipped: {args.replicas} replicas need the team deployment: {why}")
        return []
    results = [
        run_one(
            k,
            args.replicas,
            args.minutes,
            args.db_url,
            keep=args.keep,
            seed=args.seed,
            server_nice=args.server_nice,
            own_browsers=args.own_browsers,
            stroke_channel=args.stroke_channel == "on",
            start_line=args.start_line,
        )
        for k in args.annotators
    ]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"team load test ({args.replicas} replica(s), {args.minutes:g} min per K); JSON in {args.json}")
    print(render(results))
    for r in results:
        for line in r["problems"][:10] + r["error_lines"][:10]:
            print(f"  K={r['annotators']}: {line}")
    return results


if __name__ == "__main__":
    main()
