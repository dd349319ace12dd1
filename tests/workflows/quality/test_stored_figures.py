"""The figures a consensus revision stores for the Quality page equal the figures its maps give.

A consensus run stores, per image, each expert's agreement with the consensus and the
reliability pixel sample (``iea_data.workflows.quality._figures``); the report reads those
instead of ≈ 13 maps per image. Here, on SQLite and PostgreSQL: the report from the stored
figures equals the report from the maps (``from_maps=True``) and an oracle written out from the
maps with the definitions the report had before; the cold report reads no expert map while the
consensus is current; a newer expert revision (accepted, or rejected in review) sends the report
back to that image's maps until the consensus is recomputed, which stores new figures; a lost
sample object is read around.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import select

from iea_data.core.quality import icc_2_1, krippendorff_alpha_interval, pixel_sample
from iea_data.store import Image, Label, ObjectStore
from iea_data.workflows.labels import review_label, save_label
from iea_data.workflows.quality import (
    build_synthetic_quality_catalog,
    compute_consensus,
    quality_report,
    update_consensus,
)
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD, reader
from .conftest import save_expert


@pytest.fixture
def map_reads(monkeypatch):
    """Every object key :meth:`ObjectStore.get_array` reads, in order."""
    keys: list[str] = []
    real = ObjectStore.get_array

    def counting(self, key):
        keys.append(key)
        return real(self, key)

    monkeypatch.setattr(ObjectStore, "get_array", counting)
    return keys


def _catalog(ws, n_images: int = 24, n_experts: int = 5) -> dict:
    """A synthetic catalog (32 x 32, accepted, distinct maps), one expert at 16 x 16 on image 3, its consensus."""
    out = build_synthetic_quality_catalog(ws, n_images=n_images, n_experts=n_experts, side=32, pool=n_images, seed=3)
    odd = add_user(ws, "odd", role="annotator", password=PASSWORD)
    with ws.unit() as uow:
        first = uow.session.scalar(select(Image.id).order_by(Image.id).limit(1))
        m = np.clip(np.random.default_rng(1).normal(0, 0.2, (16, 16)), -1, 1).astype(np.float32)
        save_label(uow, m, image_id=first + 3, kind="annotation", author_id=odd.id, status="accepted")
    compute_consensus(ws)
    return out


def _figures(rep) -> tuple:
    return (
        [(r["user_id"], r["agreement_consensus"]) for r in rep.annotators],
        rep.reliability,
        rep.reliability_over_time,
        rep.annotators,
    )


def _expert_map_keys(ws) -> set[str]:
    with reader(ws) as s:
        return set(s.scalars(select(Label.map_object).where(Label.kind == "annotation")))


def _oracle(ws, max_images: int = 500, pixels: int = 64, max_rel: int = 200) -> tuple[dict, dict]:
    """Agreement per author and the overall reliability, from the maps, as the report defined them before."""
    from iea_data.core.imaging import resize_map

    with reader(ws) as s:
        labels = s.execute(
            select(Label.id, Label.image_id, Label.chain, Label.revision, Label.status, Label.author_id)
            .add_columns(Label.map_object, Label.height, Label.width, Label.params, Label.kind)
            .order_by(Label.image_id, Label.chain, Label.revision)
        ).all()
        sha = dict(s.execute(select(Image.id, Image.sha256)).all())
    newest: dict[tuple[int, str], tuple] = {}
    for r in labels:
        newest[(r.image_id, r.chain)] = r  # rows come oldest revision first
    heads: dict[int, list] = defaultdict(list)
    cons: dict[int, tuple] = {}
    for (i, chain), r in sorted(newest.items()):
        if chain == "consensus":
            cons[i] = r
        elif r.kind == "annotation" and r.status in ("submitted", "accepted"):
            heads[i].append(r)
    objects = ws.objects

    def maps_of(i: int) -> dict[str, np.ndarray]:
        shapes = [(h.height, h.width) for h in heads[i]]
        shape = max(set(shapes), key=lambda sh: (shapes.count(sh), -shapes.index(sh)))
        out = {}
        for h in heads[i]:
            m = objects.get_array(h.map_object).astype(np.float32)
            out[h.chain] = m if m.shape == shape else np.clip(resize_map(m, shape), -1, 1).astype(np.float32)
        return out

    sums: dict[int, list[float]] = defaultdict(list)
    for i in sorted(cons, reverse=True)[:max_images]:
        if len(heads[i]) < 2:
            continue
        c = objects.get_array(cons[i].map_object).astype(np.float64)
        maps = maps_of(i)
        stack = np.stack([maps[h.chain] for h in heads[i]]).astype(np.float64)
        for h, v in zip(heads[i], 1.0 - np.abs(stack - c).reshape(len(stack), -1).mean(axis=1) / 2.0):
            sums[h.author_id].append(float(v))
    agreement = {uid: round(float(np.mean(v)), 4) for uid, v in sums.items()}
    ids = sorted((i for i in heads if len(heads[i]) >= 2), reverse=True)[:max_rel]
    raters = sorted({h.chain for i in ids for h in heads[i]})
    blocks, groups = [], defaultdict(list)
    for i in ids:
        maps = maps_of(i)
        shape = next(iter(maps.values())).shape
        idx = pixel_sample(shape, min(pixels, shape[0] * shape[1]), key=sha.get(i) or str(i))
        block = np.full((len(raters), len(idx)), np.nan)
        for chain, m in maps.items():
            block[raters.index(chain)] = m.reshape(-1)[idx]
        blocks.append(block)
        rs = tuple(sorted(maps))
        groups[rs].append(np.stack([maps[c].reshape(-1)[idx] for c in rs], axis=1))
    alpha = krippendorff_alpha_interval(np.concatenate(blocks, axis=1))
    icc = icc_2_1(np.concatenate(max(groups.values(), key=lambda g: sum(len(x) for x in g)), axis=0))
    rel = {
        name: {"value": round(r.value, 4), "ci_low": round(r.ci_low, 4), "ci_high": round(r.ci_high, 4), "n": r.n}
        for name, r in (("icc", icc), ("alpha", alpha))
    }
    return agreement, rel


def _check_stored_values(ws) -> int:
    """Each consensus revision's stored agreement and sample against its maps (unrounded); images checked."""
    from iea_data.core.imaging import resize_map

    with reader(ws) as s:
        cons = s.execute(select(Label.image_id, Label.map_object, Label.params).where(Label.chain == "consensus")).all()
        by_id = {r.id: r for r in s.execute(select(Label.id, Label.map_object, Label.chain))}
        sha = dict(s.execute(select(Image.id, Image.sha256)).all())
    objects = ws.objects
    for image_id, obj, params in cons:
        p = json.loads(params)
        c = objects.get_array(obj).astype(np.float64)
        maps = {}
        for lid in p["expert_revisions"]:
            m = objects.get_array(by_id[lid].map_object).astype(np.float32)
            if m.shape != c.shape:
                m = np.clip(resize_map(m, c.shape), -1, 1).astype(np.float32)
            maps[by_id[lid].chain] = m
        assert sorted(maps) == p["experts"] == sorted(p["agreement"])
        for chain, m in maps.items():  # the float64 value, not only its rounding in the report
            assert p["agreement"][chain] == pytest.approx(1.0 - np.abs(m - c).mean() / 2.0, abs=1e-12, rel=0)
        idx = pixel_sample(c.shape, min(64, c.size), key=sha[image_id])
        rows = objects.get_array(p["sample"]["object"])
        assert p["sample"]["key"] == sha[image_id] and p["sample"]["pixels"] == len(idx)
        assert np.array_equal(rows, np.stack([maps[k].reshape(-1)[idx] for k in p["experts"]]))
    return len(cons)


def test_stored_figures_equal_the_maps_and_the_cold_report_reads_no_expert_map(workspace, map_reads):
    ws = workspace
    _catalog(ws)
    assert _check_stored_values(ws) == 24
    expert_keys = _expert_map_keys(ws)
    map_reads.clear()
    stored = quality_report(ws, use_cache=False, plots=False)
    assert not expert_keys & set(map_reads)  # no expert map read: the consensus revisions' figures only
    assert len(map_reads) == 24  # one sample object per image
    from_maps = quality_report(ws, use_cache=False, plots=False, from_maps=True)
    assert expert_keys & set(map_reads)
    assert _figures(stored) == _figures(from_maps)
    agreement, rel = _oracle(ws)
    assert {r["user_id"]: r["agreement_consensus"] for r in stored.annotators} == agreement
    assert {k: stored.reliability[k] for k in ("icc", "alpha")} == rel
    assert stored.reliability["n_images"] == 24 and stored.reliability["n_raters"] == 6
    assert stored.reliability_over_time  # one week, the same sample


def test_a_newer_expert_revision_reads_its_maps_until_the_consensus_is_recomputed(workspace, map_reads):
    ws = workspace
    _catalog(ws, n_images=12, n_experts=4)
    reviewer = add_user(ws, "rev", role="reviewer", password=PASSWORD)
    with reader(ws) as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
        u = s.scalar(select(Label.author_id).where(Label.image_id == ids[5], Label.kind == "annotation").limit(1))
        old = json.loads(s.scalar(select(Label.params).where(Label.image_id == ids[5], Label.chain == "consensus")))
    before = quality_report(ws, use_cache=False, plots=False)
    # an expert's new accepted revision on image 5, and a submitted one rejected on image 7
    new_map = np.clip(np.random.default_rng(5).normal(0.3, 0.1, (32, 32)), -1, 1).astype(np.float32)
    new_id = save_expert(ws, u, ids[5], new_map, status="accepted")
    rejected = save_expert(ws, u, ids[7], new_map, status="submitted")
    review_label(ws, reviewer, rejected, decision="reject", comment="no")
    map_reads.clear()
    changed = quality_report(ws, use_cache=False, plots=False)
    with reader(ws) as s:
        read_images = {
            i for (i,) in s.execute(select(Label.image_id).where(Label.map_object.in_(set(map_reads)))).all()
        }
    assert read_images == {ids[5], ids[7]}  # only the two images whose heads moved
    assert _figures(changed) == _figures(quality_report(ws, use_cache=False, plots=False, from_maps=True))
    assert _figures(changed) != _figures(before)
    update_consensus(ws)  # the stale images get new consensus revisions, with new figures
    with reader(ws) as s:
        new = json.loads(
            s.scalar(
                select(Label.params)
                .where(Label.image_id == ids[5], Label.chain == "consensus")
                .order_by(Label.revision.desc())
                .limit(1)
            )
        )
    assert new_id in new["expert_revisions"] and new["sample"]["object"] != old["sample"]["object"]
    assert new["agreement"][f"user:{u}"] != old["agreement"][f"user:{u}"]
    map_reads.clear()
    again = quality_report(ws, use_cache=False, plots=False)
    assert not _expert_map_keys(ws) & set(map_reads)
    assert _check_stored_values(ws) == 14  # 12 images, two of them twice
    assert _figures(again) == _figures(quality_report(ws, use_cache=False, plots=False, from_maps=True))
    agreement, rel = _oracle(ws)
    assert {r["user_id"]: r["agreement_consensus"] for r in again.annotators} == agreement
    assert {k: again.reliability[k] for k in ("icc", "alpha")} == rel


def test_a_lost_sample_object_is_read_around(sqlite_workspace, map_reads):
    ws = sqlite_workspace
    _catalog(ws, n_images=8, n_experts=3)
    with reader(ws) as s:
        params = [json.loads(p) for p in s.scalars(select(Label.params).where(Label.chain == "consensus"))]
    lost = params[2]["sample"]["object"]
    ws.objects.path(lost).unlink()
    got = quality_report(ws, use_cache=False, plots=False)
    assert _figures(got) == _figures(quality_report(ws, use_cache=False, plots=False, from_maps=True))
    assert got.reliability["n_images"] == 8
