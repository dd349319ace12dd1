"""§1: gold images come at the workspace rate in every annotator's queue, look like any other, and are scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from iea_data.core.errors import IeaError, PermissionDeniedError
from iea_data.workflows.labels import annotation_queue
from iea_data.workflows.quality import (
    add_gold,
    get_gold_rate,
    gold_results,
    list_gold,
    remove_gold,
    set_gold_rate,
)
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD
from .conftest import add_images, save_expert, truth_map

N_IMAGES, N_GOLD = 120, 12


@pytest.fixture
def golden(qws):
    admin = add_user(qws, "admin", role="admin", password=PASSWORD)
    ref = add_user(qws, "refexpert", role="reviewer", password=PASSWORD)
    anns = [add_user(qws, f"ann{k}", role="annotator", password=PASSWORD) for k in range(3)]
    ids = add_images(qws, N_IMAGES)
    gold_ids = ids[::10][:N_GOLD]
    for i in gold_ids:
        save_expert(qws, ref.id, i, truth_map(i), status="accepted")
        add_gold(qws, i, by=admin)
    return {"admin": admin, "anns": anns, "ids": ids, "gold": gold_ids, "ref": ref}


def test_gold_images_appear_at_the_rate_deterministically_and_look_like_any_other(qws, golden):
    gold = set(golden["gold"])
    assert get_gold_rate(qws) == 0.05
    set_gold_rate(qws, 0.1, by=golden["admin"])
    orders = []
    for ann in golden["anns"]:
        q = annotation_queue(qws, ann)
        assert len(q) == N_IMAGES
        first = [item.image_id for item in q[:100]]
        n_gold = sum(i in gold for i in first)
        assert 9 <= n_gold <= 11  # 10 % of 100 positions, within 1/n of the rate
        for n in (20, 50):  # any prefix holds its share, within one slot
            assert abs(sum(i in gold for i in first[:n]) - 0.1 * n) <= 1
        assert [item.image_id for item in annotation_queue(qws, ann)] == [item.image_id for item in q]  # deterministic
        orders.append([k for k, item in enumerate(q) if item.image_id in gold])
    assert len({tuple(o) for o in orders}) > 1  # each annotator has their own slots
    # indistinguishable: the same fields and values as without the gold mark
    with_gold = {item.image_id: dataclasses.asdict(item) for item in annotation_queue(qws, golden["anns"][0])}
    for i in gold:
        remove_gold(qws, i)
    plain = {item.image_id: dataclasses.asdict(item) for item in annotation_queue(qws, golden["anns"][0])}
    assert with_gold == plain
    assert all("gold" not in str(k).lower() for d in with_gold.values() for k in d)


def test_gold_admin_rules_and_scores_per_annotator(qws, golden):
    ann = golden["anns"][0]
    with pytest.raises(PermissionDeniedError):
        add_gold(qws, golden["ids"][1], by=ann)
    with pytest.raises(IeaError, match="no imported map and no accepted annotation"):
        add_gold(qws, golden["ids"][1])
    with pytest.raises(ValueError, match=r"gold rate must be a number in \[0, 0.5\]"):
        set_gold_rate(qws, 0.7)
    listed = list_gold(qws)
    assert [g.image_id for g in listed] == sorted(golden["gold"]) and listed[0].added_by == "admin"
    g0, g1 = golden["gold"][:2]
    save_expert(qws, ann.id, g0, np.clip(truth_map(g0) + 0.1, -1, 1).astype(np.float32), status="submitted")
    save_expert(qws, ann.id, g1, truth_map(g1), status="submitted")
    results = {r.image_id: r for r in gold_results(qws) if r.user_name == "ann0"}
    assert set(results) == {g0, g1}
    assert results[g0].bias == pytest.approx(0.1, abs=0.02) and results[g0].mae == pytest.approx(0.1, abs=0.02)
    assert results[g1].mae == pytest.approx(0.0, abs=1e-3) and results[g1].sign_agreement == pytest.approx(1.0)
