"""`iea import-manifest --maps`, `iea labels import` and `iea quality …`, run as a user would (subprocesses).

Eight processes (slow lane): the rules behind each command are tested in tests/workflows/quality.
"""

from __future__ import annotations

import json

import numpy as np

from tests.conftest import run_iea


def test_quality_commands_end_to_end(tmp_path):
    ws = str(tmp_path / "ws")
    assert run_iea("init", ws).returncode == 0

    def iea(*args):
        return run_iea("-w", ws, *args)

    csv = tmp_path / "train.csv"
    csv.write_text("img_id,ref_id,score\na_N1.png,a.png,4\nb_N1.png,b.png,6\n")
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "a_N1.npy", np.full((256, 256), 25.5, np.float32))
    np.save(maps / "b_N1.npy", np.full((256, 256), 999.0, np.float32))
    r = iea("import-manifest", str(csv), "--split", "train", "--maps", str(maps))
    assert r.returncode == 1 and "b_N1.npy: values in [999, 999], expected [-255, 255]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one line, no traceback
    np.save(maps / "b_N1.npy", np.full((256, 256), -51.0, np.float32))
    r = iea("import-manifest", str(csv), "--split", "train", "--maps", str(maps))  # nothing was imported before
    assert r.returncode == 0, r.stderr
    assert "released maps: 2 files, 2 saved" in r.stdout
    # the released maps are the gold references; gold rate shown and set
    assert iea("quality", "gold", "add", "a_N1.png").returncode == 0
    listed = json.loads(iea("quality", "gold", "ls", "--json").stdout)
    assert listed["rate"] == 0.05 and [g["image_name"] for g in listed["gold"]] == ["a_N1.png"]
    assert listed["gold"][0]["label_kind"] == "imported"
    # expert maps from another tool; the images have no file yet, so labels import names them unmatched
    experts = tmp_path / "experts"
    experts.mkdir()
    np.save(experts / "a_N1.png.npy", np.zeros((4, 4), np.float32))
    r = iea("labels", "import", str(experts), "--author", "alice")
    assert r.returncode == 0, r.stderr
    assert "0 saved" in r.stdout and "a_N1.png.npy" in r.stderr  # only decoded images (status ok) take labels
    r = iea("quality", "consensus", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_images"] == 0
    r = iea("quality", "report", "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "rep" / "annotators.parquet").is_file()


def test_quality_consensus_fit_images_samples_the_fit(tmp_path):
    """`iea quality consensus --fit-images N` fits the raters on N images (every image still written); 0 = all."""
    from iea_data.store import dispose_engines, init_workspace
    from iea_data.workflows.quality import build_synthetic_quality_catalog

    ws = tmp_path / "ws"
    build_synthetic_quality_catalog(init_workspace(ws), n_images=120, n_experts=3, side=4, pool=4)
    dispose_engines()
    r = run_iea("-w", str(ws), "quality", "consensus", "--fit-images", "70", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["n_images"], out["n_saved"]) == (120, 120)
    assert (out["fit"]["n_images"], out["fit"]["sampled"], out["fit"]["of_images"]) == (70, True, 120)
    r = run_iea("-w", str(ws), "quality", "consensus", "--fit-images", "0", "--redo", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["fit"]["n_images"], out["fit"]["sampled"], out["n_saved"]) == (120, False, 120)
    r = run_iea("-w", str(ws), "quality", "consensus", "--fit-images", "-1")
    assert r.returncode == 2 and "--fit-images" in r.stderr and "greater than or equal to 0" in r.stderr
    r = run_iea("-w", str(ws), "quality", "rebuild-summary", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"images": 120, "annotators": 3}
