"""Training checkpoints: atomic writes, RNG states, and the released key names for P-IEANet.

A full checkpoint (``last.pt``) is a dict loadable with ``torch.load(weights_only=True)``::

    format      "iea-train-checkpoint/1"
    model       state dict; P-IEANet in the released key names, so that
                create_model("pieanet", weights=PATH) loads it
    model_keys  "official" (released names) or "module" (the module's own names)
    optimizer, scheduler, scaler   their state dicts
    epoch       completed epochs; global_step: optimiser steps so far
    rng         torch / CUDA / NumPy / Python generator states
    config      TrainConfig.to_dict(); history: one dict per epoch; best: {"epoch", "val_l1"}
    meta        source, init weights sha256, license, torch version, time

Weights-only files (``model.pth``, ``best.pth``) hold the model state dict alone (the
released key names for P-IEANet) with a JSON sidecar (``model.json``) giving its sha256,
source, licence, configuration and validation metrics.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from iea_data.core.errors import IeaError
from iea_data.core.files import atomic_write
from iea_data.core.model import sha256_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_save",
    "atomic_write_text",
    "capture_rng",
    "restore_rng",
    "model_state_for_save",
    "load_model_state",
    "read_checkpoint",
    "write_weights",
]

CHECKPOINT_FORMAT = "iea-train-checkpoint/1"


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    atomic_write(path, lambda fh: torch.save(obj, fh), fsync=True, make_dirs=True)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text through a temporary file and a rename."""
    atomic_write(path, text.encode(), fsync=True, make_dirs=True)


def capture_rng() -> dict[str, Any]:
    """Every generator state a training step may read, in ``weights_only``-loadable types.

    Examples
    --------
    >>> s = capture_rng(); a = torch.rand(1); restore_rng(s); bool(torch.rand(1) == a)
    True
    """
    # the legacy global generator is captured on purpose: user code (augmentations, samplers) may draw from it
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": [py[0], list(py[1]), py[2]],
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002  (the legacy global generator, see capture_rng)
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def _is_pieanet(model: nn.Module) -> bool:
    from iea_data.core.model import PIEANet

    return isinstance(model, PIEANet)


def model_state_for_save(model: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    """The model's state dict for a checkpoint and which names it uses.

    P-IEANet is saved under the released key names (``"official"``), which
    :func:`iea_data.core.model.create_model` reads; other modules keep their own (``"module"``).
    """
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if not _is_pieanet(model):
        return sd, "module"
    from iea_data.core.model import to_official_state_dict  # the inverse of the model package's one rename table

    return to_official_state_dict(sd), "official"


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a full training checkpoint (``weights_only=True``), checking its format.

    Raises
    ------
    IeaError
        Not a file, not loadable, or not a training checkpoint of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise IeaError(f"training checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise IeaError(f"{str(path)!r} is not a readable training checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise IeaError(f"{str(path)!r} is not an iea training checkpoint (format {CHECKPOINT_FORMAT!r})")
    return ckpt


def load_model_state(model: nn.Module, ckpt_or_path, *, strict: bool = True) -> None:
    """Load model weights from a training checkpoint dict or a weights file into ``model``."""
    if isinstance(ckpt_or_path, (str, os.PathLike)):
        if _is_pieanet(model):
            from iea_data.core.model import load_official_state_dict

            model.load_state_dict(load_official_state_dict(ckpt_or_path, model))
            return
        obj = torch.load(ckpt_or_path, map_location="cpu", weights_only=True)
        sd = obj["model"] if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) else obj
        model.load_state_dict(sd, strict=strict)
        return
    ckpt = ckpt_or_path
    sd = ckpt["model"]
    if ckpt.get("model_keys") == "official":
        from iea_data.core.model import convert_official_state_dict

        sd = convert_official_state_dict(sd)
    model.load_state_dict(sd, strict=strict)


def write_weights(model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write a weights-only file and its JSON sidecar (``<stem>.json``) atomically.

    Returns
    -------
    dict
        The sidecar content (``sha256``, ``file``, ``model_keys`` and ``meta``).
    """
    path = Path(path)
    sd, keys = model_state_for_save(model)
    atomic_save(sd, path)
    info = {
        "file": path.name,
        "sha256": sha256_file(path),
        "model_keys": keys,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **dict(meta),
    }
    atomic_write_text(json.dumps(info, indent=2, default=str) + "\n", path.with_suffix(".json"))
    return info
