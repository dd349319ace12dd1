"""Commands: iea brackets render. Registered on the root app by :func:`register`.

Exposure brackets from camera RAW: one demosaic per file, each EV scaled in linear light
(``iea_data.workflows.brackets``); the outputs group into one scene per RAW on ``iea ingest``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pipelines._console import EXIT_PARTIAL, console, err_console, lit, open_workspace, with_progress

brackets_app = typer.Typer(help="Exposure brackets rendered from camera RAW files.", no_args_is_help=True)


def _reference(text: str) -> Optional[float]:
    from iea_data.core.errors import IeaError

    if text.strip().lower() in ("none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise IeaError(f"--reference must be one of the EVs (e.g. 0) or 'none'; got {text!r}") from None


def _wb(text: Optional[str]) -> Optional[list[float]]:
    from iea_data.core.errors import IeaError

    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise IeaError(f"--wb must be R,G,B[,G2] multipliers such as 2.1,1,1.6; got {text!r}") from None


@brackets_app.command("render")
def render(
    raws: Annotated[list[Path], typer.Argument(help="Camera RAW files (DNG, CR2, NEF, ARW, ...).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    ev: Annotated[str, typer.Option(help="EVs in stops relative to the RAW's exposure.")] = "-2,-1,0,+1,+2",
    fmt: Annotated[str, typer.Option("--format", help="png16 (16-bit PNG), png (8-bit) or jpg.")] = "png16",
    reference: Annotated[
        str, typer.Option(help="The EV written as the scene's reference <stem>.<ext>, or 'none'.")
    ] = "0",
    name_style: Annotated[str, typer.Option(help="iea40k (<stem>_N2 … _P2) or ev (<stem>_-2EV).")] = "iea40k",
    wb: Annotated[
        Optional[str], typer.Option(help="White-balance multipliers R,G,B[,G2] (default: the camera's).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Files rendered in parallel.")] = 1,
) -> None:
    """Render exposure brackets from RAW files: demosaic once, scale each EV in linear light.

    Writes <stem>.<ext> (the reference EV) and <stem>_<variant>.<ext> per RAW, a
    <stem>.render.json with the provenance, and brackets.csv for `iea scenes sidecar`.
    Outputs already rendered with the same parameters are skipped. Exits 3 when a RAW failed
    (it is named; the others are rendered).

    Example: iea brackets render shots/*.dng --ev -2,-1,0,+1,+2 --out brackets/
    """
    from iea_data.workflows.brackets import render_brackets

    report = with_progress(
        "brackets",
        lambda cb: render_brackets(
            [str(p) for p in raws],
            out,
            evs=ev,
            fmt=fmt,
            reference=_reference(reference),
            name_style=name_style,
            wb=_wb(wb),
            workers=workers,
            progress=cb,
        ),
    )
    console.print(
        f"rendered {len(report.rendered)} RAW file(s) into {len(report.outputs)} image(s), "
        f"{len(report.skipped)} up to date, {len(report.errors)} failed; sidecar {lit(report.sidecar)}"
    )
    for e in report.errors:
        err_console.print(f"[red]{lit(e.reason)}[/red] {lit(e.message)}", highlight=False)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


def ingest_from_render(
    folders: list[Path], *, workers: Optional[int], summary: Callable[[Any], None], also: Optional[list[Path]] = None
) -> None:
    """``iea ingest --from-render DIR``: ingest render folders, one scene per RAW; exits 3 on failures.

    ``summary`` renders an ingest report (``iea ingest``'s table); ``also`` are plain folders
    given beside ``--from-render``, ingested first as ``iea ingest`` does.
    """
    from iea_data.workflows.brackets import ingest_render
    from iea_data.workflows.catalog import ingest as run_ingest

    ws = open_workspace()
    failed = False
    if also:  # folders given beside --from-render are ingested as usual first
        plain = with_progress("ingest", lambda cb: run_ingest(ws, also, workers=workers, progress=cb))
        summary(plain)
        failed = bool(plain.errors)
    report = with_progress("ingest", lambda cb: ingest_render(ws, folders, workers=workers, progress=cb))
    summary(report.ingest)
    console.print(
        f"{report.n_brackets} bracket(s) from RAW: {report.n_scenes} scene(s), {report.n_images} image(s) "
        f"grouped with their EVs and provenance"
    )
    for path in report.missing:
        err_console.print(f"[red]not grouped[/red] {lit(path)}: not in the catalog (see the errors above)")
    if failed or report.errors or report.missing:
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root ``iea`` app."""
    app.add_typer(brackets_app, name="brackets")
