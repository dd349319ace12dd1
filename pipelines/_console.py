"""Shared rendering for the ``iea`` command line: consoles, progress bars, tables, the workspace option.

Every sub-app (``pipelines/cli_*.py``) imports from here so that commands look alike.

Text from users and files (ids, names, paths, comments, error messages quoting them) is
printed as text: :func:`escape_control` makes control characters visible (``\\x1b``,
``\\u202e``) and is applied by both consoles to every string they print; table cells are
never read as Rich markup; values interpolated into a markup template go through
:func:`lit`. Database URL passwords are masked in everything printed. Outside a terminal
(a pipe or a file) tables are tab-separated values with every value whole.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import sys
import traceback
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional
from urllib.parse import unquote

import typer
from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.text import Text

from iea_data.core.redaction import mask_secrets, url_password

if TYPE_CHECKING:  # rich.progress, rich.table and the JSON highlighter load on first use (start-up time)
    from rich.progress import Progress

EXIT_PARTIAL = 3
TABLE_LIMIT = 200  # rows printed as a table unless --limit says otherwise

_KEEP_IN_MESSAGES = frozenset("\n\t")


def _escape_char(c: str) -> str:
    cp = ord(c)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _is_safe(c: str) -> bool:
    # isprintable() is False for Unicode "Other" (Cc: C0, DEL, C1; Cf: bidi overrides, zero-width
    # characters; Cs: the surrogates that stand for undecodable bytes in file names; Co; Cn) and
    # "Separator" (line/paragraph separators, and spaces other than ' ', which are harmless).
    return c.isprintable() or unicodedata.category(c) == "Zs"


def escape_control(text: Any, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every control or invisible formatting character written as an escape.

    Parameters
    ----------
    text : object
        A value to print (``str()`` is taken of anything else).
    keep_newlines : bool
        Keep newlines and tabs (for messages that the code itself lays out over lines); a
        single value (a table cell, a name) has them escaped too.

    Returns
    -------
    str
        Printable text: ESC becomes ``\x1b``, DEL ``\x7f``, a C1 control ``\x9b``,
        U+202E (right-to-left override) ``\u202e``, an undecodable file-name byte
        ``\udce9``. Everything else, including non-ASCII letters and emoji, is unchanged.

    Examples
    --------
    >>> escape_control("img\x1b[31m.png")
    'img\\x1b[31m.png'
    >>> escape_control("caf\u00e9 \u202egnp.exe")
    'café \\u202egnp.exe'
    >>> escape_control("a\nb", keep_newlines=True)
    'a\nb'
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():
        return text
    keep = _KEEP_IN_MESSAGES if keep_newlines else frozenset()
    return "".join(c if (c in keep or _is_safe(c)) else _escape_char(c) for c in text)


@functools.lru_cache(maxsize=16)
def _forms(url: str) -> frozenset[str]:
    pw = url_password(url)
    return frozenset({pw, unquote(pw)}) if pw else frozenset()


def _secrets() -> frozenset[str]:
    """Passwords that must never be printed (as written and percent-decoded): those of
    IEA_DATABASE_URL and of the database URL of the workspace this command opened."""
    found = _forms(os.environ.get("IEA_DATABASE_URL") or "")
    for url in _State.urls:
        found = found | _forms(url)
    return found


def safe_text(text: Any, *, keep_newlines: bool = False, secrets: Optional[frozenset[str]] = None) -> str:
    """:func:`escape_control` of ``text`` with database passwords masked: what may reach a terminal.

    ``secrets`` (default: the current ones) lets a caller printing many values look them up once.
    """
    text = escape_control(text, keep_newlines=keep_newlines)
    if secrets is None:
        secrets = _secrets()
    if "://" in text or any(s in text for s in secrets):
        return mask_secrets(text, secrets)
    return text


def lit(value: Any) -> str:
    r"""``value`` as literal text inside a Rich markup template (``[bold]x[/]`` in a name prints as is).

    Examples
    --------
    >>> lit("[bold red]x[/]")
    '\\[bold red]x\\[/]'
    """
    return _markup_escape(safe_text(value))


def one_line(message: Any) -> str:
    r"""``message`` (an exception, say) on one line: line breaks and the indentation after them become one space.

    Examples
    --------
    >>> one_line("connection failed\n\tIs the server running?")
    'connection failed Is the server running?'
    """
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


class ReaderGone(Exception):
    """The reader of stdout went away (``iea catalog ls | head``); ``main()`` ends quietly with 141.

    Not an ``OSError``, so that click does not turn it into exit status 1 on the way.
    """


def _write_out(text: str) -> None:
    try:
        console.file.write(text)
        console.file.flush()
    except BrokenPipeError:
        raise ReaderGone() from None


class SafeConsole(Console):
    """A Rich console that prints every string with control characters escaped and passwords masked.

    Outside a terminal it never wraps lines, so a long path or name is printed whole.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:  # every printed str passes here
        return super().render_str(safe_text(text, keep_newlines=True), **kwargs)

    def print(self, *objects: Any, soft_wrap: Optional[bool] = None, **kwargs: Any) -> None:
        if soft_wrap is None and not self.is_terminal:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)

    def on_broken_pipe(self) -> None:  # the reader stopped early (`| head`): let main() end quietly
        self.quiet = True
        raise ReaderGone()


console = SafeConsole(emoji=False)
err_console = SafeConsole(stderr=True, emoji=False)


class _State:
    workspace: Optional[Path] = None
    urls: set[str] = set()  # database URLs of the workspaces opened (their passwords are masked in every output)


state = _State()

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: $IEA_HOME, else the current folder).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_workspace():
    """The workspace chosen by ``--workspace``, else ``IEA_HOME``, else the current folder."""
    from iea_data.store.workspace import find_workspace

    ws = find_workspace(state.workspace)
    _State.urls.add(ws.settings.database_url)
    return ws


def progress_bar(description: str) -> Progress:
    """A Rich progress bar on stderr (shown on a terminal, or when ``IEA_PROGRESS`` is set)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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


def _json_escape_unsafe(text: str) -> str:
    # json.dumps escapes C0 controls; DEL, C1, bidi overrides and lone surrogates pass through.
    # \\uXXXX is valid JSON for any of them and reads back as the same character.
    if text.isprintable():
        return text

    def esc(c: str) -> str:
        cp = ord(c)
        if cp <= 0xFFFF:
            return f"\\u{cp:04x}"
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"

    return "".join(c if (c == "\n" or _is_safe(c)) else esc(c) for c in text)


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout: valid JSON, no raw control character, passwords masked."""
    text = mask_secrets(_json_escape_unsafe(json.dumps(obj, default=str, indent=2, ensure_ascii=False)), _secrets())
    if console.is_terminal:
        from rich.highlighter import JSONHighlighter

        console.print(JSONHighlighter()(Text(text)), soft_wrap=True)
    else:
        _write_out(text + "\n")


def _cell(value: Any, secrets: frozenset[str]) -> str:
    if value is None:
        return ""
    return safe_text(f"{value:.4g}" if isinstance(value, float) else value, secrets=secrets)


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    """Rows (dicts) as a table; floats shown with 4 significant digits, None as an empty cell.

    On a terminal: a Rich table (long values fold onto more lines, never cut). Elsewhere (a
    pipe, a file): tab-separated values, every value whole — a ``# title`` line when there
    is a title, a header line of column names, then one line per row. Cells are text, never
    markup, with control characters (tabs and newlines too) escaped.
    """
    secrets = _secrets()
    if not console.is_terminal:
        lines = [f"# {safe_text(title)}"] if title else []
        lines.append("\t".join(safe_text(c) for c in columns))
        lines.extend("\t".join(_cell(r.get(c), secrets) for c in columns) for r in rows)
        _write_out("\n".join(lines) + "\n")
        return
    from rich.table import Table

    t = Table(title=Text(safe_text(title)) if title else None)
    for c in columns:
        t.add_column(Text(safe_text(c)), overflow="fold")
    for r in rows:
        t.add_row(*[Text(_cell(r.get(c), secrets)) for c in columns])
    console.print(t)


def print_click_error(exc: Exception) -> None:
    """A click usage error (unknown option, bad value…) on stderr, with user text escaped."""
    buf = io.StringIO()
    exc.show(file=buf)  # type: ignore[attr-defined]
    sys.stderr.write(safe_text(buf.getvalue(), keep_newlines=True))
    sys.stderr.flush()


def print_traceback(exc: BaseException) -> None:
    """The traceback of ``exc`` on stderr (``IEA_DEBUG=1``), with control characters escaped and passwords masked."""
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(safe_text(text, keep_newlines=True))
    sys.stderr.flush()


class SafeLogHandler(logging.Handler):
    """Library warnings on stderr as Python prints them by default (the message alone), through :func:`safe_text`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(safe_text(self.format(record), keep_newlines=True) + "\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - logging must never break a command
            self.handleError(record)


def install_log_handler() -> None:
    """Route library log records (warnings and worse) through :class:`SafeLogHandler`, unless logging is configured."""
    root = logging.getLogger()
    if not root.handlers:
        handler = SafeLogHandler(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)


def with_rate_progress(description: str, fn: Callable[[Callable[[int, int], None]], Any], unit: str = "images") -> Any:
    """:func:`with_progress` with a rate column (``12.3 images/s``), for engines that stream results."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal and not os.environ.get("IEA_PROGRESS"),
    )
    t0 = time.perf_counter()
    with bar:
        task = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int) -> None:
            dt = time.perf_counter() - t0
            bar.update(task, completed=done, total=total, rate=f"{done / dt:.2f} {unit}/s" if dt > 0 and done else "")

        return fn(update)
