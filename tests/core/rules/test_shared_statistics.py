"""The shared-statistics scoring (`score_maps`, and `score_map` through it) equals the plain
float64 definition bit for bit, including pixels exactly at, and one float32 step beside, every threshold."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iea_data.core.rules import (
    RuleScore,
    Thresholds,
    exposure_statistics,
    get_rule_base,
    list_rule_bases,
    score_map,
    score_maps,
)

RBS = [get_rule_base(n) for n in list_rule_bases()]


def _definition(residual, t, mask):
    """The statistics as the module docstring defines them, in float64 (the implementation before sharing)."""
    r = residual.astype(np.float64)
    classes = {
        "under": r <= -t.under,
        "over": r >= t.over,
        "severe_under": r <= -t.severe,
        "severe_over": r >= t.severe,
    }
    out = {}
    for scope, sel in {"global": None, "region": mask, "background": None if mask is None else ~mask}.items():
        n = 0 if (scope == "background" and mask is None) else (r.size if sel is None else int(sel.sum()))
        for q, cls in classes.items():
            cnt = 0 if n == 0 else int(cls.sum() if sel is None else (cls & sel).sum())
            out[f"{scope}.{q}"] = cnt / n if n else 0.0
        out[f"{scope}.bad"] = out[f"{scope}.under"] + out[f"{scope}.over"]
        out[f"{scope}.severe"] = out[f"{scope}.severe_under"] + out[f"{scope}.severe_over"]
        vals = (r if sel is None else r[sel]) if n else np.zeros(0)
        out[f"{scope}.mean"] = float(vals.mean()) if n else 0.0
        out[f"{scope}.mean_abs"] = float(np.abs(vals).mean()) if n else 0.0
    return out


def _edges():
    ts = {abs(v) for rb in RBS for v in vars(rb.thresholds).values()} | {0.15, 0.3}
    vals = []
    for t in ts:
        for v in (np.float32(t), np.float32(-t)):
            vals += [v, np.nextafter(v, np.float32(2)), np.nextafter(v, np.float32(-2))]
    return np.clip(np.array(vals, np.float32), -1, 1)


EDGES = _edges()


@st.composite
def maps(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    r = rng.uniform(-1, 1, (h, w)).astype(np.float32)
    at_edge = rng.random((h, w)) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    r[at_edge] = rng.choice(EDGES, int(at_edge.sum()))
    kind = draw(st.sampled_from(["none", "random", "empty", "full"]))
    mask = (
        None
        if kind == "none"
        else {"random": rng.random((h, w)) < 0.4, "empty": np.zeros((h, w), bool)}.get(kind, np.ones((h, w), bool))
    )
    return r, mask


@settings(max_examples=60, deadline=None)
@given(m=maps(), t=st.sampled_from([Thresholds(), Thresholds(0.2, 0.1, 0.4), Thresholds(0.08, 0.08, 0.4)]))
def test_statistics_equal_the_definition_bit_for_bit(m, t):
    r, mask = m
    got, want = exposure_statistics(r, t, mask=mask), _definition(r, t, mask)
    assert list(got) == list(want)
    assert got == want  # exact float equality, key by key


@settings(max_examples=40, deadline=None)
@given(m=maps())
def test_score_maps_equals_score_map_and_the_definition(m):
    r, mask = m
    shared = score_maps(r, RBS, mask=mask)
    assert shared == [score_map(r, rb, mask=mask) for rb in RBS]
    for s, rb in zip(shared, RBS):
        use = mask if rb.region is not None else None
        assert s.statistics == _definition(r, rb.thresholds, use)


def test_score_maps_on_a_1024px_map_with_a_mask():
    rng = np.random.default_rng(0)
    r = np.clip(rng.normal(0, 0.2, (768, 1024)), -1, 1).astype(np.float32)
    mask = np.zeros(r.shape, bool)
    mask[200:600, 300:700] = True
    shared = score_maps(r, RBS, mask=mask)
    assert all(isinstance(s, RuleScore) for s in shared)
    for s, rb in zip(shared, RBS):
        assert s.statistics == _definition(r, rb.thresholds, mask if rb.region else None)
        assert s.region == ("none" if rb.region is None else "mask")


def test_score_maps_validates_like_score_map():
    r = np.zeros((4, 4), np.float32)
    with pytest.raises(TypeError, match=r"rule_bases\[1\] must be a RuleBase"):
        score_maps(r, [RBS[0], "strict_landscape"])
    with pytest.raises(TypeError, match="rule_bases must be a sequence of RuleBase"):
        score_maps(r, RBS[0])
    with pytest.raises(ValueError, match="mask must have the residual map's shape"):
        score_maps(r, RBS, mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="float32"):
        score_maps(r.astype(np.float64), RBS)
    assert score_maps(r, []) == []
