"""Catalog benchmarks: ingest vs a bare cv2.imread loop, re-ingest, manifest import.

Run: ``python -m pipelines.benchmarks.catalog [--files 200] [--workers 2] [--repeats 3] [--out FILE]``.
Each figure is a ratio against a baseline run side by side on the same files in the same
process tree; the best of ``--repeats`` interleaved runs is kept.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def make_photos(folder: Path, n: int, size=(768, 1024)) -> list[Path]:
    """``n`` distinct JPEGs (quality 92) of ``size`` made from scikit-image's photos with a little noise."""
    import cv2
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    bases = [
        getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
    ]
    bases = [cv2.resize(b[..., :3], (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for b in bases]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = bases[i % len(bases)].astype(np.int16) + rng.integers(-6, 7, size=(size[0], size[1], 3), dtype=np.int16)
        p = folder / f"photo{i:04d}.jpg"
        cv2.imwrite(str(p), np.clip(img, 0, 255).astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(p)
    return paths


def _imread(path: str) -> int:
    import cv2

    cv2.setNumThreads(1)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return int(img.shape[0])


def bare_imread(paths: list[Path], workers: int) -> float:
    t = time.perf_counter()
    # the same start method as ingest uses (a fork server: forking a parent that holds
    # OpenCV's thread pool can deadlock), and the pool start-up is timed for both
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["cv2"])
    with ctx.Pool(workers) as pool:
        list(pool.imap_unordered(_imread, [str(p) for p in paths], chunksize=4))
    return time.perf_counter() - t


def run_ingest(paths_dir: Path, workers: int, root: Path) -> tuple[float, float, int]:
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import ingest

    if root.exists():
        shutil.rmtree(root)
    ws = init_workspace(root)
    t = time.perf_counter()
    first = ingest(ws, [paths_dir], workers=workers)
    t_first = time.perf_counter() - t
    assert first.n_errors == 0, first.errors[:3]
    t = time.perf_counter()
    second = ingest(ws, [paths_dir], workers=workers)
    t_second = time.perf_counter() - t
    assert second.n_unchanged == first.n_new
    dispose_engines()
    return t_first, t_second, first.n_new


def manifest_import(root: Path, csv: Path) -> float:
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import import_manifest

    if root.exists():
        shutil.rmtree(root)
    ws = init_workspace(root)
    t = time.perf_counter()
    import_manifest(ws, csv, split="train")
    dt = time.perf_counter() - t
    dispose_engines()
    return dt


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(".bench/catalog.json"))
    args = ap.parse_args(argv)
    os.environ.pop("IEA_DATABASE_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-"))
    try:
        photos = make_photos(tmp / "photos", args.files)
        bare_imread(photos[:8], args.workers)  # warm the page cache and the pool start-up path
        base, first, second = [], [], []
        for _ in range(args.repeats):  # interleaved: baseline and ingest alternate
            base.append(bare_imread(photos, args.workers))
            f, s, n = run_ingest(tmp / "photos", args.workers, tmp / "ws")
            first.append(f)
            second.append(s)
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
            "files": args.files,
            "image_size": "1024x768 JPEG q92",
            "workers": args.workers,
            "bare_imread_s": min(base),
            "ingest_first_s": min(first),
            "ingest_rerun_s": min(second),
            "ingest_vs_imread_throughput": min(base) / min(first),
            "rerun_speedup": min(first) / min(second),
        }
        csv = SHARED / "reference" / "iea40k-manifests" / "train_256.csv"
        if csv.exists():
            times = [manifest_import(tmp / "ws-manifest", csv) for _ in range(args.repeats)]
            result["manifest_rows"] = sum(1 for _ in open(csv)) - 1
            result["manifest_import_s"] = min(times)
        else:
            result["manifest_import_s"] = None
            result["manifest_note"] = f"{csv} absent: manifest import not measured"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ingest benchmark ({result['machine']}, {result['date']}, {args.files} files, {args.workers} workers)")
    print(f"  bare cv2.imread loop      {result['bare_imread_s']:.2f} s")
    print(
        f"  iea ingest (first run)    {result['ingest_first_s']:.2f} s  -> "
        f"{result['ingest_vs_imread_throughput']:.2f}x the imread throughput (goal >= 0.8)"
    )
    print(
        f"  iea ingest (re-run)       {result['ingest_rerun_s']:.3f} s  -> "
        f"{result['rerun_speedup']:.0f}x faster than the first (goal >= 20)"
    )
    if result.get("manifest_import_s") is not None:
        print(f"  import-manifest {result['manifest_rows']} rows  {result['manifest_import_s']:.2f} s (goal <= 10)")
    return result


if __name__ == "__main__":
    main()
