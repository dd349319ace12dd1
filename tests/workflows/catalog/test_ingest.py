"""Ingest: content identity, incremental re-runs, bad input, scenes, and both backends."""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from iea_data.store import Image, ImagePath, IngestError, IngestRun, Scene
from iea_data.workflows.catalog import ingest, list_errors, walk_images

from ..conftest import reader


def _count(ws, model, *where):
    with reader(ws) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_ingest_demo_photos_records_images_scenes_and_stats(workspace, demo_photos):
    report = ingest(workspace, [demo_photos], workers=2)
    assert report.n_files == 10 and report.n_new == 10 and report.n_errors == 0
    assert report.n_scenes == 2
    with reader(workspace) as s:
        scenes = {sc.name: sc for sc in s.scalars(select(Scene))}
        assert set(scenes) == {"astronaut", "coffee"}
        for name, sc in scenes.items():
            ref = s.get(Image, sc.reference_image_id)
            assert ref.name == f"{name}.png" and ref.variant is None
            variants = s.execute(
                select(Image.variant, Image.ev).where(Image.scene_id == sc.id, Image.variant.is_not(None))
            ).all()
            assert sorted(variants, key=lambda v: v[1]) == [
                ("-2EV", -2.0),
                ("-1EV", -1.0),
                ("+1EV", 1.0),
                ("+2EV", 2.0),
            ]
        imgs = {im.name: im for im in s.scalars(select(Image))}
    a = imgs["astronaut.png"]
    assert (a.width, a.height, a.channels, a.bit_depth, a.format, a.status) == (512, 512, 3, 8, "PNG", "ok")
    # luma statistics are recorded and ordered with exposure
    means = (
        [imgs[f"astronaut_{t}.png"].luma_mean for t in ("-2EV", "-1EV")]
        + [a.luma_mean]
        + [imgs[f"astronaut_{t}.png"].luma_mean for t in ("+1EV", "+2EV")]
    )
    assert means == sorted(means) and means[0] < means[-1]
    assert imgs["astronaut_+2EV.png"].frac_white > a.frac_white
    assert imgs["astronaut_-2EV.png"].frac_black > a.frac_black
    assert a.luma_p01 <= a.luma_p50 <= a.luma_p99
    # statistics come from a 256-px preview: the mean is the full image's, percentiles close
    from iea_data.core.imaging import luma_stats, read_image

    full = luma_stats(read_image(demo_photos / "astronaut.png").rgb)
    assert a.luma_mean == pytest.approx(full["luma_mean"], abs=1 / 255)
    assert a.luma_p50 == pytest.approx(full["luma_p50"], abs=0.03)
    assert a.luma_p95 == pytest.approx(full["luma_p95"], abs=0.03)
    # thumbnails live in the object store, not in SQL
    thumb = workspace.objects.get_bytes(a.thumbnail)
    assert thumb[:3] == b"\xff\xd8\xff"  # JPEG
    from iea_data.core.imaging import read_image_bytes

    assert read_image_bytes(thumb).rgb.shape == (256, 256, 3)


def test_same_bytes_at_two_paths_is_one_image_with_two_paths(workspace, demo_photos, tmp_path):
    src = tmp_path / "in"
    (src / "copy").mkdir(parents=True)
    shutil.copy(demo_photos / "coffee.png", src / "coffee.png")
    shutil.copy(demo_photos / "coffee.png", src / "copy" / "same bytes.png")
    report = ingest(workspace, [src], workers=1)
    assert report.n_new == 1 and report.n_duplicate == 1
    assert _count(workspace, Image) == 1
    assert _count(workspace, ImagePath) == 2


def test_reingest_of_unchanged_files_decodes_nothing(sqlite_workspace, demo_photos, monkeypatch):
    ws = sqlite_workspace
    first = ingest(ws, [demo_photos], workers=1)
    assert first.n_new == 10

    import iea_data.core.imaging as imaging

    def forbidden(*a, **k):
        raise AssertionError("an unchanged file was decoded")

    monkeypatch.setattr(imaging, "read_image_bytes", forbidden)
    second = ingest(ws, [demo_photos], workers=1)
    assert (second.n_unchanged, second.n_new, second.n_duplicate, second.n_errors) == (10, 0, 0, 0)


def test_touched_file_is_rehashed_not_decoded(sqlite_workspace, demo_photos, tmp_path, monkeypatch):
    ws = sqlite_workspace
    src = tmp_path / "in"
    shutil.copytree(demo_photos, src)
    ingest(ws, [src], workers=1)
    st = os.stat(src / "coffee.png")
    os.utime(src / "coffee.png", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    import iea_data.core.imaging as imaging

    monkeypatch.setattr(imaging, "read_image_bytes", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    report = ingest(ws, [src], workers=1)
    assert (report.n_unchanged, report.n_duplicate, report.n_new) == (9, 1, 0)
    with reader(ws) as s:
        row = s.scalar(select(ImagePath).where(ImagePath.path == str(src / "coffee.png")))
        assert row.mtime_ns == st.st_mtime_ns + 5_000_000_000


def _truncated_png(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.fixture
def bad_batch(tmp_path, demo_photos):
    """A folder with two good images and one of every kind of bad input."""
    d = tmp_path / "batch"
    d.mkdir()
    shutil.copy(demo_photos / "coffee.png", d / "good one.png")
    shutil.copy(demo_photos / "astronaut.png", d / "ünïcödé 'quoted' name.png")
    shutil.copy(demo_photos / "astronaut_+1EV.png", d / "a\nnewline; $(echo x) & *.png")
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.png").write_text("this is not an image\n")
    (d / "truncated.png").write_bytes(_truncated_png((demo_photos / "coffee_+1EV.png").read_bytes()))
    # a real PNG whose header announces 20000 x 20000 pixels (400 MP > the 150 MP default)
    (d / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    os.symlink("loop-b.png", d / "loop-a.png")
    os.symlink("loop-a.png", d / "loop-b.png")
    os.symlink("does-not-exist.png", d / "dangling.png")
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "up")  # a folder symlink back to an ancestor
    (d / "notes.txt").write_text("ignored: not an image extension")
    return d


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_bad_files_get_specific_errors_and_good_files_land(workspace, bad_batch):
    report = ingest(workspace, [bad_batch], workers=2)
    reasons = {Path(e.path).name: e.reason for e in report.errors}
    assert reasons == {
        "zero.jpg": "empty-file",
        "text.png": "not-an-image",
        "truncated.png": "truncated",
        "bomb.png": "decompression-bomb",
        "loop-a.png": "symlink-loop",
        "loop-b.png": "symlink-loop",
        "dangling.png": "missing-file",
        "up": "symlink-loop",
    }
    assert report.n_new == 3
    with reader(workspace) as s:
        names = set(s.scalars(select(Image.name)))
    assert names == {"good one.png", "ünïcödé 'quoted' name.png", "a\nnewline; $(echo x) & *.png"}
    # every failure is on record with a message that says what to do
    with reader(workspace) as s:
        listed = list_errors(workspace)
    assert {Path(e["path"]).name for e in listed} == set(reasons)
    assert all(len(e["message"]) > 20 for e in listed)
    assert _count(workspace, IngestError) == len(reasons)


def test_unreadable_file_is_reported(sqlite_workspace, demo_photos, tmp_path, monkeypatch):
    d = tmp_path / "perm"
    d.mkdir()
    shutil.copy(demo_photos / "coffee.png", d / "locked.png")
    shutil.copy(demo_photos / "astronaut.png", d / "fine.png")
    real_open = open

    def fake_open(path, *a, **k):  # root can read a chmod-000 file, so simulate the refusal
        if str(path).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    report = ingest(sqlite_workspace, [d], workers=1)
    assert [(Path(e.path).name, e.reason) for e in report.errors] == [("locked.png", "unreadable")]
    assert report.n_new == 1


def test_fixing_a_file_resolves_its_error(sqlite_workspace, demo_photos, tmp_path):
    d = tmp_path / "fix"
    d.mkdir()
    (d / "later.png").write_bytes(b"")
    assert ingest(sqlite_workspace, [d], workers=1).errors[0].reason == "empty-file"
    shutil.copy(demo_photos / "coffee.png", d / "later.png")
    os.utime(d / "later.png", ns=(1, 1_700_000_000_000_000_000))
    report = ingest(sqlite_workspace, [d], workers=1)
    assert report.n_errors == 0 and report.n_new == 1
    assert list_errors(sqlite_workspace) == []
    assert len(list_errors(sqlite_workspace, include_resolved=True)) == 1


def test_walk_reports_loops_once_and_skips_non_images(bad_batch):
    found = list(walk_images([bad_batch]))
    names = sorted(Path(p).name for p, err in found if err is None)
    assert "notes.txt" not in names
    assert names.count("good one.png") == 1


def test_manifest_rows_waiting_for_files_are_linked_by_ingest(workspace, demo_photos, tmp_path):
    from iea_data.workflows.catalog import import_manifest

    csv = tmp_path / "m.csv"
    csv.write_text("img_id,ref_id,score\ncoffee_-1EV.png,coffee.png,4.5\ncoffee_+1EV.png,coffee.png,6\n")
    with reader(workspace) as s:
        rep = import_manifest(workspace, csv, split="valid")
    assert rep.n_missing_files == 3
    ingest(workspace, [demo_photos / "coffee_-1EV.png", demo_photos / "coffee.png"], workers=1, group="none")
    with reader(workspace) as s:
        status = dict(s.execute(select(Image.name, Image.status)).all())
        assert status == {"coffee_-1EV.png": "ok", "coffee.png": "ok", "coffee_+1EV.png": "missing"}
        linked = s.scalar(select(Image).where(Image.name == "coffee_-1EV.png"))
        assert linked.width == 600 and linked.sha256 and linked.variant == "-1EV"
        assert s.scalar(select(func.count()).select_from(Image)) == 3


def test_run_is_recorded(sqlite_workspace, demo_photos):
    report = ingest(sqlite_workspace, [demo_photos], workers=1)
    with reader(sqlite_workspace) as s:
        run = s.get(IngestRun, report.run_id)
    assert (run.status, run.n_files, run.n_new, run.n_errors) == ("done", 10, 10, 0)
    assert run.finished_at is not None


def test_group_none_leaves_images_ungrouped(sqlite_workspace, demo_photos):
    report = ingest(sqlite_workspace, [demo_photos], workers=1, group="none")
    assert report.n_scenes == 0
    assert _count(sqlite_workspace, Image, Image.scene_id.is_not(None)) == 0


def test_references_attach_when_variants_arrive_later(sqlite_workspace, demo_photos):
    ingest(sqlite_workspace, [demo_photos / "coffee.png"], workers=1)
    assert _count(sqlite_workspace, Scene) == 0
    ingest(sqlite_workspace, [demo_photos / "coffee_-2EV.png", demo_photos / "coffee_+2EV.png"], workers=1)
    with reader(sqlite_workspace) as s:
        sc = s.scalar(select(Scene).where(Scene.name == "coffee"))
        assert s.get(Image, sc.reference_image_id).name == "coffee.png"


def test_worker_count_is_validated(sqlite_workspace, demo_photos):
    from iea_data.core.errors import IeaError

    with pytest.raises(IeaError, match="workers must be >= 1"):
        ingest(sqlite_workspace, [demo_photos], workers=0)
