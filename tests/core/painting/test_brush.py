"""The brush rasteriser: sign, strength, soft edge, modes, bounds, replay, and properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iea_data.core.heatmaps import overlay
from iea_data.core.painting import (
    PaintSession,
    Stroke,
    apply_stroke,
    brush_profile,
    heatmap_layer,
    replay,
    stroke_weight,
)


def zeros(h=64, w=80):
    return np.zeros((h, w), np.float32)


def dab(x, y, **kw):
    kw.setdefault("radius", 8.0)
    kw.setdefault("value", -0.2)
    return Stroke(id=kw.pop("id", 1), points=[[x, y]], **kw)


# ------------------------------------------------------------------ sign and strength


@pytest.mark.parametrize("value", [-0.3, -0.05, 0.12, 0.7])
@pytest.mark.parametrize("flow", [1.0, 0.4])
def test_add_sign_and_strength_at_the_centre(value, flow):
    base = zeros()
    c = apply_stroke(zeros(), dab(40, 30, value=value, flow=flow), base=base)
    assert c[30, 40] == pytest.approx(value * flow, abs=1e-6)
    assert np.sign(c[c != 0]).tolist() == [np.sign(value)] * int((c != 0).sum())
    assert np.abs(c).max() == pytest.approx(abs(value) * flow, abs=1e-6)


def test_x_is_column_and_y_is_row():
    c = apply_stroke(zeros(), dab(70, 10, radius=2, hardness=1.0), base=zeros())
    rows, cols = np.nonzero(c)
    assert rows.min() == 8 and rows.max() == 12 and cols.min() == 68 and cols.max() == 72


@pytest.mark.parametrize("hardness", [0.0, 0.3, 0.8, 1.0])
def test_soft_edge_falloff_follows_the_profile(hardness):
    r = 10.0
    c = apply_stroke(zeros(), dab(40, 30, radius=r, value=0.5, hardness=hardness), base=zeros())
    yy, xx = np.mgrid[0:64, 0:80]
    d = np.hypot(xx - 40, yy - 30) / r
    expected = 0.5 * brush_profile(d, hardness)
    np.testing.assert_allclose(c, expected, atol=1e-6)
    # monotone from the centre outwards, zero outside the radius
    row = c[30, 40:]
    assert np.all(np.diff(row) <= 1e-7)
    assert np.all(c[d > 1.0] == 0)
    if hardness < 1.0:  # a soft edge is below full strength before the rim
        assert 0 < c[30, 40 + 9] < 0.5


def test_overlapping_dabs_within_one_stroke_do_not_add_up():
    # many points piled on one spot and a slow zig-zag paint no more than one dab
    pts = [[40, 30]] * 50 + [[41, 30], [40, 30], [41, 30]]
    c = apply_stroke(zeros(), Stroke(id=1, points=pts, radius=6, value=0.1), base=zeros())
    assert c.max() == pytest.approx(0.1, abs=1e-6)


def test_path_is_painted_continuously_between_far_points():
    c = apply_stroke(
        zeros(), Stroke(id=1, points=[[10, 30], [70, 30]], radius=3, value=0.2, hardness=1.0), base=zeros()
    )
    assert np.all(c[30, 10:71] == np.float32(0.2))
    assert np.all(c[25, :] == 0)


# ------------------------------------------------------------------ modes


def test_set_moves_the_map_to_the_value():
    base = np.full((64, 80), 0.4, np.float32)
    c = apply_stroke(zeros(), dab(40, 30, mode="set", value=-0.1, hardness=1.0), base=base)
    assert base[30, 40] + c[30, 40] == pytest.approx(-0.1, abs=1e-6)
    half = apply_stroke(zeros(), dab(40, 30, mode="set", value=-0.1, hardness=1.0, flow=0.5), base=base)
    assert base[30, 40] + half[30, 40] == pytest.approx(0.15, abs=1e-6)


def test_smooth_reduces_variation_under_the_brush_only(rng):
    base = (rng.random((64, 80), np.float32) * 0.8 - 0.4).astype(np.float32)
    c = apply_stroke(zeros(), dab(40, 30, mode="smooth", radius=12, hardness=0.8), base=base)
    m = base + c
    inner = (slice(25, 36), slice(35, 46))
    assert m[inner].std() < 0.5 * base[inner].std()
    assert abs(m[inner].mean() - base[inner].mean()) < 0.05
    assert np.all(c[:, :20] == 0)


def test_restore_takes_the_correction_back_to_the_base():
    base = np.full((64, 80), 0.1, np.float32)
    painted = apply_stroke(zeros(), Stroke(id=1, points=[[10, 30], [70, 30]], radius=10, value=-0.5), base=base)
    restored = apply_stroke(painted, dab(40, 30, mode="restore", radius=6, hardness=1.0), base=base)
    assert np.all(restored[26:35, 37:44] == 0)  # fully back to the base under a hard brush
    assert restored[30, 15] == painted[30, 15]  # outside the brush untouched
    partial = apply_stroke(painted, dab(40, 30, mode="restore", radius=6, hardness=1.0, flow=0.25), base=base)
    assert partial[30, 40] == pytest.approx(0.75 * painted[30, 40], abs=1e-6)


def test_result_is_clipped_to_the_range():
    base = np.full((64, 80), 0.9, np.float32)
    c = apply_stroke(zeros(), dab(40, 30, value=0.5), base=base)
    assert (base + c).max() <= 1.0 + 1e-6
    ev = apply_stroke(zeros(), dab(40, 30, value=3.0), base=zeros(), value_range=(-4.0, 4.0))
    assert ev[30, 40] == pytest.approx(3.0)


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("x,y", [(-3, 30), (82, 30), (40, -5), (40, 66), (0, 0), (79, 63)])
def test_strokes_partly_outside_touch_only_the_inside(x, y):
    c = apply_stroke(zeros(), dab(x, y, radius=8), base=zeros())
    assert c.shape == (64, 80)
    assert (c != 0).any()
    yy, xx = np.mgrid[0:64, 0:80]
    assert np.all(c[np.hypot(xx - x, yy - y) >= 8] == 0)


@pytest.mark.parametrize("pts", [[[-100, -100]], [[200, 30], [300, 30]], [[40, 500]]])
def test_strokes_entirely_outside_change_nothing(pts, rng):
    corr = (rng.random((64, 80), np.float32) * 0.2 - 0.1).astype(np.float32)
    out = apply_stroke(corr, Stroke(id=1, points=pts, radius=5, value=0.3), base=zeros())
    assert out is not corr and np.array_equal(out, corr)


def test_apply_is_pure(rng):
    corr = (rng.random((64, 80), np.float32) * 0.2).astype(np.float32)
    before = corr.copy()
    apply_stroke(corr, dab(40, 30), base=zeros())
    assert np.array_equal(corr, before)


# ------------------------------------------------------------------ replay and the session


def random_strokes(rng, n, h=64, w=80):
    out = []
    for i in range(n):
        k = int(rng.integers(1, 6))
        pts = np.stack([rng.uniform(-10, w + 10, k), rng.uniform(-10, h + 10, k)], 1)
        out.append(
            Stroke(
                id=i + 1,
                points=pts,
                radius=float(rng.uniform(1, 15)),
                value=float(rng.uniform(-0.6, 0.6)),
                hardness=float(rng.uniform(0, 1)),
                flow=float(rng.uniform(0.1, 1)),
                mode=str(rng.choice(["add", "set", "smooth", "restore"])),
            )
        )
    return out


def test_replay_equals_incremental_and_the_session(rng):
    base = (rng.random((64, 80), np.float32) * 0.6 - 0.3).astype(np.float32)
    strokes = random_strokes(rng, 25)
    corr = zeros()
    for s in strokes:
        corr = apply_stroke(corr, s, base=base)
    np.testing.assert_array_equal(replay(strokes, base), corr)
    np.testing.assert_array_equal(replay([json.loads(s.to_json()) for s in strokes], base), corr)
    session = PaintSession(base)
    for s in strokes:
        session.apply([s.to_dict()])
    np.testing.assert_array_equal(session.correction, corr)
    assert [d["id"] for d in session.stroke_log()] == [s.id for s in strokes]


def test_session_applies_each_id_once_whatever_the_bursts(rng):
    base = zeros()
    strokes = [s.to_dict() for s in random_strokes(rng, 12)]
    expected = replay(strokes, base)
    session = PaintSession(base)
    # the browser resends every unacknowledged stroke with each trigger; bursts overlap and come out of order
    sent = [strokes[:3], strokes[:5], strokes[2:5][::-1], strokes[:8], strokes[7:12], strokes[:12], strokes[11:]]
    applied = [i for batch in sent for i in session.apply(batch)]
    assert applied == list(range(1, 13))
    np.testing.assert_array_equal(session.correction, expected)


def test_undo_redo():
    base = zeros()
    session = PaintSession(base)
    a, b = dab(20, 20, id=1, value=0.2).to_dict(), dab(50, 30, id=2, value=-0.3).to_dict()
    session.apply([a, b])
    after_a = replay([a], base)
    assert session.undo()
    np.testing.assert_array_equal(session.correction, after_a)
    assert session.undo() and not session.undo()
    np.testing.assert_array_equal(session.correction, zeros())
    assert session.redo()
    np.testing.assert_array_equal(session.correction, after_a)
    session.apply([dab(60, 10, id=3, value=0.1).to_dict()])  # a new stroke drops the redo stack
    assert not session.can_redo
    assert [d["id"] for d in session.stroke_log()] == [1, 3]
    session.apply([b])  # id 2 was seen: never applied again, even after an undo
    assert [d["id"] for d in session.stroke_log()] == [1, 3]


def test_session_resumes_a_draft_log():
    base = zeros()
    prior = [dab(20, 20, id=4).to_dict()]
    session = PaintSession(base, replay(prior, base), log=prior)
    assert session.last_id == 4 and not session.can_undo
    assert session.apply(prior) == []
    session.apply([dab(40, 40, id=5).to_dict()])
    assert [d["id"] for d in session.stroke_log()] == [4, 5]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"mode": "erase"}, "mode"),
        ({"radius": 0}, "radius"),
        ({"radius": -2}, "radius"),
        ({"value": float("nan")}, "value"),
        ({"points": [[1.0, float("nan")]]}, "points"),
        ({"points": []}, "points"),
        ({"points": [[1, 2, 3]]}, "points"),
        ({"hardness": 1.5}, "hardness"),
        ({"flow": 0}, "flow"),
        ({"id": -1}, "id"),
        ({"value": 100.0}, "value"),
    ],
)
def test_bad_strokes_are_refused_with_the_field_named(fields, match):
    data = {"id": 1, "points": [[1, 2]], "radius": 3, "value": 0.1} | fields
    with pytest.raises(ValueError, match=match):
        Stroke.from_json(json.dumps(data) if "nan" not in str(fields) else data)


def test_bad_json_and_unknown_fields():
    with pytest.raises(ValueError, match="unknown stroke field"):
        Stroke.from_json({"id": 1, "points": [[1, 2]], "radius": 3, "colour": "red"})
    with pytest.raises(ValueError, match="missing"):
        Stroke.from_json({"id": 1, "points": [[1, 2]]})
    with pytest.raises(ValueError, match="not valid JSON"):
        Stroke.from_json("{id: 1")
    with pytest.raises(TypeError, match="radius"):
        Stroke.from_json({"id": 1, "points": [[1, 2]], "radius": "big"})


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        apply_stroke(zeros(10, 10), dab(1, 1), base=zeros(10, 11))
    with pytest.raises(TypeError, match="float32"):
        apply_stroke(np.zeros((10, 10)), dab(1, 1), base=zeros(10, 10))
    with pytest.raises(ValueError, match="base"):
        apply_stroke(zeros(10, 10), dab(1, 1), base=np.full((10, 10), 2.0, np.float32))
    with pytest.raises(TypeError, match="Stroke"):
        apply_stroke(zeros(10, 10), {"id": 1}, base=zeros(10, 10))


# ------------------------------------------------------------------ properties

stroke_st = st.builds(
    lambda pts, r, v, h, f, mode, i: Stroke(id=i, points=pts, radius=r, value=v, hardness=h, flow=f, mode=mode),
    st.lists(st.tuples(st.floats(-30, 70), st.floats(-30, 60)), min_size=1, max_size=6),
    st.floats(0.5, 25),
    st.floats(-1, 1),
    st.floats(0, 1),
    st.floats(0.01, 1),
    st.sampled_from(["add", "set", "smooth", "restore"]),
    st.integers(0, 10_000),
)
maps_st = st.integers(0, 2**32 - 1).map(
    lambda seed: tuple(
        np.clip(np.random.default_rng(seed).normal(0, s, (40, 50)), -1, 1).astype(np.float32) for s in (0.4, 0.2)
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stroke=stroke_st, maps=maps_st)
def test_properties_untouched_pixels_and_range(stroke, maps):
    base, corr0 = maps
    corr = np.clip(base + corr0, -1, 1) - base  # a valid starting correction
    out = apply_stroke(corr, stroke, base=base)
    sw = stroke_weight(stroke, base.shape)
    reached = np.zeros(base.shape, bool)
    if sw is not None:
        (y0, y1, x0, x1), w = sw
        reached[y0:y1, x0:x1] = w > 0
    assert np.array_equal(out[~reached], corr[~reached])  # bit for bit
    m = base + out
    assert m.min() >= -1 - 1e-6 and m.max() <= 1 + 1e-6
    assert out.dtype == np.float32 and out.shape == base.shape


@settings(max_examples=150, deadline=None)
@given(stroke=stroke_st, maps=maps_st)
def test_property_add_moves_no_pixel_by_more_than_value(stroke, maps):
    base, corr0 = maps
    corr = np.clip(base + corr0, -1, 1) - base
    add = Stroke(
        id=stroke.id,
        points=stroke.points,
        radius=stroke.radius,
        value=stroke.value,
        hardness=stroke.hardness,
        flow=stroke.flow,
        mode="add",
    )
    out = apply_stroke(corr, add, base=base)
    moved = (base + out) - (base + corr)
    assert np.abs(moved).max() <= abs(add.value) + 1e-6
    assert np.all(moved * np.sign(add.value) >= -1e-6)  # never against the sign


# ------------------------------------------------------------------ the layer the browser draws


def test_layer_composited_at_an_opacity_matches_the_heatmap_overlay(rng):
    photo = rng.random((30, 40, 3), dtype=np.float32)
    residual = np.clip(rng.normal(0, 0.4, (30, 40)), -1, 1).astype(np.float32)
    layer = heatmap_layer(residual).astype(np.float32) / 255.0
    for opacity in (0.3, 0.7, 1.0):
        a = layer[..., 3:] * opacity
        composite = np.round((photo * (1 - a) + layer[..., :3] * a) * 255)
        expected = overlay(photo, residual, opacity=opacity).astype(np.float32)
        assert np.abs(composite - expected).max() <= 2


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), ops=st.lists(st.sampled_from(["stroke", "undo", "redo"]), min_size=1, max_size=12)
)
def test_session_changes_name_every_changed_pixel(seed, ops):
    # a viewer redraws only the boxes in PaintSession.changes: every pixel that changed must lie in one
    rng = np.random.default_rng(seed)
    base = (rng.random((40, 50), np.float32) * 0.6 - 0.3).astype(np.float32)
    session = PaintSession(base)
    strokes = iter(random_strokes(rng, 12, h=40, w=50))
    for op in ops:
        before, rev = session.map.copy(), session.revision
        if op == "stroke":
            session.apply([next(strokes)])
        else:
            getattr(session, op)()
        covered = np.zeros(base.shape, bool)
        for r, (y0, y1, x0, x1) in session.changes:
            if r > rev:
                covered[y0:y1, x0:x1] = True
        assert not np.any((session.map != before) & ~covered)
