"""Per-image scoring of `iea assess` (five rule bases), before and after, side by side in one process.

Run: ``python -m pipelines.benchmarks.core_calls [--before REV] [--repeats 15] [--out FILE]``.

The "before" code is the given revision's ``iea_data/core/rules/_rulebase.py`` (read with
``git show``, loaded beside the current one in its package). Calls are interleaved, before
then after, and the best of ``--repeats`` is kept, in wall time and in CPU time of the whole
process (a loaded machine inflates wall time; CPU time is what the model loses to these calls
on a 2-core machine). Maps of 512 x 512 (the demo photos) and 768 x 1024 (label resolution),
five registered rule bases, a region mask: ``score_map`` one by one before and after, and
``score_maps`` (shared statistics) after; the statistics are checked bit-identical first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from pipelines._console import print_table

REPO = Path(__file__).resolve().parents[2]
BEFORE = "10bbd44"  # the commit before the shared statistics


def _load_before(rev: str, path: str, package: str, name: str):
    src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    full = f"{package}.{name}"
    spec = importlib.util.spec_from_loader(full, loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = package
    sys.modules[full] = mod
    exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)
    return mod


def _best(fns: dict, repeats: int) -> dict:
    wall = {k: float("inf") for k in fns}
    cpu = dict(wall)
    for _ in range(repeats):
        for k, f in fns.items():  # interleaved
            t, c = time.perf_counter(), time.process_time()
            f()
            cpu[k] = min(cpu[k], time.process_time() - c)
            wall[k] = min(wall[k], time.perf_counter() - t)
    return {k: {"wall_ms": wall[k] * 1e3, "cpu_ms": cpu[k] * 1e3} for k in fns}


def _calls_at(hw: tuple, rng, old_r, repeats: int) -> list:
    """Before/after timings of scoring at one map size (results checked bit-identical first)."""
    import numpy as np

    from iea_data.core.rules import get_rule_base, list_rule_bases, score_map, score_maps

    rows = []
    names = list_rule_bases()
    rbs, old_rbs = [get_rule_base(n) for n in names], [old_r.RuleBase(**vars(get_rule_base(n))) for n in names]
    r = np.clip(rng.normal(0, 0.2, hw), -1, 1).astype(np.float32)
    mask = np.zeros(hw, bool)
    mask[hw[0] // 4 : 3 * hw[0] // 4, hw[1] // 4 : 3 * hw[1] // 4] = True
    want = [old_r.score_map(r, rb, mask=mask).statistics for rb in old_rbs]
    assert [s.statistics for s in score_maps(r, rbs, mask=mask)] == want  # bit for bit
    rows.append(
        (
            f"5 rule bases, {hw[0]}x{hw[1]} map + mask",
            _best(
                {
                    "before": lambda: [old_r.score_map(r, rb, mask=mask) for rb in old_rbs],
                    "after": lambda: [score_map(r, rb, mask=mask) for rb in rbs],
                    "after, score_maps": lambda: score_maps(r, rbs, mask=mask),
                },
                repeats,
            ),
        )
    )
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' code")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path(".bench/core_calls.json"))
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    old_r = _load_before(args.before, "iea_data/core/rules/_rulebase.py", "iea_data.core.rules", "_rulebase_before")
    rng = np.random.default_rng(0)
    rows = [row for hw in [(512, 512), (768, 1024)] for row in _calls_at(hw, rng, old_r, args.repeats)]
    cpu_flags = ""
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
        cpu_flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags)
    except (OSError, StopIteration):
        pass
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_flags}",
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "before": args.before,
        "repeats": args.repeats,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "calls": {name: figs for name, figs in rows},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    cols = [
        "call",
        "after",
        "wall ms before",
        "wall ms after",
        "wall ratio",
        "CPU ms before",
        "CPU ms after",
        "CPU ratio",
    ]
    table = []
    for name, figs in rows:
        b = figs["before"]
        for k, v in figs.items():
            if k != "before":
                table.append(
                    dict(
                        zip(
                            cols,
                            [name, k, b["wall_ms"], v["wall_ms"], b["wall_ms"] / v["wall_ms"]]
                            + [b["cpu_ms"], v["cpu_ms"], b["cpu_ms"] / v["cpu_ms"]],
                        )
                    )
                )
    title = (
        f"core calls ({result['machine']}, {result['date']}, torch {result['torch']} x{result['torch_threads']} "
        f"threads, best of {args.repeats}, load {result['load_average_1_5_15']})"
    )
    print_table(table, cols, title=title)
    return result


if __name__ == "__main__":
    main()
