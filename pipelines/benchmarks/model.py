"""P-IEANet inference: reference path vs fast path (float32, bfloat16 autocast).

Run: ``python -m pipelines.benchmarks.model [--repeats 5] [--bf16-repeats 2]
[--batch8-repeats 2] [--threads N] [--no-bf16] [--no-limit] [--precision-error] [--out FILE]``.

The limit: one 64->64 3x3 convolution at 256x256 (the FFA branch has sixteen, ~77 GFLOP
per image together) timed alone through oneDNN, channels-last, prepacked weights, fp32 and
bf16, batch 1 and 8, in the same interleaved rounds; ``limit images/s = 1 / (16 x t)``.
``--precision-error`` measures bf16 against fp32 the way pre-labels are stored (float16
maps at label resolution, every rule base's score) on the demo and golden photos, and
prints the record for ``iea_data/core/model/_precision.py``.

Every variant runs on the same inputs in the same process, interleaved (reference, fast
fp32, fast bf16, reference, ...), and the best of the repeats is kept. Inputs: the two
golden inputs of the released model (batch 1, with the max abs error against the golden
outputs) and eight random 256x256 images (batch 8, throughput, and the fast path's max
abs difference from the reference path). Without ../shared the released weights and
goldens are absent: the network is randomly initialised and errors are not reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GOLDEN = SHARED / "reference" / "p-ieanet-official" / "golden"
SAMPLES = ("test1_high", "test_low")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list:
    """The CPU's vector / matrix flags that matter here (from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
    except OSError:
        pass
    return []


def _variants(model, with_bf16: bool):
    """name -> callable(x) returning the released-sign output as float32."""
    import torch

    def reference(x):
        return model.forward_official(x, impl="reference")

    def fast(x):
        return model.forward_official(x, impl="fast")

    def fast_bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.forward_official(x, impl="fast").float()

    out = {"reference fp32": reference, "fast fp32": fast}
    if with_bf16:
        out["fast bf16 autocast"] = fast_bf16
    return out


_CONV_GFLOP = 64 * 64 * 9 * 256 * 256 * 2 / 1e9  # one 64->64 3x3 convolution at 256x256
_N_CONVS = 16  # such convolutions in the FFA branch


def _limit_variants(with_bf16: bool):
    """name -> (callable(), batch): one FFA-sized convolution alone, oneDNN, channels-last."""
    import torch

    ops = torch.ops.mkldnn
    gen = torch.Generator().manual_seed(0)
    w, b = torch.randn(64, 64, 3, 3, generator=gen), torch.randn(64, generator=gen)
    out = {}
    for dtype in (torch.float32, torch.bfloat16) if with_bf16 else (torch.float32,):
        packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
            w.to(dtype).to_mkldnn(), [1, 1], [1, 1], [1, 1], 1, [1, 64, 256, 256]
        )
        for n in (1, 8):
            x = torch.randn(n, 64, 256, 256, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
            name = f"conv {'fp32' if dtype == torch.float32 else 'bf16'} batch {n}"
            bias = b.to(dtype)
            out[name] = (
                lambda x=x, packed=packed, bias=bias: ops._convolution_pointwise(
                    x, packed, bias, [1, 1], [1, 1], [1, 1], 1, "none", [], ""
                ),
                n,
            )
    return out


def _precision_error(model) -> dict:
    """bf16 vs fp32 on the demo photos (6 x 5 exposures) and the goldens, as stored."""
    import tempfile

    from iea_data.core.imaging import read_image
    from iea_data.core.model import measure_precision_error
    from iea_data.workflows.demo import write_demo_photos

    with tempfile.TemporaryDirectory() as d:
        paths = write_demo_photos(d)
        images = [read_image(p).rgb for p in paths]
        names = [p.name for p in paths]
    if GOLDEN.is_dir():
        images += [np.ascontiguousarray(np.load(GOLDEN / f"{n}.input.npy").transpose(1, 2, 0)) for n in SAMPLES]
        names += [f"golden {n}" for n in SAMPLES]
    return measure_precision_error(model, images, names=names)


def _time(fn, x) -> float:
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds at batch 1 (reference, fast fp32)")
    ap.add_argument("--bf16-repeats", type=int, default=2, help="rounds that include bf16 (slow without native bf16)")
    ap.add_argument("--batch8-repeats", type=int, default=2, help="interleaved rounds at batch 8 (0: skip)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast variant")
    ap.add_argument("--no-limit", action="store_true", help="skip timing the convolution alone")
    ap.add_argument("--precision-error", action="store_true", help="measure bf16 vs fp32 on demo + golden photos")
    ap.add_argument("--out", type=Path, default=Path(".bench/model.json"))
    args = ap.parse_args(argv)

    import torch

    from iea_data.core.errors import IeaError
    from iea_data.core.model import PIEANet

    torch.set_num_threads(args.threads)
    try:
        model = PIEANet.from_official()
        weights = "official"
    except IeaError as exc:
        torch.manual_seed(0)
        model, weights = PIEANet().eval(), f"random init ({exc})"
    goldens = {}
    if GOLDEN.is_dir() and weights == "official":
        goldens = {
            n: (np.load(GOLDEN / f"{n}.input.npy"), np.load(GOLDEN / f"{n}.official_output.npy")) for n in SAMPLES
        }
    rng = np.random.default_rng(20261125)
    singles = [torch.from_numpy(g[0])[None] for g in goldens.values()] or [
        torch.from_numpy(rng.random((1, 3, 256, 256), dtype=np.float32)) for _ in SAMPLES
    ]
    batch8 = torch.from_numpy(rng.random((8, 3, 256, 256), dtype=np.float32))
    variants = _variants(model, not args.no_bf16)

    best1 = {k: float("inf") for k in variants}
    best8 = {k: float("inf") for k in variants}
    limits = {} if args.no_limit else _limit_variants(not args.no_bf16)
    best_limit = {k: float("inf") for k in limits}
    errors: dict = {k: None for k in variants}
    outputs8 = {}
    with torch.inference_mode():
        for fn, _ in limits.values():
            fn()
        for name, fn in variants.items():  # warm-up, and the errors against the goldens
            outs = [fn(x) for x in singles]
            if goldens:
                errors[name] = max(float(np.abs(o[0, 0].numpy() - g[1]).max()) for o, g in zip(outs, goldens.values()))
        for r in range(max(args.repeats, args.bf16_repeats)):
            x = singles[r % len(singles)]
            for name, fn in variants.items():
                if name.endswith("bf16 autocast") and r >= args.bf16_repeats:
                    continue
                if not name.endswith("bf16 autocast") and r >= args.repeats:
                    continue
                best1[name] = min(best1[name], _time(fn, x))
            for name, (fn, n) in limits.items():
                t = time.perf_counter()
                fn()
                best_limit[name] = min(best_limit[name], (time.perf_counter() - t) / n)
        for _ in range(args.batch8_repeats):
            for name in best8:
                t = time.perf_counter()
                outputs8[name] = variants[name](batch8)
                best8[name] = min(best8[name], time.perf_counter() - t)

    loadavg = os.getloadavg()
    ref1 = best1["reference fp32"]
    rows = {}
    for name in variants:
        row = {
            "batch1_s_per_image": best1[name],
            "batch1_images_per_s": 1.0 / best1[name],
            "batch1_ratio_to_reference": ref1 / best1[name],
            "max_abs_err_vs_golden": errors[name],
        }
        if name in best8 and args.batch8_repeats:
            row["batch8_images_per_s"] = 8.0 / best8[name]
            row["batch8_ratio_to_reference"] = best8["reference fp32"] / best8[name]
        rows[name] = row
    limit_rows = {
        name: {"ms_per_image": t * 1e3, "gflop_per_s": _CONV_GFLOP / t, "ffa_limit_images_per_s": 1 / (_N_CONVS * t)}
        for name, t in best_limit.items()
    }
    for name, row in rows.items():
        prec = "bf16" if "bf16" in name else "fp32"
        for b, key in ((1, "batch1_images_per_s"), (8, "batch8_images_per_s")):
            lim = limit_rows.get(f"conv {prec} batch {b}")
            if lim and key in row and name != "reference fp32":
                row[f"batch{b}_share_of_limit"] = row[key] / lim["ffa_limit_images_per_s"]
    if "fast fp32" in outputs8:
        rows["fast fp32"]["batch8_max_abs_diff_vs_reference"] = float(
            (outputs8["fast fp32"] - outputs8["reference fp32"]).abs().max()
        )
    result = {
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "threads": args.threads,
        "weights": weights,
        "allocator_env": {
            k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "LD_PRELOAD", "GLIBC_TUNABLES"))
        },
        "bf16_native": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
        "repeats": {"batch1": args.repeats, "bf16": args.bf16_repeats, "batch8": args.batch8_repeats},
        "load_average_1_5_15": [round(v, 2) for v in loadavg],
        "cpu_flags": _cpu_flags(),
        "variants": rows,
        "limit": limit_rows,
    }
    if args.precision_error:
        result["precision_error"] = _precision_error(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"P-IEANet inference ({result['machine']}, torch {result['torch']}, {args.threads} threads, "
        f"{result['date']}, weights: {weights.split(' (')[0]})"
    )
    print(f"  {'variant':<20} {'b1 img/s':>9} {'b1 ratio':>9} {'b8 img/s':>9} {'b8 ratio':>9} {'max|err| golden':>16}")
    for name, row in rows.items():
        err = row["max_abs_err_vs_golden"]
        print(
            f"  {name:<20} {row['batch1_images_per_s']:>9.3f} {row['batch1_ratio_to_reference']:>8.2f}x "
            f"{row.get('batch8_images_per_s', float('nan')):>9.3f} "
            f"{row.get('batch8_ratio_to_reference', float('nan')):>8.2f}x "
            f"{'n/a' if err is None else f'{err:.2e}':>16}"
        )
    for name, row in limit_rows.items():
        print(
            f"  limit: {name:<16} {row['ms_per_image']:>7.1f} ms/image {row['gflop_per_s']:>7.1f} GFLOP/s -> "
            f"FFA limit {row['ffa_limit_images_per_s']:.2f} images/s"
        )
    for name, row in rows.items():
        shares = [f"b{b} {row[f'batch{b}_share_of_limit']:.2f}" for b in (1, 8) if f"batch{b}_share_of_limit" in row]
        if shares:
            print(f"  {name}: share of the limit {', '.join(shares)}")
    print(f"  load average {result['load_average_1_5_15']}, CPU flags: {', '.join(result['cpu_flags']) or 'n/a'}")
    if "precision_error" in result:
        pe = result["precision_error"]
        print(
            f"  bf16 vs fp32 (stored float16 maps, {len(pe['rows'])} photos): max |delta| {pe['map_max_abs']:.4g}, "
            f"max |delta score| {pe['score_max_abs']}, {pe['score_changes']} score changes"
        )
    if "batch8_max_abs_diff_vs_reference" in rows["fast fp32"]:
        print(
            "  fast fp32 vs reference on 8 random images: max |diff| "
            f"{rows['fast fp32']['batch8_max_abs_diff_vs_reference']:.2e}"
        )
    print(f"  JSON: {args.out}")
    return result


if __name__ == "__main__":
    main()
