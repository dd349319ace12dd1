"""The Quality page's first paint on a big synthetic catalog: cold (report computed) and warm (cached table).

Run: ``python -m pipelines.benchmarks.quality_page [--images 2000] [--experts 12] [--side 32] [--method staple]
[--repeats 3] [--workspace DIR] [--compare] [--profile FILE] [--out FILE]``.

Builds a SQLite workspace with ``--images`` images each labelled by ``--experts`` experts of
known bias and noise (bulk rows, :func:`iea_data.workflows.quality.build_synthetic_quality_catalog`),
runs ``iea quality consensus`` once (timed: the pooled STAPLE fit and one consensus revision per
image), then times, side by side in this process, what the page does on its first paint:
:func:`quality_report` + :func:`image_quality` of the worst image, cold (the cached per-annotator
table invalidated, what the first paint after any save costs once the 5-minute grace is over) and
warm (cache hit). Goal (issue 15): first paint ≤ 2 s at 40,000 × 12 at label resolution 256, cold
included. The load average before and after, the CPU model and its vector flags are part of the
output (the machine is shared).

``--workspace DIR`` keeps the catalog in DIR and reuses it on the next run with the same
``--images``, ``--experts``, ``--side`` and ``--method`` (a 40,000 × 12 × 256 catalog takes
minutes to build; its build and consensus times are those of the run that built it).
``--compare`` also times, interleaved with the cold paint, the cold paint that computes agreement
and reliability from the maps (``quality_report(from_maps=True)``, the code path before the
consensus revisions stored those figures) and checks both reports are equal. ``--profile FILE``
writes a cProfile of one more cold paint (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from .startup import _cpu_flags, _cpu_model

GOAL_S = 2.0
MARKER = "quality_page_catalog.json"


def _paint(ws, *, use_cache: bool, from_maps: bool = False) -> tuple[float, object]:
    from iea_data.workflows.quality import image_quality, quality_report

    t0 = time.perf_counter()
    rep = quality_report(ws, use_cache=use_cache, from_maps=from_maps)
    if rep.images:
        image_quality(ws, rep.images[0]["image_id"])
    return time.perf_counter() - t0, rep


def _figures(rep) -> tuple:
    return rep.annotators, rep.images, rep.reliability, rep.reliability_over_time


def _catalog(folder: Path, n_images: int, n_experts: int, side: int, method: str):
    """The workspace in ``folder``: reused when its marker names the same catalog, else built there."""
    from iea_data.store import Workspace, init_workspace
    from iea_data.workflows.quality import build_synthetic_quality_catalog, compute_consensus

    want = {"images": n_images, "experts": n_experts, "side": side, "consensus_method": method}
    marker = folder / MARKER
    if marker.is_file():
        built = json.loads(marker.read_text())
        if {k: built.get(k) for k in want} == want:
            return Workspace.open(folder), {**built, "reused": True}
        raise SystemExit(f"--workspace {folder} holds another catalog ({marker}: {built}); use another folder")
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"--workspace {folder} is not empty and holds no benchmark catalog; use another folder")
    ws = init_workspace(folder)
    t0 = time.perf_counter()
    build_synthetic_quality_catalog(ws, n_images=n_images, n_experts=n_experts, side=side)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    cons = compute_consensus(ws, method=method)
    info = {
        **want,
        "build_s": round(t_build, 2),
        "consensus_s": round(time.perf_counter() - t0, 2),
        "consensus_saved": cons.n_saved,
        "consensus_fit_images": cons.fit.get("n_images"),
        "reused": False,
    }
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return ws, info


def _median(values: list[float]) -> float:
    return round(sorted(values)[len(values) // 2], 3)


def run(
    n_images: int,
    n_experts: int,
    side: int,
    repeats: int = 3,
    method: str = "staple",
    *,
    workspace: Path | None = None,
    compare: bool = False,
    profile: Path | None = None,
) -> dict:
    load_before = os.getloadavg()
    with ExitStack() as stack:
        folder = workspace or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ws"
        ws, info = _catalog(folder, n_images, n_experts, side, method)
        cold, warm, maps_cold, same = [], [], [], True
        for k in range(repeats):  # interleaved (order alternating), so load changes hit both alike
            order = [False, True] if compare else [False]
            reports = {}
            for from_maps in order if k % 2 == 0 else order[::-1]:
                t, reports[from_maps] = _paint(ws, use_cache=False, from_maps=from_maps)
                (maps_cold if from_maps else cold).append(t)
            if compare:
                same = same and _figures(reports[True]) == _figures(reports[False])
            w, rep = _paint(ws, use_cache=True)
            assert rep.cached
            warm.append(w)
        if profile is not None:
            import cProfile

            with cProfile.Profile() as prof:
                _paint(ws, use_cache=False)
            prof.dump_stats(str(profile))
    out = {
        **info,
        "first_paint_cold_s": _median(cold),
        "first_paint_cold_best_s": round(min(cold), 3),
        "first_paint_cold_all_s": [round(t, 3) for t in cold],
        "first_paint_warm_s": _median(warm),
        "cold_over_warm": round(sorted(cold)[len(cold) // 2] / sorted(warm)[len(warm) // 2], 1),
        "goal_s": GOAL_S,
        "goal_met_cold": sorted(cold)[len(cold) // 2] <= GOAL_S,
    }
    if compare:
        out.update(
            first_paint_cold_from_maps_s=_median(maps_cold),
            first_paint_cold_from_maps_best_s=round(min(maps_cold), 3),
            first_paint_cold_from_maps_all_s=[round(t, 3) for t in maps_cold],
            from_maps_over_stored_best=round(min(maps_cold) / min(cold), 1),
            reports_equal=same,
        )
    out.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        cpu=_cpu_model(),
        cpu_flags=_cpu_flags(),
        cores=os.cpu_count(),
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--experts", type=int, default=12)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--method", default="staple", help="consensus method of the setup run")
    ap.add_argument("--workspace", type=Path, help="keep the catalog here and reuse it when it is the same one")
    ap.add_argument("--compare", action="store_true", help="also time the cold paint from the maps (from_maps=True)")
    ap.add_argument("--profile", type=Path, help="write a cProfile of one more cold paint to this file")
    ap.add_argument("--out", type=Path, default=Path(".bench/quality_page.json"))
    args = ap.parse_args(argv)
    out = run(
        args.images,
        args.experts,
        args.side,
        args.repeats,
        args.method,
        workspace=args.workspace,
        compare=args.compare,
        profile=args.profile,
    )
    print(json.dumps(out, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
