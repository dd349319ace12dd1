"""Consensus of expert labels: a hand-computed example, and the policy end to end in a release."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from iea_data.workflows.releases import agreement_stats, build_release, consensus_map

from .conftest import add_expert, annotate, image_ids

# Five experts, one 1x3 image. Worked by hand:
#   pixel 0: values  0.1,  0.2,  0.3,  0.4,  0.9 -> median 0.3, mean 0.38, trimmed (drop 1 each end) 0.3
#   pixel 1: values -0.5, -0.4, -0.3,  0.2,  0.0 -> sorted -0.5 -0.4 -0.3 0 0.2: median -0.3, mean -0.2,
#            trimmed mean of -0.4 -0.3 0 = -0.2333...
#   pixel 2: all 0                                -> 0
# spread = mean over pixels of the population std: std(p0) = 0.28566..., std(p1) = 0.26077..., 0
# sign disagreement (one < -0.05 and another > +0.05): pixel 1 only -> 1/3
EXPERTS = np.array(
    [
        [[0.1, -0.5, 0.0]],
        [[0.2, -0.4, 0.0]],
        [[0.3, -0.3, 0.0]],
        [[0.4, 0.2, 0.0]],
        [[0.9, 0.0, 0.0]],
    ],
    np.float32,
)


@pytest.mark.parametrize(
    "method,expected",
    [
        ("median", [0.3, -0.3, 0.0]),
        ("mean", [0.38, -0.2, 0.0]),
        ("trimmed_mean", [0.3, -0.7 / 3, 0.0]),
    ],
)
def test_consensus_matches_the_hand_computed_example(method, expected):
    out = consensus_map(list(EXPERTS), method=method)
    assert out.dtype == np.float32 and out.shape == (1, 3)
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_agreement_matches_the_hand_computed_example():
    stats = agreement_stats(list(EXPERTS))
    p0 = np.sqrt(np.mean((np.array([0.1, 0.2, 0.3, 0.4, 0.9]) - 0.38) ** 2))
    p1 = np.sqrt(np.mean((np.array([-0.5, -0.4, -0.3, 0.2, 0.0]) + 0.2) ** 2))
    assert stats["n_experts"] == 5
    assert stats["spread"] == pytest.approx((p0 + p1 + 0) / 3, abs=1e-7)
    assert stats["sign_disagreement"] == pytest.approx(1 / 3)


def test_one_expert_is_its_own_consensus_and_agrees_fully():
    m = EXPERTS[0]
    np.testing.assert_array_equal(consensus_map([m]), m)
    assert agreement_stats([m]) == {"n_experts": 1, "spread": 0.0, "sign_disagreement": 0.0}


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="method must be one of median, mean, trimmed_mean"):
        consensus_map(list(EXPERTS), method="mode")
    with pytest.raises(ValueError, match="at least one"):
        consensus_map([])
    with pytest.raises(ValueError, match=r"maps\[1\]"):
        consensus_map([EXPERTS[0], EXPERTS[1] * 3])


def test_consensus_release_uses_each_experts_newest_accepted_revision(demo_ws_any):
    ws = demo_ws_any
    ids = image_ids(ws)
    target = ids["astronaut_-1EV.png"]
    one_expert = ids["coffee_+1EV.png"]
    from sqlalchemy import select

    from iea_data.store import Label

    with ws.session() as s:
        h, w = s.execute(select(Label.height, Label.width).where(Label.image_id == target)).first()
    experts = [add_expert(ws, f"expert{i}") for i in range(3)]
    vals = [-0.2, -0.1, 0.4]
    for e, v in zip(experts, vals):
        annotate(ws, target, e, np.full((h, w), 0.9, np.float32))  # an older accepted revision: superseded
        annotate(ws, target, e, np.full((h, w), v, np.float32))
    annotate(ws, target, experts[0], np.full((h, w), -1.0, np.float32), status="rejected")  # newest, but rejected
    annotate(ws, one_expert, experts[0], np.zeros((h, w), np.float32))
    # expert 0's newest chain head is rejected: its newest *accepted* revision (-0.2) counts
    rep = build_release(ws, "cons", "1.0.0", labels="consensus", min_experts=2, ratios=(1, 0), stratify=())
    assert sum(rep.counts.values()) == 1 and rep.n_labelled == 1
    assert ("coffee_+1EV.png", 1) in rep.below_min_experts
    assert len(rep.below_min_experts) == 7  # the other variants have no expert at all
    root = ws.releases_dir / "cons" / "1.0.0"
    images = pq.read_table(root / "native" / "images.parquet").to_pylist()
    assert [r["name"] for r in images] == ["astronaut_-1EV.png"]
    residual = np.load(root / images[0]["map_file"])
    np.testing.assert_allclose(
        residual, np.full((h, w), -0.1, np.float32), atol=1e-3
    )  # median of -0.2, -0.1, 0.4 (float16 store)
    agreement = pq.read_table(root / "native" / "agreement.parquet").to_pylist()
    assert agreement[0]["n_experts"] == 3
    assert agreement[0]["sign_disagreement"] == pytest.approx(1.0)
    assert agreement[0]["spread"] == pytest.approx(np.std([-0.2, -0.1, 0.4]), abs=1e-3)
    manifest = json.loads((root / "manifest.json").read_text())
    used = [r for r in manifest["label_revisions"] if r["image"] == "astronaut_-1EV.png"]
    assert sorted((r["chain"], r["revision"]) for r in used) == [(f"user:{e}", 2) for e in experts]
    assert manifest["label_policy"]["labels"] == "consensus" and manifest["label_policy"]["min_experts"] == 2
    card = (root / "README.md").read_text()
    assert "Expert agreement" in card and "1 image(s) had too few experts" not in card
