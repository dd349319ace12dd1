"""The metric front door (registry, configs, overrides) and the errors at the boundary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iea_data.core import metrics
from iea_data.core.errors import IeaError
from iea_data.core.metrics import MetricInputError

MAP_METRICS = metrics.list_metrics(kind="map")
SCORE_METRICS = metrics.list_metrics(kind="score")


def test_registry_lists_every_metric_of_the_issue():
    want = {
        "mae",
        "mse",
        "psnr",
        "ssim",
        "pixel_acc",
        "iou_under",
        "iou_ideal",
        "iou_over",
        "miou",
        "f1_macro",
        "srcc",
        "plcc",
        "krcc",
        "good_bad_acc",
    }
    assert set(metrics.list_metrics()) == want
    assert set(MAP_METRICS) | set(SCORE_METRICS) == want and not set(MAP_METRICS) & set(SCORE_METRICS)


def test_unknown_metric_and_parameter_hint():
    with pytest.raises(IeaError, match="Did you mean 'ssim'"):
        metrics.create("sssim")
    with pytest.raises(IeaError, match="no parameter 'cut'.*tau"):
        metrics.create("pixel_acc", cut=3)


def test_override_changes_the_result():
    p = np.array([[0.15, -0.15]])
    t = np.zeros((1, 2))
    assert metrics.create("pixel_acc")(p, t).tolist() == [0.0]
    assert metrics.create("pixel_acc", tau=0.2)(p, t).tolist() == [1.0]
    assert metrics.get_metric_cfg("pixel_acc").params["tau"] == 0.1  # the default table is untouched


@settings(max_examples=30, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(7, 12), st.integers(7, 12)),
        elements=st.floats(-1, 1, width=32),
    )
)
def test_identical_maps_give_the_perfect_value(m):
    for name in MAP_METRICS:
        metric = metrics.create(name)
        v = metric(m, m)
        assert v.shape == (m.shape[0],) and v.dtype == np.float64
        if name in ("mae", "mse"):
            assert np.all(v == 0)
        elif name == "psnr":
            assert np.all(np.isinf(v))
        elif name.startswith("iou_"):
            assert np.all(np.isnan(v) | (v == 1.0))
        else:
            np.testing.assert_allclose(v, 1.0, atol=1e-9)


@pytest.mark.parametrize("name", MAP_METRICS)
def test_map_values_stay_in_the_declared_range(name, rng):
    cfg = metrics.get_metric_cfg(name)
    p = rng.uniform(-1, 1, (4, 10, 10))
    t = rng.uniform(-1, 1, (4, 10, 10))
    v = metrics.create(name)(p, t)
    v = v[~np.isnan(v)]
    assert np.all((v >= cfg.value_range[0]) & (v <= cfg.value_range[1]))
    # the target itself scores better than a random prediction (lower_better is the right way round)
    m = metrics.create(name)
    assert m.better(m.aggregate(m(t, t)), m.aggregate(m(p, t)))


def test_map_shapes_accepted_and_equal():
    rng = np.random.default_rng(3)
    t = rng.uniform(-1, 1, (2, 8, 8)).astype(np.float32)
    p = rng.uniform(-1, 1, (2, 8, 8)).astype(np.float32)
    a = metrics.ssim(p, t)
    np.testing.assert_array_equal(metrics.ssim(p[:, None], t[:, None]), a)
    np.testing.assert_array_equal(metrics.ssim(p[1], t[1]), a[1:])


def test_shape_mismatch_nan_range_and_constant_errors():
    with pytest.raises(MetricInputError, match=r"same shape; got \(4, 4\) and \(4, 5\)"):
        metrics.mae(np.zeros((4, 4)), np.zeros((4, 5)))
    bad = np.zeros((4, 4))
    bad[1, 2] = np.nan
    with pytest.raises(MetricInputError, match="`target`.*1 NaN"):
        metrics.mse(np.zeros((4, 4)), bad)
    with pytest.raises(MetricInputError, match=r"`pred`.*\[-1, 1\]; got values in \[0, 1.5\]"):
        metrics.mae(np.array([[0.0, 1.5]]), np.zeros((1, 2)))
    with pytest.raises(MetricInputError, match="shape"):
        metrics.mae(np.zeros(4), np.zeros(4))
    with pytest.raises(MetricInputError, match="at least 7x7"):
        metrics.ssim(np.zeros((5, 5)), np.zeros((5, 5)))
    with pytest.raises(TypeError, match="dtype"):
        metrics.mae(np.array([["a"]]), np.array([["b"]]))
    with pytest.raises(MetricInputError, match="SRCC is undefined when `pred` is constant"):
        metrics.srcc([1, 1, 1], [1, 2, 3])
    with pytest.raises(MetricInputError, match="PLCC is undefined when `target` is constant"):
        metrics.plcc([1, 2, 3], [2, 2, 2])
    with pytest.raises(MetricInputError, match="KRCC"):
        metrics.krcc([[1, 2, 3], [4, 4, 4]], [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(MetricInputError, match="NaN"):
        metrics.srcc([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(MetricInputError, match="at least 2 scores"):
        metrics.plcc([1.0], [2.0])
    with pytest.raises(MetricInputError, match="same shape"):
        metrics.krcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="tau"):
        metrics.pixel_accuracy(np.zeros((2, 2)), np.zeros((2, 2)), tau=1.5)
    assert issubclass(MetricInputError, IeaError) and issubclass(MetricInputError, ValueError)


def test_aggregate_ignores_nan_for_maps_only():
    m = metrics.create("iou_over")
    assert m.aggregate([np.nan, 0.5]) == 0.5
    assert np.isnan(m.aggregate([np.nan, np.nan]))
    assert metrics.create("srcc").aggregate(0.25) == 0.25
