"""Pre-label throughput: `prelabel_model` (decode in DataLoader workers + model + store) vs the model alone.

Run: ``python -m pipelines.benchmarks.prelabel [--images N] [--loader-workers 2] [--batch-size 8]
[--precision auto|fp32|bf16] [--rounds 2] [--out FILE]``.
``--images N`` pre-labels N demo-derived photos (the six demo photos at N / 6 exposures, as the Ray
benchmark) instead of the 30 demo images: with 30, the run's fixed start (model load, the first
batch decoded while the model waits, the last batch stored after it) weighs on the ratio.
The goal is that loading hides behind compute: images/s with loading close to the model alone
at the same precision and batch size (goal >= 0.9x). Rounds are interleaved (model alone,
``prelabel_model`` with ``redo=True``), best of each kept.
Needs the released weights (../shared or IEA_PIEANET_WEIGHTS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=0, help="demo-derived photos (default: the 30 demo images)")
    ap.add_argument("--loader-workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each side is kept")
    ap.add_argument("--out", type=Path, default=Path(".bench/prelabel.json"))
    args = ap.parse_args(argv)
    import torch

    from iea_data.core.imaging import read_image
    from iea_data.core.model import DECODE_AHEAD_ENV, create_model, resolve_precision, to_batch
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.catalog import list_images
    from iea_data.workflows.demo import build_demo
    from iea_data.workflows.labels import prelabel_model

    os.environ.pop("IEA_DATABASE_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-prelabel-"))
    try:
        ws = init_workspace(tmp / "ws")
        if args.images:
            from iea_data.workflows.catalog import ingest
            from iea_data.workflows.demo import demo_exposures, write_demo_photos

            write_demo_photos(tmp / "photos", evs=demo_exposures(args.images))
            ingest(ws, [tmp / "photos"], workers=2)
        else:
            build_demo(ws, workers=2)
        paths = [r["path"] for r in list_images(ws)]
        n = len(paths)
        model = create_model("pieanet", weights="official")
        prec = resolve_precision(args.precision, "cpu")
        x = to_batch([read_image(p).rgb for p in paths])
        autocast = dict(device_type="cpu", dtype=prec.dtype, enabled=prec.dtype != torch.float32)
        with torch.inference_mode(), torch.autocast(**autocast):
            model(x[:1])  # warm-up
        alone = full = ahead = float("inf")
        for r in range(args.rounds):
            with torch.inference_mode(), torch.autocast(**autocast):
                t = time.perf_counter()
                for i in range(0, n, args.batch_size):
                    model(x[i : i + args.batch_size])
                alone = min(alone, time.perf_counter() - t)
            t = time.perf_counter()
            report = prelabel_model(
                ws, batch_size=args.batch_size, num_workers=args.loader_workers, precision=args.precision, redo=r > 0
            )
            full = min(full, time.perf_counter() - t)
            os.environ[DECODE_AHEAD_ENV] = "1"  # before: decoding and the label writer always beside the model
            t = time.perf_counter()
            report = prelabel_model(
                ws, batch_size=args.batch_size, num_workers=args.loader_workers, precision=args.precision, redo=True
            )
            ahead = min(ahead, time.perf_counter() - t)
            os.environ.pop(DECODE_AHEAD_ENV, None)
            assert report.n_saved == n, report.errors[:3]
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__,
            "images": n,
            "batch_size": args.batch_size,
            "loader_workers": args.loader_workers,
            "precision": prec.name,
            "rounds": args.rounds,
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "model_alone_images_per_s": n / alone,
            "prelabel_images_per_s": n / full,
            "ratio": alone / full,
            "decode_ahead_always_images_per_s": n / ahead,
            "decode_ahead_always_ratio": alone / ahead,
        }
    finally:
        dispose_engines()
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    kind = "demo-derived" if args.images else "demo"
    print(
        f"pre-label benchmark ({result['machine']}, {result['date']}, {n} {kind} images, batch {args.batch_size}, "
        f"{result['precision']}, load {result['load_average_1_5_15']})"
    )
    print(f"  model alone (tensors ready)          {result['model_alone_images_per_s']:.2f} images/s")
    print(
        f"  iea prelabel --method model           {result['prelabel_images_per_s']:.2f} images/s "
        f"({result['ratio']:.2f}x of the model alone; includes model load, decoding, resizing, storing)"
    )
    print(
        f"  before: decode+write beside it      {result['decode_ahead_always_images_per_s']:.2f} images/s "
        f"({result['decode_ahead_always_ratio']:.2f}x; {DECODE_AHEAD_ENV}=1, same rounds)"
    )
    return result


if __name__ == "__main__":
    main()
