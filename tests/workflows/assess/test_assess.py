"""`iea assess`: any photos (or residual maps) → residual map, fractions, every rule base's score."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_iea, shared_path

from iea_data.core.imaging import read_image, write_image
from iea_data.core.rules import get_rule_base, score_map
from iea_data.workflows.assess import assess

REPO = Path(__file__).resolve().parents[3]


def _save_map(folder: Path, name: str, residual: np.ndarray) -> str:
    p = folder / f"{name}.npy"
    np.save(p, residual.astype(np.float32))
    return str(p)


def test_residual_maps_are_scored_without_the_model_and_bad_files_do_not_stop_the_rest(tmp_path):
    clean = np.zeros((40, 60), np.float32)
    dark = np.zeros((40, 60), np.float32)
    dark[:, :30] = -0.3  # left half too dark (not crushed: severe is 0.4)
    paths = [_save_map(tmp_path, "clean", clean), _save_map(tmp_path, "dark", dark), str(tmp_path / "missing.npy")]
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "out_of_range.npy", np.full((4, 4), 3.0, np.float32))
    paths += [str(tmp_path / "broken.npy"), str(tmp_path / "out_of_range.npy")]
    done = []
    report = assess(paths, rule_bases=["strict_landscape", "portrait_first"], progress=lambda d, t: done.append((d, t)))
    assert [Path(r.path).stem for r in report.results] == ["clean", "dark"]
    assert {Path(p).name for p, _ in report.errors} == {"missing.npy", "broken.npy", "out_of_range.npy"}
    assert done[-1] == (4, 4)  # the missing file never reached the loop; the other four did
    clean_r, dark_r = report.results
    assert clean_r.mean_abs == 0 and [s.score for s in clean_r.scores] == [100, 100]
    assert dark_r.mean == pytest.approx(-0.15) and dark_r.mean_abs == pytest.approx(0.15)
    strict = dark_r.scores[0]
    assert strict.rule_base == "strict_landscape" and strict.frac_under == pytest.approx(0.5) and strict.frac_over == 0
    assert strict.score == score_map(dark, get_rule_base("strict_landscape")).score == 10
    assert dark_r.scores[1].region == "whole image"
    assert any("portrait_first" in n and "whole image" in n for n in report.notes())


def test_masks_from_a_folder_judge_the_region(tmp_path):
    r = np.zeros((40, 40), np.float32)
    r[:, 20:] = 0.6  # right half blown out
    maps = tmp_path / "maps"
    maps.mkdir()
    path = _save_map(maps, "shot", r)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((80, 80, 3), np.float32)
    m[:, :40] = 1.0  # the product is the left half (a mask at twice the map's size)
    write_image(masks / "shot.png", m)
    with_mask = assess([path], rule_bases=["ecommerce_product"], masks=masks).results[0]
    without = assess([path], rule_bases=["ecommerce_product"]).results[0]
    assert with_mask.mask == str(masks / "shot.png") and with_mask.scores[0].region == "mask"
    assert with_mask.scores[0].statistics["region.bad"] == 0
    assert with_mask.scores[0].statistics["background.over"] == pytest.approx(1.0)
    assert with_mask.scores[0].score == 80  # product fine; background overexposure beyond 40 %
    assert without.scores[0].score == 20  # half of the "product" clipped when the whole image is judged


def test_heatmaps_are_written_with_unique_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    r = np.linspace(-0.5, 0.5, 32 * 48, dtype=np.float32).reshape(32, 48)
    paths = [_save_map(a, "same", r), _save_map(b, "same", -r)]
    report = assess(paths, rule_bases=["strict_landscape"], heatmaps_dir=tmp_path / "hm")
    outs = [Path(x.heatmap) for x in report.results]
    assert [o.name for o in outs] == ["same.png", "same-2.png"]
    pic = read_image(outs[0]).rgb
    assert pic.shape[1] >= 48
    # the blue end of the legend sits bottom-left, the red end bottom-right
    assert pic[-40, 2, 2] > pic[-40, 2, 0] + 0.2 and pic[-40, -3, 0] > pic[-40, -3, 2] + 0.2


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    from skimage import data

    from iea_data.core.imaging import apply_ev

    folder = tmp_path_factory.mktemp("assess-photos")
    coffee = data.coffee()[::2, ::2].astype(np.float32) / 255.0  # 200 x 300
    write_image(folder / "coffee.png", coffee)
    write_image(folder / "coffee_+2EV.jpg", apply_ev(coffee, 2.0))
    write_image(folder / "coffee_-2EV.jpg", apply_ev(coffee, -2.0))
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


def test_photos_through_the_model(photo_dir, tmp_path):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    report = assess([photo_dir], num_workers=0, batch_size=2, heatmaps_dir=tmp_path / "hm")
    names = [Path(r.path).name for r in report.results]
    assert names == ["coffee.png", "coffee_+2EV.jpg", "coffee_-2EV.jpg"]
    assert [Path(p).name for p, _ in report.errors] == ["zz_broken.jpg"]
    by = {Path(r.path).name: r for r in report.results}
    assert (by["coffee.png"].height, by["coffee.png"].width) == (200, 300)
    assert by["coffee_-2EV.jpg"].mean < by["coffee.png"].mean < by["coffee_+2EV.jpg"].mean
    assert by["coffee_+2EV.jpg"].mean > 0.05 and by["coffee_-2EV.jpg"].mean < -0.05
    for r in report.results:
        assert [s.rule_base for s in r.scores] == [
            "ecommerce_product",
            "night_low_light",
            "portrait_first",
            "street_documentary",
            "strict_landscape",
        ]
        assert Path(r.heatmap).is_file()
    night = {n: next(s for s in by[n].scores if s.rule_base == "night_low_light") for n in by}
    assert night["coffee_-2EV.jpg"].frac_over < night["coffee_+2EV.jpg"].frac_over
    assert night["coffee_-2EV.jpg"].score > night["coffee_+2EV.jpg"].score  # night tolerates dark, not glare
    assert report.model.startswith("pieanet")


def _iea(*args, cwd):
    return run_iea(*args, cwd=cwd)


def test_cli_assess_writes_csv_and_json_and_exits_3_on_a_bad_file(photo_dir, tmp_path):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    r = _iea(
        "assess",
        str(photo_dir),
        "--rules",
        "strict_landscape",
        "--rules",
        "night_low_light",
        "--out",
        str(tmp_path / "scores.csv"),
        "--loader-workers",
        "0",
        cwd=tmp_path,
    )
    assert r.returncode == 3, r.stderr
    assert "zz_broken.jpg" in r.stderr and "Traceback" not in r.stderr
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [Path(x["path"]).name for x in rows] == ["coffee.png", "coffee_+2EV.jpg", "coffee_-2EV.jpg"]
    assert {"strict_landscape.score", "night_low_light.score", "night_low_light.condition", "mean_abs"} <= set(rows[0])
    assert all(0 <= int(x["strict_landscape.score"]) <= 100 for x in rows)
    # JSON, one photo, a custom rule base from a file, a global threshold override
    custom = tmp_path / "mine.json"
    data = json.loads((REPO / "schemas" / "rules" / "strict_landscape.json").read_text())
    data["name"] = "mine"
    custom.write_text(json.dumps(data, indent=2))
    r = _iea(
        "assess",
        str(photo_dir / "coffee.png"),
        "--rules",
        str(custom),
        "--threshold",
        "0.2",
        "--out",
        str(tmp_path / "one.json"),
        "--loader-workers",
        "0",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "one.json").read_text())
    assert doc["rule_bases"] == ["mine"] and doc["thresholds"]["mine"]["under"] == 0.2
    assert doc["results"][0]["rules"]["mine"]["score"] in {100, 80, 60, 40, 20, 10, 0}


def test_cli_rules_check_names_the_line(tmp_path):
    bad = (REPO / "schemas" / "rules" / "night_low_light.json").read_text().replace('"under": 0.2', '"under": 7')
    (tmp_path / "bad.json").write_text(bad)
    r = _iea("rules", "check", str(tmp_path / "bad.json"), cwd=tmp_path)
    line = bad[: bad.index('"under": 7')].count("\n") + 1
    assert r.returncode == 1 and f"line {line}: threshold 'under'" in r.stderr
    r = _iea("rules", "show", "street_documentary", cwd=tmp_path)
    assert r.returncode == 0 and "main subject well exposed" in r.stdout
    r = _iea("assess", "x.jpg", "--out", "x.txt", cwd=tmp_path)
    assert r.returncode == 1 and "--out must end in .csv or .json" in r.stderr
