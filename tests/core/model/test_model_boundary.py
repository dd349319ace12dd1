"""The model boundary: validation messages, sign conversion, to_batch / from_batch, predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iea_data.core.model import (
    PIEANet,
    from_batch,
    official_to_residual,
    predict,
    residual_to_official,
    to_batch,
    validate_batch,
)

from .conftest import SAMPLES, TOL, official_path


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return PIEANet().eval()


# ---------------------------------------------------------------- validation at the boundary


@pytest.mark.parametrize(
    "shape, match",
    [
        ((3, 256, 256), r"\(N, 3, 256, 256\); got \(3, 256, 256\)"),
        ((1, 4, 256, 256), r"got \(1, 4, 256, 256\)"),
        ((1, 3, 128, 128), r"256x256 .* got 128x128"),
    ],
)
def test_wrong_shape_is_refused(untrained, shape, match):
    with pytest.raises(ValueError, match=match):
        untrained(torch.zeros(shape))


def test_wrong_dtype_is_refused(untrained):
    with pytest.raises(TypeError, match="float32 .* got torch.float64"):
        untrained(torch.zeros(1, 3, 256, 256, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        untrained(np.zeros((1, 3, 256, 256), np.float32))


@pytest.mark.parametrize("lo, hi", [(0.0, 255.0), (-0.5, 1.0)])
def test_out_of_range_reports_min_max(untrained, lo, hi):
    x = torch.full((1, 3, 256, 256), 0.5)
    x[0, 0, 0, 0], x[0, 1, 0, 0] = lo, hi
    with pytest.raises(ValueError, match=rf"min {lo:g}, max {hi:g}"):
        untrained(x)


def test_nan_is_refused():
    x = torch.full((1, 3, 256, 256), 0.5)
    x[0, 2, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="nan"):
        validate_batch(x)


def test_rounding_excursion_is_accepted():
    # antialiased resizing returns e.g. 1.0000002 (the golden inputs hold such values)
    validate_batch(torch.full((1, 3, 256, 256), 1.0000002))


def test_reference_path_validates_too(untrained):
    with pytest.raises(ValueError, match="max 2"):
        untrained.forward_official(torch.full((1, 3, 256, 256), 2.0), impl="reference")


def test_unknown_impl(untrained):
    with pytest.raises(ValueError, match="impl must be one of"):
        untrained.forward_official(torch.zeros(1, 3, 256, 256), impl="slow")
    with pytest.raises(ValueError, match="impl must be one of"):
        PIEANet(impl="turbo")


# ---------------------------------------------------------------- conversions


def test_sign_conversions_are_inverse():
    x = torch.tensor([0.25, -0.5, 0.0])
    assert torch.equal(official_to_residual(x), -x)
    assert torch.equal(residual_to_official(official_to_residual(x)), x)


def test_to_batch_resizes_like_the_goldens():
    from PIL import Image

    batch = to_batch(
        [
            np.asarray(Image.open(official_path("samples", f"{n}.jpg")).convert("RGB"), dtype=np.float32) / 255
            for n in SAMPLES
        ]
    )
    assert batch.shape == (2, 3, 256, 256) and batch.dtype == torch.float32
    for i, name in enumerate(SAMPLES):
        gold = np.load(official_path("golden", f"{name}.input.npy"))
        assert float(np.abs(batch[i].numpy() - gold).max()) <= TOL["to_batch_vs_golden_input"]


def test_to_batch_keeps_256_images_and_mixes_sizes(rng):
    a = rng.random((256, 256, 3), dtype=np.float32)
    b = rng.random((100, 70, 3), dtype=np.float32)
    batch = to_batch([a, b])
    assert batch.shape == (2, 3, 256, 256)
    assert torch.equal(batch[0], torch.from_numpy(a).permute(2, 0, 1))


@pytest.mark.parametrize(
    "image, exc, match",
    [
        (np.zeros((8, 8, 3), np.uint8), TypeError, r"images\[0\] must be float32"),
        (np.zeros((8, 8), np.float32), ValueError, r"images\[0\] must have shape \(H, W, 3\)"),
        (np.full((8, 8, 3), 3.0, np.float32), ValueError, r"images\[0\] must lie in \[0, 1\]; got min 3, max 3"),
        (np.zeros((0, 8, 3), np.float32), ValueError, "empty"),
    ],
)
def test_to_batch_refuses_bad_images(image, exc, match):
    with pytest.raises(exc, match=match):
        to_batch([image])


def test_to_batch_refuses_a_bare_array():
    with pytest.raises(TypeError, match="list"):
        to_batch(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        to_batch([])


def test_from_batch():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 1, 3, 4)
    maps = from_batch(x)
    assert [m.shape for m in maps] == [(3, 4), (3, 4)]
    assert all(m.dtype == np.float32 for m in maps)
    np.testing.assert_array_equal(maps[1], x[1, 0].numpy())
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        from_batch(torch.zeros(2, 3, 4, 4))


# ---------------------------------------------------------------- predict


def test_predict_shapes_batches_and_sizes(untrained, rng):
    images = [rng.random((40 + 10 * i, 30, 3), dtype=np.float32) for i in range(2)]
    maps = predict(untrained, images, batch_size=1)
    assert len(maps) == 2 and all(m.shape == (256, 256) and m.dtype == np.float32 for m in maps)
    resized = predict(untrained, images, batch_size=2, sizes="input")
    assert [m.shape for m in resized] == [img.shape[:2] for img in images]
    together = predict(untrained, images, batch_size=2)
    for a, b in zip(maps, together):
        assert float(np.abs(a - b).max()) <= TOL["batch_independence"]


def test_predict_rejects_bad_options(untrained, rng):
    images = [rng.random((8, 8, 3), dtype=np.float32)]
    with pytest.raises(ValueError, match="batch_size"):
        predict(untrained, images, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        predict(untrained, images, dtype=torch.float64)
    with pytest.raises(ValueError, match="sizes has 2 entries"):
        predict(untrained, images, sizes=[(8, 8), (8, 8)])


def test_fast_path_supports_autograd(untrained, rng):
    x = torch.from_numpy(rng.random((1, 3, 256, 256), dtype=np.float32)).requires_grad_()
    out = untrained(x)
    out.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.inference_mode():
        assert float((untrained(x.detach()) - out.detach()).abs().max()) <= TOL["onednn_fusion"]


def test_structure_gradients_fast_equal_reference(untrained, rng):
    # The per-token form is the same function as the paired nn.Transformer, gradients too.
    h = torch.from_numpy(rng.standard_normal((1, 9, 16, 16), dtype=np.float32))
    h_fast, h_ref = h.clone().requires_grad_(), h.clone().requires_grad_()
    untrained.structure.forward_fast(h_fast).square().sum().backward()
    untrained.structure.forward_reference(torch.cat([h_ref, h_ref]))[:1].square().sum().backward()
    torch.testing.assert_close(h_fast.grad, h_ref.grad, atol=1e-4, rtol=1e-4)
