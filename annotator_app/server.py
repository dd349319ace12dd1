"""Starting the Streamlit server on a workspace (used by ``iea app`` and the browser tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

MAIN = Path(__file__).resolve().parent / "main.py"
# what `streamlit run` serves: MAIN with the stroke channel's route (annotator_app/asgi.py)
ENTRY = MAIN.with_name("asgi.py")


def streamlit_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves the app headless on ``host:port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ENTRY),
        "--server.port",
        str(int(port)),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        # Streamlit runs gc.collect(2) after every script run: with torch, numpy and SQLAlchemy loaded, a
        # full collection is ~3/4 of a replica's CPU per stroke (a stroke reruns the painter's fragment).
        # Python's own generational collection still runs (docs/benchmarks.md, team round 7).
        "--runner.postScriptGC",
        "false",
        "--client.toolbarMode",
        "minimal",
        # uncaught errors: a generic message in the browser, details only in the server log
        # ("false" is a deprecated alias of "stacktrace", which still shows the traceback)
        "--client.showErrorDetails",
        "none",
    ]


def app_env(workspace_root: Path, base: dict | None = None) -> dict[str, str]:
    """The environment of the app process: ``IEA_HOME`` names the workspace."""
    env = dict(os.environ if base is None else base)
    env["IEA_HOME"] = str(workspace_root)
    return env


def start_app(workspace: Workspace, *, port: int, host: str = "127.0.0.1", **popen_kwargs) -> subprocess.Popen:
    """Start the app as a child process (returns at once; poll ``/_stcore/health``)."""
    return subprocess.Popen(streamlit_command(port, host), env=app_env(workspace.root), **popen_kwargs)


def run_app(workspace: Workspace, *, port: int, host: str = "127.0.0.1") -> int:
    """Serve the app in the foreground until interrupted; the exit status of Streamlit.

    Ctrl+C and SIGTERM stop the Streamlit process too.
    """
    proc = start_app(workspace, port=port, host=host)

    def stop(signum, frame):  # pragma: no cover - exercised through a subprocess in the tests
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(10)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
