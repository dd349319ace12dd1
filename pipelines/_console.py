"""Shared rendering for the ``iea`` command line: consoles, progress bars, tables, the workspace option.

Every sub-app (``pipelines/cli_*.py``) imports from here so that commands look alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

EXIT_PARTIAL = 3
TABLE_LIMIT = 200  # rows printed as a table unless --limit says otherwise

console = Console()
err_console = Console(stderr=True)


class _State:
    workspace: Optional[Path] = None


state = _State()

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", help="Workspace folder (default: $IEA_HOME, else the current folder).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_workspace():
    """The workspace chosen by ``--workspace``, else ``IEA_HOME``, else the current folder."""
    from iea_data.workspace import find_workspace

    return find_workspace(state.workspace)


def progress_bar(description: str) -> Progress:
    """A Rich progress bar on stderr (shown on a terminal, or when ``IEA_PROGRESS`` is set)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal and not os.environ.get("IEA_PROGRESS"),
    )


def with_progress(description: str, fn: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Call ``fn(update)`` under a progress bar; ``update(done, total)`` moves it."""
    with progress_bar(description) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return fn(update)


def print_json(obj: Any) -> None:
    console.print_json(json.dumps(obj, default=str))


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    """Rows (dicts) as a Rich table; floats shown with 4 significant digits."""
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if r.get(c) is None else (f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])) for c in columns])
    console.print(t)
