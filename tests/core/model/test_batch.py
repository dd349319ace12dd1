"""predict_files: threads decode ahead of the model (or between its batches), in order, errors per file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iea_data.core.imaging import write_image
from iea_data.core.model import predict_files


class _MeanModel(torch.nn.Module):
    """Residual = channel mean - 0.5: enough to tell images apart, instant."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.mean(1, keepdim=True) - 0.5


@pytest.fixture()
def files(tmp_path):
    paths = []
    for i in range(7):
        p = tmp_path / f"im{i}.png"
        write_image(p, np.full((24 + 8 * i, 40, 3), i / 8, np.float32))
        paths.append(str(p))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    paths.insert(3, str(bad))
    return paths


@pytest.mark.parametrize("ahead", [True, False], ids=["ahead", "between-batches"])
@pytest.mark.parametrize("workers", [1, 2])
def test_thread_loader_matches_in_turn_decoding(files, workers, ahead, monkeypatch):
    from iea_data.core.model import _files

    monkeypatch.setattr(_files, "_decode_ahead", lambda device: ahead)
    model = _MeanModel()
    serial = list(predict_files(model, files, batch_size=3, num_workers=0, max_side=64))
    threaded = list(predict_files(model, files, batch_size=3, num_workers=workers, max_side=64))
    assert [f.index for f in threaded] == list(range(len(files)))
    assert [bool(f.error) for f in threaded] == [i == 3 for i in range(len(files))]
    for a, b in zip(serial, threaded):
        assert a.error == b.error
        if a.residual is not None:
            assert a.residual.shape == b.residual.shape and np.array_equal(a.residual, b.residual)
    # image k (k-th readable) is a flat grey k/8: its residual is k/8 - 0.5 (8-bit rounding)
    means = [float(f.residual.mean()) for f in threaded if f.residual is not None]
    assert np.allclose(means, [k / 8 - 0.5 for k in range(7)], atol=3e-3)


def test_loader_option_is_validated(files):
    with pytest.raises(ValueError, match="loader must be 'threads' or 'processes', got 'fork'"):
        list(predict_files(_MeanModel(), files, loader="fork"))
    with pytest.raises(ValueError, match="dtype must be"):
        list(predict_files(_MeanModel(), files, dtype=torch.int8))


def test_decoding_runs_ahead_only_where_the_model_leaves_cores_free(monkeypatch):
    from iea_data.core.model import _files

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_files.os, "cpu_count", lambda: 2)
    assert _files._decode_ahead("cpu") is False  # the model's threads take every core
    assert _files._decode_ahead("cuda") is True
    monkeypatch.setattr(_files.os, "cpu_count", lambda: 16)
    assert _files._decode_ahead("cpu") is True
