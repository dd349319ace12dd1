"""`train_step` is the trainer's step: the same update as forward + L1 + backward + optimiser step by hand."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from iea_data.workflows.training import train_step  # noqa: E402


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))
    batch = {"image": torch.rand(2, 3, 8, 8), "residual": torch.rand(2, 1, 8, 8) * 2 - 1}
    return model, batch


def test_train_step_matches_a_hand_written_step():
    model, batch = _setup()
    twin = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt2 = torch.optim.Adam(twin.parameters(), lr=1e-2)
    loss = train_step(model, batch, opt, device="cpu")
    ref = torch.nn.functional.l1_loss(twin(batch["image"]), batch["residual"])
    opt2.zero_grad()
    ref.backward()
    opt2.step()
    assert not loss.requires_grad and loss.dtype == torch.float32
    assert torch.allclose(loss, ref.detach())
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b)


def test_train_step_with_a_disabled_scaler_and_a_scheduler_is_the_same_update():
    model, batch = _setup(1)
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt2 = torch.optim.SGD(twin.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_step(model, batch, opt, device="cpu", scaler=scaler, scheduler=sched)
    train_step(twin, batch, opt2, device=torch.device("cpu"))
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)  # the scheduler stepped once


def test_train_step_needs_image_and_residual():
    model, batch = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyError):
        train_step(model, {"image": batch["image"]}, opt, device="cpu")
