"""build_release: layout, hard links, catalog row, refusals, leak checks, references."""

from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from iea_data.store import Release, SplitMember
from iea_data.workflows.releases import (
    LeakageError,
    ReleaseDataset,
    ReleaseError,
    ReleaseExistsError,
    build_release,
    release_arrow_schema,
    resolve_file,
    verify_release,
)

from .conftest import image_ids


def test_build_writes_a_recorded_hard_linked_release(demo_ws_any):
    ws = demo_ws_any
    calls = []
    rep = build_release(
        ws, "demo", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), progress=lambda d, t: calls.append((d, t))
    )
    root = ws.releases_dir / "demo" / "1.0.0"
    assert rep.path == str(root) and root.is_dir()
    assert calls[0] == (0, 16) and calls[-1] == (16, 16) and (8, 16) in calls
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    assert sum(rep.counts.values()) == 8 and rep.n_scenes == 2 and rep.n_labelled == 8
    # every image file is the inode of the workspace's stored copy, never the user's photo
    images = pq.read_table(root / "native" / "images.parquet")
    assert images.schema.equals(release_arrow_schema("images"), check_metadata=False)
    with ws.session() as s:
        from iea_data.store import ImagePath

        sources = {p: p for (p,) in s.execute(select(ImagePath.path))}
    src_inodes = {os.stat(p).st_ino for p in sources}
    store_inodes = {p.stat().st_ino for p in (ws.objects.root / "images").rglob("*.*")}
    assert len(store_inodes) == 10
    for r in images.to_pylist():
        assert r["file_mode"] == "hardlink"
        st = os.stat(root / r["file"])
        assert st.st_ino in store_inodes and st.st_ino not in src_inodes and st.st_nlink >= 2
    assert rep.link_modes == {"hardlink": 10}  # 8 variants + 2 references
    # the catalog row holds the manifest's hash
    data = (root / "manifest.json").read_bytes()
    import hashlib

    with ws.session() as s:
        row = s.scalar(select(Release).where(Release.name == "demo"))
        assert (row.version, row.manifest_sha256, row.path) == ("1.0.0", hashlib.sha256(data).hexdigest(), str(root))
    # manifest: provenance of every label revision, split config, code version
    m = json.loads(data)
    assert len(m["label_revisions"]) == 8 and {r["chain"] for r in m["label_revisions"]} == {"refdiff"}
    assert (
        m["splits"]["mode"] == "planned"
        and m["splits"]["seed"] == 0
        and m["splits"]["ratios"] == {"train": 0.5, "test": 0.5}
    )
    from iea_data import __version__

    assert m["code_version"] == __version__ and m["catalog"]["revision"]
    listed = {f["path"] for f in m["files"]}
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == on_disk
    assert verify_release(root).ok
    # a version never changes
    with pytest.raises(ReleaseExistsError, match="never changes"):
        build_release(ws, "demo", "1.0.0", labels="refdiff")


def test_scene_stays_whole_and_seed_reproduces_the_splits(demo_ws):
    a = build_release(demo_ws, "s", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=7)
    b = build_release(demo_ws, "s", "1.0.1", labels="refdiff", ratios=(0.5, 0.5), seed=7)
    ta = pq.read_table(demo_ws.releases_dir / "s" / "1.0.0" / "native" / "images.parquet").to_pylist()
    tb = pq.read_table(demo_ws.releases_dir / "s" / "1.0.1" / "native" / "images.parquet").to_pylist()
    assert [(r["name"], r["split"]) for r in ta] == [(r["name"], r["split"]) for r in tb]
    by_scene = {}
    for r in ta:
        by_scene.setdefault(r["scene"], set()).add(r["split"])
    assert all(len(v) == 1 for v in by_scene.values()) and len(by_scene) == 2
    assert a.counts == b.counts == {"train": 4, "test": 4}
    assert not any(r["name"] in ("astronaut.png", "coffee.png") for r in ta)  # references are targets, not samples


def test_copy_on_request_and_reference_when_links_are_refused(demo_ws, monkeypatch):
    rep = build_release(demo_ws, "c", "1.0.0", labels="refdiff", copy=True)
    root = demo_ws.releases_dir / "c" / "1.0.0"
    row = pq.read_table(root / "native" / "images.parquet").to_pylist()[0]
    assert row["file_mode"] == "copy" and os.stat(root / row["file"]).st_nlink == 1
    assert rep.link_modes == {"copy": 10}

    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    rep = build_release(demo_ws, "r", "1.0.0", labels="refdiff", ratios=(1, 0))
    root = demo_ws.releases_dir / "r" / "1.0.0"
    assert rep.link_modes == {"reference": 10}
    m = json.loads((root / "manifest.json").read_text())
    assert len(m["references"]) == 10 and not (root / "native" / "images").exists()
    row = pq.read_table(root / "native" / "images.parquet").to_pylist()[0]
    resolved = resolve_file(root, row["file"])
    assert resolved.is_file() and resolved.stat().st_size == next(
        r["size"] for r in m["references"] if r["path"] == row["file"]
    )
    ds = ReleaseDataset(root, "train")
    assert len(ds) == 8 and ds[0]["image"].shape[0] == 3
    assert verify_release(root).ok and verify_release(root).references == 10


def test_near_duplicates_across_splits_fail_the_build_unless_allowed(sqlite_workspace, tmp_path, rng):
    import cv2

    from iea_data.workflows.catalog import ingest

    folder = tmp_path / "photos"
    folder.mkdir()
    base = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "one.png"), base)
    cv2.imwrite(str(folder / "one_copy.jpg"), base, [cv2.IMWRITE_JPEG_QUALITY, 95])  # other bytes, same picture
    cv2.imwrite(str(folder / "other.png"), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    assert ingest(sqlite_workspace, [folder], workers=1, group="none").n_errors == 0
    # three single-image groups over three splits: the pair lands in two splits
    with pytest.raises(LeakageError) as exc:
        build_release(sqlite_workspace, "leak", "1.0.0", labels="refdiff", ratios=(1, 1, 1), stratify=())
    pairs = exc.value.pairs
    assert [(p["kind"], sorted((p["a"], p["b"]))) for p in pairs] == [("near-duplicate", ["one.png", "one_copy.jpg"])]
    assert "one.png" in str(exc.value) and "--allow-leaks" in str(exc.value)
    assert not (sqlite_workspace.releases_dir / "leak" / "1.0.0").exists()
    rep = build_release(
        sqlite_workspace, "leak", "1.0.0", labels="refdiff", ratios=(1, 1, 1), stratify=(), allow_leaks=True
    )
    assert rep.leaks == pairs and rep.unlabelled  # no labels: released without maps, listed
    m = json.loads((sqlite_workspace.releases_dir / "leak" / "1.0.0" / "manifest.json").read_text())
    assert m["splits"]["leaks"] == pairs


def test_an_image_in_two_imported_splits_is_a_leak(demo_ws):
    ids = image_ids(demo_ws)
    with demo_ws.session() as s:
        with s.begin():
            for pos, name in enumerate(["astronaut_-1EV.png", "astronaut_-2EV.png"]):
                s.add(SplitMember(split="a", image_id=ids[name], position=pos))
            s.add(SplitMember(split="b", image_id=ids["astronaut_-2EV.png"], position=0))
    with pytest.raises(LeakageError) as exc:
        build_release(demo_ws, "x", "1.0.0", labels="refdiff", splits_from=["a", "b"], near_duplicate_bits=-1)
    kinds = sorted(p["kind"] for p in exc.value.pairs)
    assert kinds == ["identical", "same-scene"]
    with pytest.raises(ReleaseError, match="known splits: a, b"):
        build_release(demo_ws, "x", "1.0.0", labels="refdiff", splits_from={"train": "nope"})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"labels": "gold"}, "labels must be one of consensus, accepted, prelabel, refdiff"),
        ({"formats": ("native", "coco")}, "formats must be one or more of"),
        ({"ratios": (0.8, 0.1, 0.05, 0.05)}, "ratios must hold 2 or 3 numbers"),
        ({"ratios": (1, -1)}, "must be a finite number >= 0"),
        ({"stratify": ("mood",)}, "stratify must name score, camera or image columns"),
        ({"min_experts": 0}, "min_experts must be an integer >= 1"),
        ({"consensus": "max"}, "consensus must be one of"),
    ],
)
def test_bad_arguments_are_named(demo_ws, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_release(demo_ws, "bad", "1.0.0", **kwargs)


@pytest.mark.parametrize(
    "name,version", [("", "1.0.0"), ("a/b", "1.0.0"), ("ok", "1.0"), ("ok", "v1.0.0"), ("ok", "01.0.0")]
)
def test_bad_names_and_versions_are_refused(demo_ws, name, version):
    with pytest.raises(ReleaseError, match="release name|version must be MAJOR.MINOR.PATCH"):
        build_release(demo_ws, name, version, labels="refdiff")


def test_a_folder_without_catalog_row_is_not_overwritten(demo_ws):
    build_release(demo_ws, "d", "1.0.0", labels="refdiff")
    with demo_ws.session() as s:
        with s.begin():
            s.execute(Release.__table__.delete())
    with pytest.raises(ReleaseExistsError, match="not in the catalog"):
        build_release(demo_ws, "d", "1.0.0", labels="refdiff")
    shutil.rmtree(demo_ws.releases_dir / "d" / "1.0.0")
    assert build_release(demo_ws, "d", "1.0.0", labels="refdiff").n_labelled == 8


def test_dataset_card_reports_counts_scores_areas_license_and_examples(demo_ws, rng):
    import cv2

    from iea_data.store import Score
    from iea_data.store.workspace import Workspace

    text = demo_ws.config_path.read_text()
    demo_ws.config_path.write_text(
        text.replace('license = "unspecified (set [releases] license in iea.toml)"', 'license = "CC BY-NC 4.0"')
    )
    ws = Workspace.open(demo_ws.root)
    ids = image_ids(ws)
    scores = {name: float(rng.uniform(0, 10)) for name in ids if "EV" in name}
    with ws.session() as s:
        with s.begin():
            for name, v in scores.items():
                s.add(Score(image_id=ids[name], value=v, source="test"))
    rep = build_release(ws, "card", "1.0.0", labels="refdiff", ratios=(0.5, 0.5))
    root = ws.releases_dir / "card" / "1.0.0"
    card = (root / "README.md").read_text()
    assert 'license_name: "CC BY-NC 4.0"' in card and "- License: CC BY-NC 4.0" in card
    assert "Rethinking No-reference Image Exposure Assessment from Holism to Pixel" in card
    images = pq.read_table(root / "native" / "images.parquet").to_pylist()
    for split, n in rep.counts.items():
        sc = [scores[r["name"]] for r in images if r["split"] == split]
        assert f"| {split} | {n} | 1 | {n} | {np.mean(sc):.2f} | {min(sc):.2f} | {max(sc):.2f} |" in card
    labels = pq.read_table(root / "native" / "labels.parquet").to_pylist()
    train_keys = {r["image_key"] for r in images if r["split"] == "train"}
    under = np.mean([r["frac_under"] for r in labels if r["image_key"] in train_keys])
    assert f"| train | 4 | {under:.3f} |" in card
    hist = cv2.imread(str(root / "card" / "score_histograms.png"))
    sheet = cv2.imread(str(root / "card" / "examples.png"))
    assert hist.shape[1] == 2 * 420 and sheet.shape[0] > 200
    # the contact sheet holds the blue-white-red legend: its deepest blue and red are there
    rgb = sheet[..., ::-1].reshape(-1, 3)
    assert (rgb == [5, 48, 97]).all(axis=1).any() and (rgb == [103, 0, 31]).all(axis=1).any()
    assert "![examples](card/examples.png)" in card and "![score histograms](card/score_histograms.png)" in card
