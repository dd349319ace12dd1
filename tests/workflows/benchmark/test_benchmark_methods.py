"""Methods: registry, signs on real photos, parameters, checkpoints by path."""

from __future__ import annotations

import numpy as np
import pytest

from iea_data.core.errors import IeaError
from iea_data.core.imaging import luma
from iea_data.workflows.benchmark import create_method, get_method_cfg, list_methods, parse_method_spec

from .conftest import make_items

BASELINES = ["zero", "global_offset", "local_offset", "histeq", "clahe"]


def test_registry_holds_the_issue_methods():
    assert set(list_methods()) == set(BASELINES) | {"pieanet", "refdiff"}
    assert get_method_cfg("refdiff").needs == ("reference",)
    with pytest.raises(IeaError, match="Did you mean 'clahe'"):
        create_method("clahee")
    with pytest.raises(IeaError, match="no parameter 'sigma'.*grey"):
        create_method("global_offset", sigma=3)


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_keep_shape_and_range(name):
    items = make_items(evs=(0.0,), size=(37, 53))
    img = items[0]["image"].transpose(1, 2, 0)
    out = create_method(name)([img, img[:20, :30]])
    assert [m.shape for m in out] == [(37, 53), (20, 30)]
    assert all(m.dtype == np.float32 and m.min() >= -1 and m.max() <= 1 for m in out)


@pytest.mark.parametrize("name", ["global_offset", "local_offset", "histeq"])
def test_baselines_have_the_project_sign(name):
    """A darkened photo is predicted darker (more negative) than the same photo brightened."""
    dark, bright = make_items(photos=("astronaut",), evs=(-2.0, 2.0))
    m = create_method(name)
    pd_, pb = m([dark["image"].transpose(1, 2, 0), bright["image"].transpose(1, 2, 0)])
    assert pd_.mean() < 0 < pb.mean()


def test_global_offset_is_mean_luma_minus_grey():
    item = make_items(photos=("coffee",), evs=(-1.0,))[0]
    img = item["image"].transpose(1, 2, 0)
    for grey in (0.5, 0.3):
        out = create_method("global_offset", grey=grey)([img])[0]
        np.testing.assert_allclose(out, luma(img).mean(dtype=np.float64) - grey, atol=1e-6)


def test_refdiff_oracle_reproduces_reference_labels_and_needs_references():
    items = make_items(photos=("chelsea",))
    m = create_method("refdiff")
    imgs = [it["image"].transpose(1, 2, 0) for it in items]
    refs = [it["reference"].transpose(1, 2, 0) for it in items]
    for out, it in zip(m(imgs, refs), items):
        np.testing.assert_allclose(out, it["residual"][0], atol=1e-6)
    with pytest.raises(IeaError, match="needs the scene's reference"):
        m(imgs)


def test_images_are_validated():
    with pytest.raises(TypeError, match=r"images\[0\]"):
        create_method("zero")([np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(TypeError, match="list"):
        create_method("zero")(np.zeros((4, 4, 3), np.float32))


def test_checkpoint_spec(tmp_path):
    with pytest.raises(IeaError, match="is not a file"):
        create_method(f"checkpoint:{tmp_path / 'missing.pth'}")


def test_pieanet_method_random_init_gives_maps_at_input_size():
    items = make_items(photos=("astronaut",), evs=(0.0,), size=(40, 56))
    m = create_method("pieanet", weights=None)
    out = m([items[0]["image"].transpose(1, 2, 0)])
    assert out[0].shape == (40, 56) and out[0].dtype == np.float32


def test_parse_method_spec():
    assert parse_method_spec("zero,clahe,zero") == ["zero", "clahe"]
    assert parse_method_spec("*") == list_methods()
    with pytest.raises(IeaError, match="empty"):
        parse_method_spec(" , ")
