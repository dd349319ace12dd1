"""workflows.brackets.ingest_render: what `iea brackets render` wrote, one scene per RAW with its EVs and provenance."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sqlalchemy import select

pytest.importorskip("pidng")
pytest.importorskip("rawpy")

from iea_data.core.errors import IeaError
from iea_data.core.raw import synthetic_dng
from iea_data.store import Image, Scene
from iea_data.workflows.brackets import ingest_render, raw_source, render_brackets

from ..conftest import reader, reader_unit


def _scene(gain: float) -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float64)
    return np.stack([0.1 + 0.3 * xx / 64, 0.2 + 0.2 * yy / 48, np.full_like(xx, 0.1)], -1) * gain


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    for stem, gain in (("one", 1.0), ("two", 0.5)):
        (d / f"{stem}.dng").write_bytes(synthetic_dng(_scene(gain)))
    render_brackets([d / "one.dng", d / "two.dng"], d / "out", evs="-2,-1,0,1", reference=0.0)
    render_brackets([d / "one.dng"], d / "evstyle", evs="-0.5,0.5,1", reference=0.5, name_style="ev")
    (d / "out" / "stray.png").write_bytes((d / "out" / "one.png").read_bytes()[:100])  # not in any provenance
    return d


def test_one_scene_per_raw_with_evs_reference_and_provenance(workspace, rendered):
    report = ingest_render(workspace, [rendered / "out"], workers=1)
    assert (report.n_brackets, report.n_scenes, report.n_images, report.missing) == (2, 2, 8, [])
    assert report.ingest.n_new == 8 and report.errors == []  # stray.png is not listed, so not ingested
    with reader(workspace) as s:
        scenes = {sc.name: sc for sc in s.scalars(select(Scene))}
        assert sorted(scenes) == ["one", "two"] and {sc.source for sc in scenes.values()} == {"render"}
        for name, sc in scenes.items():
            members = {im.name: im for im in s.scalars(select(Image).where(Image.scene_id == sc.id))}
            assert sorted(members) == sorted([f"{name}.png", f"{name}_N1.png", f"{name}_N2.png", f"{name}_P1.png"])
            assert s.get(Image, sc.reference_image_id).name == f"{name}.png"
            assert {m.name: (m.variant, m.ev) for m in members.values()} == {
                f"{name}.png": (None, None),
                f"{name}_N2.png": ("N2", -2.0),
                f"{name}_N1.png": ("N1", -1.0),
                f"{name}_P1.png": ("P1", 1.0),
            }
            origin = json.loads(members[f"{name}_N2.png"].raw_info)["rendered_from"]
            assert origin["raw"] == os.path.abspath(rendered / f"{name}.dng") and len(origin["raw_sha256"]) == 64
            assert origin["ev"] == -2.0 and origin["reference_ev"] == 0.0 and origin["wb"] == "camera"
            assert origin["render"]["no_auto_bright"] is True and origin["versions"]["libraw"]
            assert members[f"{name}.png"].raw is False
    with reader_unit(workspace) as uow:
        ref = uow.session.scalar(select(Image).where(Image.name == "one.png"))
        src = raw_source(uow, ref)
        assert src.path == os.path.abspath(rendered / "one.dng") and src.ev == 0.0 and src.wb is None
    again = ingest_render(workspace, [rendered / "out"], workers=1)  # idempotent: nothing new, same grouping
    assert (again.ingest.n_new, again.ingest.n_unchanged, again.n_images) == (0, 8, 8)


def test_ev_names_a_non_zero_reference_and_a_moved_raw(workspace, rendered, tmp_path):
    report = ingest_render(workspace, rendered / "evstyle", workers=1)
    assert report.n_images == 3
    with reader_unit(workspace) as uow:
        s = uow.session
        sc = s.scalar(select(Scene).where(Scene.name == "one"))
        ref = s.get(Image, sc.reference_image_id)
        assert ref.name == "one.png"
        tags = {im.variant: im.ev for im in s.scalars(select(Image).where(Image.scene_id == sc.id, Image.id != ref.id))}
        assert tags == {"-0.5EV": -0.5, "+1EV": 1.0}
        assert raw_source(uow, ref).ev == 0.5
    # the RAW moved away from its recorded path: found again once ingested at its new place, by its sha256
    moved = tmp_path / "moved" / "renamed.dng"
    moved.parent.mkdir()
    moved.write_bytes((rendered / "one.dng").read_bytes())
    with workspace.unit() as uow:
        img = uow.session.scalar(select(Image).where(Image.name == "one.png"))
        info = json.loads(img.raw_info)
        info["rendered_from"]["raw"] = str(tmp_path / "gone.dng")
        img.raw_info = json.dumps(info)
    with reader_unit(workspace) as uow:
        lost = raw_source(uow, uow.session.scalar(select(Image).where(Image.name == "one.png")))
        assert lost.path is None and "gone.dng" in lost.problem
    from iea_data.workflows.catalog import ingest

    ingest(workspace, [moved.parent], workers=1)
    with reader_unit(workspace) as uow:
        img = uow.session.scalar(select(Image).where(Image.name == "one.png"))
        assert raw_source(uow, img).path == str(moved)


def test_a_folder_without_render_output_is_refused(workspace, tmp_path):
    with pytest.raises(IeaError, match=r"holds no `iea brackets render` output"):
        ingest_render(workspace, [tmp_path], workers=1)
    with pytest.raises(IeaError, match="is not a folder"):
        ingest_render(workspace, [tmp_path / "absent"], workers=1)
