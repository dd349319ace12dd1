"""Gold scores, the simple consensus methods (same numbers as the release builder), the registry, the sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iea_data.core.errors import IeaError
from iea_data.core.quality import (
    CONSENSUS_METHODS,
    GOLD_THRESHOLD,
    RaterParams,
    get_consensus,
    gold_scores,
    pixel_sample,
    simple_consensus,
)
from iea_data.core.rules import Thresholds
from iea_data.workflows.releases import consensus_map as release_consensus


def test_gold_scores_by_hand():
    gold = np.array([[-0.5, -0.2, 0.0, 0.0], [0.3, 0.3, 0.05, -0.05]], np.float32)
    ann = np.array([[-0.3, 0.0, 0.0, -0.2], [0.3, 0.0, 0.2, -0.05]], np.float32)
    s = gold_scores(ann, gold)
    d = ann.astype(float) - gold
    assert s.mae == pytest.approx(np.abs(d).mean()) and s.bias == pytest.approx(d.mean())
    # classes at 0.1: gold U U I I / O O I I ; ann U I I U / O I O I -> agree on 0, 2, 4, 7
    assert s.sign_agreement == pytest.approx(4 / 8)
    assert s.iou_under == pytest.approx(1 / 3)  # under: gold {0, 1}, ann {0, 3}
    assert s.iou_over == pytest.approx(1 / 3)  # over: gold {4, 5}, ann {4, 6}
    assert GOLD_THRESHOLD == Thresholds().under
    z = np.zeros((3, 3), np.float32)
    assert gold_scores(z, z) == gold_scores(z, z, threshold=0.5)
    assert gold_scores(z, z).iou_under == 1.0 and gold_scores(z, z).iou_over == 1.0


def test_gold_scores_refuse_bad_input():
    z = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match="gold has"):
        gold_scores(z, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="threshold"):
        gold_scores(z, z, threshold=0)
    with pytest.raises(TypeError, match="gold"):
        gold_scores(z, z.astype(np.float64))


maps_strategy = st.integers(1, 7).flatmap(
    lambda n: st.lists(
        arrays(np.float32, (3, 4), elements=st.floats(-1, 1, width=32, allow_nan=False)), min_size=n, max_size=n
    )
)


@settings(max_examples=60, deadline=None)
@given(maps=maps_strategy)
def test_simple_methods_match_the_release_builder(maps):
    for ours, theirs in (("median", "median"), ("mean", "mean"), ("trimmed", "trimmed_mean")):
        a = simple_consensus(maps, ours)
        b = release_consensus(maps, method=theirs)
        assert a.dtype == np.float32 and np.array_equal(a, b)
        r = get_consensus(ours)({str(i): m for i, m in enumerate(maps)})
        assert np.array_equal(r.map, a) and r.method == ours


def test_registry_holds_the_four_methods_and_hints():
    assert CONSENSUS_METHODS.list() == ["mean", "median", "staple", "trimmed"]
    with pytest.raises(IeaError, match="Did you mean 'staple'"):
        get_consensus("stapel")
    maps = {"a": np.full((2, 2), 0.4, np.float32), "b": np.zeros((2, 2), np.float32)}
    p = RaterParams.from_values({"a": 0.0, "b": 0.0}, {"a": 0.01, "b": 0.03})
    assert np.allclose(get_consensus("staple")(maps, params=p).map, 0.3)
    with pytest.raises(ValueError, match="method"):
        simple_consensus(list(maps.values()), "mode")
    with pytest.raises(ValueError, match="trim"):
        simple_consensus(list(maps.values()), "trimmed", trim=0.5)


def test_pixel_sample_is_deterministic_distinct_and_sorted():
    a = pixel_sample((256, 256), 4096, key="f" * 64)
    assert a.tolist() == pixel_sample((256, 256), 4096, key="f" * 64).tolist()
    assert len(np.unique(a)) == 4096 and np.all(np.diff(a) > 0) and 0 <= a.min() and a.max() < 65536
    assert a.tolist() != pixel_sample((256, 256), 4096, key="e" * 64).tolist()
    assert pixel_sample((4, 4), 100, key=1).tolist() == list(range(16))
    with pytest.raises(ValueError, match="n must"):
        pixel_sample((4, 4), 0, key=1)
    with pytest.raises(TypeError, match="key"):
        pixel_sample((4, 4), 2, key=1.5)
