"""Consensus benchmark (issue 15): continuous STAPLE over 40,000 images x 12 experts at 256x256, streamed.

Run: ``python -m pipelines.benchmarks.consensus [--images 40000] [--experts 12] [--side 256]
[--sample 4096] [--out FILE]``.

Synthetic experts with known bias and noise over a smooth truth; each image's maps are made
on demand by a generator (nothing is kept), so memory must stay flat however many images.

- **generate**: one pass of the generator alone (what both sides pay to read the maps).
- **fit**: :func:`iea_data.core.quality.estimate_raters` over the stream (pooled bias and
  noise of every expert, 4096 sampled pixels per image, bootstrap intervals).
- **consensus**: a second pass, :func:`~iea_data.core.quality.consensus_map` per image with the
  pooled parameters (what the catalog stores per image).
- **median**: the baseline, :func:`~iea_data.core.quality.simple_consensus` ``"median"`` per
  image, side by side in the same process.

The ratio compares the whole STAPLE job (fit + consensus) with the median pass; both include
reading the maps from the generator. Peak RSS (``ru_maxrss``) and the RSS after each phase
show whether memory grows with the number of images. MAE to the truth on the first 200 images
says what the extra time buys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Panel:
    """``experts`` synthetic experts: truth + bias + N(0, sigma^2), made per image on demand.

    The truths cycle through a bank of 64 smooth maps and each expert's noise is a window of a
    shared bank of standard normals at a per-(image, expert) offset: cheap to make, so the
    benchmark times the estimators, not the random-number generator. Values stay within
    [-0.98, 0.98] without clipping.
    """

    def __init__(self, experts: int, side: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.side, self.experts = side, experts
        self.names = [f"expert_{j:02d}" for j in range(experts)]
        self.sigma = np.linspace(0.02, 0.15, experts).astype(np.float32)
        bias = rng.uniform(-0.05, 0.05, experts)
        self.bias = (bias - bias.mean()).astype(np.float32)
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
        f = rng.uniform(2, 12, (64, 2)).astype(np.float32)
        ph = rng.uniform(0, 6, (64, 2)).astype(np.float32)
        self.truths = [0.55 * np.sin(f[k, 0] * xx + ph[k, 0]) * np.cos(f[k, 1] * yy + ph[k, 1]) for k in range(64)]
        bank = min(1 << 22, max(1 << 16, 64 * side * side))
        self.noise = np.clip(rng.standard_normal(bank, dtype=np.float32), -2.5, 2.5)

    def image(self, i: int) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
        n = self.side * self.side
        t = self.truths[i % 64]
        rng = np.random.default_rng(i)
        offs = rng.integers(0, self.noise.size - n, self.experts)
        maps = {}
        for j, name in enumerate(self.names):
            e = self.noise[offs[j] : offs[j] + n].reshape(self.side, self.side)
            maps[name] = t + (self.bias[j] + self.sigma[j] * e)
        return f"image-{i:06d}", maps, t

    def stream(self, count: int, label: str = "") -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        step = max(1, count // 8)
        t0 = time.perf_counter()
        for i in range(count):
            key, maps, _ = self.image(i)
            yield key, maps
            if label and (i + 1) % step == 0:
                rate = (i + 1) / (time.perf_counter() - t0)
                print(f"  {label}: {i + 1}/{count} images ({rate:.0f}/s)", file=sys.stderr, flush=True)


def run(images: int, experts: int, side: int, sample: int, *, staple_only: bool = False) -> dict:
    from iea_data.core.quality import consensus_map, estimate_raters, simple_consensus

    panel = Panel(experts, side)
    out: dict = {"images": images, "experts": experts, "side": side, "sample": sample, "rss_start_mib": _rss_mib()}

    cpu: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for _item in panel.stream(0 if staple_only else images, "generate"):
        pass
    out["seconds_generate"] = round(time.perf_counter() - t0, 2)
    cpu["generate"] = time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    params, info = estimate_raters(panel.stream(images, "fit"), sample=sample)
    out["seconds_fit"] = round(time.perf_counter() - t0, 2)
    cpu["fit"] = time.process_time() - c0
    out["fit"] = {"iterations": info.iterations, "converged": info.converged, "groups": info.n_groups}
    out["rss_after_fit_mib"] = _rss_mib()
    got_b = np.array([params[n].bias for n in panel.names])
    got_s = np.array([params[n].sigma for n in panel.names])
    out["max_bias_error"] = float(np.abs(got_b - panel.bias).max())
    out["max_sd_rel_error"] = float(np.abs(got_s / panel.sigma - 1).max())

    t0, c0 = time.perf_counter(), time.process_time()
    for _key, maps in panel.stream(images, "consensus"):
        consensus_map(maps, params)
    out["seconds_consensus"] = round(time.perf_counter() - t0, 2)
    cpu["consensus"] = time.process_time() - c0
    out["rss_after_consensus_mib"] = _rss_mib()

    t0, c0 = time.perf_counter(), time.process_time()
    for _key, maps in panel.stream(0 if staple_only else images, "median"):
        simple_consensus(maps, "median")
    out["seconds_median"] = round(time.perf_counter() - t0, 2)
    cpu["median"] = time.process_time() - c0
    # CPU seconds of this process: what the phases cost without the other users of a shared machine
    out["cpu_seconds"] = {k: round(v, 2) for k, v in cpu.items()}
    cpu_staple = cpu["fit"] + cpu["consensus"]
    out["staple_only"] = staple_only
    out["extrapolated_40000_minutes_staple_cpu"] = round(cpu_staple / images * 40000 / 60, 1)
    out["rss_after_median_mib"] = _rss_mib()
    out["peak_rss_mib"] = _peak_mib()

    staple_total = max(out["seconds_fit"] + out["seconds_consensus"], 1e-3)
    median_total = max(out["seconds_median"], 1e-3)  # (staple_only: no median pass, the ratio means nothing)
    out["seconds_staple_total"] = round(staple_total, 2)
    out["ratio_staple_vs_median"] = round(staple_total / median_total, 2)
    out["images_per_s_staple"] = round(images / staple_total, 1)
    out["images_per_s_median"] = round(images / median_total, 1)
    out["extrapolated_40000_minutes_staple"] = round(staple_total / images * 40000 / 60, 1)

    mae_s, mae_m = [], []
    for i in range(min(images, 200)):
        _key, maps, t = panel.image(i)
        mae_s.append(float(np.abs(consensus_map(maps, params).map - t).mean()))
        mae_m.append(float(np.abs(simple_consensus(maps, "median") - t).mean()))
    out["mae_staple"] = round(float(np.mean(mae_s)), 5)
    out["mae_median"] = round(float(np.mean(mae_m)), 5)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=40000, help="images streamed (the goal: 40,000)")
    ap.add_argument("--experts", type=int, default=12)
    ap.add_argument("--side", type=int, default=256, help="label resolution")
    ap.add_argument("--sample", type=int, default=4096, help="pixels per image in the fit")
    ap.add_argument("--out", type=Path, default=Path(".bench/consensus.json"))
    ap.add_argument(
        "--staple-only", action="store_true", help="skip the reading and median passes (a long run's STAPLE figures)"
    )
    args = ap.parse_args(argv)
    result = {"machine": f"{_cpu()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    result.update(run(args.images, args.experts, args.side, args.sample, staple_only=args.staple_only))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    r = result
    baseline = (
        "  median baseline: skipped (--staple-only)\n"
        if r["staple_only"]
        else f"  median baseline {r['seconds_median']} s ({r['images_per_s_median']} images/s): "
        f"STAPLE/median {r['ratio_staple_vs_median']}x; reading the maps alone {r['seconds_generate']} s\n"
    )
    print(
        f"consensus benchmark ({r['machine']}, {r['date']}): {r['images']} images x {r['experts']} experts "
        f"at {r['side']}x{r['side']}, streamed\n"
        f"  STAPLE fit {r['seconds_fit']} s ({r['fit']['iterations']} cycles, converged {r['fit']['converged']}) + "
        f"consensus {r['seconds_consensus']} s = {r['seconds_staple_total']} s ({r['images_per_s_staple']} images/s; "
        f"40,000 images: {r['extrapolated_40000_minutes_staple']} min)\n"
        f"  CPU seconds (no contention): fit {r['cpu_seconds']['fit']}, consensus {r['cpu_seconds']['consensus']}, "
        f"median {r['cpu_seconds']['median']}, reading {r['cpu_seconds']['generate']}; "
        f"40,000 images: {r['extrapolated_40000_minutes_staple_cpu']} min of CPU\n"
        + baseline
        + f"  peak RSS {r['peak_rss_mib']} MiB (start {r['rss_start_mib']}, after fit {r['rss_after_fit_mib']}, "
        f"after consensus {r['rss_after_consensus_mib']})\n"
        f"  recovered: bias within {r['max_bias_error']:.4f}, sd within {r['max_sd_rel_error']:.1%}; "
        f"MAE to truth (200 images) STAPLE {r['mae_staple']} vs median {r['mae_median']}"
    )
    return result


if __name__ == "__main__":
    main()
