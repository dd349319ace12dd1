"""Commands: iea release (build, verify, diff, ls). Registered on the root app by :func:`register`."""

from __future__ import annotations

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

release_app = typer.Typer(
    help="Versioned dataset releases: build, verify, diff, ls (see docs/releases.md).", no_args_is_help=True
)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated numbers such as 0.8,0.1,0.1, got {text!r}") from None


def _splits_from(text: Optional[str]):
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if any("=" in p for p in parts):
        if not all(p.count("=") == 1 for p in parts):
            raise typer.BadParameter(f"--splits-from takes NAME,NAME or RELEASE=CATALOG,..., got {text!r}")
        return dict(p.split("=") for p in parts)
    return parts


def _show_list(title: str, items: list, limit: int = 20) -> None:
    if not items:
        return
    err_console.print(f"[yellow]{title}: {len(items)}[/yellow]", highlight=False)
    for it in items[:limit]:
        err_console.print(
            f"  {' - '.join(map(str, it)) if isinstance(it, (tuple, list)) else it}", highlight=False, markup=False
        )
    if len(items) > limit:
        err_console.print(f"  … and {len(items) - limit} more (all in --json)")


@release_app.command("build")
def build_cmd(
    name: Annotated[str, typer.Argument(help="Release name, e.g. iea40k.")],
    version: Annotated[str, typer.Option("--version", help="MAJOR.MINOR.PATCH; a built version never changes.")],
    labels: Annotated[str, typer.Option(help="consensus | accepted | prelabel | refdiff.")] = "consensus",
    splits_from: Annotated[
        Optional[str], typer.Option(help="Catalog splits to reuse: train,valid or train=train_256,valid=valid_256_2ev.")
    ] = None,
    ratios: Annotated[
        str, typer.Option(help="Shares of train,val,test (or train,test) for planned splits.")
    ] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(help="Seed of the planned splits.")] = 0,
    stratify: Annotated[
        str, typer.Option(help="score and metadata columns, e.g. score,camera; '' for none.")
    ] = "score",
    fmt: Annotated[
        Optional[list[str]], typer.Option("--format", help="native | official | webdataset | hf; repeat for several.")
    ] = None,
    copy: Annotated[
        bool,
        typer.Option(
            help="Give the release its own image copies instead of hard links to the workspace's stored copies."
        ),
    ] = False,
    min_experts: Annotated[int, typer.Option(help="Consensus needs at least this many experts.")] = 1,
    consensus: Annotated[str, typer.Option(help="median | mean | trimmed_mean.")] = "median",
    allow_leaks: Annotated[
        bool, typer.Option(help="Build even with identical/near-duplicate images across splits.")
    ] = False,
    shard_size_mb: Annotated[float, typer.Option(help="Largest WebDataset shard in MiB.")] = 256.0,
    json_out: JsonOpt = False,
) -> None:
    """Build WORKSPACE/releases/NAME/X.Y.Z from the catalog.

    Examples:

      iea release build iea-demo --version 1.0.0 --labels refdiff --format native --format official

      iea release build iea40k --version 1.0.0 --labels prelabel --splits-from train=train_256,valid=valid_256_2ev --format official
    """  # noqa: E501 - a command line to copy, not wrapped
    from iea_data.workflows.releases import build_release

    ws = open_workspace()
    report = with_progress(
        "build",
        lambda update: build_release(
            ws,
            name,
            version,
            labels=labels,
            splits_from=_splits_from(splits_from),
            ratios=_floats(ratios, "--ratios"),
            seed=seed,
            stratify=tuple(s for s in stratify.split(",") if s),
            formats=tuple(fmt or ("native",)),
            copy=copy,
            min_experts=min_experts,
            consensus=consensus,
            allow_leaks=allow_leaks,
            shard_bytes=int(shard_size_mb * 1024 * 1024),
            progress=update,
        ),
    )
    for warning in report.warnings:  # on stderr, with --json too
        err_console.print(f"[yellow]warning:[/yellow] {lit(warning)}", highlight=False)
    if json_out:
        print_json(report.to_dict())
    else:
        print_table(
            [{"split": k, "images": v} for k, v in report.counts.items()],
            ["split", "images"],
            title=f"{report.name} {report.version}: {sum(report.counts.values())} images, {report.n_scenes} scenes, "
            f"{report.n_labelled} labelled",
        )
        modes = ", ".join(f"{k} {v}" for k, v in sorted(report.link_modes.items())) or "no image files"
        console.print(
            f"{report.path}\n{report.n_files} files ({modes}), "
            f"manifest sha256 {report.manifest_sha256}, {report.seconds:.1f} s; "
            f"{report.n_images_stored} new image(s), {report.n_bytes_stored / 1e6:.1f} MB, added to the "
            f"workspace's read-only image store",
            highlight=False,
        )
        _show_list("images below --min-experts (left out)", report.below_min_experts)
        _show_list("images without a file (listed by name only)", report.without_files)
        _show_list("images without a residual map", report.unlabelled)
        _show_list("left out of the official layout", report.official_skipped)
        _show_list(
            "leak pairs kept (--allow-leaks)",
            [(p["kind"], p["a"], p["split_a"], p["b"], p["split_b"]) for p in report.leaks],
        )
        _show_list("[red]errors[/red]", report.errors)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


@release_app.command("verify")
def verify_cmd(
    release: Annotated[str, typer.Argument(help="Release folder, or NAME@X.Y.Z of the workspace.")],
    json_out: JsonOpt = False,
) -> None:
    """Recompute every checksum; name each changed, missing or extra file. Exit 1 on any.

    Example: iea release verify iea-demo@1.0.0
    """
    from iea_data.core.errors import IeaError
    from iea_data.workflows.releases import verify_release

    try:
        ws = open_workspace()
    except (IeaError, OSError, UnicodeDecodeError):  # no (readable) workspace: a release folder verifies without one
        ws = None
    report = with_progress("verify", lambda update: verify_release(release, workspace=ws, progress=update))
    if json_out:
        print_json(report.to_dict())
    else:
        for kind, items in (("changed", report.changed), ("missing", report.missing), ("extra", report.extra)):
            for rel in items:
                console.print(f"[red]{kind}[/red] {lit(rel)}", highlight=False)
        if report.writable:
            err_console.print(
                f"[yellow]note:[/yellow] {len(report.writable)} path(s) of the release are writable "
                f"(e.g. {lit(report.writable[0])}); a release built by this version is read-only",
                highlight=False,
            )
        verdict = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
        console.print(
            f"{verdict} {report.path}: {report.n_files} files, {report.n_bytes / 1e6:.1f} MB in {report.seconds:.2f} s "
            f"({report.mb_per_s:.0f} MB/s); {len(report.changed)} changed, {len(report.missing)} missing, "
            f"{len(report.extra)} extra" + (f"; {report.references} kept by reference" if report.references else ""),
            highlight=False,
        )
    if not report.ok:
        raise typer.Exit(1)


@release_app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="Older release: NAME@X.Y.Z or a folder.")],
    b: Annotated[str, typer.Argument(help="Newer release: NAME@X.Y.Z or a folder.")],
    limit: Annotated[int, typer.Option(help="Rows shown per section.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Images added, removed, moved between splits; labels changed with the per-image mean |delta|.

    Example: iea release diff iea-demo@1.0.0 iea-demo@1.1.0
    """
    from iea_data.workflows.releases import diff_releases

    d = diff_releases(a, b, workspace=open_workspace())
    if json_out:
        print_json(d.to_dict())
        return
    console.print(
        f"{a}: {d.n_a} images -> {b}: {d.n_b} images; {len(d.added)} added, {len(d.removed)} removed, "
        f"{len(d.moved)} moved, {len(d.labels_changed)} labels changed, {len(d.labels_added)} labels added, "
        f"{len(d.labels_removed)} labels removed",
        highlight=False,
    )
    if d.added:
        print_table(d.added[:limit], ["name", "split"], title="added")
    if d.removed:
        print_table(d.removed[:limit], ["name", "split"], title="removed")
    if d.moved:
        print_table(d.moved[:limit], ["name", "from", "to"], title="moved between splits")
    if d.labels_changed:
        rows = sorted(d.labels_changed, key=lambda r: -r["mean_abs_delta"])[:limit]
        print_table(rows, ["name", "mean_abs_delta"], title="labels changed (largest first)")


@release_app.command("ls")
def ls_cmd(json_out: JsonOpt = False) -> None:
    """Releases in the catalog and on disk.

    Example: iea release ls
    """
    from iea_data.workflows.releases import list_releases

    rows = list_releases(open_workspace())
    if json_out:
        print_json(rows)
        return
    for r in rows:
        r["splits"] = ", ".join(f"{k} {v}" for k, v in (r["splits"] or {}).items())
        r["state"] = "ok" if r["recorded"] and r["on_disk"] else "not in catalog" if r["on_disk"] else "folder missing"
    print_table(rows, ["name", "version", "created_at", "images", "splits", "state", "path"], title="releases")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root ``iea`` app."""
    app.add_typer(release_app, name="release")
