"""`iea assess` throughput: photos → model → five rule bases, against the model alone, side by side.

Run: ``python -m pipelines.benchmarks.assess [--loader-workers 2] [--batch-size 8]
[--precision fp32|auto|bf16] [--rounds 2] [--out FILE]``.
Reports images/s of ``assess`` (decoding in DataLoader workers, model, resizing to label
resolution, statistics and scores of all five rule bases) and of the model alone on tensors
already in memory, plus the rule-base scoring alone per 1024-px map. Needs the released
weights (../shared or IEA_PIEANET_WEIGHTS).
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
    ap.add_argument("--loader-workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each side is kept")
    ap.add_argument("--out", type=Path, default=Path(".bench/assess.json"))
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    from iea_data.core.imaging import read_image
    from iea_data.core.model import DECODE_AHEAD_ENV, create_model, resolve_precision, to_batch
    from iea_data.core.rules import get_rule_base, list_rule_bases, score_map, score_maps
    from iea_data.workflows.assess import assess
    from iea_data.workflows.demo import write_demo_photos

    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-assess-"))
    try:
        write_demo_photos(tmp)
        paths = sorted(str(p) for p in tmp.iterdir())
        n = len(paths)
        model = create_model("pieanet", weights="official")
        prec = resolve_precision(args.precision, "cpu")
        autocast = dict(device_type="cpu", dtype=prec.dtype, enabled=prec.dtype != torch.float32)
        x = to_batch([read_image(p).rgb for p in paths])
        with torch.inference_mode(), torch.autocast(**autocast):
            model(x[:1])  # warm-up
        alone = full = ahead = float("inf")
        for _ in range(args.rounds):  # interleaved, best of each: the machine may be shared
            with torch.inference_mode(), torch.autocast(**autocast):
                t = time.perf_counter()
                for i in range(0, n, args.batch_size):
                    model(x[i : i + args.batch_size])
                alone = min(alone, time.perf_counter() - t)
            t = time.perf_counter()
            report = assess(
                paths, batch_size=args.batch_size, num_workers=args.loader_workers, precision=args.precision
            )
            full = min(full, time.perf_counter() - t)
            os.environ[DECODE_AHEAD_ENV] = "1"  # before: decoding threads always beside the model
            t = time.perf_counter()
            report = assess(
                paths, batch_size=args.batch_size, num_workers=args.loader_workers, precision=args.precision
            )
            ahead = min(ahead, time.perf_counter() - t)
            os.environ.pop(DECODE_AHEAD_ENV, None)
            assert len(report.results) == n, report.errors[:3]
        rbs = [get_rule_base(name) for name in list_rule_bases()]
        rng = np.random.default_rng(0)
        r = np.clip(rng.normal(0, 0.2, (768, 1024)), -1, 1).astype(np.float32)
        mask = np.zeros(r.shape, bool)
        mask[200:600, 300:700] = True
        reps = 20
        t = time.perf_counter()
        for _ in range(reps):
            for rb in rbs:
                score_map(r, rb, mask=mask)
        scoring_ms = (time.perf_counter() - t) / reps * 1000
        t = time.perf_counter()
        for _ in range(reps):
            score_maps(r, rbs, mask=mask)
        shared_ms = (time.perf_counter() - t) / reps * 1000
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__,
            "images": n,
            "batch_size": args.batch_size,
            "loader_workers": args.loader_workers,
            "rounds": args.rounds,
            "precision": prec.name,
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "model_alone_images_per_s": n / alone,
            "assess_images_per_s": n / full,
            "ratio": alone / full,
            "decode_ahead_always_images_per_s": n / ahead,
            "decode_ahead_always_ratio": alone / ahead,
            "five_rule_bases_ms_per_1024px_map": scoring_ms,
            "five_rule_bases_shared_ms_per_1024px_map": shared_ms,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"assess benchmark ({result['machine']}, {result['date']}, {n} demo photos, batch {args.batch_size}, "
        f"{result['precision']}, load {result['load_average_1_5_15']})"
    )
    print(f"  model alone (tensors ready)      {result['model_alone_images_per_s']:.2f} images/s")
    print(
        f"  iea assess (5 rule bases)        {result['assess_images_per_s']:.2f} images/s "
        f"({result['ratio']:.2f}x of the model alone; includes model load, decoding, resizing, scoring)"
    )
    print(
        f"  before: decoding always beside it {result['decode_ahead_always_images_per_s']:.2f} images/s "
        f"({result['decode_ahead_always_ratio']:.2f}x; {DECODE_AHEAD_ENV}=1, same rounds)"
    )
    print(f"  scoring alone: {scoring_ms:.1f} ms for five rule bases on a 1024x768 map with a mask")
    print(f"  scoring alone, shared statistics (score_maps): {shared_ms:.1f} ms")
    return result


if __name__ == "__main__":
    main()
