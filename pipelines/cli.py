"""The ``iea`` command line: parses arguments, calls one library function, renders with Rich.

Exit status (scripts can trust it):

- 0: success;
- 1: an error (bad input, missing workspace, …) — one line on stderr saying what to do;
  ``IEA_DEBUG=1`` shows the traceback;
- 2: wrong usage (unknown option, missing argument);
- 3: the command finished but some files failed (``iea ingest``, ``iea demo``,
  ``iea import-manifest --images``); they are listed and kept in ``iea catalog errors``.
- 141: the reader of stdout stopped early (``iea catalog ls | head``); nothing is printed.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from iea_data.core.errors import IeaError
from pipelines._console import (  # shared by every sub-app
    EXIT_PARTIAL,
    TABLE_LIMIT,
    JsonOpt,
    ReaderGone,
    WorkspaceOpt,
    console,
    err_console,
    install_log_handler,
    lit,
    one_line,
    print_click_error,
    print_traceback,
    state,
)
from pipelines._console import open_workspace as _ws
from pipelines._console import (
    print_json as _print_json,
)
from pipelines._console import (
    print_table as _table,
)
from pipelines._console import (
    with_progress as _with_progress,
)
from pipelines._options import ActorsOpt, EngineOpt, RayAddressOpt  # shared with cli_rules

app = typer.Typer(
    name="iea",
    help="Pixel-level image exposure assessment (IEA) data toolkit: catalog, pre-labels, annotation, releases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="Inspect the catalog: ls, stats, errors, runs, snapshot, export-manifest.", no_args_is_help=True
)
scenes_app = typer.Typer(
    help="Exposure brackets (scenes): list, set references, group by EXIF or sidecar.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema: upgrade, current.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(scenes_app, name="scenes")
app.add_typer(db_app, name="db")


@app.callback()
def _root(workspace: WorkspaceOpt = None) -> None:
    """Find the workspace from --workspace, else IEA_HOME, else the current folder."""
    state.workspace = workspace


def _ingest_summary(report) -> None:
    row = {
        "files": report.n_files,
        "new": report.n_new,
        "linked": report.n_linked,
        "duplicate bytes": report.n_duplicate,
        "unchanged": report.n_unchanged,
        "scenes created": report.n_scenes,
        "errors": report.n_errors,
        "seconds": f"{report.seconds:.1f}",
    }
    _table([row], list(row), title=f"Ingest run {report.run_id}")
    if report.errors:
        err_console.print(f"[red]{report.n_errors} file(s) failed[/red] (kept in `iea catalog errors`):")
        for e in report.errors[:50]:
            err_console.print(f"  [red]{lit(e.reason)}[/red] {lit(e.path)}: {lit(e.message)}", highlight=False)
        if report.n_errors > 50:
            err_console.print(f"  … and {report.n_errors - 50} more")


# --------------------------------------------------------------------------- engines (issue 12)


def _engine(engine: str) -> str:
    if engine not in ("local", "ray"):
        raise IeaError(f"--engine must be local or ray, got {engine!r}")
    return engine


def _on_ray(description: str, what: str, address: Optional[str], **kwargs):
    """Run a workflow on Ray under one progress bar with images/s; print where it ran."""
    from pipelines._console import with_rate_progress
    from pipelines.engines import run_on_ray

    report, cluster = with_rate_progress(
        description, lambda cb: run_on_ray(what, address=address, progress=cb, **kwargs)
    )
    started = f", started in {cluster.start_seconds:.1f} s" if cluster.started_here else ""
    err_console.print(f"ray: {lit(cluster.describe())}{started}", highlight=False)
    return report


# --------------------------------------------------------------------------- workspace


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create (default: the current folder).")] = Path("."),
) -> None:
    """Create a workspace: iea.toml, the catalog database (migrated), objects/ and releases/.

    Example: iea init ~/iea-work
    """
    from iea_data.store.workspace import init_workspace

    ws = init_workspace(directory)
    console.print(f"workspace ready at [bold]{lit(ws.root)}[/bold] (database: {lit(ws.database_url_redacted)})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the workspace's database.

    Example: iea db upgrade
    """
    from iea_data.store import upgrade_database

    ws = _ws()
    rev = upgrade_database(ws.engine())
    console.print(f"catalog schema at revision {rev}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest this code knows."""
    from iea_data.store import current_revision, head_revision

    ws = _ws()
    console.print(f"database: {lit(current_revision(ws.engine()))}  code: {lit(head_revision())}")


@app.command()
def demo(
    workers: Annotated[Optional[int], typer.Option(help="Decoder processes (default: workspace setting).")] = None,
) -> None:
    """Build the demo: scikit-image photos, each a scene with -2, -1, +1, +2 EV variants, ingested.

    Example: iea -w demo-workspace demo
    """
    from iea_data.workflows.demo import build_demo

    ws = _ws()
    report = _with_progress("demo", lambda cb: build_demo(ws, workers=workers, progress=cb))
    _ingest_summary(report)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def ingest(
    dirs: Annotated[Optional[list[Path]], typer.Argument(help="Folders (walked recursively) or files.")] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Decoder processes (default: workspace setting; 0 there = all cores).")
    ] = None,
    group: Annotated[str, typer.Option(help="Scene grouping of new images: filename or none.")] = "filename",
    from_render: Annotated[
        Optional[list[Path]],
        typer.Option(help="An `iea brackets render` --out folder: one scene per RAW, EVs and provenance."),
    ] = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    batch_size: Annotated[int, typer.Option(help="Files per Ray task (--engine ray).")] = 16,
) -> None:
    """Ingest photos: decode in worker processes, hash, EXIF, luma statistics, thumbnails.

    Incremental: unchanged files are skipped without reading them. Exits 3 when any file
    failed (each is named; see `iea catalog errors`).

    Example: iea ingest photos/ more/ --workers 4
    Example: iea ingest --from-render brackets/
    """
    from iea_data.workflows.catalog import ingest as run_ingest

    if from_render:  # issue 14: what `iea brackets render` wrote (pipelines/cli_brackets.py)
        from pipelines.cli_brackets import ingest_from_render

        ingest_from_render(from_render, workers=workers, also=dirs, summary=_ingest_summary)
        return
    if not dirs:
        raise typer.BadParameter("give folders or files to ingest (or --from-render DIR)", param_hint="DIRS")
    ws = _ws()
    if _engine(engine) == "ray":
        report = _on_ray("ingest (ray)", "ingest", ray_address, ws=ws, roots=dirs, group=group, batch_size=batch_size)
    else:
        report = _with_progress("ingest", lambda cb: run_ingest(ws, dirs, workers=workers, group=group, progress=cb))
    _ingest_summary(report)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("import-manifest")
def import_manifest_cmd(
    csv_path: Annotated[Path, typer.Argument(help="Manifest CSV with columns img_id,ref_id,score.")],
    split: Annotated[str, typer.Option(help="Split the rows join, e.g. train or valid.")],
    images: Annotated[Optional[Path], typer.Option(help="Folder holding the image files, to link them now.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace the split's existing membership.")] = False,
    maps: Annotated[
        Optional[Path], typer.Option(help="Folder of the released <img_id stem>.npy maps, imported as labels.")
    ] = None,
) -> None:
    """Import a released IEA40K manifest: scenes, variants, references, scores, split membership.

    One transaction: a bad row (named in the error) imports nothing. Rows whose files are
    absent are kept with status 'missing' until the files are ingested.

    Example: iea import-manifest train_256.csv --split train --images /data/iea40k/train
    """
    from iea_data.workflows.catalog import import_manifest

    ws = _ws()
    if maps is not None:  # issue 15: a bad map refuses the whole import, before the manifest is written
        from iea_data.workflows.quality import check_released_maps_dir

        check_released_maps_dir(maps)
    report = import_manifest(ws, csv_path, split=split, replace=replace)
    console.print(
        f"split [bold]{lit(report.split)}[/bold]: {report.n_rows} rows, {report.n_scenes} scenes, "
        f"{report.n_images_new} new images, {report.n_missing_files} without a file"
    )
    if maps is not None:  # issue 15: the released maps as labels of kind `imported`
        from iea_data.workflows.quality import import_released_maps
        from pipelines.cli_quality import print_import_report

        print_import_report(import_released_maps(ws, maps, split=split), "released maps")
    if images is not None:
        from iea_data.workflows.catalog import link_missing_files

        r = _with_progress("linking", lambda cb: link_missing_files(ws, images, progress=cb))
        if r is None:
            console.print(f"no file of a row without one was found in {lit(images)}")
            return
        _ingest_summary(r)
        if r.errors:
            raise typer.Exit(EXIT_PARTIAL)


# --------------------------------------------------------------------------- catalog


@catalog_app.command("ls")
def catalog_ls(
    scene: Annotated[Optional[str], typer.Option(help="Only this scene.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split.")] = None,
    status: Annotated[Optional[str], typer.Option(help="ok, error or missing.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many rows.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List images with scene, variant, size and mean luma.

    Example: iea catalog ls --scene astronaut --json
    """
    from iea_data.workflows.catalog import list_images

    ws = _ws()
    shown = limit if (limit is not None or as_json) else TABLE_LIMIT + 1
    rows = list_images(ws, scene=scene, split=split, status=status, limit=shown)
    if as_json:
        _print_json(rows)
        return
    more = limit is None and len(rows) > TABLE_LIMIT
    _table(
        rows[:TABLE_LIMIT] if more else rows,
        ["id", "name", "status", "scene", "variant", "is_reference", "width", "height", "bit_depth", "luma_mean"],
    )
    if more:
        err_console.print(f"showing the first {TABLE_LIMIT} images; use --limit N, filters or --json for all")


@catalog_app.command("stats")
def catalog_stats_cmd(as_json: JsonOpt = False) -> None:
    """Summary counts: images by status, scenes, scores, labels, splits, ingest runs.

    Example: iea catalog stats
    """
    from iea_data.workflows.catalog import catalog_stats

    ws = _ws()
    stats = catalog_stats(ws)
    if as_json:
        _print_json(stats)
        return
    rows = [("images", stats["images"])]
    rows += [(f"  {k}", v) for k, v in stats["images_by_status"].items()]
    rows += [
        ("file paths", stats["paths"]),
        ("scenes", stats["scenes"]),
        ("  with a reference", stats["scenes_with_reference"]),
        ("scores", stats["scores"]),
    ]
    rows += [(f"labels {k}", v) for k, v in stats["labels"].items()]
    rows += [(f"split {k}", v) for k, v in stats["splits"].items()]
    rows += [("ingest runs", stats["ingest_runs"]), ("files failing", stats["open_errors"])]
    _table([{"what": w, "count": n} for w, n in rows], ["what", "count"], title=f"Catalog {ws.root}")


@catalog_app.command("errors")
def catalog_errors(
    run: Annotated[Optional[int], typer.Option(help="Only this ingest run.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include errors of files that were fixed since.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List files that failed to ingest, with the reason (still failing ones by default).

    Example: iea catalog errors --json
    """
    from iea_data.workflows.catalog import list_errors

    ws = _ws()
    rows = list_errors(ws, run_id=run, include_resolved=all_)
    if as_json:
        _print_json(rows)
    else:
        _table(rows, ["run_id", "reason", "path", "message"], title=f"{len(rows)} failing file(s)")


@catalog_app.command("runs")
def catalog_runs(limit: Annotated[int, typer.Option(help="How many runs.")] = 20, as_json: JsonOpt = False) -> None:
    """List the newest ingest runs.

    Example: iea catalog runs --limit 5
    """
    from iea_data.workflows.catalog import list_runs

    ws = _ws()
    rows = list_runs(ws, limit=limit)
    if as_json:
        _print_json(rows)
    else:
        _table(
            rows, ["id", "kind", "status", "n_files", "n_new", "n_duplicate", "n_unchanged", "n_errors", "started_at"]
        )


@catalog_app.command("snapshot")
def catalog_snapshot(
    out: Annotated[
        Path, typer.Option(help="Folder for one Parquet file per table: new, empty, or an earlier snapshot.")
    ],
    include_users: Annotated[
        bool,
        typer.Option(
            "--include-users", help="Also write users.parquet: names, roles, enabled, created (never password hashes)."
        ),
    ] = False,
) -> None:
    """Write a Parquet snapshot (one file per table, versioned Arrow schemas) for pandas/pyarrow/DuckDB.

    Made to be shared: no password hash and no login throttle (names typed at the login form)
    are written; users only with --include-users. A folder holding files that a snapshot did
    not write (a release's native/, say) is refused.

    Example: iea catalog snapshot --out snap/  then  duckdb -c "select * from 'snap/images.parquet'"
    """
    from iea_data.workflows.catalog import write_snapshot

    counts = write_snapshot(_ws(), out, include_users=include_users)
    _table([{"table": k, "rows": v} for k, v in counts.items()], ["table", "rows"], title=f"snapshot in {out}")


@catalog_app.command("export-manifest")
def catalog_export_manifest(
    split: Annotated[str, typer.Option(help="The split to export.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (img_id,ref_id,score).")],
) -> None:
    """Write a split back in the released manifest format.

    Example: iea catalog export-manifest --split train --out train.csv
    """
    from iea_data.workflows.catalog import export_manifest

    ws = _ws()
    text = export_manifest(ws, split, out)
    console.print(f"wrote {text.count(chr(10)) - 1} rows to {lit(out)}")


# --------------------------------------------------------------------------- scenes


@scenes_app.command("ls")
def scenes_ls(
    pattern: Annotated[Optional[str], typer.Option(help="Scene name pattern, * as wildcard.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many scenes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List scenes with their reference and variants.

    Example: iea scenes ls --pattern 'a00*'
    """
    from dataclasses import asdict

    from iea_data.workflows.catalog import list_scenes

    ws = _ws()
    rows = [asdict(x) for x in list_scenes(ws, pattern=pattern, limit=limit)]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        r["variants"] = " ".join(r["variants"])
    _table(rows, ["id", "name", "source", "reference", "n_variants", "variants"])


@scenes_app.command("set-reference")
def scenes_set_reference(
    scene: Annotated[str, typer.Argument(help="Scene name.")],
    image: Annotated[str, typer.Argument(help="Image id, sha256 (prefix), name or path.")],
) -> None:
    """Make IMAGE the ideal reference of SCENE (a scene has at most one).

    Example: iea scenes set-reference astronaut astronaut.png
    """
    from iea_data.workflows.catalog import set_reference

    ws = _ws()
    sc = set_reference(ws, scene, image)
    console.print(f"scene {lit(sc.name)}: reference is image {sc.reference_image_id}")


@scenes_app.command("group-exif")
def scenes_group_exif(
    window: Annotated[float, typer.Option(help="Max seconds between shots of one bracket.")] = 10.0,
) -> None:
    """Group ungrouped images into brackets by EXIF: same camera, close capture times, different exposure.

    Example: iea scenes group-exif --window 5
    """
    from iea_data.workflows.catalog import group_scenes_by_exif

    ws = _ws()
    n = group_scenes_by_exif(ws, window_s=window)
    console.print(f"{n} scene(s) created from EXIF brackets")


@scenes_app.command("sidecar")
def scenes_sidecar(
    csv_path: Annotated[Path, typer.Argument(help="CSV: path,scene[,variant,ev,is_reference].")],
) -> None:
    """Assign scenes, variants and references from a sidecar CSV (all rows or none).

    Example: iea scenes sidecar brackets.csv
    """
    from iea_data.workflows.catalog import apply_sidecar

    ws = _ws()
    n = apply_sidecar(ws, csv_path)
    console.print(f"{n} image(s) assigned")


# --------------------------------------------------------------------------- labels


@app.command()
def prelabel(
    method: Annotated[str, typer.Option(help="model (P-IEANet) or refdiff (Y(variant) - Y(reference)).")] = "model",
    scene: Annotated[Optional[str], typer.Option(help="Only this scene.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (model method).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per model batch.")] = 8,
    loader_workers: Annotated[int, typer.Option(help="Threads decoding images while the model runs (0: in turn).")] = 2,
    align: Annotated[
        bool, typer.Option(help="Align hand-held brackets (MTB) before the reference difference.")
    ] = False,
    redo: Annotated[bool, typer.Option(help="Add a new revision even where a pre-label exists.")] = False,
    weights: Annotated[
        str, typer.Option(help="Model weights: 'official' (released) or a checkpoint file, e.g. from iea train.")
    ] = "official",
    precision: Annotated[
        str,
        typer.Option(help="auto (bf16 where native and within its measured error bound), fp32 or bf16 (model method)."),
    ] = "auto",
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
) -> None:
    """Pre-label images: model residual maps or reference differences, stored as label revisions.

    Resumable: images that already have a pre-label of that method are skipped. Exits 3 when
    some images failed (each is named).

    Example: iea prelabel --method refdiff --scene astronaut
    """
    from iea_data.workflows.labels import prelabel_model, prelabel_refdiff

    if method not in ("model", "refdiff"):
        raise IeaError(f"--method must be model or refdiff, got {method!r}")
    if precision not in ("auto", "fp32", "bf16"):
        raise IeaError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    ws = _ws()
    if _engine(engine) == "ray":
        report = _on_ray(
            f"{method} (ray)",
            "prelabel",
            ray_address,
            ws=ws,
            method=method,
            weights=weights,
            device=device,
            precision=precision,
            batch_size=batch_size,
            actors=actors,
            scene=scene,
            split=split,
            align=align,
            redo=redo,
        )
    elif method == "refdiff":
        report = _with_progress(
            "refdiff", lambda cb: prelabel_refdiff(ws, scene=scene, split=split, align=align, redo=redo, progress=cb)
        )
    else:
        report = _with_progress(
            "model",
            lambda cb: prelabel_model(
                ws,
                weights=weights,
                device=device,
                batch_size=batch_size,
                num_workers=loader_workers,
                scene=scene,
                split=split,
                redo=redo,
                progress=cb,
                precision=precision,
            ),
        )
    if report.precision:
        console.print(f"precision: {lit(report.precision)}", highlight=False)
    if report.engine:
        console.print(f"engine: {lit(report.engine)}", highlight=False)
    console.print(
        f"{report.method}: {report.n_selected} selected, {report.n_saved} saved, "
        f"{report.n_skipped} already labelled, {len(report.errors)} failed"
    )
    for name, message in report.errors[:50]:
        err_console.print(f"  [red]{lit(name)}[/red]: {lit(message)}", highlight=False)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def show(
    image: Annotated[str, typer.Argument(help="Image id, sha256 (prefix), name or path.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    label: Annotated[Optional[int], typer.Option(help="Label id (default: the newest label of the image).")] = None,
    opacity: Annotated[float, typer.Option(help="Heatmap opacity over the photo; 0 draws the heatmap alone.")] = 0.7,
    vmax: Annotated[float, typer.Option(help="Residual magnitude at full colour.")] = 0.5,
) -> None:
    """Render an image's residual map as a blue-white-red heatmap over the photo, with a legend.

    Example: iea show astronaut_-1EV.png --out astro.png
    """
    from iea_data.core.heatmaps import render_heatmap
    from iea_data.core.imaging import read_image, write_image
    from iea_data.workflows.labels import image_label

    ws = _ws()
    view = image_label(ws, image, label_id=label)
    path, residual = view.path, view.residual
    title = f"{view.image_name}  ·  {view.kind} r{view.revision}  ·  mean {view.mean:+.3f}"
    photo = read_image(path).rgb if (path and opacity > 0) else None
    if photo is not None:
        from iea_data.core.imaging import resize_image

        photo = resize_image(photo, residual.shape)
    pic = render_heatmap(residual, photo, opacity=opacity, vmax=vmax, title=title)
    write_image(out, pic.astype("float32") / 255.0)
    console.print(f"wrote {lit(out)}")


# --------------------------------------------------------------------------- sub-apps in their own modules

from pipelines import cli_app, cli_brackets, cli_release, cli_rules, cli_train, cli_users  # noqa: E402  (they import pipelines._console only)

for _module in (cli_rules, cli_users, cli_app, cli_release, cli_train, cli_brackets):
    _module.register(app)

from pipelines import cli_quality  # noqa: E402  (issue 15: iea quality, iea labels)

cli_quality.register(app)


# --------------------------------------------------------------------------- entry point


def main(argv: Optional[list[str]] = None) -> int:
    """Console-script entry point: maps IeaError to one line on stderr and exit status 1.

    A reader that stops early (``iea catalog ls | head``) ends the command quietly with 141,
    as a shell's own tools do.
    """
    install_log_handler()  # library warnings quote file names too
    try:
        code = _run(argv)
        sys.stdout.flush()
        return code
    except (BrokenPipeError, ReaderGone):
        try:  # nothing more can be written; keep the interpreter's exit flush from failing too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
        return 141


def _run(argv: Optional[list[str]]) -> int:
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="iea")
        if isinstance(rv, int):  # click returns typer.Exit's code in non-standalone mode
            return rv
    except IeaError as exc:
        if os.environ.get("IEA_DEBUG"):
            print_traceback(exc)
            return 1
        err_console.print(f"[red]error:[/red] {lit(one_line(exc))}", highlight=False)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # pragma: no cover
        return int(exc.code or 0)
    except ReaderGone:
        raise
    except Exception as exc:
        # Typer may bundle its own copy of click (typer._click), so match click's classes by name.
        bases = {c.__name__ for c in type(exc).__mro__}
        if "Abort" in bases:
            err_console.print("aborted")
            return 130
        if "ClickException" in bases:
            print_click_error(exc)
            return exc.exit_code
        if os.environ.get("IEA_DEBUG"):
            print_traceback(exc)
            return 1
        if "OperationalError" in bases and type(exc).__module__.startswith("sqlalchemy"):
            reason = one_line(getattr(exc, "orig", None) or exc)
            err_console.print(
                f"[red]error:[/red] cannot reach the catalog database: {lit(reason)}; check that the "
                "database server is running and that IEA_DATABASE_URL (or \\[catalog] database_url in "
                "iea.toml) is right",
                highlight=False,
            )
            return 1
        err_console.print(
            f"[red]unexpected error:[/red] {type(exc).__name__}: {lit(one_line(exc))} "
            "(IEA_DEBUG=1 shows the traceback)",
            highlight=False,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
