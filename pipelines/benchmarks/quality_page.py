"""The Quality page's first paint on a big synthetic catalog: cold (report computed) and warm (cached table).

Run: ``python -m pipelines.benchmarks.quality_page [--images 2000] [--experts 12] [--side 32] [--method staple]
[--repeats 3] [--out FILE]``.

Builds a SQLite workspace with ``--images`` images each labelled by ``--experts`` experts of
known bias and noise (bulk rows, :func:`iea_data.workflows.quality.build_synthetic_quality_catalog`),
runs ``iea quality consensus`` once (timed: the pooled STAPLE fit and one consensus revision per
image), then times, side by side in this process, what the page does on its first paint:
:func:`quality_report` + :func:`image_quality` of the worst image, cold (the cached per-annotator
table invalidated, what the first paint after any save costs once the 5-minute grace is over) and
warm (cache hit). Goal (issue 15): first paint ≤ 2 s at 40,000 × 12, cold included. The load
average before and after is part of the output (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 2.0


def _paint(ws, *, use_cache: bool) -> tuple[float, object]:
    from iea_data.workflows.quality import image_quality, quality_report

    t0 = time.perf_counter()
    rep = quality_report(ws, use_cache=use_cache)
    if rep.images:
        image_quality(ws, rep.images[0]["image_id"])
    return time.perf_counter() - t0, rep


def run(n_images: int, n_experts: int, side: int, repeats: int = 3, method: str = "staple") -> dict:
    from iea_data.store import init_workspace
    from iea_data.workflows.quality import build_synthetic_quality_catalog, compute_consensus

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        t0 = time.perf_counter()
        build_synthetic_quality_catalog(ws, n_images=n_images, n_experts=n_experts, side=side)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        cons = compute_consensus(ws, method=method)
        t_cons = time.perf_counter() - t0
        cold, warm = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            cold.append(_paint(ws, use_cache=False)[0])
            w, rep = _paint(ws, use_cache=True)
            assert rep.cached
            warm.append(w)
    cold.sort()
    warm.sort()
    return {
        "images": n_images,
        "experts": n_experts,
        "side": side,
        "build_s": round(t_build, 2),
        "consensus_method": method,
        "consensus_s": round(t_cons, 2),
        "consensus_saved": cons.n_saved,
        "first_paint_cold_s": round(cold[len(cold) // 2], 3),
        "first_paint_warm_s": round(warm[len(warm) // 2], 3),
        "cold_over_warm": round(cold[len(cold) // 2] / warm[len(warm) // 2], 1),
        "consensus_fit_images": cons.fit.get("n_images"),
        "goal_s": GOAL_S,
        "goal_met_cold": cold[len(cold) // 2] <= GOAL_S,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--experts", type=int, default=12)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--method", default="staple", help="consensus method of the setup run")
    ap.add_argument("--out", type=Path, default=Path(".bench/quality_page.json"))
    args = ap.parse_args(argv)
    out = run(args.images, args.experts, args.side, args.repeats, args.method)
    print(json.dumps(out, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
