"""RAW benchmark (issue 14): brackets from one demosaic, and RAW ingest throughput.

Run: ``python -m pipelines.benchmarks.raw [--side 3000] [--files 16] [--workers 2] [--out FILE]``.

- **brackets**: 5 EVs (-2..+2) from one synthetic RGGB DNG (``--side`` x 2/3 ``--side``
  pixels): :func:`iea_data.core.raw.render_linear` once and
  :func:`~iea_data.core.raw.exposure_from_linear` per EV, against the obvious script: 5
  separate ``rawpy.postprocess`` calls with ``exp_shift=2**ev`` (same linear settings), each
  encoded with the same sRGB curve. Both end at uint16 arrays (no file writes); the outputs
  are compared in 16-bit steps.
- **ingest**: ``--files`` DNGs through ``iea_data.workflows.catalog.ingest`` against a bare
  ``rawpy.imread`` + half-size ``postprocess`` loop, files per second, interleaved rounds
  (medians): in one process (``workers=1``: the per-file cost; wall and CPU time), and in ``--workers``
  processes forked from the same fork server, the bare pool's start timed as the ingest's
  is, and also a bare pool started before the clock.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

EVS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.05 + 0.5 * xx / w, 0.1 + 0.4 * yy / h, 0.05 + 0.2 * (xx + yy) / (w + h)], -1)
    texture = 1 + 0.2 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 5.0)[..., None]
    noise = rng.normal(1.0, 0.02, base.shape).astype(np.float32)
    return np.clip(base * texture * noise, 0, 1)


def _to_u16(srgb: np.ndarray) -> np.ndarray:
    return np.round(srgb * 65535).astype(np.uint16)


def bench_brackets(path: Path, repeats: int = 2) -> dict:
    import rawpy

    from iea_data.core.imaging import linear_to_srgb
    from iea_data.core.raw import exposure_from_linear, render_linear

    def ours() -> list[np.ndarray]:
        counts = render_linear(path).counts
        return [_to_u16(exposure_from_linear(counts, ev)) for ev in EVS]

    def obvious() -> list[np.ndarray]:
        outs = []
        for ev in EVS:
            with rawpy.imread(str(path)) as raw:
                rgb = raw.postprocess(
                    gamma=(1, 1),
                    no_auto_bright=True,
                    adjust_maximum_thr=0.0,
                    output_bps=16,
                    use_camera_wb=True,
                    exp_shift=2.0**ev,
                    exp_preserve_highlights=0.0,
                )
            lin = np.clip(rgb.astype(np.float32) / np.float32(65535), 0, 1)
            outs.append(_to_u16(linear_to_srgb(lin)))
        return outs

    times = {}
    results = {}
    for name, fn in (("one_demosaic", ours), ("five_postprocess", obvious)):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            results[name] = fn()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    diffs = [
        np.abs(a.astype(np.int32) - b.astype(np.int32))
        for a, b in zip(results["one_demosaic"], results["five_postprocess"])
    ]
    return {
        "seconds_one_demosaic": round(times["one_demosaic"], 3),
        "seconds_five_postprocess": round(times["five_postprocess"], 3),
        "speedup": round(times["five_postprocess"] / times["one_demosaic"], 2),
        "max_diff_16bit_steps": int(max(int(d.max()) for d in diffs)),
        "mean_diff_16bit_steps": round(float(np.mean([d.mean() for d in diffs])), 3),
        "share_within_1_step": round(float(np.mean([(d <= 1).mean() for d in diffs])), 5),
        "max_diff_per_ev": {f"{ev:+g}": int(d.max()) for ev, d in zip(EVS, diffs)},
    }


def _bare(path: str) -> float:
    import rawpy

    with rawpy.imread(path) as raw:
        rgb = raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True, half_size=True)
    return float(rgb.mean())


def _bare_pool(files: list[str], workers: int, *, warm: bool) -> float:
    """Seconds for the bare loop over ``files`` in a fork-server pool; ``warm``: pool started before the clock."""
    ctx = mp.get_context("forkserver")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        if warm:
            list(pool.map(_bare, files[:workers]))  # start the processes (and import rawpy) first
            t0 = time.perf_counter()
        list(pool.map(_bare, files))
        took = time.perf_counter() - t0
    return took


def _ingest_seconds(folder: Path, workers: int, cpu: list[float] | None = None) -> float:
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import ingest

    n = len(list(folder.glob("*.dng")))
    with tempfile.TemporaryDirectory(prefix="iea-raw-bench-ws-") as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        t0, c0 = time.perf_counter(), time.process_time()
        report = ingest(ws, [folder], workers=workers)
        took = time.perf_counter() - t0
        if cpu is not None:
            cpu.append(time.process_time() - c0)
        dispose_engines()
    assert report.n_new == n, report.errors
    return took


def bench_ingest(folder: Path, workers: int, rounds: int = 3) -> dict:
    """Ingest against the bare loop, interleaved ``rounds`` times (medians): in one process, and in pools.

    The fork server is started by a first (untimed) ingest, so it holds the ingest's own
    preloaded modules and both sides' pools fork from the same server. The bare loop is
    timed twice per round: with its pool's start on the clock (as the ingest's is) and in a
    pool started before the clock (warm).
    """
    files = sorted(str(p) for p in folder.glob("*.dng"))
    warmup = folder.parent / "warmup"
    warmup.mkdir(exist_ok=True)
    for f in files[:workers]:
        (warmup / Path(f).name).write_bytes(Path(f).read_bytes())
    _ingest_seconds(warmup, workers)  # starts the fork server with the ingest's preload
    times: dict[str, list[float]] = {k: [] for k in ("bare_1", "ingest_1", "bare_cold", "bare_warm", "ingest")}
    cpu: dict[str, list[float]] = {"bare_1": [], "ingest_1": []}
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for f in files:
            _bare(f)
        times["bare_1"].append(time.perf_counter() - t0)
        cpu["bare_1"].append(time.process_time() - c0)
        times["ingest_1"].append(_ingest_seconds(folder, 1, cpu["ingest_1"]))
        times["bare_cold"].append(_bare_pool(files, workers, warm=False))
        times["bare_warm"].append(_bare_pool(files, workers, warm=True))
        times["ingest"].append(_ingest_seconds(folder, workers))
    med = {k: float(np.median(v)) for k, v in times.items()}
    rate = {k: round(len(files) / v, 2) for k, v in med.items()}
    return {
        "files": len(files),
        "workers": workers,
        "rounds": rounds,
        "files_per_s_ingest_one_process": rate["ingest_1"],
        "files_per_s_bare_one_process": rate["bare_1"],
        "ratio_one_process": round(med["bare_1"] / med["ingest_1"], 2),
        # CPU time of this process (the bare loop's LibRaw threads included): less sensitive to other jobs
        "cpu_ratio_one_process": round(float(np.median(cpu["bare_1"]) / np.median(cpu["ingest_1"])), 2),
        "files_per_s_ingest": rate["ingest"],
        "files_per_s_bare_rawpy": rate["bare_cold"],
        "ratio": round(med["bare_cold"] / med["ingest"], 2),
        "files_per_s_bare_rawpy_warm_pool": rate["bare_warm"],
        "ratio_vs_warm_pool": round(med["bare_warm"] / med["ingest"], 2),
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }


def main(argv=None) -> dict:
    from iea_data.core.raw import rawpy_versions, synthetic_dng

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=3000, help="long side of the brackets DNG (even)")
    ap.add_argument("--files", type=int, default=16, help="DNGs ingested")
    ap.add_argument("--ingest-side", type=int, default=1500, help="long side of each ingested DNG (even)")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved ingest rounds (medians)")
    ap.add_argument("--parts", default="brackets,ingest", help="comma-separated: brackets, ingest")
    ap.add_argument("--out", type=Path, default=Path(".bench/raw.json"))
    args = ap.parse_args(argv)
    result = {"machine": f"{_cpu()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"), **rawpy_versions()}
    with tempfile.TemporaryDirectory(prefix="iea-raw-bench-") as tmp:
        root = Path(tmp)
        w = args.side // 2 * 2
        h = (w * 2 // 3) // 2 * 2
        parts = {p.strip() for p in args.parts.split(",")}
        if "brackets" in parts:
            big = root / "big.dng"
            big.write_bytes(synthetic_dng(_scene(h, w)))
            result["brackets"] = {"size": [h, w], "evs": list(EVS), **bench_brackets(big)}
        if "ingest" in parts:
            folder = root / "ingest"
            folder.mkdir()
            iw = args.ingest_side // 2 * 2
            ih = (iw * 2 // 3) // 2 * 2
            for i in range(args.files):
                (folder / f"shot_{i:03d}.dng").write_bytes(synthetic_dng(_scene(ih, iw, seed=i)))
            result["ingest"] = {"size": [ih, iw], **bench_ingest(folder, args.workers, rounds=args.rounds)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"raw benchmark ({result['machine']}, {result['date']}, rawpy {result['rawpy']}, LibRaw {result['libraw']})"
    ]
    if "brackets" in result:
        b = result["brackets"]
        lines.append(
            f"  5 EVs from one {b['size'][1]}x{b['size'][0]} RAW: one demosaic {b['seconds_one_demosaic']} s, "
            f"5 postprocess {b['seconds_five_postprocess']} s: {b['speedup']}x; outputs differ by at most "
            f"{b['max_diff_16bit_steps']} 16-bit steps ({b['share_within_1_step']:.3%} within 1)"
        )
    if "ingest" in result:
        g = result["ingest"]
        lines.append(
            f"  ingest {g['files']} RAWs ({g['size'][1]}x{g['size'][0]}), medians of {g['rounds']} rounds:\n"
            f"    one process: {g['files_per_s_ingest_one_process']} files/s vs bare rawpy "
            f"{g['files_per_s_bare_one_process']} files/s: {g['ratio_one_process']}x "
            f"(CPU time {g['cpu_ratio_one_process']}x)\n"
            f"    {g['workers']} processes: {g['files_per_s_ingest']} files/s vs bare rawpy "
            f"{g['files_per_s_bare_rawpy']} files/s (pool start timed): {g['ratio']}x; vs a warm pool "
            f"{g['files_per_s_bare_rawpy_warm_pool']} files/s: {g['ratio_vs_warm_pool']}x"
        )
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
