"""One optimisation step of the residual-map trainer: forward, L1 loss, backward, optimiser (and scheduler) step.

:func:`train` runs every batch through :func:`train_step`, and the training benchmark
(``pipelines/benchmarks/train.py``) times this same function as its baseline, so the
trainer's overhead is measured against the library's own step, not a copy of it.

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Conv2d(3, 1, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> batch = {"image": torch.zeros(2, 3, 4, 4), "residual": torch.full((2, 1, 4, 4), 0.5)}
>>> loss = train_step(model, batch, opt, device="cpu")
>>> loss.shape, loss.requires_grad, bool(loss > 0)
(torch.Size([]), False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["train_step", "amp_dtype"]


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype of mixed precision on ``device``: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def train_step(
    model: nn.Module,
    batch: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    *,
    device: Union[str, torch.device],
    amp: bool = False,
    scaler: Optional[torch.amp.GradScaler] = None,
    scheduler: Optional[Any] = None,
) -> torch.Tensor:
    """Train ``model`` on one batch: L1 loss of the predicted residual map, backward, optimiser step.

    Parameters
    ----------
    model : torch.nn.Module
        In training mode; maps float32 (N, 3, H, W) images in [0, 1] to (N, 1, H, W)
        residual maps (a DDP wrapper works too).
    batch : mapping
        ``"image"``: float32 tensor (N, 3, H, W) in [0, 1]; ``"residual"``: float32 tensor
        (N, 1, H, W) in [-1, 1] (as :func:`iea_data.workflows.training.collate_train` makes).
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters; its gradients are zeroed before the backward pass.
    device : str or torch.device
        Where the batch is moved (``non_blocking``) and the step runs.
    amp : bool, optional
        Autocast the forward pass (float16 on CUDA, bfloat16 on CPU); the loss is always
        computed in float32. Default False.
    scaler : torch.amp.GradScaler or None, optional
        Loss scaling for float16 (CUDA); None: a plain ``backward`` and ``optimizer.step``.
    scheduler : learning-rate scheduler or None, optional
        Stepped once after the optimiser when given.

    Returns
    -------
    torch.Tensor
        The batch's mean L1 loss, a detached float32 scalar.

    Raises
    ------
    KeyError
        If ``batch`` has no ``"image"`` or ``"residual"``.
    """
    device = torch.device(device)
    x = batch["image"].to(device, non_blocking=True)
    y = batch["residual"].to(device, non_blocking=True)
    with torch.autocast(device_type=device.type, dtype=amp_dtype(device), enabled=amp):
        pred = model(x)
    loss = F.l1_loss(pred.float(), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.detach()
