"""iea release build / verify / diff / ls, run as a user would (a subprocess per command)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import run_iea

REPO = Path(__file__).resolve().parents[3]


def iea(*args: str) -> subprocess.CompletedProcess:
    return run_iea(*args, timeout=300)


def run(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in-process (the same main() as the console script), for the cheap checks."""
    from pipelines.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_release_commands_end_to_end(demo_ws, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    w = ["-w", str(demo_ws.root)]
    r = iea(
        *w,
        "release",
        "build",
        "demo",
        "--version",
        "1.0.0",
        "--labels",
        "refdiff",
        "--ratios",
        "0.5,0.5",
        "--format",
        "native",
        "--format",
        "official",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["counts"] == {"train": 4, "test": 4} and report["formats"] == ["native", "official"]
    # refused: the version exists (one line, exit 1)
    code, out, err = run(capsys, *w, "release", "build", "demo", "--version", "1.0.0", "--labels", "refdiff")
    assert code == 1 and "exists" in err and "Traceback" not in err
    # bad usage: exit 2
    code, out, err = run(capsys, *w, "release", "build", "demo")
    assert code == 2 and "version" in err
    code, out, err = run(capsys, *w, "release", "build", "demo", "--version", "2.0.0", "--labels", "gold")
    assert code == 1 and "labels must be one of" in err
    code, out, err = run(
        capsys,
        *w,
        "release",
        "build",
        "demo",
        "--version",
        "1.1.0",
        "--labels",
        "refdiff",
        "--ratios",
        "0.5,0.5",
        "--seed",
        "5",
    )
    assert code == 0, err
    assert "demo 1.1.0" in out and "hardlink 10" in out
    code, out, err = run(capsys, *w, "release", "ls", "--json")
    rows = json.loads(out)
    assert sorted((x["name"], x["version"]) for x in rows) == [("demo", "1.0.0"), ("demo", "1.1.0")]
    code, out, err = run(capsys, *w, "release", "diff", "demo@1.0.0", "demo@1.1.0", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["n_a"] == d["n_b"] == 8 and d["added"] == [] and d["labels_changed"] == []
    code, out, err = run(capsys, *w, "release", "verify", "demo@1.0.0")
    assert code == 0 and "OK" in out
    from .conftest import tamperable

    tamperable(demo_ws.releases_dir / "demo" / "1.0.0")
    (demo_ws.releases_dir / "demo" / "1.0.0" / "official" / "test.csv").write_text("img_id,ref_id,score\n")
    r = iea(*w, "release", "verify", str(demo_ws.releases_dir / "demo" / "1.0.0"))
    assert r.returncode == 1 and "changed official/test.csv" in r.stdout and "FAILED" in r.stdout
    code, out, err = run(capsys, *w, "release", "verify", "demo@9.9.9")
    assert code == 1 and "no release demo@9.9.9" in err and "demo@1.0.0" in err
