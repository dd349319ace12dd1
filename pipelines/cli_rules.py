"""Commands: ``iea assess`` and ``iea rules`` (ls, show, check). Registered by :func:`register`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from iea_data.core.errors import IeaError
from pipelines._console import (
    EXIT_PARTIAL,
    TABLE_LIMIT,
    console,
    err_console,
    lit,
    print_json,
    print_table,
    with_progress,
)
from pipelines._options import ActorsOpt, RayAddressOpt

rules_app = typer.Typer(help="Rule bases (pixel map → 0-100 score): ls, show, check.", no_args_is_help=True)


def assess_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Photos or folders (a .npy file is scored as a residual map).")],
    rules: Annotated[
        Optional[list[str]], typer.Option("--rules", help="Rule base name or .json file; repeat. Default: all.")
    ] = None,
    heatmaps: Annotated[
        Optional[Path], typer.Option(help="Folder for blue-white-red heatmap PNGs with the scores.")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the results to a .csv or .json file.")] = None,
    masks: Annotated[
        Optional[Path], typer.Option(help="Folder of region masks <image stem>.png (white = region).")
    ] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Override every rule base's under/over threshold.")] = None,
    weights: Annotated[str, typer.Option(help="'official' (released) or a checkpoint file.")] = "official",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per model batch.")] = 8,
    loader_workers: Annotated[int, typer.Option(help="Threads decoding images while the model runs (0: in turn).")] = 2,
    max_side: Annotated[int, typer.Option(help="Long side of the residual maps.")] = 1024,
    precision: Annotated[
        str,
        typer.Option(
            help="fp32 (default: scores independent of the CPU), "
            "auto (bf16 where native and within its measured error bound) or bf16."
        ),
    ] = "fp32",
    engine: Annotated[
        str, typer.Option(help="local, or ray (Ray Data; --out is then a folder for a Parquet dataset).")
    ] = "local",
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
) -> None:
    """Assess the exposure of any photos: residual map, mean |residual|, each rule base's score.

    Fractions under- and overexposed are counted at each rule base's own thresholds. Photos
    need not be in a catalog. Exits 3 when some files failed (each is named); the others are
    still assessed.

    Examples: iea assess shots/ --heatmaps maps/ --out scores.csv
              iea assess a.jpg --rules strict_landscape --rules my_rules.json
    """
    from iea_data.workflows.assess import assess

    if engine == "ray":
        _assess_on_ray(
            paths,
            rules,
            heatmaps,
            out,
            masks,
            threshold,
            weights,
            device,
            batch_size,
            max_side,
            precision,
            ray_address,
            actors,
        )
        return
    if engine != "local":
        raise IeaError(f"--engine must be local or ray, got {engine!r}")
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise IeaError(f"--out must end in .csv or .json, got {out.name!r}")
    if precision not in ("auto", "fp32", "bf16"):
        raise IeaError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    rbs = _rule_bases(rules, threshold)
    report = with_progress(
        "assess",
        lambda cb: assess(
            paths,
            rule_bases=rbs,
            masks=masks,
            heatmaps_dir=heatmaps,
            weights=weights,
            device=device,
            batch_size=batch_size,
            num_workers=loader_workers,
            max_side=max_side,
            progress=cb,
            precision=precision,
        ),
    )
    n = len(report.results)
    columns = ["path", "mean_abs"] + [f"{rb.name}.score" for rb in rbs]
    shown = [
        {**row, "path": os.path.basename(row["path"])} for row in (r.to_row() for r in report.results[:TABLE_LIMIT])
    ]
    if n:
        print_table(shown, columns, title=f"{n} assessed · {report.images_per_second:.2f} images/s")
    else:
        console.print("nothing assessed")
    if n > TABLE_LIMIT:
        console.print(f"… {n - TABLE_LIMIT} more rows (use --out)")
    for note in report.notes():
        console.print(f"[yellow]note:[/yellow] {lit(note)}", highlight=False)
    if out is not None:
        report.write(out)
        console.print(f"wrote {lit(out)}")
    if report.errors:
        err_console.print(f"[red]{len(report.errors)} file(s) failed[/red]:")
        for path, message in report.errors[:50]:
            err_console.print(f"  [red]{lit(path)}[/red]: {lit(message)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


def _rule_bases(rules: Optional[list[str]], threshold: Optional[float]) -> list:
    from iea_data.core.rules import get_rule_base, list_rule_bases

    rbs = [get_rule_base(r) for r in (rules or list_rule_bases())]
    if threshold is not None:
        try:
            rbs = [
                rb.with_thresholds(under=threshold, over=threshold, severe=max(threshold, rb.thresholds.severe))
                for rb in rbs
            ]
        except ValueError as exc:
            raise IeaError(f"--threshold: {exc}") from None
    return rbs


def _assess_on_ray(
    paths, rules, heatmaps, out, masks, threshold, weights, device, batch_size, max_side, precision, address, actors
) -> None:
    """``iea assess --engine ray``: a Parquet dataset of rows (one per photo, errors included)."""
    from pipelines._console import with_rate_progress
    from pipelines.engines import run_on_ray

    if out is not None and out.suffix:
        raise IeaError(f"with --engine ray, --out is a folder for a Parquet dataset (no suffix), got {out.name!r}")
    if precision not in ("auto", "fp32", "bf16"):
        raise IeaError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    rbs = _rule_bases(rules, threshold)
    report, cluster = with_rate_progress(
        "assess (ray)",
        lambda cb: run_on_ray(
            "assess",
            address=address,
            progress=cb,
            paths=paths,
            out=out,
            rule_bases=rbs,
            masks=masks,
            heatmaps_dir=heatmaps,
            weights=weights,
            device=device,
            precision=precision,
            batch_size=batch_size,
            actors=actors,
            max_side=max_side,
        ),
    )
    scored = report.scored
    columns = ["path", "mean_abs"] + [f"{rb.name}.score" for rb in rbs]
    shown = [{**row, "path": os.path.basename(row["path"])} for row in scored[:TABLE_LIMIT]]
    if scored:
        print_table(shown, columns, title=f"{len(scored)} assessed · {report.images_per_second:.2f} images/s")
    else:
        console.print("nothing assessed")
    if len(scored) > TABLE_LIMIT:
        console.print(f"… {len(scored) - TABLE_LIMIT} more rows (use --out)")
    err_console.print(f"engine: {lit(report.engine)}", highlight=False)
    if report.out is not None:
        console.print(f"wrote {lit(report.out)} (Parquet dataset, one row per photo)")
    if report.errors:
        err_console.print(f"[red]{len(report.errors)} file(s) failed[/red] (rows with their error):")
        for path, message in report.errors[:50]:
            err_console.print(f"  [red]{lit(path)}[/red]: {lit(message)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


@rules_app.command("ls")
def rules_ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered rule bases."""
    from iea_data.core.rules import get_rule_base, list_rule_bases

    rows = []
    for name in list_rule_bases():
        rb = get_rule_base(name)
        t = rb.thresholds
        rows.append(
            {
                "name": name,
                "title": rb.title,
                "region": rb.region or "-",
                "levels": len(rb.levels),
                "thresholds": f"under {t.under:g} · over {t.over:g} · severe {t.severe:g}",
            }
        )
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "title", "region", "levels", "thresholds"])


@rules_app.command("show")
def rules_show(name: Annotated[str, typer.Argument(help="Rule base name or .json file.")]) -> None:
    """Show a rule base's levels: score, published condition, and the formal rule."""
    from iea_data.core.rules import get_rule_base, rule_base_summary

    rb = get_rule_base(name)
    t = rb.thresholds
    console.print(f"[bold]{lit(rb.title)}[/bold] ({lit(rb.name)}) — {lit(rb.description)}", highlight=False)
    console.print(
        f"thresholds: under ≤ −{t.under:g}, over ≥ +{t.over:g}, severe |r| ≥ {t.severe:g}; "
        f"region: {lit(rb.region or 'none (whole image)')}",
        highlight=False,
    )
    print_table(rule_base_summary(rb), ["score", "condition", "rule", "note"])


@rules_app.command("check")
def rules_check(path: Annotated[Path, typer.Argument(help="Rule-base .json file.")]) -> None:
    """Validate a custom rule-base file; errors name the line to fix."""
    from iea_data.core.rules import load_rule_base

    rb = load_rule_base(path)
    console.print(f"{lit(path)}: valid rule base {lit(repr(rb.name))} with {len(rb.levels)} levels")


def register(app: typer.Typer) -> None:
    """Add ``iea assess`` and ``iea rules`` to the root app."""
    app.command("assess")(assess_cmd)
    app.add_typer(rules_app, name="rules")
