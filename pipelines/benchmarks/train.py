"""Training and benchmark throughput: `train()` images/s, a bare training step, and `run_benchmark` images/s per method.

Run: ``python -m pipelines.benchmarks.train [--images 4] [--epochs 2] [--batch-size 2] [--steps 3] [--device auto]
[--amp] [--bench-images 16] [--out FILE]``.

- Training: P-IEANet (fast path, 256x256, fine-tuning the released weights when present,
  else random init) through :func:`iea_data.workflows.training.train` on an in-memory split of
  scikit-image photos with exposure variants (images/s over the epoch loop,
  validation excluded; the last epoch is reported, the first one warms up), against a bare
  ``forward + L1 + backward + Adam step`` loop on the same batches in the same process: the
  library's own :func:`iea_data.workflows.training.train_step`, which ``train()`` runs for
  every batch (the baseline: the trainer's overhead is the ratio).
- Benchmark: :func:`iea_data.workflows.benchmark.run_benchmark` over ``--bench-images`` 256x256
  items with every method (the refdiff oracle gets the references), images/s as measured
  inside each method's calls.

On a CUDA machine ``--device cuda --amp`` measures float16 mixed precision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _items(n: int, size: int = 256, *, references: bool = False):
    """Exposure variants of scikit-image photos with their reference-difference labels."""
    import cv2
    import skimage.data
    import torch

    from iea_data.core.imaging import apply_ev, luma

    names = ["astronaut", "coffee", "chelsea", "rocket"]
    evs = [-2.0, -1.0, 1.0, 2.0]
    out = []
    for i in range(n):
        ref = cv2.resize(getattr(skimage.data, names[i % 4])(), (size, size), interpolation=cv2.INTER_AREA)
        ref = (ref / 255.0).astype(np.float32)
        img = apply_ev(ref, evs[(i // 4) % 4])
        item = {
            "image": torch.from_numpy(img.transpose(2, 0, 1).copy()),
            "residual": torch.from_numpy((luma(img) - luma(ref))[None].astype(np.float32)),
            "score": float("nan"),
            "name": f"{names[i % 4]}_{i}",
            "scene": names[i % 4],
            "image_id": i,
        }
        if references:
            item["reference"] = torch.from_numpy(ref.transpose(2, 0, 1).copy())
        out.append(item)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of train(); the last one is reported (warm)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="bare steps timed (after one warm-up)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--bench-images", type=int, default=16)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(".bench/train.json"))
    args = ap.parse_args(argv)

    import torch

    from iea_data.core.errors import IeaError
    from iea_data.core.model import create_model
    from iea_data.workflows.benchmark import list_methods, run_benchmark
    from iea_data.workflows.training import TrainConfig, collate_train, train, train_step

    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    try:
        create_model("pieanet", weights="official")
        init = "official"
    except IeaError:
        init = "scratch"
    result: dict = {
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "date": time.strftime("%Y-%m-%d"),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "amp": args.amp,
        "init": init,
    }
    if not args.skip_train:
        items = _items(args.images)
        # bare loop: the same model, batches, loss and optimiser without the trainer around them
        model = create_model("pieanet", weights=init if init == "official" else None).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        batches = [
            collate_train(items[i : i + args.batch_size], size=(256, 256))
            for i in range(0, len(items), args.batch_size)
        ]
        scaler = torch.amp.GradScaler(device.type, enabled=args.amp and device.type == "cuda")

        def step(b):  # the library's own step, as train() runs it (less the trainer's scheduler)
            train_step(model, b, opt, device=device, amp=args.amp, scaler=scaler)
            if device.type == "cuda":
                torch.cuda.synchronize()

        step(batches[0])
        times = []
        for k in range(args.steps):
            t = time.perf_counter()
            step(batches[k % len(batches)])
            times.append(time.perf_counter() - t)
        bare = args.batch_size / min(times)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                init=init,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=1e-5,
                device=str(device.type),
                amp=args.amp,
                val_metrics=("mae",),
            )
            t = time.perf_counter()
            res = train(items, items[:1], Path(tmp) / "run", config=cfg)
            wall = time.perf_counter() - t
        result["train"] = {
            "images": args.images,
            "batch_size": args.batch_size,
            "input": "256x256",
            "bare_step_images_per_s": bare,
            "bare_step_s_per_image": 1 / bare,
            "epochs": args.epochs,
            "per_epoch_images_per_s": [h["images_per_s"] for h in res.history],
            "train_epoch_images_per_s": res.history[-1]["images_per_s"],
            "ratio_to_bare": res.history[-1]["images_per_s"] / bare,
            "train_call_wall_s": wall,
        }
    bench_items = _items(args.bench_images, references=True)
    t = time.perf_counter()
    bres = run_benchmark(bench_items, list_methods(), batch_size=8, device=str(device))
    result["benchmark"] = {
        "images": args.bench_images,
        "input": "256x256",
        "wall_s": time.perf_counter() - t,
        "methods_images_per_s": {k: v["images_per_s"] for k, v in bres.method_info.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"Training and benchmark throughput ({result['machine']}, torch {result['torch']}, "
        f"{result['threads']} threads, "
        f"{result['device']}{', AMP' if args.amp else ''}, {result['date']}, init {init})"
    )
    if "train" in result:
        tr = result["train"]
        print(
            f"  train(): {tr['train_epoch_images_per_s']:.3f} images/s (batch {tr['batch_size']}, 256x256); "
            f"bare step {tr['bare_step_images_per_s']:.3f} images/s; ratio {tr['ratio_to_bare']:.2f}x"
        )
    print(f"  benchmark over {args.bench_images} images (images/s inside each method):")
    for k, v in result["benchmark"]["methods_images_per_s"].items():
        print(f"    {k:<14} {v:>10.2f}" if v else f"    {k:<14} n/a")
    print(f"  JSON: {args.out}")
    return result


if __name__ == "__main__":
    main()
