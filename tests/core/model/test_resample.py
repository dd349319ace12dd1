"""The sparse antialiased resize against ``F.interpolate(..., antialias=True)``, which it replaces.

Sizes start at 2: torch's kernel returns the first input value along an axis of length 1
that is resized on the other axis only (e.g. (10, 1) -> (4, 1)), which is not the filter.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from iea_data.core.model import resize_maps, to_batch
from iea_data.core.model._resample import aa_taps, resize_aa

side = st.integers(2, 600)
out_side = st.integers(2, 320)


def _torch_resize(x: np.ndarray, size) -> np.ndarray:
    t = torch.from_numpy(x)
    t = t[None, None] if x.ndim == 2 else t.permute(2, 0, 1)[None].contiguous()
    y = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (y[0] if x.ndim == 2 else y).numpy()


@settings(max_examples=40, deadline=None)
@given(in_size=side, out_size=out_side)
def test_weights_are_torchs(in_size, out_size):
    # torch's weights, read off by resizing the identity along one axis
    eye = torch.eye(in_size)[None, None]
    theirs = F.interpolate(eye, size=(out_size, in_size), mode="bilinear", align_corners=False, antialias=True)
    idx, w = aa_taps(in_size, out_size)
    ours = np.zeros((out_size, in_size), np.float32)
    np.add.at(ours, (np.repeat(np.arange(out_size), idx.shape[1]), idx.ravel()), w.ravel())
    assert float(np.abs(ours - theirs[0, 0].numpy()).max()) <= 1.2e-7
    assert np.allclose(w.sum(axis=1), 1, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(h=side, w=side, oh=out_side, ow=out_side, channels=st.sampled_from([0, 3]), seed=st.integers(0, 2**16))
def test_resize_matches_torch_within_1e6(h, w, oh, ow, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    x = rng.random(shape, dtype=np.float32)
    got = resize_aa(x, (oh, ow))
    assert got.dtype == torch.float32 and got.is_contiguous()
    want = _torch_resize(x, (oh, ow))
    assert got.shape == want.shape
    assert float(np.abs(got.numpy() - want).max()) <= 1e-6


def test_resize_keeps_the_input_and_takes_views():
    rng = np.random.default_rng(0)
    x = rng.random((40, 30, 3), dtype=np.float32)
    before = x.copy()
    view = x[::2, ::-1]  # not contiguous
    got = resize_aa(view, (11, 9))
    assert np.array_equal(x, before)
    assert float(np.abs(got.numpy() - _torch_resize(np.ascontiguousarray(view), (11, 9))).max()) <= 1e-6
    same = resize_aa(x, (40, 30))  # no resize: the planes, a copy
    assert np.array_equal(same.numpy(), x.transpose(2, 0, 1))


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float64), np.zeros((2, 2, 2, 2), np.float32), [[0.0]]])
def test_resize_rejects_other_arrays(bad):
    with pytest.raises(ValueError, match="float32 \\(H, W\\) or \\(H, W, C\\)"):
        resize_aa(bad, (2, 2))


def test_taps_reject_bad_sizes():
    with pytest.raises(ValueError, match="out_size must be an integer >= 1"):
        aa_taps(4, 0)


def test_to_batch_equals_the_torch_path_for_every_shrink():
    # up to 4x the sparse path, beyond it torch's kernel; both within 1e-6 of F.interpolate
    rng = np.random.default_rng(1)
    images = [rng.random(s, dtype=np.float32) for s in [(512, 512, 3), (300, 1100, 3), (200, 90, 3), (256, 256, 3)]]
    batch = to_batch(images)
    for i, img in enumerate(images):
        assert float(np.abs(batch[i].numpy() - _torch_resize(img, (256, 256))).max()) <= 1e-6


def test_resize_maps_equals_interpolate():
    rng = np.random.default_rng(2)
    maps = torch.from_numpy(rng.uniform(-1, 1, (3, 1, 256, 256)).astype(np.float32))
    for size in [(512, 512), (768, 1024), (100, 180)]:
        want = F.interpolate(maps, size=size, mode="bilinear", align_corners=False, antialias=True)
        got = resize_maps(maps, size=size)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert float((got - want).abs().max()) <= 1e-6
    as_f64 = resize_maps(maps.double(), size=(300, 300))  # other dtypes: torch's kernel
    assert as_f64.dtype == torch.float64
