"""Ingest memory benchmark: peak RSS of one ingest worker on one very large image.

Run: ``python -m pipelines.benchmarks.ingest_memory [--side 12000] [--depth 16] [--alpha] [--out FILE]``.

A fresh interpreter (the same imports as a worker: :mod:`iea_data.scan`) scans one file
with :func:`iea_data.scan.scan_file` and reports its peak resident set size
(``VmHWM`` of ``/proc/self/status``, else ``ru_maxrss``) beside its size after the imports, so the
figure is what one worker adds for the image. The default image is a valid
12000 x 12000 16-bit RGB PNG of about 3.7 MB (a smooth gradient with a little texture).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_WORKER = r"""
import json, resource, sys, time
from iea_data import scan

def peak_kib():
    # VmHWM: this process image's own high-water mark (ru_maxrss also counts a parent's
    # RSS carried over fork + exec on Linux)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

scan.init_worker(10**9, 256, 256, sys.argv[2], frozenset())
base = peak_kib()
t, c = time.perf_counter(), time.process_time()
out = scan.scan_file((sys.argv[1], 0, 0))
dt, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"error": out.get("error"), "base_kib": base, "peak_kib": peak_kib(), "seconds": dt, "cpu_seconds": cpu}))
"""


def make_png(path: Path, side: int, depth: int = 16, alpha: bool = False, level: int = 9) -> Path:
    """A valid ``side`` x ``side`` PNG (16 or 8 bit, RGB or RGBA) that compresses well, written in strips."""
    import cv2
    import numpy as np

    dtype, top = (np.uint16, 65535) if depth == 16 else (np.uint8, 255)
    y = np.linspace(0, top, side, dtype=np.float64)
    x = np.linspace(0, top, side, dtype=np.float64)
    channels = 4 if alpha else 3
    img = np.empty((side, side, channels), dtype)
    for r0 in range(0, side, 1024):  # build in strips: the writer itself stays small
        r1 = min(side, r0 + 1024)
        yy = y[r0:r1, None]
        img[r0:r1, :, 0] = ((yy + x[None, :]) / 2).astype(dtype)
        img[r0:r1, :, 1] = np.broadcast_to(yy, (r1 - r0, side)).astype(dtype)
        img[r0:r1, :, 2] = np.broadcast_to(x[None, :], (r1 - r0, side)).astype(dtype)
        if alpha:
            img[r0:r1, :, 3] = top
    ok = cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise RuntimeError(f"could not write {path}")
    return path


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


def make_png_in_subprocess(path: Path, side: int, depth: int, alpha: bool) -> Path:
    """:func:`make_png` in its own process, so this one never holds the full image."""
    code = "import sys; from pipelines.benchmarks.ingest_memory import make_png; " \
           "make_png(__import__('pathlib').Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1')"
    subprocess.run([sys.executable, "-c", code, str(path), str(side), str(depth), "1" if alpha else "0"], env=_env(),
                   check=True)
    return path


def measure(path: Path, objects: Path) -> dict:
    """Peak RSS of a fresh worker process scanning ``path``."""
    env = _env()
    res = subprocess.run([sys.executable, "-c", _WORKER, str(path), str(objects)], env=env, capture_output=True,
                         text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["error"]:
        raise RuntimeError(f"scan failed: {out['error']}")
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=12000)
    ap.add_argument("--depth", type=int, choices=(8, 16), default=16)
    ap.add_argument("--alpha", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(".bench/ingest_memory.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="iea-bench-mem-") as tmp:
        png = make_png_in_subprocess(Path(tmp) / "big.png", args.side, args.depth, args.alpha)
        file_mb = png.stat().st_size / 2**20
        m = measure(png, Path(tmp) / "objects")
    channels = 4 if args.alpha else 3
    decoded_mb = args.side * args.side * channels * args.depth // 8 / 2**20
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "image": f"{args.side}x{args.side} {args.depth}-bit {'RGBA' if args.alpha else 'RGB'} PNG",
        "file_mb": round(file_mb, 2),
        "decoded_mb": round(decoded_mb, 1),
        "worker_base_mb": round(m["base_kib"] / 1024, 1),
        "worker_peak_mb": round(m["peak_kib"] / 1024, 1),
        "scan_s": round(m["seconds"], 2),
        "scan_cpu_s": round(m["cpu_seconds"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ingest memory benchmark ({result['machine']}, {result['date']})")
    print(f"  {result['image']}, {result['file_mb']:.1f} MB file, {result['decoded_mb']:.0f} MB decoded")
    print(f"  one worker: {result['worker_base_mb']:.0f} MB after imports, peak {result['worker_peak_mb']:.0f} MB "
          f"({result['scan_s']:.1f} s wall, {result['scan_cpu_s']:.1f} s CPU)")
    return result


if __name__ == "__main__":
    main()
