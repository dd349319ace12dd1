"""Fine-tuning P-IEANet from the released weights: the loss falls and the checkpoint loads back everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import shared_path
from iea_data.benchmark import create_method
from iea_data.model import create_model, sha256_file
from iea_data.training import TrainConfig, collate_train, train

from ._tiny import tiny_items


def test_collate_resizes_to_the_model_size():
    items = tiny_items(2, 0)
    b = collate_train(items, size=(32, 24))
    assert tuple(b["image"].shape) == (2, 3, 32, 24) and tuple(b["residual"].shape) == (2, 1, 32, 24)
    assert float(b["image"].min()) >= 0 and float(b["image"].max()) <= 1
    assert torch.isnan(b["score"]).all()
    with pytest.raises(ValueError, match=r"items\[0\]\['image'\] must be \(3, H, W\)"):
        collate_train([{"image": np.zeros((4, 4), np.float32), "residual": np.zeros((1, 4, 4), np.float32)}], size=(4, 4))


@pytest.mark.slow
def test_finetune_official_two_epochs_loss_falls_and_checkpoint_loads(tmp_path):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    torch.set_num_threads(2)
    items = tiny_items(2, 5)
    out = tmp_path / "ft"
    cfg = TrainConfig(epochs=2, batch_size=1, lr=2e-5, device="cpu", val_metrics=("mae", "ssim"))  # init="official"
    result = train(items[:1], items[1:], out, config=cfg)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    info = json.loads((out / "model.json").read_text())
    assert info["init"] == "official" and info["sha256"] == sha256_file(out / "model.pth")
    assert info["model_keys"] == "official" and "NeurIPS 2024" in info["source"] and info["license"]

    official = create_model("pieanet", weights="official")
    tuned = create_model("pieanet", weights=out / "model.pth")
    from_last = create_model("pieanet", weights=out / "last.pt")
    so, st, sl = official.state_dict(), tuned.state_dict(), from_last.state_dict()
    assert all(torch.equal(st[k], sl[k]) for k in st)
    assert any(not torch.equal(st[k], so[k]) for k in st)  # it trained

    img = items[1]["image"].numpy().transpose(1, 2, 0)
    via_method = create_method(f"checkpoint:{out / 'model.pth'}")([img])[0]
    via_official = create_method("pieanet")([img])[0]
    assert via_method.shape == img.shape[:2] and not np.array_equal(via_method, via_official)
