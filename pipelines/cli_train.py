"""Commands: iea train and iea benchmark. Registered on the root app by :func:`register`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from iea_data.core.errors import IeaError
from pipelines._console import EXIT_PARTIAL, console, err_console, lit, print_table, with_progress


def train_cmd(
    release: Annotated[Path, typer.Option(help="A built release folder (WORKSPACE/releases/NAME/X.Y.Z).")],
    out: Annotated[Path, typer.Option(help="Output folder: last.pt, model.pth, best.pth, train_log.csv.")],
    train_split: Annotated[str, typer.Option(help="Split to train on.")] = "train",
    val_split: Annotated[Optional[str], typer.Option(help="Split to validate on (default: val, else valid).")] = None,
    model: Annotated[str, typer.Option(help="Registered model.")] = "pieanet",
    init: Annotated[
        str, typer.Option(help="official (fine-tune the released weights), scratch, or a checkpoint file.")
    ] = "official",
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per step (per process under torchrun).")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (Adam, cosine schedule to 0).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay.")] = 0.0,
    amp: Annotated[
        bool, typer.Option(help="Mixed precision (float16 + gradient scaler on CUDA, bfloat16 on CPU).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the shuffles.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    loader_workers: Annotated[int, typer.Option(help="DataLoader processes.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
) -> None:
    """Train (fine-tune by default) a residual-map model on a release with L1 loss; validate every epoch.

    Checkpoints are written atomically every epoch; after an interruption (even kill -9),
    the same command with --resume continues to the same result. Under torchrun the run
    uses DistributedDataParallel (gloo on CPU, NCCL on CUDA).

    Examples: iea train --release ws/releases/demo/1.0.0 --epochs 2 --out runs/ft1
              torchrun --nproc_per_node 2 -m pipelines.cli train --release R --out runs/ddp
    """
    from iea_data.workflows.training import TrainConfig, train_release

    try:
        config = TrainConfig(
            model=model,
            init=init,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            amp=amp,
            seed=seed,
            num_workers=loader_workers,
            device=device,
        )
    except ValueError as exc:
        raise IeaError(str(exc)) from None
    result = with_progress(
        "train (steps)",
        lambda cb: train_release(
            release, out, train_split=train_split, val_split=val_split, config=config, resume=resume, progress=cb
        ),
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    cols = ["epoch", "train_loss", "val_l1", "val_ssim", "val_pixel_acc", "val_srcc", "lr", "images_per_s"]
    print_table(
        result.history,
        [c for c in cols if result.history and c in result.history[0]],
        title=f"{out} · {'resumed after epoch ' + str(result.resumed_from) if result.resumed_from else 'new run'}"
        f" · {result.world_size} process(es)",
    )
    console.print(f"best epoch {result.best_epoch} (lowest val L1): {lit(result.files['best'])}")
    console.print(
        f"final weights: {lit(result.files['weights'])}  "
        "(iea assess --weights, iea benchmark --methods checkpoint:PATH)"
    )


def benchmark_cmd(
    release: Annotated[Optional[Path], typer.Option(help="A built release folder.")] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Report folder: metrics.md/.csv/.json, per_image.parquet, plots/, report.html."),
    ] = None,
    split: Annotated[
        Optional[str], typer.Option(help="Split to evaluate (default: val, else valid, else test).")
    ] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated methods, 'all', or checkpoint:PATH.")] = "all",
    metrics: Annotated[Optional[str], typer.Option(help="Comma-separated metrics (default: all).")] = None,
    resize: Annotated[int, typer.Option(help="Side the images and labels are resized to (0: stored size).")] = 256,
    device: Annotated[str, typer.Option(help="Device of the model methods: auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 8,
    loader_workers: Annotated[int, typer.Option(help="DataLoader processes.")] = 0,
    list_: Annotated[bool, typer.Option("--list", help="List the methods and metrics, then exit.")] = False,
) -> None:
    """Benchmark methods x metrics on a release split; write tables, per-image results, plots and an HTML report.

    Exits 3 when some predictions failed (listed; the rest is reported).

    Examples: iea benchmark --list
              iea benchmark --release ws/releases/demo/1.0.0 --split val --out bench/
              iea benchmark --release R --methods zero,clahe,checkpoint:runs/ft1/model.pth --out bench2/
    """
    from iea_data.core.metrics import get_metric_cfg, list_metrics
    from iea_data.workflows.benchmark import (
        benchmark_release,
        get_method_cfg,
        list_methods,
        parse_method_spec,
    )

    if list_:
        rows = [
            {
                "method": n,
                "kind": get_method_cfg(n).kind,
                "needs": ", ".join(get_method_cfg(n).needs),
                "description": get_method_cfg(n).description,
            }
            for n in list_methods()
        ]
        print_table(rows, ["method", "kind", "needs", "description"], title="methods (also checkpoint:PATH)")
        mrows = [
            {
                "metric": n,
                "kind": get_metric_cfg(n).kind,
                "better": "lower" if get_metric_cfg(n).lower_better else "higher",
                "reference": get_metric_cfg(n).reference,
            }
            for n in list_metrics()
        ]
        print_table(mrows, ["metric", "kind", "better", "reference"], title="metrics")
        return
    if release is None or out is None:
        raise IeaError("--release and --out are required (or pass --list)")
    names = parse_method_spec(methods)
    metric_names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    result, files = with_progress(
        "benchmark",
        lambda cb: benchmark_release(
            release,
            split,
            methods=names,
            out=out,
            metrics=metric_names,
            resize=resize or None,
            batch_size=batch_size,
            num_workers=loader_workers,
            device=device,
            progress=cb,
        ),
    )
    shown = [
        c
        for c in ("mae", "ssim", "psnr", "pixel_acc", "miou", "srcc@mean_abs", "plcc@mean_abs", "images_per_s")
        if c in result.table.columns
    ]
    print_table(
        result.table.to_dict(orient="records"),
        ["method"] + shown,
        title=f"{result.n_images} images · true scores: {result.true_score_source}",
    )
    for label, info in result.method_info.items():
        if info["status"] != "ok":
            console.print(
                f"[yellow]{lit(label)}[/yellow]: {lit(info['status'])} ({lit(info['reason'])})", highlight=False
            )
    console.print(
        f"report: {lit(files['html'])}  "
        f"(tables: {lit(files['markdown'].name)}, {lit(files['csv'].name)}, {lit(files['json'].name)})"
    )
    if result.errors:
        err_console.print(f"[red]{len(result.errors)} prediction(s) failed[/red]:")
        for method, name, message in result.errors[:50]:
            err_console.print(f"  [red]{lit(method)}[/red] {lit(name)}: {lit(message)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    """Add ``iea train`` and ``iea benchmark`` to the root ``iea`` app."""
    app.command("train")(train_cmd)
    app.command("benchmark")(benchmark_cmd)
