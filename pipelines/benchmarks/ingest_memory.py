"""Ingest memory benchmark: peak RSS of one ingest worker on one very large image, and of a
whole ingest (all its processes) over large whole-decoded files, with and without a memory budget.

Run: ``python -m pipelines.benchmarks.ingest_memory [--side 12000] [--depth 16] [--alpha]
[--pool-files 4] [--out FILE]`` (``--pool-files 0`` skips the second part).

A fresh interpreter (the same imports as a worker: :mod:`iea_data.workflows.catalog._scan`) scans one file
with :func:`iea_data.workflows.catalog._scan.scan_file` and reports its peak resident set size
(``VmHWM`` of ``/proc/self/status``, else ``ru_maxrss``) beside its size after the imports, so the
figure is what one worker adds for the image. The default image is a valid
12000 x 12000 16-bit RGB PNG of about 3.7 MB (a smooth gradient with a little texture).

The second part ingests ``--pool-files`` 8000 x 6000 8-bit RGB LZW TIFFs (decoded whole: about
275 MiB estimated each) with 2 workers, once with ``ingest.memory_budget_mb`` large enough for
all of them and once with a budget of 256 MiB (one such file at a time), sampling the summed
resident set size of the ingest's process tree (the ingest, the fork server, the workers)
every 10 ms.
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
import iea_data.workflows.catalog._scan as scan  # the worker module itself: its imports are what is measured

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
res = {"error": out.get("error"), "base_kib": base, "peak_kib": peak_kib()}
print(json.dumps({**res, "seconds": dt, "cpu_seconds": cpu}))
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
    code = (
        "import sys; from pipelines.benchmarks.ingest_memory import make_png; "
        "make_png(__import__('pathlib').Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1')"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(side), str(depth), "1" if alpha else "0"], env=_env(), check=True
    )
    return path


def measure(path: Path, objects: Path) -> dict:
    """Peak RSS of a fresh worker process scanning ``path``."""
    env = _env()
    res = subprocess.run(
        [sys.executable, "-c", _WORKER, str(path), str(objects)], env=env, capture_output=True, text=True, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["error"]:
        raise RuntimeError(f"scan failed: {out['error']}")
    return out


_POOL_RUN = r"""
import sys
from iea_data.workflows.catalog import ingest
from iea_data.store.workspace import init_workspace
if __name__ == "__main__":
    ws = init_workspace(sys.argv[1])
    r = ingest(ws, [sys.argv[2]], workers=int(sys.argv[3]), memory_budget_mb=int(sys.argv[4]), group="none")
    assert r.n_errors == 0 and r.n_new > 0, r
"""


def make_tiff(path: Path, width: int, height: int, seed: int) -> Path:
    """A ``width`` x ``height`` 8-bit RGB LZW TIFF (PIL decodes it whole) that compresses well."""
    import numpy as np
    from PIL import Image

    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (y + x) / 2
    img[..., 1] = y
    img[..., 2] = x
    img[0, 0] = seed
    Image.fromarray(img).save(path, compression="tiff_lzw")
    return path


def _tree_rss_kib(root: int) -> int:
    """Summed VmRSS of ``root`` and all its descendants (from /proc), in KiB."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, p in parent.items() if p == pid and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total = 0
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page_kib
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure_pool(folder: Path, work: Path, workers: int, budget_mb: int) -> dict:
    """Peak summed RSS of a fresh ``ingest`` of ``folder`` (its whole process tree), sampled every 10 ms."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _POOL_RUN, str(work), str(folder), str(workers), str(budget_mb)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.01)
    err = proc.stderr.read()
    if proc.returncode:
        raise RuntimeError(f"ingest failed: {err[-2000:]}")
    return {"peak_mb": round(peak / 1024, 1), "seconds": round(time.perf_counter() - t, 2)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=12000)
    ap.add_argument("--depth", type=int, choices=(8, 16), default=16)
    ap.add_argument("--alpha", action="store_true")
    ap.add_argument("--pool-files", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(".bench/ingest_memory.json"))
    args = ap.parse_args(argv)
    pool: dict = {}
    if args.pool_files > 0:
        with tempfile.TemporaryDirectory(prefix="iea-bench-pool-") as tmp:
            folder = Path(tmp) / "tiffs"
            folder.mkdir()
            for i in range(args.pool_files):
                make_tiff(folder / f"big{i}.tif", 8000, 6000, i)
            from iea_data.core.imaging import decode_memory

            est = max(decode_memory(p, max_side=256) for p in folder.iterdir()) / 2**20
            for name, budget in (("unbounded", 1 << 20), ("budget_256", 256)):
                pool[name] = measure_pool(folder, Path(tmp) / f"ws-{name}", 2, budget)
            pool["image"] = f"{args.pool_files} x 8000x6000 8-bit RGB LZW TIFF, 2 workers"
            pool["estimate_mb_each"] = round(est, 1)
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
        "pool": pool,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ingest memory benchmark ({result['machine']}, {result['date']})")
    print(f"  {result['image']}, {result['file_mb']:.1f} MB file, {result['decoded_mb']:.0f} MB decoded")
    print(
        f"  one worker: {result['worker_base_mb']:.0f} MB after imports, peak {result['worker_peak_mb']:.0f} MB "
        f"({result['scan_s']:.1f} s wall, {result['scan_cpu_s']:.1f} s CPU)"
    )
    if pool:
        print(f"  whole ingest, {pool['image']} (~{pool['estimate_mb_each']:.0f} MiB estimated each):")
        for name, label in (("unbounded", "budget for all at once"), ("budget_256", "memory_budget_mb = 256")):
            print(f"    {label:24s} peak {pool[name]['peak_mb']:.0f} MB (all processes), {pool[name]['seconds']:.1f} s")
    return result


if __name__ == "__main__":
    main()
