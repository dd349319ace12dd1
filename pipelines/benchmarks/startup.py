"""Start-up of the command line: ``iea --help`` and ``iea catalog stats`` against Python and Typer alone.

Run: ``python -m pipelines.benchmarks.startup [--runs 15] [--workspace DIR] [--before REV] [--out FILE]``.

Every command is a fresh subprocess timed by the wall clock (``time.perf_counter`` around
``subprocess.run``), output to /dev/null. The commands run interleaved, one of each per round,
so a change in the machine's load hits all of them alike; the median of ``--runs`` rounds is
kept, with the child's CPU time (user + system) beside it. A warm-up round first writes the
``.pyc`` files (into a temporary ``PYTHONPYCACHEPREFIX``, as an installed package has them).
The baselines, side by side:

- ``python -c pass``: the interpreter and ``site`` (the editable install's finder included);
- ``python -c "import typer"``;
- a two-command Typer app of the same shape as ``iea`` asked for ``--help`` (Typer's Rich help), and
  one of its commands run with an option (Typer 0.29 coerces every parameter through Pydantic).

``iea catalog stats`` runs against a small workspace: the one given, or ``iea init`` + ``iea demo``
(30 images, 6 scenes) in a temporary folder. Goals (issue 11): ``iea --help`` ≤ 0.3 s and
``iea catalog stats`` ≤ 0.6 s on this machine.

``--before REV`` also times the two ``iea`` commands of git revision ``REV`` (``iea_data``,
``pipelines`` and ``schemas`` exported with ``git archive`` into a temporary folder, git state
untouched; its own demo workspace), interleaved with the rest. Every ``iea`` command runs as
``python -c "from pipelines.cli import main; main()"`` with ``PYTHONPATH`` set to its tree,
which is what the installed ``iea`` script does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS_S = {"iea --help": 0.3, "iea catalog stats": 0.6}

# the same shape as pipelines.cli: a root app with a sub-app, options with Annotated types
_TYPER_APP = """
import sys
from typing import Annotated, Optional
from pathlib import Path
import typer

app = typer.Typer(name="demo", help="A two-command app.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
sub = typer.Typer(help="A sub-app.", no_args_is_help=True)
app.add_typer(sub, name="sub")

@app.callback()
def root(workspace: Annotated[Optional[Path], typer.Option("--workspace", "-w", help="A folder.")] = None) -> None:
    "The root."

@sub.command("stats")
def stats(json_: Annotated[bool, typer.Option("--json", help="JSON.")] = False) -> None:
    "Counts."
    print("what\\tcount")

@app.command()
def other(n: Annotated[int, typer.Option(help="A number.")] = 1) -> None:
    "Another command."

app()
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list:
    """The CPU's vector / matrix flags (from /proc/cpuinfo), as the other benchmarks print them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
    except OSError:
        pass
    return []


REPO = Path(__file__).resolve().parents[2]


def _versions() -> dict[str, str]:
    """Versions of the libraries that set the floor (read from their metadata, nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("typer", "rich", "pydantic", "sqlalchemy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


_IEA = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())"]


def export_tree(rev: str, dest: Path) -> Path:
    """``iea_data``, ``pipelines`` and ``schemas`` as of git revision ``rev`` under ``dest`` (``git archive``)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "iea_data", "pipelines", "schemas"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def commands(workspace: Path, tree: Path = REPO, suffix: str = "") -> dict[str, tuple[list[str], Path]]:
    """Name → (argv, ``PYTHONPATH``) of every command timed: the baselines, then the two ``iea`` commands."""
    py = sys.executable
    base = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import typer'": [py, "-c", "import typer"],
        "typer app --help": [py, "-c", _TYPER_APP, "--help"],
        "typer app sub stats": [py, "-c", _TYPER_APP, "-w", str(workspace), "sub", "stats"],
    }
    iea = {
        f"iea --help{suffix}": [*_IEA, "--help"],
        f"iea catalog stats{suffix}": [*_IEA, "-w", str(workspace), "catalog", "stats"],
    }
    return {name: (argv, tree) for name, argv in {**({} if suffix else base), **iea}.items()}


def _time_once(argv: list[str], env: dict[str, str], tree: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``argv``; a failing run raises."""
    env = {**env, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]}… exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _make_workspace(ws: Path, env: dict[str, str], tree: Path = REPO) -> Path:
    """``iea init`` + ``iea demo`` (30 images, 6 scenes) at ``ws`` with the code of ``tree``."""
    env = {**env, "PYTHONPATH": str(tree)}
    for args in (["init", str(ws)], ["-w", str(ws), "demo", "--workers", "1"]):
        subprocess.run([*_IEA, *args], check=True, stdout=subprocess.DEVNULL, env=env, cwd=tree)
    return ws


def measure(cmds: dict[str, tuple[list[str], Path]], runs: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Median wall-clock and CPU seconds of each command over ``runs`` interleaved rounds (after one warm-up)."""
    for argv, tree in cmds.values():  # warm-up: page cache, .pyc files
        _time_once(argv, env, tree)
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    cpus: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (argv, tree) in cmds.items():
            wall, cpu = _time_once(argv, env, tree)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {
        name: {
            "median_s": statistics.median(walls[name]),
            "min_s": min(walls[name]),
            "cpu_median_s": statistics.median(cpus[name]),
        }
        for name in cmds
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="interleaved rounds (the median is kept)")
    ap.add_argument("--workspace", type=Path, default=None, help="workspace for `iea catalog stats` (default: a demo)")
    ap.add_argument("--before", metavar="REV", help="also time the iea commands of this git revision, interleaved")
    ap.add_argument("--out", type=Path, default=Path(".bench/startup.json"))
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be >= 1, got {args.runs}")
    drop = ("IEA_DATABASE_URL", "IEA_HOME", "IEA_DEBUG", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["COLUMNS"] = "80"
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-startup-"))
    # .pyc files as an installed package has them (the warm-up writes them), kept out of the source tree
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    try:
        workspace = args.workspace or _make_workspace(tmp / "ws", env)
        cmds = commands(workspace)
        if args.before:
            tree = export_tree(args.before, tmp / "before")
            cmds.update(commands(_make_workspace(tmp / "ws-before", env, tree), tree, f" ({args.before})"))
        load_before = os.getloadavg()
        rows = measure(cmds, args.runs, env)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows["python -c pass"]["median_s"]
    ratios = {
        "help_vs_typer_help": rows["iea --help"]["median_s"] / rows["typer app --help"]["median_s"],
        "stats_vs_typer_command": rows["iea catalog stats"]["median_s"] / rows["typer app sub stats"]["median_s"],
        "help_vs_python": rows["iea --help"]["median_s"] / base,
        "stats_vs_python": rows["iea catalog stats"]["median_s"] / base,
    }
    if args.before:
        for key, name in (("help", "iea --help"), ("stats", "iea catalog stats")):
            ratios[f"{key}_before_vs_after"] = rows[f"{name} ({args.before})"]["median_s"] / rows[name]["median_s"]
    result = {
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "cpu_flags": _cpu_flags(),
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "versions": _versions(),
        "runs": args.runs,
        "before": args.before,
        "load_average_before_after": [round(v, 2) for v in (*load_before[:1], *load_after[:1])],
        "commands": rows,
        "ratios": ratios,
        "goals_s": GOALS_S,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    libs = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    print(f"start-up ({result['machine']}, Python {result['python']}, {libs}, {result['date']}, median of {args.runs})")
    width = max(len(name) for name in rows) + 1
    print(f"  {'command':<{width}} {'median':>8} {'min':>8} {'CPU':>8} {'vs python':>10}")
    for name, row in rows.items():
        goal = f"  (goal <= {GOALS_S[name]} s)" if name in GOALS_S else ""
        print(
            f"  {name:<{width}} {row['median_s']:>7.3f}s {row['min_s']:>7.3f}s {row['cpu_median_s']:>7.3f}s "
            f"{row['median_s'] / base:>9.1f}x{goal}"
        )
    print(
        f"  iea --help / typer app --help {ratios['help_vs_typer_help']:.2f}x; "
        f"iea catalog stats / typer app command {ratios['stats_vs_typer_command']:.2f}x"
    )
    if args.before:
        print(
            f"  {args.before} / this tree: iea --help {ratios['help_before_vs_after']:.2f}x, "
            f"iea catalog stats {ratios['stats_before_vs_after']:.2f}x"
        )
    print(
        f"  load average before/after {result['load_average_before_after']}, "
        f"CPU flags: {', '.join(result['cpu_flags']) or 'n/a'}"
    )
    return result


if __name__ == "__main__":
    main()
