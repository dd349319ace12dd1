"""IEA40K manifests: byte-exact round trip of the released CSVs, and bad CSVs import nothing."""

from __future__ import annotations

import pytest
from conftest import shared_path
from sqlalchemy import func, select

from iea_data.core.errors import IeaError, ManifestError
from iea_data.store import Image, Scene, Score, SplitMember
from iea_data.workflows.catalog import export_manifest, import_manifest, read_manifest

from ..conftest import reader

RELEASED = ["train_256.csv", "train_256_2ev.csv", "valid_256_2ev.csv"]


@pytest.mark.reference
@pytest.mark.parametrize("name", RELEASED)
def test_released_manifests_round_trip_byte_for_byte(sqlite_workspace, name, tmp_path):
    src = shared_path("reference", "iea40k-manifests", name)
    split = name.removesuffix(".csv")
    report = import_manifest(sqlite_workspace, src, split=split)
    df = read_manifest(src)
    assert report.n_rows == len(df)
    assert report.n_scenes == df["ref_id"].nunique()
    out = tmp_path / "out.csv"
    export_manifest(sqlite_workspace, split, out)
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.reference
def test_released_manifests_share_scenes_and_keep_splits_apart(workspace, tmp_path):
    """Two splits over one catalog (PostgreSQL too): train_256_2ev is a subset of train_256's scenes."""
    valid = shared_path("reference", "iea40k-manifests", "valid_256_2ev.csv")
    with reader(workspace) as s:
        import_manifest(workspace, valid, split="valid")
        import_manifest(workspace, valid, split="valid", replace=True)  # idempotent re-import
    with reader(workspace) as s:
        assert s.scalar(select(func.count()).select_from(Scene)) == 875
        assert s.scalar(select(func.count()).select_from(Image)) == 4375 + 875
        assert s.scalar(select(func.count()).select_from(Image).where(Image.status == "missing")) == 4375 + 875
        assert s.scalar(select(func.count()).select_from(SplitMember)) == 4375
        assert s.scalar(select(func.count()).select_from(Score)) == 4375
        # every variant knows its scene, variant token and the scene its reference
        row = s.execute(
            select(Image.variant, Scene.name)
            .join(Scene, Scene.id == Image.scene_id)
            .where(Image.name == "a4124-20080709_at_10h04m23__MG_4561_N1.png")
        ).one()
        assert row == ("N1", "a4124-20080709_at_10h04m23__MG_4561")
    with reader(workspace) as s:
        assert export_manifest(workspace, "valid").encode() == valid.read_bytes()


def test_reimport_into_a_split_needs_replace(sqlite_workspace, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("img_id,ref_id,score\ns1_N1.png,s1.png,3.5\n")
    import_manifest(sqlite_workspace, csv, split="train")
    with pytest.raises(IeaError, match="--replace"):
        import_manifest(sqlite_workspace, csv, split="train")


def test_changed_score_updates_on_replace(sqlite_workspace, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("img_id,ref_id,score\ns1_N1.png,s1.png,3.5\n")
    import_manifest(sqlite_workspace, csv, split="train")
    csv.write_text("img_id,ref_id,score\ns1_N1.png,s1.png,4\n")
    import_manifest(sqlite_workspace, csv, split="train", replace=True)
    assert export_manifest(sqlite_workspace, "train") == "img_id,ref_id,score\ns1_N1.png,s1.png,4\n"


BAD = {
    "missing column": ("img_id,score\na_N1.png,3\n", r"missing column\(s\) ref_id"),
    "extra column": ("img_id,ref_id,score,x\na_N1.png,a.png,3,1\n", r"unexpected column\(s\) x"),
    "non-numeric score": (
        "img_id,ref_id,score\na_N1.png,a.png,3\na_N2.png,a.png,high\n",
        r"line 3: score 'high' is not a number",
    ),
    "score above 10": ("img_id,ref_id,score\na_N1.png,a.png,10.5\n", r"line 2: score 10.5 is outside 0..10"),
    "negative score": ("img_id,ref_id,score\na_N1.png,a.png,3\na_N2.png,a.png,-1\n", r"line 3: score -1 is outside"),
    "nan score": ("img_id,ref_id,score\na_N1.png,a.png,nan\n", r"line 2: score 'nan' is not a number"),
    "duplicated img_id": (
        "img_id,ref_id,score\na_N1.png,a.png,3\nb_N1.png,b.png,3\na_N1.png,a.png,4\n",
        r"appears on lines 2, 4",
    ),
    "two references": (
        "img_id,ref_id,score\na_N1.png,a.png,3\na_N2.png,other.png,4\n",
        r"scene 'a' name two references \(line 2: a.png; line 3: other.png\)",
    ),
    "empty img_id": ("img_id,ref_id,score\n,a.png,3\n", r"line 2: empty img_id"),
    "path in id": (
        "img_id,ref_id,score\n../x_N1.png,a.png,3\n",
        r"line 2: img_id '../x_N1.png' contains a path separator",
    ),
    "empty file": ("", r"empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_names_the_row_and_imports_nothing(sqlite_workspace, tmp_path, case):
    text, pattern = BAD[case]
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with reader(sqlite_workspace) as s:
        with pytest.raises(ManifestError, match=pattern):
            import_manifest(sqlite_workspace, csv, split="train")
    with reader(sqlite_workspace) as s:
        for model in (Image, Scene, Score, SplitMember):
            assert s.scalar(select(func.count()).select_from(model)) == 0


def test_conflicting_reference_in_catalog_rolls_back_everything(sqlite_workspace, tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("img_id,ref_id,score\na_N1.png,a.png,3\n")
    with reader(sqlite_workspace) as s:
        import_manifest(sqlite_workspace, ok, split="one")
    bad = tmp_path / "bad.csv"
    bad.write_text("img_id,ref_id,score\nb_N1.png,b.png,3\na_N2.png,a.jpg,3\n")
    # scene "a" (the stem of the ref_id) has reference a.png in the catalog; this file says a.jpg
    with reader(sqlite_workspace) as s:
        with pytest.raises(ManifestError, match=r"line 3: scene 'a' already has reference 'a.png'"):
            import_manifest(sqlite_workspace, bad, split="two")
    with reader(sqlite_workspace) as s:
        assert set(s.scalars(select(Image.name))) == {"a_N1.png", "a.png"}
        assert s.scalar(select(func.count()).select_from(SplitMember).where(SplitMember.split == "two")) == 0


def test_export_of_unknown_split_lists_known_ones(sqlite_workspace, tmp_path):
    from iea_data.core.errors import NotFoundError

    csv = tmp_path / "m.csv"
    csv.write_text("img_id,ref_id,score\ns1_N1.png,s1.png,3.5\n")
    import_manifest(sqlite_workspace, csv, split="train")
    with pytest.raises(NotFoundError, match="known splits: train"):
        export_manifest(sqlite_workspace, "valid")
