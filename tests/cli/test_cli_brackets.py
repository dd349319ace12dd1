"""`iea brackets render`, run as a user would; its outputs group into one scene per RAW on `iea ingest`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_iea

pytest.importorskip("pidng")
pytest.importorskip("rawpy")


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
    from iea_data.core.raw import synthetic_dng

    d = tmp_path_factory.mktemp("raw")
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float64)
    scene = np.stack([0.1 + 0.3 * xx / 96, 0.2 + 0.2 * yy / 64, np.full_like(xx, 0.1)], -1)
    (d / "shot1.dng").write_bytes(synthetic_dng(scene))
    (d / "shot2.dng").write_bytes(synthetic_dng(scene * 0.5))
    (d / "bad.dng").write_bytes(b"not a raw\n" * 50)
    return d


def _images(ws: str) -> list[dict]:
    r = run_iea("-w", ws, "catalog", "ls", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("style", ["iea40k", "ev"])
def test_render_then_ingest_groups_one_scene_per_raw_with_the_right_evs(raw_files, tmp_path, style):
    ws = str(tmp_path / "ws")
    assert run_iea("init", ws).returncode == 0
    out = tmp_path / "out"
    r = run_iea(
        "brackets", "render", str(raw_files / "shot1.dng"), str(raw_files / "shot2.dng"),
        "--ev", "-2,-1,0,+1,+2", "--out", str(out), "--name-style", style, "--workers", "2",
        env={"IEA_PROGRESS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "rendered 2 RAW file(s) into 10 image(s)" in r.stdout and "brackets" in r.stderr  # the progress bar
    r = run_iea("-w", ws, "ingest", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_iea("-w", ws, "scenes", "sidecar", str(out / "brackets.csv"))
    assert r.returncode == 0, r.stderr
    images = _images(ws)
    assert len(images) == 10
    by_scene: dict = {}
    for im in images:
        by_scene.setdefault(im["scene"], []).append(im)
    assert sorted(by_scene) == ["shot1", "shot2"]
    for scene, members in by_scene.items():
        refs = [m for m in members if m["is_reference"]]
        assert [m["name"] for m in refs] == [f"{scene}.png"]
        evs = sorted(m["ev"] for m in members if not m["is_reference"])
        assert evs == [-2.0, -1.0, 1.0, 2.0]
        if style == "iea40k":
            assert sorted(m["variant"] for m in members if m["variant"]) == ["N1", "N2", "P1", "P2"]
        else:
            assert sorted(m["variant"] for m in members if m["variant"]) == ["+1EV", "+2EV", "-1EV", "-2EV"]


def test_bad_raw_is_named_exit_3_and_resume_skips(raw_files, tmp_path):
    out = tmp_path / "out"
    args = ["brackets", "render", str(raw_files / "shot1.dng"), str(raw_files / "bad.dng"), "--out", str(out)]
    r = run_iea(*args)
    assert r.returncode == 3
    assert "unreadable-raw" in r.stderr and "bad.dng" in r.stderr and "rendered 1 RAW" in r.stdout
    r = run_iea(*args)
    assert r.returncode == 3 and "1 up to date" in r.stdout
    r = run_iea("brackets", "render", str(raw_files / "shot1.dng"), "--out", str(out), "--ev", "0,0.5")
    assert r.returncode == 1 and "name-style ev" in r.stderr


def test_ingest_from_render_groups_in_one_step(raw_files, tmp_path):
    ws = str(tmp_path / "ws")
    assert run_iea("init", ws).returncode == 0
    out = tmp_path / "out"
    r = run_iea("brackets", "render", str(raw_files / "shot1.dng"), "--ev", "-1,0,+2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run_iea("-w", ws, "ingest", "--from-render", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "1 bracket(s) from RAW: 1 scene(s), 3 image(s)" in r.stdout
    images = {im["name"]: im for im in _images(ws)}
    assert sorted(images) == ["shot1.png", "shot1_N1.png", "shot1_P2.png"]
    assert images["shot1.png"]["is_reference"] and {images[n]["ev"] for n in ("shot1_N1.png", "shot1_P2.png")} == {
        -1.0,
        2.0,
    }
    assert {im["scene"] for im in images.values()} == {"shot1"}
    r = run_iea("-w", ws, "ingest", "--from-render", str(tmp_path / "ws"))
    assert r.returncode == 1 and "holds no `iea brackets render` output" in r.stderr
    r = run_iea("-w", ws, "ingest")
    assert r.returncode != 0 and "--from-render" in r.stderr
