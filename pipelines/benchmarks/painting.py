"""Painting benchmarks: server-side rasterisation per stroke, app start, stroke to overlay on screen.

Run: ``python -m pipelines.benchmarks.painting [--strokes 50] [--side 1024] [--no-browser] [--out FILE]``.

- ``raster``: :func:`iea_data.core.painting.apply_stroke` on a ``side``-px map (the label
  resolution), random drags of each mode; goal <= 10 ms per stroke.
- ``worst stroke``: CPU seconds (``time.process_time``) of the costliest strokes the library
  accepts on a ``side`` x (2/3 side) map (1024x683 by default; issue 10's probe): 20,000 points,
  radius = the map's diagonal, smooth mode, in several hostile shapes; the most is reported.
  Before the fix, 20,000 points at radius 1e6 took 110.7 s; that stroke is now refused.
- ``app start``: ``iea app``'s Streamlit process from launch to its health check, and to the
  login form drawn in headless Chromium.
- ``stroke to overlay``: in headless Chromium (Debian ``/usr/bin/chromium`` through
  Playwright), a 20-step drag on the painter over a ``side``-px photo, timed in the page from
  pointer-up to the frame that shows the new heatmap layer (the painter records it: since
  issue 16 the browser paints the stroke itself, so that is the frame of its prediction;
  ``stroke to server map`` is the frame that shows Python's answer); strokes one after
  another, p50 and p95 over ``--strokes``; goal p95 <= 50 ms (issue 16; 150 ms before).
- ``--before REV``: the same browser figures for the app of git revision ``REV`` (its
  ``annotator_app`` exported with ``git archive`` into a temporary folder), interleaved with
  this tree's, ``--rounds`` times each, best round reported; ``--busy N`` runs N CPU-bound
  processes beside the app during a second set of rounds (the "loaded server" figure).
- ``Streamlit floor``: the same round trip with an empty component (trigger, fragment rerun,
  data back, next frame), measured right after, so that the painter's figures can be read
  against what Streamlit itself costs on the machine at that moment (the load average is
  printed too: these machines are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# --------------------------------------------------------------------------- a small app workspace


def write_photos(folder: Path, size=(192, 256), scenes=("alpha", "beta")) -> None:
    """Per scene a reference and a -1 EV variant: smooth colour gradients with a disc."""
    from iea_data.core.imaging import apply_ev, write_image

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i, name in enumerate(scenes):
        # scenes 4, 8, ... repeat the disc positions with a bluer tint, so that every scene's bytes differ
        # (ingest keeps one image per distinct content); the first four are as they always were
        rgb = np.stack([0.25 + 0.5 * xx / w, 0.3 + 0.4 * yy / h, 0.6 - 0.3 * xx / w + 0.02 * (i // 4)], axis=-1)
        cy, cx = h * (0.3 + 0.2 * (i % 4)), w * (0.6 - 0.2 * (i % 4))
        rgb[((yy - cy) ** 2 + (xx - cx) ** 2) < (min(h, w) * 0.18) ** 2] = (0.85, 0.8, 0.3)
        rgb = np.clip(rgb, 0, 1).astype(np.float32)
        write_image(folder / f"{name}.png", rgb)
        write_image(folder / f"{name}_-1EV.png", apply_ev(rgb, -1.0))


def build_app_workspace(root: Path, *, size=(192, 256), scenes=("alpha", "beta")):
    """A workspace for the app: generated brackets ingested, refdiff pre-labels, the demo users.

    Used by this benchmark and the browser tests (``tests/app``). Returns the Workspace.
    """
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import ingest
    from iea_data.workflows.labels import prelabel_refdiff
    from iea_data.workflows.users import seed_demo_users

    ws = init_workspace(root)
    photos = root.parent / f"{root.name}-photos"
    write_photos(photos, size=size, scenes=scenes)
    report = ingest(ws, [photos], workers=1, kind="demo")  # a demo workspace: the demo accounts are allowed
    if report.n_errors:
        raise RuntimeError(f"ingest of the generated photos failed: {report.errors[:3]}")
    prelabel_refdiff(ws)
    seed_demo_users(ws)
    return ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"no answer from {url}/_stcore/health within {timeout:.0f} s")


# --------------------------------------------------------------------------- measurements


def _pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q))


def bench_raster(side: int, n: int, seed: int = 0) -> dict:
    """Milliseconds per apply_stroke on a side x (3/4 side) map, per mode."""
    from iea_data.core.painting import Stroke, apply_stroke

    rng = np.random.default_rng(seed)
    h, w = (side * 3) // 4, side
    base = np.clip(rng.normal(0, 0.2, (h, w)), -1, 1).astype(np.float32)
    corr = np.zeros_like(base)
    out = {}
    for mode in ("add", "set", "smooth", "restore"):
        times = []
        for i in range(n):
            # a curvy hand-drawn drag: 20-60 points, steps of 3-12 px, the heading wandering
            k = int(rng.integers(20, 60))
            heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, k))
            step = rng.uniform(3, 12)
            pts = np.stack([np.cos(heading), np.sin(heading)], 1) * step
            pts = np.cumsum(pts, axis=0) + [rng.uniform(0, w), rng.uniform(0, h)]
            s = Stroke(
                id=i + 1,
                points=pts,
                radius=float(rng.uniform(10, 60)),
                value=float(rng.uniform(-0.3, 0.3)),
                hardness=0.5,
                mode=mode,
            )
            t0 = time.perf_counter()
            corr = apply_stroke(corr, s, base=base)
            times.append((time.perf_counter() - t0) * 1000)
        out[mode] = {"p50_ms": _pct(times, 50), "p95_ms": _pct(times, 95), "max_ms": float(max(times))}
    return out


def worst_strokes(h: int, w: int, seed: int = 1):
    """Hostile strokes at the limits ``check_stroke`` allows on an h x w map: (name, points, radius)."""
    from iea_data.core.painting import MAX_POINTS, max_radius

    rng = np.random.default_rng(seed)
    r = max_radius((h, w))
    n = MAX_POINTS
    i = np.arange(n, dtype=np.float64)
    t = np.linspace(0, 40 * np.pi, n)
    return [
        ("random points over the map", np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], 1), r),
        ("random points over the margin", np.stack([rng.uniform(-r, w + r, n), rng.uniform(-r, h + r, n)], 1), r),
        ("64 long segments", np.stack([rng.uniform(0, w, 65), rng.uniform(0, h, 65)], 1), r),
        ("concentric circles", np.stack([w / 2 + 0.3 * h * np.cos(t), h / 2 + 0.3 * h * np.sin(t)], 1), r),
        ("fine zigzag, radius 1", np.stack([(i * 0.05) % w, h / 2 + (i % 2)], 1), 1.0),
        ("zigzag, radius 200", np.stack([(i * 0.5) % w, h / 2 + 3 * (i % 2)], 1), 200.0),
    ]


def bench_worst_stroke(side: int) -> dict:
    """CPU seconds of the costliest accepted strokes (smooth mode) on a side x (2/3 side) map."""
    from iea_data.core.painting import Stroke, StrokeRefused, apply_stroke, stroke_cost

    h, w = round(side * 2 / 3), side
    base = np.zeros((h, w), np.float32)
    corr = np.zeros_like(base)
    rows = {}
    for name, pts, radius in worst_strokes(h, w):
        s = Stroke(id=1, points=pts, radius=radius, mode="smooth", hardness=0.3)
        tol, work = stroke_cost(s, base.shape)
        t0 = time.process_time()
        apply_stroke(corr, s, base=base)
        rows[name] = {
            "cpu_s": time.process_time() - t0,
            "radius": radius,
            "points": len(pts),
            "tolerance_px": tol,
            "pixel_visits_per_map": work / (h * w),
        }
    # the probe: 20,000 points at radius 1e6 is refused before any work
    rng = np.random.default_rng(0)
    probe = Stroke(
        id=1, points=np.stack([rng.uniform(0, w, 20_000), rng.uniform(0, h, 20_000)], 1), radius=1e6, mode="smooth"
    )
    t0 = time.process_time()
    try:
        apply_stroke(corr, probe, base=base)
        refused = ""
    except StrokeRefused as exc:
        refused = str(exc)
    worst = max(rows, key=lambda k: rows[k]["cpu_s"])
    return {
        "map": [h, w],
        "strokes": rows,
        "worst": worst,
        "worst_cpu_s": rows[worst]["cpu_s"],
        "before_fix_cpu_s": 110.7,
        "issue_probe_refused": refused,
        "issue_probe_cpu_s": time.process_time() - t0,
    }


def export_app(rev: str, dest: Path) -> Path:
    """``annotator_app`` as of git revision ``rev`` under ``dest`` (``git archive``; git state untouched)."""
    root = Path(__file__).resolve().parents[2]
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "annotator_app"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def bench_browser(ws_root: Path, n_strokes: int, app_root: Path | None = None) -> dict:
    """Stroke to screen in Chromium; ``app_root``: a folder holding another ``annotator_app`` to serve."""
    from playwright.sync_api import sync_playwright

    from annotator_app.server import ENTRY, MAIN, app_env, streamlit_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = app_env(ws_root)
    env.pop("IEA_DATABASE_URL", None)
    cmd = streamlit_command(port)
    if app_root is not None:  # serve that app: its entry (asgi.py, or main.py before it), its package first on the path
        other = app_root / "annotator_app"
        cmd[cmd.index(str(ENTRY))] = str(other / ENTRY.name if (other / ENTRY.name).exists() else other / MAIN.name)
        env["PYTHONPATH"] = os.pathsep.join([str(app_root)] + [p for p in [env.get("PYTHONPATH")] if p])
    t0 = time.perf_counter()
    # ``python -m`` puts the working folder first on the path: run the other app from its own
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=None if app_root is None else str(app_root),
    )
    try:
        wait_healthy(url, proc)
        t_health = time.perf_counter() - t0
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("button", name="Sign in").wait_for()
            t_login_form = time.perf_counter() - t0
            page.get_by_label("User name").fill("annotator1")
            page.get_by_label("Password", exact=True).fill("annotator1-demo")
            t1 = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            page.locator(".iea-painter[data-ack]").wait_for()
            t_painter = time.perf_counter() - t1
            box = page.locator("svg.preview").bounding_box()
            rng = np.random.default_rng(1)
            ack0 = int(page.locator(".iea-painter").get_attribute("data-ack"))
            for i in range(n_strokes):
                fx, fy = rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.9)
                x0, y0 = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
                page.mouse.move(x0, y0)
                page.mouse.down()
                for k in range(1, 21):
                    page.mouse.move(x0 + k * box["width"] * 0.015, y0 + k * 1.5)
                page.mouse.up()
                page.locator(f'.iea-painter[data-ack="{max(ack0, 0) + i + 1}"]').wait_for()
            lat = json.loads(page.locator(".iea-painter").get_attribute("data-latencies"))[-n_strokes:]
            ack_attr = page.locator(".iea-painter").get_attribute("data-ack-latencies")  # absent before issue 16
            ack = json.loads(ack_attr)[-n_strokes:] if ack_attr else lat
            size = page.locator(".iea-painter").evaluate(
                "(el) => { const c = el.querySelector('canvas.layer'); return [c.width, c.height]; }"
            )
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "app_start_to_health_s": t_health,
        "app_start_to_login_form_s": t_login_form,
        "login_to_painter_s": t_painter,
        "map_size": size,
        "strokes": len(lat),
        "stroke_to_overlay_p50_ms": _pct(lat, 50),
        "stroke_to_overlay_p95_ms": _pct(lat, 95),
        "stroke_to_overlay_max_ms": float(max(lat)),
        "predicts_in_browser": ack_attr is not None,  # which painter was served
        "stroke_to_server_map_p50_ms": _pct(ack, 50),
        "stroke_to_server_map_p95_ms": _pct(ack, 95),
    }


_FLOOR_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".r");
  if (!root.__s) {
    root.__s = { lat: [], t: {}, id: 0 };
    root.querySelector("button").addEventListener("click", () => {
      const s = root.__s; s.id++; s.t[s.id] = performance.now(); setTriggerValue("hit", { id: s.id });
    });
  }
  const s = root.__s;
  requestAnimationFrame(() => {
    if (s.t[data.ack]) { s.lat.push(performance.now() - s.t[data.ack]); delete s.t[data.ack]; }
    root.dataset.ack = data.ack; root.dataset.lat = JSON.stringify(s.lat);
  });
}
"""

_FLOOR_APP = f"""
import streamlit as st
comp = st.components.v2.component("floor", html="<div class='r'><button>hit</button></div>", js={_FLOOR_JS!r})
def cb():
    st.session_state.ack = st.session_state.c["hit"]["id"]
@st.fragment
def frag():
    comp(key="c", data={{"ack": st.session_state.get("ack", 0)}}, on_hit_change=cb)
frag()
"""


def bench_streamlit_floor(n: int) -> dict:
    """The same round trip with an empty component: trigger, fragment rerun, data back, next frame.

    Measured beside the painter so that its figures can be read against what Streamlit itself
    costs on this machine at this moment.
    """
    import sys

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-floor-"))
    (tmp / "floor.py").write_text(_FLOOR_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(tmp / "floor.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator(".r button").wait_for()
            for i in range(1, n + 1):
                page.locator(".r button").click()
                page.locator(f'.r[data-ack="{i}"]').wait_for()
            lat = json.loads(page.locator(".r").get_attribute("data-lat"))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"round_trip_p50_ms": _pct(lat, 50), "round_trip_p95_ms": _pct(lat, 95)}


def _busy(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes (a job beside the app); stop them with :func:`_stop`."""
    import sys

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(10)


def bench_before_after(ws_root: Path, n_strokes: int, rev: str, rounds: int, busy: int) -> dict:
    """Browser figures of the app at ``rev`` and of this tree, interleaved, best round of each.

    With ``busy`` > 0 a second set of rounds runs with that many CPU-bound processes beside
    the app. Each round records the load average before it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-before-"))
    try:
        before_app = export_app(rev, tmp)
        out: dict = {"rev": rev, "rounds": rounds, "busy_processes": busy}
        for label, nbusy in [("idle", 0)] + ([("busy", busy)] if busy else []):
            runs: dict[str, list] = {"before": [], "after": []}
            procs = _busy(nbusy)
            try:
                for _ in range(rounds):
                    for which, app_root in (("before", before_app), ("after", None)):
                        load = _load()
                        r = bench_browser(ws_root, n_strokes, app_root)
                        r["load"] = load
                        runs[which].append(r)
            finally:
                _stop(procs)
            out[label] = {
                w: {"best": min(rs, key=lambda r: r["stroke_to_overlay_p95_ms"]), "rounds": rs}
                for w, rs in runs.items()
            }
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load() -> str:
    try:
        return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strokes", type=int, default=50, help="browser strokes (and raster strokes per mode x 4)")
    ap.add_argument("--side", type=int, default=1024, help="long side of the map and photo")
    ap.add_argument("--no-browser", action="store_true", help="only the server-side rasterisation")
    ap.add_argument("--out", type=Path, default=Path(".bench/painting.json"))
    ap.add_argument("--before", metavar="REV", help="also measure the app of this git revision, interleaved")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each app with --before (best reported)")
    ap.add_argument("--busy", type=int, default=0, help="with --before: CPU-bound processes beside the app, second set")
    ap.add_argument("--no-raster", action="store_true", help="skip the server-side rasterisation figures")
    args = ap.parse_args(argv)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "side": args.side,
    }
    if not args.no_raster:
        result["raster"] = bench_raster(args.side, args.strokes * 4)
        result["worst_stroke"] = bench_worst_stroke(args.side)
    if not args.no_browser:
        if not os.path.exists(CHROMIUM):
            result["browser_note"] = f"{CHROMIUM} absent: browser figures not measured"
        else:
            os.environ.pop("IEA_DATABASE_URL", None)
            tmp = Path(tempfile.mkdtemp(prefix="iea-bench-paint-"))
            try:
                ws = build_app_workspace(tmp / "ws", size=((args.side * 3) // 4, args.side), scenes=("alpha",))
                result["load_before"] = _load()
                if args.before:
                    result["before_after"] = bench_before_after(
                        ws.root, args.strokes, args.before, args.rounds, args.busy
                    )
                    result["browser"] = result["before_after"]["idle"]["after"]["best"]
                else:
                    result["browser"] = bench_browser(ws.root, args.strokes)
                result["streamlit_floor"] = bench_streamlit_floor(args.strokes)
                result["load_after"] = _load()
            finally:
                from iea_data.store import dispose_engines

                dispose_engines()
                shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"painting benchmark ({result['machine']}, {result['date']}, {args.side}-px map)")
    for mode, r in result.get("raster", {}).items():
        print(
            f"  apply_stroke {mode:<8} p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  "
            f"max {r['max_ms']:.2f} ms (goal <= 10)"
        )
    ws_ = result.get("worst_stroke")
    if ws_:
        print(
            f"  worst accepted stroke on {ws_['map'][1]}x{ws_['map'][0]} (20,000 points, radius = diagonal, smooth): "
            f"{ws_['worst_cpu_s']:.3f} s CPU ({ws_['worst']}); before the fix {ws_['before_fix_cpu_s']} s "
            f"(radius 1e6, now refused in {ws_['issue_probe_cpu_s'] * 1000:.1f} ms)"
        )
    b = result.get("browser")
    if b:
        print(
            f"  app start: health {b['app_start_to_health_s']:.2f} s, login form in Chromium "
            f"{b['app_start_to_login_form_s']:.2f} s; sign-in to painter {b['login_to_painter_s']:.2f} s"
        )
        print(
            f"  stroke to overlay on screen ({b['strokes']} strokes, map {b['map_size'][0]}x{b['map_size'][1]}): "
            f"p50 {b['stroke_to_overlay_p50_ms']:.0f} ms  p95 {b['stroke_to_overlay_p95_ms']:.0f} ms "
            f"max {b['stroke_to_overlay_max_ms']:.0f} ms (goal p95 <= 50); to the server's map "
            f"p50 {b['stroke_to_server_map_p50_ms']:.0f} ms  p95 {b['stroke_to_server_map_p95_ms']:.0f} ms"
        )
        for label, sides in result.get("before_after", {}).items():
            if label not in ("idle", "busy"):
                continue
            for which in ("before", "after"):
                r = sides[which]["best"]
                print(
                    f"    {label:<4} {which:<6} "
                    f"({result['before_after']['rev'] if which == 'before' else 'this tree'}): "
                    f"on screen p50 {r['stroke_to_overlay_p50_ms']:.0f} "
                    f"p95 {r['stroke_to_overlay_p95_ms']:.0f} ms; "
                    f"server map p50 {r['stroke_to_server_map_p50_ms']:.0f} "
                    f"p95 {r['stroke_to_server_map_p95_ms']:.0f} ms; "
                    f"load {r['load']} (best of {len(sides[which]['rounds'])}; "
                    f"{'predicts' if r['predicts_in_browser'] else 'waits for the server'})"
                )
        f = result["streamlit_floor"]
        print(
            f"  Streamlit floor (an empty v2 component, same round trip): p50 {f['round_trip_p50_ms']:.0f} ms  "
            f"p95 {f['round_trip_p95_ms']:.0f} ms; load average before {result['load_before']}, "
            f"after {result['load_after']}"
        )
    elif result.get("browser_note"):
        print("  " + result["browser_note"])
    return result


if __name__ == "__main__":
    main()
