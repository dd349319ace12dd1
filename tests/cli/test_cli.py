"""The `iea` command line, run as a user would (a subprocess per command)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_iea

REPO = Path(__file__).resolve().parents[2]


def iea(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_iea(*args, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def ws_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    r = iea("init", str(tmp_path / "ws"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "ws"


def test_without_a_workspace_the_error_says_what_to_do(tmp_path):
    r = iea("catalog", "stats", cwd=tmp_path)
    assert r.returncode == 1
    assert "no iea workspace found" in r.stderr and "iea init" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_lists_every_command():
    r = iea("--help")
    assert r.returncode == 0
    for cmd in ("init", "demo", "ingest", "import-manifest", "catalog", "scenes", "db"):
        assert cmd in r.stdout
    r = iea("catalog", "--help")
    for cmd in ("ls", "stats", "errors", "snapshot", "export-manifest"):
        assert cmd in r.stdout


def test_ingest_ls_stats_errors_and_exit_status(ws_dir, demo_photos, tmp_path):
    batch = tmp_path / "batch"
    shutil.copytree(demo_photos, batch)
    (batch / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    r = iea("-w", str(ws_dir), "ingest", str(batch), "--workers", "2")
    assert r.returncode == 3, r.stderr  # documented: some files failed
    assert "broken.jpg" in r.stderr and "1 file(s) failed" in r.stderr
    r = iea("-w", str(ws_dir), "catalog", "ls", "--scene", "coffee", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sorted(x["name"] for x in rows) == sorted(p.name for p in demo_photos.glob("coffee*.png"))
    r = iea("catalog", "stats", "--json", cwd=ws_dir)  # found from the current folder
    stats = json.loads(r.stdout)
    assert stats["images"] == 10 and stats["scenes"] == 2 and stats["open_errors"] == 1
    r = iea("catalog", "errors", "--json", env={"IEA_HOME": str(ws_dir)})
    errs = json.loads(r.stdout)
    assert [Path(e["path"]).name for e in errs] == ["broken.jpg"] and errs[0]["reason"] in ("truncated", "not-an-image")
    r = iea("-w", str(ws_dir), "ingest", str(demo_photos))
    assert r.returncode == 0, r.stderr


def test_scenes_ls_and_set_reference(ws_dir, demo_photos):
    assert iea("-w", str(ws_dir), "ingest", str(demo_photos), "--workers", "1").returncode == 0
    r = iea("-w", str(ws_dir), "scenes", "ls", "--json")
    scenes = {s["name"]: s for s in json.loads(r.stdout)}
    assert scenes["coffee"]["reference"] == "coffee.png" and scenes["coffee"]["n_variants"] == 4
    assert scenes["coffee"]["variants"] == ["-2EV", "-1EV", "+1EV", "+2EV"]  # darkest first
    r = iea("-w", str(ws_dir), "scenes", "set-reference", "coffee", "coffee_+1EV.png")
    assert r.returncode == 0, r.stderr
    r = iea("-w", str(ws_dir), "scenes", "ls", "--json")
    assert {s["name"]: s for s in json.loads(r.stdout)}["coffee"]["reference"] == "coffee_+1EV.png"
    r = iea("-w", str(ws_dir), "scenes", "set-reference", "cofee", "coffee.png")
    assert r.returncode == 1 and "Did you mean 'coffee'" in r.stderr


def test_manifest_import_export_and_bad_csv(ws_dir, tmp_path):
    good = tmp_path / "m.csv"
    good.write_text("img_id,ref_id,score\ns_N1.png,s.png,2.5\ns_P0.png,s.png,7\n")
    r = iea("-w", str(ws_dir), "import-manifest", str(good), "--split", "valid")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.csv"
    r = iea("-w", str(ws_dir), "catalog", "export-manifest", "--split", "valid", "--out", str(out))
    assert r.returncode == 0 and out.read_text() == good.read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("img_id,ref_id,score\nt_N1.png,t.png,11\n")
    r = iea("-w", str(ws_dir), "import-manifest", str(bad), "--split", "train")
    assert r.returncode == 1 and "line 2: score 11 is outside 0..10" in r.stderr


def test_snapshot_and_db_commands(ws_dir, tmp_path):
    head = sorted((REPO / "schemas" / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))[-1].name[:4]
    r = iea("-w", str(ws_dir), "db", "upgrade")
    assert r.returncode == 0 and f"revision {head}" in r.stdout
    r = iea("-w", str(ws_dir), "catalog", "snapshot", "--out", str(tmp_path / "snap"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "snap" / "images.parquet").exists()


def test_prelabel_refdiff_and_show_render_a_heatmap(ws_dir, demo_photos, tmp_path):
    assert iea("-w", str(ws_dir), "ingest", str(demo_photos), "--workers", "1").returncode == 0
    r = iea("-w", str(ws_dir), "prelabel", "--method", "refdiff")
    assert r.returncode == 0, r.stderr
    assert "8 saved" in r.stdout
    out = tmp_path / "astro.png"
    r = iea("-w", str(ws_dir), "show", "astronaut_-2EV.png", "--out", str(out))
    assert r.returncode == 0, r.stderr
    from iea_data.core.imaging import read_image

    pic = read_image(out).rgb
    assert pic.shape[1] == 512 and pic.shape[0] > 512 + 44  # title + 512-px overlay + legend
    r = iea("-w", str(ws_dir), "show", "astronaut.png", "--out", str(out))
    assert r.returncode == 1 and "no label" in r.stderr and "iea prelabel" in r.stderr
    r = iea("-w", str(ws_dir), "prelabel", "--method", "magic")
    assert r.returncode == 1 and "--method must be model or refdiff" in r.stderr


def test_import_manifest_links_files_from_images_dir(ws_dir, demo_photos, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("img_id,ref_id,score\ncoffee_-1EV.png,coffee.png,4.5\nnot_here_N1.png,not_here.png,3\n")
    r = iea("-w", str(ws_dir), "import-manifest", str(csv), "--split", "valid", "--images", str(demo_photos))
    assert r.returncode == 0, r.stderr
    r = iea("-w", str(ws_dir), "catalog", "ls", "--split", "valid", "--json")
    status = {x["name"]: x["status"] for x in json.loads(r.stdout)}
    assert status == {"coffee_-1EV.png": "ok", "not_here_N1.png": "missing"}
    r = iea(
        "-w",
        str(ws_dir),
        "import-manifest",
        str(csv),
        "--split",
        "valid",
        "--replace",
        "--images",
        str(tmp_path / "nope"),
    )
    assert r.returncode == 1 and "is not a folder" in r.stderr


def test_usage_errors_exit_2_with_the_usage_line(tmp_path):
    r = iea("ingest", cwd=tmp_path)  # nothing to ingest: folders and --from-render are both optional
    assert r.returncode == 2 and "Usage:" in r.stderr and "give folders or files to ingest" in r.stderr
    r = iea("catalog", "ls", "--no-such-option", cwd=tmp_path)
    assert r.returncode == 2 and "No such option" in r.stderr
    assert "unexpected error" not in r.stderr
