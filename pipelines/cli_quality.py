"""Commands: iea quality (gold add|ls|rm|rate, consensus, report) and iea labels import. Registered by :func:`register`.

Everything is a call of :mod:`iea_data.workflows.quality`; see docs/quality.md.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipelines._console import (
    EXIT_PARTIAL,
    JsonOpt,
    console,
    err_console,
    lit,
    open_workspace,
    print_json,
    print_table,
    with_progress,
)

quality_app = typer.Typer(
    help="Annotation quality: gold images, consensus revisions, the quality report (docs/quality.md).",
    no_args_is_help=True,
)
gold_app = typer.Typer(help="Gold images: add, ls, rm, rate.", no_args_is_help=True)
labels_app = typer.Typer(help="Labels made elsewhere: import.", no_args_is_help=True)
quality_app.add_typer(gold_app, name="gold")


def print_import_report(report, what: str) -> None:
    """One line for an import, then the files that matched no image (stderr)."""
    console.print(
        f"{what}: {report.n_files} files, {report.n_saved} saved, {report.n_unchanged} already imported"
        + (f", {report.n_without_map} rows without a map" if report.n_without_map else ""),
        highlight=False,
    )
    if report.unmatched:
        err_console.print(f"[yellow]{len(report.unmatched)} files name no image and were left out:[/yellow]")
        for name in report.unmatched[:20]:
            err_console.print(f"  {lit(name)}", highlight=False)


@gold_app.command("add")
def gold_add(
    image: Annotated[str, typer.Argument(help="Image id or name.")],
    label: Annotated[
        Optional[int], typer.Option(help="Reference label id (default: imported map, else newest accepted).")
    ] = None,
) -> None:
    """Mark an image as gold with a reference map. Example: iea quality gold add s_N1.png"""
    from iea_data.workflows.quality import add_gold

    g = add_gold(open_workspace(), image, label_id=label)
    console.print(
        f"gold: {lit(g.image_name)} (image {g.image_id}), reference label {g.label_id} ({lit(g.label_chain)})",
        highlight=False,
    )


@gold_app.command("ls")
def gold_ls(as_json: JsonOpt = False) -> None:
    """List gold images with their references. Example: iea quality gold ls --json"""
    from iea_data.workflows.quality import get_gold_rate, list_gold

    ws = open_workspace()
    rows = [asdict(g) for g in list_gold(ws)]
    if as_json:
        print_json({"rate": get_gold_rate(ws), "gold": rows})
        return
    print_table(rows, ["image_id", "image_name", "label_id", "label_kind", "label_chain", "added_by", "added_at"])
    err_console.print(f"gold rate: {get_gold_rate(ws):.3g} of queue positions", highlight=False)


@gold_app.command("rm")
def gold_rm(image: Annotated[str, typer.Argument(help="Image id or name.")]) -> None:
    """Unmark a gold image. Example: iea quality gold rm s_N1.png"""
    from iea_data.workflows.quality import remove_gold

    remove_gold(open_workspace(), image)
    console.print(f"{lit(image)} is no longer gold", highlight=False)


@gold_app.command("rate")
def gold_rate_cmd(
    rate: Annotated[Optional[float], typer.Argument(help="Share of queue positions, 0 to 0.5 (0.05 = 5 %).")] = None,
) -> None:
    """Show or set the workspace's gold rate. Example: iea quality gold rate 0.1"""
    from iea_data.workflows.quality import get_gold_rate, set_gold_rate

    ws = open_workspace()
    value = get_gold_rate(ws) if rate is None else set_gold_rate(ws, rate)
    console.print(f"gold rate: {value:.3g}", highlight=False)


@quality_app.command("consensus")
def consensus_cmd(
    method: Annotated[str, typer.Option(help="staple | median | mean | trimmed.")] = "staple",
    redo: Annotated[bool, typer.Option(help="Recompute every image, not only missing or stale ones.")] = False,
    stale_only: Annotated[
        bool, typer.Option("--stale-only", help="Only the images marked stale, with the stored rater fit (no refit).")
    ] = False,
    fit_images: Annotated[
        int, typer.Option(min=0, help="staple: fit the raters on at most this many images (a fixed sample); 0 = all.")
    ] = 2000,
    as_json: JsonOpt = False,
) -> None:
    """Write a consensus revision per image with 2+ experts (resumable). Exits 3 when some images failed.

    Example: iea quality consensus --method staple
    """
    from iea_data.workflows.quality import compute_consensus, update_consensus

    ws = open_workspace()
    if stale_only:
        report = with_progress("consensus", lambda cb: update_consensus(ws, progress=cb))
    else:
        report = with_progress(
            "consensus",
            lambda cb: compute_consensus(ws, method=method, redo=redo, fit_images=fit_images or None, progress=cb),
        )
    if as_json:
        print_json(asdict(report))
    else:
        console.print(
            f"consensus ({lit(report.method)}): {report.n_images} images with 2+ experts, {report.n_saved} written, "
            f"{report.n_skipped} up to date, {len(report.errors)} failed",
            highlight=False,
        )
    for name, message in report.errors[:50]:
        err_console.print(f"  [red]{lit(name)}[/red]: {lit(message)}", highlight=False)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


@quality_app.command("rebuild-summary")
def rebuild_summary_cmd(as_json: JsonOpt = False) -> None:
    """Recompute the quality summary (experts per image, images done, strokes, save gaps) from the labels.

    The writers keep it in their own transaction; this repairs it after rows were changed
    behind their back (plain SQL, a restored backup). Example: iea quality rebuild-summary
    """
    from iea_data.workflows.quality import rebuild_summary

    counts = rebuild_summary(open_workspace())
    if as_json:
        print_json(counts)
    else:
        console.print(f"quality summary: {counts['images']} images, {counts['annotators']} annotators", highlight=False)


@quality_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option(help="Folder for index.html, CSV, Parquet and PNG files.")],
    as_json: JsonOpt = False,
) -> None:
    """Write the quality report: per-annotator table, gold scores, reliability, plots.

    Example: iea quality report --out quality/
    """
    from iea_data.workflows.quality import ANNOTATOR_COLUMNS, quality_report, write_quality_report

    ws = open_workspace()
    report = quality_report(ws)
    paths = write_quality_report(report, out)
    if as_json:
        print_json({"files": [str(p) for p in paths], "reliability": report.reliability})
        return
    print_table(report.annotators, list(ANNOTATOR_COLUMNS[:8]) + ["bias", "noise_sd", "agreement_consensus"])
    console.print(f"wrote {len(paths)} files to {lit(out)}", highlight=False)


@labels_app.command("import")
def labels_import(
    folder: Annotated[Path, typer.Argument(help="Folder of <image name>.npy maps, float in [-1, 1], any size.")],
    author: Annotated[str, typer.Option(help="The expert (created as an annotator without a password if new).")],
    status: Annotated[str, typer.Option(help="submitted | accepted.")] = "submitted",
    sign: Annotated[str, typer.Option(help="project (Y(photo) - Y(ideal)) | released (ideal - test).")] = "project",
) -> None:
    """Import an expert's maps from another tool as revisions of their chain; one bad file imports nothing.

    Example: iea labels import maps/ --author alice --status accepted
    """
    from iea_data.workflows.quality import import_expert_labels

    report = import_expert_labels(open_workspace(), folder, author=author, status=status, sign=sign)
    print_import_report(report, f"labels of {lit(author)}")


def register(app: typer.Typer) -> None:
    """Add ``iea quality`` and ``iea labels`` to the root app."""
    app.add_typer(quality_app, name="quality")
    app.add_typer(labels_app, name="labels")
