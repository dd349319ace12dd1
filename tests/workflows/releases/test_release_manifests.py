"""The released IEA40K manifests: imported, built with their own splits, exported in the released layout."""

from __future__ import annotations

import json
import time

import pytest
from conftest import shared_path

from iea_data.workflows.catalog import import_manifest
from iea_data.workflows.releases import LeakageError, ReleaseDataset, build_release, verify_release


@pytest.mark.reference
def test_released_splits_round_trip_through_an_official_release(sqlite_workspace):
    train = shared_path("reference", "iea40k-manifests", "train_256_2ev.csv")
    valid = shared_path("reference", "iea40k-manifests", "valid_256_2ev.csv")
    ws = sqlite_workspace
    import_manifest(ws, train, split="train_256_2ev")
    import_manifest(ws, valid, split="valid_256_2ev")
    t = time.perf_counter()
    rep = build_release(
        ws,
        "iea40k",
        "1.0.0",
        labels="prelabel",
        formats=("native", "official"),
        splits_from={"train": "train_256_2ev", "valid": "valid_256_2ev"},
    )
    elapsed = time.perf_counter() - t
    root = ws.releases_dir / "iea40k" / "1.0.0"
    assert (root / "official" / "train.csv").read_bytes() == train.read_bytes()
    assert (root / "official" / "valid.csv").read_bytes() == valid.read_bytes()
    assert rep.counts == {"train": 20540, "valid": 4375}
    assert rep.n_scenes == 4108 + 875
    # no file is known for any image: they are released by name, and the build says so
    assert len(rep.without_files) == 20540 + 4375 and rep.link_modes == {}
    assert len(rep.unlabelled) == 20540 + 4375 and rep.n_labelled == 0
    m = json.loads((root / "manifest.json").read_text())
    assert m["splits"]["mode"] == "from_catalog" and m["splits"]["splits_from"] == {
        "train": "train_256_2ev",
        "valid": "valid_256_2ev",
    }
    assert m["counts"]["without_files"] == 24915
    assert "24915 image(s) are listed by name only" in (root / "README.md").read_text()
    assert verify_release(root).ok
    assert len(ReleaseDataset(root, "valid")) == 0  # nothing to serve yet: no files, no maps
    assert len(ReleaseDataset(root, "valid", labelled_only=False)) == 4375
    assert elapsed < 60


@pytest.mark.reference
def test_splits_that_share_scenes_are_refused(sqlite_workspace):
    sub = shared_path("reference", "iea40k-manifests", "valid_256_2ev.csv")
    ws = sqlite_workspace
    import_manifest(ws, sub, split="valid_256_2ev")
    # a second split holding ten of the same rows: same images, same scenes
    from sqlalchemy import select

    from iea_data.store import SplitMember

    with ws.session() as s:
        with s.begin():
            members = s.execute(
                select(SplitMember.image_id, SplitMember.position).where(SplitMember.split == "valid_256_2ev")
            ).all()
            for image_id, pos in members[:10]:
                s.add(SplitMember(split="leaky", image_id=image_id, position=pos))
    with pytest.raises(LeakageError) as exc:
        build_release(ws, "x", "1.0.0", labels="prelabel", splits_from={"valid": "valid_256_2ev", "test": "leaky"})
    kinds = {p["kind"] for p in exc.value.pairs}
    assert kinds == {"identical", "same-scene"}
    assert not (ws.releases_dir / "x" / "1.0.0").exists()
