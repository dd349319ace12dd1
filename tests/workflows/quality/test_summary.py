"""The quality summary (migration 0006) kept by the writers equals a from-scratch recomputation.

A random sequence of saves (drafts replacing submitted heads included), reviews, status
changes, ``labels import`` and consensus runs, on SQLite and PostgreSQL: after it, the
summary tables and ``labels.gap_s`` are what :func:`rebuild_quality_summary` computes from
the labels alone, and the report's figures are those of the plain-Python definitions of
``test_speed``; agreement and reliability equal those computed from the maps (a consensus
revision's stored figures are used only while its image's expert heads are unchanged). Then
concurrent writers (threads, one per annotator, over the same images) leave the summary equal
to the recomputation too.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from sqlalchemy import select

from iea_data.store import Label, QualityAnnotator, QualityImage, aware, rebuild_quality_summary
from iea_data.workflows.labels import chain_head, chain_key, review_label, save_label, set_label_status
from iea_data.workflows.quality import compute_consensus, import_expert_labels, quality_report, update_consensus
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD, reader
from .conftest import add_images, expert_map
from .test_speed import _slow_annotator_figures, _slow_images


def _summary(ws) -> dict:
    """The summary tables and the gaps, as plain values (times aware)."""
    with reader(ws) as s:
        images = {
            r.image_id: (r.n_experts, r.experts, aware(r.newest_at), r.consensus_label_id, r.consensus_method)
            + (None if r.consensus_spread_mean is None else round(r.consensus_spread_mean, 9),)
            for r in s.scalars(select(QualityImage))
        }
        annotators = {
            r.user_id: (r.images_done, r.strokes_sum, r.strokes_n, r.gaps_sum, r.gaps_n)
            for r in s.scalars(select(QualityAnnotator))
        }
        gaps = dict(s.execute(select(Label.id, Label.gap_s).where(Label.kind == "annotation")).all())
    # an image row the writers touched that holds nothing (every expert left, no consensus) is no figure
    images = {i: v for i, v in images.items() if v[0] or v[3] is not None}
    return {"images": images, "annotators": annotators, "gaps": gaps}


def _same(a, b) -> bool:
    """Equal, floats within 1 ms (SQLite's julianday arithmetic in the recomputation is good to ~5e-5 s)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-3
    return a == b


def _rebuilt(ws) -> dict:
    with ws.unit() as uow:
        rebuild_quality_summary(uow.session)
    return _summary(ws)


def _save(ws, rng: random.Random, user_id: int, image_id: int, status: str) -> int:
    with ws.unit() as uow:
        head = chain_head(uow, image_id, chain_key("annotation", author_id=user_id))
        params = {"n_strokes": rng.randint(0, 9)} if rng.random() < 0.8 else None
        return save_label(
            uow,
            expert_map(image_id, 0.03 * user_id, 0.05, seed=rng.randrange(10**6)),
            image_id=image_id,
            kind="annotation",
            author_id=user_id,
            parent_id=head.id if head else None,
            params=params,
            status=status,
        ).id


def _heads(ws, status: str) -> list[tuple[int, int]]:
    """(label id, author) of the expert chain heads in ``status``."""
    with reader(ws) as s:
        rows = s.execute(
            select(Label.id, Label.author_id, Label.image_id, Label.chain, Label.revision, Label.status).where(
                Label.kind == "annotation"
            )
        ).all()
    newest: dict = {}
    for r in rows:
        if (r.image_id, r.chain) not in newest or r.revision > newest[(r.image_id, r.chain)].revision:
            newest[(r.image_id, r.chain)] = r
    return sorted((r.id, r.author_id) for r in newest.values() if r.status == status)


def _import(ws, rng: random.Random, folder, image_names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for p in folder.glob("*.npy"):
        p.unlink()
    for name in rng.sample(image_names, 3):
        np.save(folder / f"{name}.npy", np.full((6, 8), rng.uniform(-0.5, 0.5), np.float32))
    import_expert_labels(ws, folder, author="ext", status=rng.choice(["submitted", "accepted"]))


def _random_history(ws, tmp_path, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    annotators = [add_user(ws, f"a{k}", role="annotator", password=PASSWORD) for k in range(4)]
    reviewer = add_user(ws, "rev", role="reviewer", password=PASSWORD)
    ids = add_images(ws, 6)
    names = [f"img_{k:03d}.png" for k in range(6)]
    for _ in range(steps):
        op = rng.choices(["save", "review", "status", "import", "consensus"], weights=[10, 3, 2, 1, 1])[0]
        if op == "save":  # a draft over a submitted head takes the expert off the image
            u = rng.choice(annotators)
            _save(ws, rng, u.id, rng.choice(ids), rng.choice(["draft", "submitted", "submitted"]))
        elif op == "review" and (pending := _heads(ws, "submitted")):
            lid, author = rng.choice(pending)
            if author != reviewer.id:
                decision = rng.choice(["accept", "reject"])
                review_label(ws, reviewer, lid, decision=decision, comment="fix" if decision == "reject" else None)
        elif op == "status" and (any_head := _heads(ws, "submitted") + _heads(ws, "accepted")):
            with ws.unit() as uow:  # e.g. a withdrawal, or a maintainer's fix
                set_label_status(uow, rng.choice(any_head)[0], rng.choice(["draft", "rejected", "accepted"]))
        elif op == "import":
            _import(ws, rng, tmp_path / "ext", names)
        elif op == "consensus":
            if rng.random() < 0.5:
                compute_consensus(ws, method="mean")
            else:  # the images marked stale since, with the stored fit
                update_consensus(ws)


def _timeless(rows):
    """The annotator rows less ``seconds_per_image``: a wall-clock figure, two reports may round it apart."""
    return [{k: v for k, v in r.items() if k != "seconds_per_image"} for r in rows]


@pytest.mark.parametrize("seed", [0, 1])
def test_summary_equals_the_recomputation_after_random_writes(workspace, tmp_path, seed):
    if seed and workspace.database_url.startswith("postgresql"):  # one history there is enough (slower)
        pytest.skip("the second history runs on SQLite only")
    ws = workspace
    _random_history(ws, tmp_path, seed, steps=70)
    kept = _summary(ws)
    assert kept["annotators"] and kept["images"]
    assert any(v[4] for v in kept["annotators"].values())  # some gaps counted
    assert any(v[3] is not None for v in kept["images"].values())  # some consensus rows
    rep = quality_report(ws, use_cache=False, plots=False)
    assert _same(_rebuilt(ws), kept)
    # and the figures are the plain-Python definitions over every revision
    slow = _slow_annotator_figures(ws)
    got = {r["user_id"]: r for r in rep.annotators}
    assert set(got) == set(slow)
    for uid, want in slow.items():
        assert {k: got[uid][k] for k in want} == pytest.approx(want, abs=0.051), uid
    fast = [(r["image_id"], r["n_experts"], r["spread_mean"], r["consensus_label_id"], r["method"]) for r in rep.images]
    assert sorted(fast) == sorted(_slow_images(ws))
    again = quality_report(ws, use_cache=False, plots=False)
    assert (_timeless(again.annotators), again.images) == (_timeless(rep.annotators), rep.images)
    # agreement and reliability from the figures the consensus revisions stored (current ones) = from the maps
    maps = quality_report(ws, use_cache=False, plots=False, from_maps=True)
    assert (_timeless(rep.annotators), rep.reliability, rep.reliability_over_time) == (
        _timeless(maps.annotators),
        maps.reliability,
        maps.reliability_over_time,
    )
    assert any(r["agreement_consensus"] is not None for r in rep.annotators)


def test_a_drifted_summary_is_caught_and_repaired(workspace, tmp_path):
    """The comparison can fail: a summary moved behind the writers' back differs from the recomputation."""
    ws = workspace
    _random_history(ws, tmp_path, 3, steps=25)
    kept = _summary(ws)
    with ws.unit() as uow:
        uow.session.execute(QualityAnnotator.__table__.update().values(images_done=QualityAnnotator.images_done + 1))
    assert not _same(_summary(ws), kept)
    assert _same(_rebuilt(ws), kept)


def test_concurrent_writers_keep_the_summary_exact(workspace):
    """Four annotators save at once over the same images (threads; on PostgreSQL real concurrency)."""
    ws = workspace
    users = [add_user(ws, f"c{k}", role="annotator", password=PASSWORD) for k in range(4)]
    ids = add_images(ws, 5)
    errors: list[BaseException] = []
    start = threading.Barrier(len(users))

    def work(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait()
            for _round in range(3):
                for i in ids:
                    _save(ws, rng, users[k].id, i, rng.choice(["draft", "submitted"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    kept = _summary(ws)
    assert sum(v[4] for v in kept["annotators"].values()) == len(users) * (3 * len(ids) - 1)  # every gap counted
    assert _same(_rebuilt(ws), kept)
