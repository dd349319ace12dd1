"""``--engine ray`` against ``--engine local`` on one machine, side by side in one process.

Run: ``python -m pipelines.benchmarks.ray_engine [--images 120] [--batch-size 8] [--actors 1 2]
[--decode auto] [--tasks prelabel assess] [--rounds 1] [--out FILE]``.

Both engines pre-label (``prelabel --method model``, precision auto) and assess (five rule
bases, fp32) the same demo-derived photos (the six demo photos at ``--images / 6`` exposures
each, all distinct content). Rounds are interleaved: in every round each task runs local, then
on Ray with each ``--actors`` count and each ``--decode`` placement (``auto``: the engine's
choice, ``actor``: decoding in the model actors, ``tasks``: separate decoding tasks), back to
back, so that both sides of a ratio ran under the same load. The Ray runtime's start
(``ray.init(num_cpus=2)``) is timed apart; each Ray run still includes its own model actors'
start (a new process importing torch and loading the weights), which the local engine does not
pay. Each run reports images/s end to end, the time to its first result (first committed
batch), and the steady rate (first result to last). Goal on this 2-core machine: ray >= 0.85x
local end to end. Needs the released weights (../shared or IEA_PIEANET_WEIGHTS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DECODE_CHOICES = {"auto": None, "actor": "1", "tasks": "0"}


class _Clock:
    """A progress callback that records when the first and the last result arrived."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.first_done = 0
        self.last = self.t0
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done and self.first is None:
            self.first, self.first_done = now, done
        if done:
            self.last, self.done = now, done

    def figures(self, n: int, seconds: float) -> dict:
        """images/s end to end (``n`` over the call's ``seconds``), seconds to the first result, steady images/s."""
        steady = (
            (self.done - self.first_done) / (self.last - self.first) if self.first and self.last > self.first else None
        )
        return {
            "seconds": round(seconds, 2),
            "images_per_s": round(n / seconds, 3),
            "first_result_s": round(self.first - self.t0, 2) if self.first else None,
            "steady_images_per_s": round(steady, 3) if steady else None,
        }


def write_photos(folder: Path, n: int) -> list[Path]:
    """At least ``n`` distinct demo-derived photos: each demo photo and its variants at evenly spaced exposures."""
    from iea_data.workflows.demo import demo_exposures, write_demo_photos

    return write_demo_photos(folder, evs=demo_exposures(n))  # n rounded up to whole photos


def _with_decode(choice: str, run: Callable[[], object]) -> object:
    """``run()`` with the decoding placement ``choice`` forced (or left to the engine) in this process."""
    from pipelines.engines import DECODE_IN_ACTOR_ENV

    old = os.environ.get(DECODE_IN_ACTOR_ENV)
    value = DECODE_CHOICES[choice]
    if value is None:
        os.environ.pop(DECODE_IN_ACTOR_ENV, None)
    else:
        os.environ[DECODE_IN_ACTOR_ENV] = value
    try:
        return run()
    finally:
        if old is None:
            os.environ.pop(DECODE_IN_ACTOR_ENV, None)
        else:
            os.environ[DECODE_IN_ACTOR_ENV] = old


def summarize(rows: list[dict]) -> list[dict]:
    """Per (task, engine, actors, decode): the best round end to end, the median of the rounds, and × local.

    ``ratio_to_local`` compares best with best; ``median_ratio_to_local`` the medians of the
    per-round ratios (each round's Ray run against the same round's local run).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["engine"], r["actors"], r["decode"]), []).append(r)
    local_by_round = {(r["task"], r["round"]): r["images_per_s"] for r in rows if r["engine"] == "local"}
    best_local = {
        k[0]: max(g, key=lambda r: r["images_per_s"])["images_per_s"] for k, g in groups.items() if k[1] == "local"
    }
    out = []
    for (task, engine, actors, decode), g in groups.items():
        best = max(g, key=lambda r: r["images_per_s"])
        ratios = [
            r["images_per_s"] / local_by_round[(task, r["round"])] for r in g if (task, r["round"]) in local_by_round
        ]
        firsts = [r["first_result_s"] for r in g if r["first_result_s"] is not None]
        steadies = [r["steady_images_per_s"] for r in g if r["steady_images_per_s"]]
        out.append(
            {
                "task": task,
                "engine": engine,
                "actors": actors,
                "decode": decode,
                "placement": best.get("placement", ""),
                "rounds": len(g),
                "images_per_s": best["images_per_s"],
                "median_images_per_s": round(statistics.median(r["images_per_s"] for r in g), 3),
                "ratio_to_local": round(best["images_per_s"] / best_local[task], 3) if task in best_local else None,
                "median_ratio_to_local": round(statistics.median(ratios), 3) if ratios else None,
                "median_first_result_s": round(statistics.median(firsts), 2) if firsts else None,
                "median_steady_images_per_s": round(statistics.median(steadies), 3) if steadies else None,
            }
        )
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--decode", nargs="+", choices=sorted(DECODE_CHOICES), default=["auto"])
    ap.add_argument("--tasks", nargs="+", choices=["prelabel", "assess"], default=["prelabel", "assess"])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds of everything")
    ap.add_argument("--out", type=Path, default=Path(".bench/ray_engine.json"))
    args = ap.parse_args(argv)
    import torch

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.assess import assess
    from iea_data.workflows.catalog import ingest
    from iea_data.workflows.labels import prelabel_model
    from pipelines.engines import assess_ray, prelabel_ray, ray_runtime, require_ray

    require_ray()
    os.environ.pop("IEA_DATABASE_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-ray-"))
    rows: list[dict] = []
    try:
        photos = write_photos(tmp / "photos", args.images)
        files = [str(p) for p in photos]
        n = len(photos)
        ws = init_workspace(tmp / "ws")
        ingest(ws, [tmp / "photos"], workers=2, group="none")

        def timed(task: str, engine: str, actors, decode: str, rnd: int, call: Callable) -> None:
            clock = _Clock()
            load = os.getloadavg()[0]
            rep = call(clock)
            seconds = time.perf_counter() - clock.t0
            row = {"task": task, "engine": engine, "actors": actors, "decode": decode, "round": rnd}
            row.update(clock.figures(n, seconds))
            row["placement"] = getattr(rep, "engine", "") or ""
            row["load_1min_before"] = round(load, 2)
            rows.append(row)
            first = f", first result {row['first_result_s']:.1f} s" if row["first_result_s"] is not None else ""
            steady = f", steady {row['steady_images_per_s']:.2f}" if row["steady_images_per_s"] else ""
            print(
                f"  round {rnd} {task:8s} {engine:5s} actors={actors!s:2s} decode={decode:5s} "
                f"{row['images_per_s']:6.2f} images/s end to end{first}{steady} (load {load:.2f})",
                flush=True,
            )

        def prelabel_local(clock):
            rep = prelabel_model(
                ws, batch_size=args.batch_size, num_workers=2, precision="auto", redo=True, progress=clock
            )
            assert rep.n_saved == n, rep.errors[:3]
            return rep

        def prelabel_on_ray(k: int, decode: str):
            def call(clock):
                rep = _with_decode(
                    decode,
                    lambda: prelabel_ray(
                        ws, cluster, method="model", batch_size=args.batch_size, actors=k, redo=True, progress=clock
                    ),
                )
                assert rep.n_saved == n, rep.errors[:3]
                return rep

            return call

        def assess_local(clock):
            rep = assess(files, batch_size=args.batch_size, num_workers=2, progress=clock)
            assert len(rep.results) == n, rep.errors[:3]
            return rep

        def assess_on_ray(k: int, decode: str):
            def call(clock):
                rep = _with_decode(
                    decode, lambda: assess_ray(files, cluster, batch_size=args.batch_size, actors=k, progress=clock)
                )
                assert len(rep.scored) == n, rep.errors[:3]
                return rep

            return call

        runs = {"prelabel": (prelabel_local, prelabel_on_ray), "assess": (assess_local, assess_on_ray)}
        # the runtime first (timed apart), then in every round each task local and on Ray back to
        # back, so that both sides of a ratio ran under the same load (this machine is shared)
        t = time.perf_counter()
        with ray_runtime() as cluster:
            start = time.perf_counter() - t
            print(f"  ray runtime start: {start:.1f} s ({cluster.describe()}), {n} images", flush=True)
            for rnd in range(1, args.rounds + 1):
                for task in args.tasks:
                    local_run, ray_run = runs[task]
                    timed(task, "local", "-", "-", rnd, local_run)
                    for k in args.actors:
                        for decode in args.decode:
                            timed(task, "ray", k, decode, rnd, ray_run(k, decode))
        summary = summarize(rows)
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "cpu": _cpu(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "torch": torch.__version__,
            "ray": __import__("ray").__version__,
            "images": n,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "ray_start_seconds": round(start, 2),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "summary": summary,
            "runs": rows,
        }
    finally:
        dispose_engines()
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"ray engine benchmark ({result['machine']}, {result['cpu']}, {result['date']}, {n} images, batch "
        f"{args.batch_size}, {args.rounds} round(s), load at the end {result['load_average_1_5_15']})"
    )
    for r in summary:
        ratio = (
            f" ({r['ratio_to_local']:.2f}x local; median {r['median_ratio_to_local']:.2f}x)"
            if r["engine"] == "ray"
            else ""
        )
        first = f", first result {r['median_first_result_s']:.1f} s" if r["median_first_result_s"] is not None else ""
        steady = f", steady {r['median_steady_images_per_s']:.2f}" if r["median_steady_images_per_s"] else ""
        print(
            f"  {r['task']:8s} {r['engine']:5s} actors={r['actors']!s:2s} decode={r['decode']:5s} "
            f"best {r['images_per_s']:6.2f} images/s, median {r['median_images_per_s']:.2f}{ratio}{first}{steady}"
        )
    return result


def _cpu() -> str:
    """``lscpu``'s model name and which of avx512f / avx512_bf16 / amx_bf16 the CPU has."""
    model, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("?", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} ({', '.join(have) or 'no avx512f'})"


if __name__ == "__main__":
    main()
