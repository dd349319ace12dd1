"""Pre-labels: reference differences and model residual maps, with provenance, resumable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import shared_path
from sqlalchemy import select

from iea_data.core.imaging import luma, read_image
from iea_data.core.residuals import refdiff_map
from iea_data.store import Image, Label
from iea_data.workflows.catalog import ingest
from iea_data.workflows.labels import load_label_map, prelabel_model, prelabel_refdiff

from ..conftest import reader


def _labels(ws, kind):
    with reader(ws) as s:
        return {
            name: lab
            for lab, name in s.execute(
                select(Label, Image.name)
                .join(Image, Image.id == Label.image_id)
                .where(Label.kind == kind)
                .order_by(Label.id)
            )
        }


def test_refdiff_is_the_luma_difference_and_resumable(sqlite_workspace, demo_photos):
    ws = sqlite_workspace
    ingest(ws, [demo_photos], workers=1)
    report = prelabel_refdiff(ws)
    assert (report.n_selected, report.n_saved, report.errors) == (8, 8, [])
    labs = _labels(ws, "refdiff")
    lab = labs["coffee_-1EV.png"]
    expected = luma(read_image(demo_photos / "coffee_-1EV.png").rgb) - luma(read_image(demo_photos / "coffee.png").rgb)
    got = load_label_map(ws.objects, lab)
    assert got.shape == (400, 600) == (lab.height, lab.width)
    assert np.abs(got - expected).max() < 1e-3  # float16 storage
    assert (
        labs["coffee_-2EV.png"].mean
        < labs["coffee_-1EV.png"].mean
        < 0
        < labs["coffee_+1EV.png"].mean
        < labs["coffee_+2EV.png"].mean
    )
    assert json.loads(lab.params)["reference_image_id"]
    again = prelabel_refdiff(ws)
    assert (again.n_saved, again.n_skipped) == (0, 8)
    redo = prelabel_refdiff(ws, scene="coffee", redo=True)
    assert redo.n_saved == 4
    with reader(ws) as s:
        newest = s.scalar(select(Label).where(Label.image_id == lab.image_id, Label.revision == 2))
        assert newest.parent_id == lab.id


def test_label_resolution_follows_the_workspace_setting(sqlite_workspace, demo_photos):
    ws = sqlite_workspace
    (ws.root / "iea.toml").write_text((ws.root / "iea.toml").read_text().replace("max_side = 1024", "max_side = 300"))
    from iea_data.store.workspace import Workspace

    ws = Workspace.open(ws.root)
    ingest(ws, [demo_photos], workers=1)
    prelabel_refdiff(ws, scene="coffee")
    assert {(lab.height, lab.width) for lab in _labels(ws, "refdiff").values()} == {(200, 300)}


def test_alignment_recovers_a_shifted_handheld_variant(rng):
    ref = read_image_from_skimage()
    variant = np.clip(ref * 0.6, 0, 1).astype(np.float32)
    shifted = np.roll(variant, (6, -4), axis=(0, 1))
    truth = refdiff_map(variant, ref, ref.shape[:2])
    naive = refdiff_map(shifted, ref, ref.shape[:2])
    aligned = refdiff_map(shifted, ref, ref.shape[:2], align=True)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(aligned - truth)[inner].mean() < 0.2 * np.abs(naive - truth)[inner].mean()


def read_image_from_skimage():
    import skimage.data

    return (skimage.data.astronaut()[::2, ::2].astype(np.float32) / 255).astype(np.float32)


def test_scene_without_reference_is_reported_and_others_proceed(sqlite_workspace, demo_photos, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(demo_photos, d)
    (d / "astronaut.png").unlink()
    ingest(sqlite_workspace, [d], workers=1)
    report = prelabel_refdiff(sqlite_workspace)
    assert report.n_saved == 4 and len(report.errors) == 4
    assert all("no reference" in m for _, m in report.errors)


@pytest.mark.reference
def test_model_prelabels_carry_provenance_and_follow_exposure(sqlite_workspace, demo_photos):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    ws = sqlite_workspace
    ingest(ws, [demo_photos], workers=1)
    report = prelabel_model(ws, scene="coffee", num_workers=1, batch_size=3)
    assert (report.n_saved, report.errors) == (5, [])
    labs = _labels(ws, "model")
    lab = labs["coffee_+2EV.png"]
    assert lab.model_name == "pieanet" and lab.chain == "model:pieanet"
    assert lab.model_sha256 == "6f1cf2a5ca446235120252c51faf1463b55514acf8822b96d6275d885ba02700"
    params = json.loads(lab.params)
    assert params["input_size"] == [256, 256] and params["device"] == "cpu"
    # precision auto: bf16 where native and within its recorded bound, else fp32; both recorded
    assert params["dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[params["precision"]]
    assert params["precision_requested"] == "auto" and params["precision_error"]["precision"] == params["precision"]
    assert (lab.height, lab.width) == (400, 600)
    assert labs["coffee_-2EV.png"].mean < labs["coffee.png"].mean < labs["coffee_+2EV.png"].mean
    assert labs["coffee_-2EV.png"].mean < -0.1 and labs["coffee_+2EV.png"].mean > 0.1
    assert prelabel_model(ws, scene="coffee", num_workers=0).n_skipped == 5


def test_refdiff_uses_the_scenes_newest_target(sqlite_workspace, demo_photos):
    from iea_data.core.residuals import ideal_from_ev
    from iea_data.store import Scene, Target

    ws = sqlite_workspace
    ingest(ws, [demo_photos], workers=1)
    with reader(ws) as s, s.begin():
        scene = s.scalars(select(Scene).where(Scene.name == "coffee")).one()
        ev = np.zeros((100, 150), np.float32)
        ev[:, 75:] = 1.0  # brighten the right half of the ideal by one stop
        obj = ws.objects.put_array(ev.astype(np.float16))
        s.add(
            Target(
                scene_id=scene.id,
                base_image_id=scene.reference_image_id,
                revision=1,
                ev_map_object=obj,
                status="accepted",
            )
        )
    prelabel_refdiff(ws, scene="coffee")
    lab = _labels(ws, "refdiff")["coffee_+1EV.png"]
    assert json.loads(lab.params)["target_id"] == lab.target_id is not None
    ref = read_image(demo_photos / "coffee.png").rgb
    var = read_image(demo_photos / "coffee_+1EV.png").rgb
    expected = luma(var) - luma(ideal_from_ev(ref, ev))
    got = load_label_map(ws.objects, lab)
    assert np.abs(got - expected).max() < 2e-3
    # left half: the +1 EV variant is brighter than the ideal; right half: the ideal is +1 EV too
    assert got[:, :280].mean() > 0.05 and abs(got[:, 320:].mean()) < 0.02


@pytest.mark.parametrize("beside", [True, False])
def test_label_writer_commits_whole_units_beside_the_caller_and_reraises_its_errors(
    sqlite_workspace, demo_photos, monkeypatch, beside
):
    """The writer saves units of ``batch_size`` as transactions (in its thread, or in the caller's between
    batches); a failing unit fails whole and is re-raised at the end."""
    import threading

    import iea_data.workflows.labels._prelabel as prelabel_mod
    from iea_data.workflows.labels import LabelWriter, ModelRun, plan_prelabel

    ws = sqlite_workspace
    ingest(ws, [demo_photos], workers=1)
    plan = plan_prelabel(ws, "model", scene="coffee")
    items = plan.items
    assert len(items) == 5
    rng = np.random.default_rng(0)
    maps = {it.image_id: rng.uniform(-1, 1, (40, 60)).astype(np.float32) for it in items}
    real_commit = prelabel_mod.commit_prelabels
    run = ModelRun("pieanet", None, {})
    threads, units = set(), []

    def failing_second_unit(workspace, results, report, **kw):
        threads.add(threading.current_thread().name)
        units.append([r.item.name for r in results])
        if len(units) == 2:
            raise RuntimeError("catalog unreachable")
        return real_commit(workspace, results, report, **kw)

    monkeypatch.setattr(prelabel_mod, "commit_prelabels", failing_second_unit)
    seen = []
    report = plan.report()
    with pytest.raises(RuntimeError, match="catalog unreachable"):
        with LabelWriter(
            ws, report, model=run, batch_size=2, progress=lambda d, n: seen.append((d, n)), total=5, beside=beside
        ) as w:
            for it in items:
                w.add(it, maps[it.image_id])
                if not beside and it is items[1]:
                    assert seen == [(2, 5)] and report.n_saved == 2  # written before add() returned
    assert [len(u) for u in units] == [2, 2, 1], report.errors  # the unit after the failing one still landed
    assert report.errors == [] and report.n_saved == 3, report.errors
    if beside:
        assert threads and all(t.startswith("iea-label-writer") for t in threads)
    else:
        assert threads == {threading.current_thread().name}
    saved = _labels(ws, "model")
    assert sorted(saved) == sorted(units[0] + units[2])  # the failed unit wrote nothing
    for it in items:
        if it.name in saved:
            np.testing.assert_allclose(load_label_map(ws.objects, saved[it.name]), maps[it.image_id], atol=1e-3)
    assert seen[0] == (2, 5)
    # a re-run saves exactly the missing unit
    monkeypatch.setattr(prelabel_mod, "commit_prelabels", real_commit)
    plan = plan_prelabel(ws, "model", scene="coffee")
    assert sorted(it.name for it in plan.items) == sorted(units[1])
    report = plan.report()
    with LabelWriter(ws, report, model=run, batch_size=8) as w:
        for it in plan.items:
            w.add(it, maps[it.image_id])
    assert report.n_saved == 2 and len(_labels(ws, "model")) == 5


def test_commit_prelabels_batch_writes_the_rows_one_by_one_would(sqlite_workspace, demo_photos, monkeypatch):
    """One insert per batch (issue 16) gives the rows ``save_label`` gives; stale, duplicate, missing maps handled."""
    import iea_data.workflows.labels._prelabel as prelabel_mod
    from iea_data.core.errors import StaleRevisionError
    from iea_data.workflows.labels import (
        ModelRun,
        PrelabelResult,
        commit_prelabels,
        plan_prelabel,
        save_label,
        store_label_map,
    )

    ws = sqlite_workspace
    ingest(ws, [demo_photos], workers=1)
    run = ModelRun("pieanet", "ab" * 32, {"device": "cpu", "precision": "fp32"})
    rng = np.random.default_rng(1)

    def results(plan):
        return [
            PrelabelResult(
                it, store_label_map(ws.objects, rng.uniform(-1, 1, (8, 12)).astype(np.float32)), "", {"k": 1}
            )
            for it in plan.items
        ]

    provenance = ("image_id", "kind", "chain", "status", "author_id", "model_name", "model_sha256", "params")
    provenance += ("target_id", "base_id", "height", "width", "correction_object", "strokes_object")

    def columns(lab):
        return {c: getattr(lab, c) for c in provenance}

    plan = plan_prelabel(ws, "model", scene="coffee")
    batch = results(plan)
    calls = []
    real_batch = prelabel_mod.save_label_batch
    monkeypatch.setattr(prelabel_mod, "save_label_batch", lambda *a, **k: calls.append(1) or real_batch(*a, **k))
    report = plan.report()
    # a retried result of the same image in the same batch is skipped, never saved twice
    commit_prelabels(ws, batch + batch[:1], report, model=run, extra_params={"engine": "local"})
    assert (report.n_saved, report.n_skipped, report.errors, len(calls)) == (5, 1, [], 1)
    first = _labels(ws, "model")
    # the same results row by row (the fallback), as revision 2 of each chain
    plan2 = plan_prelabel(ws, "model", scene="coffee", redo=True)
    monkeypatch.setattr(
        prelabel_mod, "save_label_batch", lambda *a, **k: (_ for _ in ()).throw(StaleRevisionError("x"))
    )
    report2 = plan2.report()
    commit_prelabels(ws, results(plan2), report2, model=run, extra_params={"engine": "local"})
    assert (report2.n_saved, report2.errors) == (5, [])
    with reader(ws) as s:
        revs = {(lab.image_id, lab.revision): lab for lab in s.scalars(select(Label).where(Label.kind == "model"))}
    for (image_id, rev), lab in revs.items():
        if rev == 1:
            two = revs[(image_id, 2)]
            assert columns(lab) == columns(two) and two.parent_id == lab.id and lab.parent_id is None
            assert lab.status == "draft" and lab.model_sha256 == "ab" * 32 and lab.chain == "model:pieanet"
            assert json.loads(lab.params) == {"device": "cpu", "precision": "fp32", "k": 1, "engine": "local"}
    assert len(first) == 5 and len(revs) == 10
    # a stale result (its chain moved on since the plan) and a missing map, beside three good ones
    monkeypatch.setattr(prelabel_mod, "save_label_batch", real_batch)
    plan3 = plan_prelabel(ws, "model", scene="coffee", redo=True)
    batch3 = results(plan3)
    with ws.unit() as uow:
        head = revs[(plan3.items[0].image_id, 2)]
        save_label(
            uow,
            np.zeros((8, 12), np.float32),
            image_id=head.image_id,
            kind="model",
            parent_id=head.id,
            model_name="pieanet",
        )
    ws.objects.path(batch3[1].stored.map_object).unlink()
    report3 = plan3.report()
    commit_prelabels(ws, batch3, report3, model=run)
    assert report3.n_skipped == 1 and report3.n_saved == 3
    assert [n for n, _ in report3.errors] == [plan3.items[1].name], report3.errors
    assert "object store" in report3.errors[0][1]
