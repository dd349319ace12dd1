"""Formats read back with their own readers: WebDataset, Hugging Face datasets, and ReleaseDataset (torch)."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from iea_data.core.imaging import resize_map
from iea_data.workflows.releases import ReleaseDataset, build_release, verify_release


@pytest.fixture
def all_formats(demo_ws):
    rep = build_release(
        demo_ws,
        "f",
        "1.0.0",
        labels="refdiff",
        ratios=(0.5, 0.5),
        formats=("native", "official", "webdataset", "hf"),
        shard_bytes=3_000_000,
    )
    root = demo_ws.releases_dir / "f" / "1.0.0"
    native = {r["image_key"]: r for r in pq.read_table(root / "native" / "images.parquet").to_pylist()}
    return rep, root, native


def test_webdataset_shards_read_back_with_the_webdataset_package(all_formats):
    wds = pytest.importorskip("webdataset", reason="the webdataset package is not installed")
    rep, root, native = all_formats
    shards = sorted((root / "webdataset").glob("*.tar"))
    assert len(shards) > 2  # a demo sample is ~1.4 MB (PNG + float32 map): 3 MB holds two
    assert all(p.stat().st_size <= 3_000_000 for p in shards)
    seen = {}
    for shard in shards:
        split = shard.name.rsplit("-", 1)[0]
        for sample in wds.WebDataset(str(shard), shardshuffle=False):
            meta = json.loads(sample["json"])
            key = sample["__key__"]
            assert meta["split"] == split == native[key]["split"] and meta["name"] == native[key]["name"]
            residual = np.load(io.BytesIO(sample["npy"]))
            np.testing.assert_array_equal(residual, np.load(root / native[key]["map_file"]))
            assert sample["png"] == (root / native[key]["file"]).read_bytes()
            seen[key] = split
    assert len(seen) == 8 and set(seen) == set(native)


def test_hf_parquet_loads_with_image_and_array_features(all_formats, tmp_path):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    rep, root, native = all_formats
    ds = datasets.load_dataset(
        "parquet",
        data_files={s: str(root / "hf" / f"{s}.parquet") for s in rep.counts},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert {s: len(ds[s]) for s in rep.counts} == rep.counts
    feats = ds["train"].features
    assert isinstance(feats["image"], datasets.Image)
    assert isinstance(feats["residual"], datasets.Array2D) and feats["residual"].shape == (256, 256)
    row = ds["train"][0]
    key = row["image_key"]
    assert row["image"].size == (native[key]["width"], native[key]["height"])
    expected = resize_map(np.load(root / native[key]["map_file"]), (256, 256))
    np.testing.assert_allclose(np.asarray(row["residual"], np.float32), expected, atol=1e-7)
    assert row["has_label"] is True and row["name"] == native[key]["name"]


def test_release_dataset_native_and_official_agree(all_formats):
    torch = pytest.importorskip("torch")
    rep, root, native = all_formats
    ds = ReleaseDataset(root, "train", resize=256)
    assert len(ds) == rep.counts["train"]
    item = ds[0]
    assert item["image"].shape == (3, 256, 256) and item["image"].dtype == torch.float32
    assert item["residual"].shape == (1, 256, 256) and item["residual"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert -1 <= float(item["residual"].min()) and float(item["residual"].max()) <= 1
    assert np.isnan(item["score"]) and isinstance(item["image_id"], int) and item["scene"] in ("astronaut", "coffee")
    full = ReleaseDataset(root, "train")[0]
    row = next(r for r in native.values() if r["name"] == full["name"])
    assert full["image"].shape == (3, row["height"], row["width"]) and full["residual"].shape == (
        1,
        row["height"],
        row["width"],
    )
    off = ReleaseDataset(root, "train", resize=256, format="official")
    assert [off.rows[i]["name"] for i in range(len(off))] == [ds.rows[i]["name"] for i in range(len(ds))]
    o = off[0]
    assert o["image_id"] == item["image_id"]
    # the official map went through x(-255) and back; both are the native map resized to 256
    np.testing.assert_allclose(o["residual"].numpy(), item["residual"].numpy(), atol=1e-5)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 256, 256) and len(batch["name"]) == 2
    assert verify_release(root).ok


def test_release_dataset_refuses_what_it_cannot_serve(all_formats, tmp_path):
    from iea_data.workflows.releases import ReleaseError

    rep, root, native = all_formats
    with pytest.raises(ReleaseError, match="no split 'valid'; splits: train, test"):
        ReleaseDataset(root, "valid")
    with pytest.raises(ValueError, match="resize must be None"):
        ReleaseDataset(root, "train", resize=0)
    with pytest.raises(ValueError, match="format must be one of native, official"):
        ReleaseDataset(root, "train", format="hf")
    with pytest.raises(ReleaseError, match="not a release"):
        ReleaseDataset(tmp_path, "train")


@pytest.fixture
def names_format(monkeypatch):
    """A format of one class, registered for the test and removed after it (the manifest schema's list of
    formats is widened for the test as a new schema version would)."""
    from iea_data.workflows.releases import _formats
    from iea_data.workflows.releases._schema import load_manifest_schema

    items = load_manifest_schema()["properties"]["formats"]["items"]
    monkeypatch.setitem(items, "enum", [*items["enum"], "names"])

    @_formats.register_format
    class NamesWriter:
        name = "names"

        def __init__(self):
            self.left_out: list[tuple[str, str]] = []
            self.lines: list[str] = []

        @classmethod
        def check(cls) -> None:
            return None

        def open(self, flog, options) -> None:
            self.flog = flog

        def add(self, item) -> None:
            self.lines.append(f"{item.sample.split}\t{item.sample.name}\t{item.residual is not None}")

        def close(self) -> list[str]:
            self.flog.write("names/names.tsv", ("\n".join(self.lines) + "\n").encode())
            return self.flog.paths_under("names/")

    yield NamesWriter
    _formats.FORMATS._items.pop("names")
    _formats._ORDER.remove("names")


def test_a_format_is_one_registered_class(demo_ws, names_format):
    from iea_data.workflows.releases import FORMATS, read_manifest
    from iea_data.workflows.releases._formats import list_formats

    assert list_formats()[:4] == ["native", "official", "webdataset", "hf"] and "names" in FORMATS
    rep = build_release(demo_ws, "n", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), formats=("names",), card=False)
    root = demo_ws.releases_dir / "n" / "1.0.0"
    lines = (root / "names" / "names.tsv").read_text().splitlines()
    assert len(lines) == sum(rep.counts.values()) and all(line.endswith("\tTrue") for line in lines)
    assert "names/names.tsv" in {f["path"] for f in read_manifest(root)["files"]}
    assert verify_release(root).ok
