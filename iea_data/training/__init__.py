"""Training residual-map models on release splits: ``iea train``.

L1 loss on the residual map (as the released P-IEANet training code), validation with
:mod:`iea_data.metrics` every epoch, CSV logs (TensorBoard when installed), atomic
checkpoints with model, optimiser, scheduler, scaler, epoch and RNG states, exact resume,
DDP under ``torchrun``. Fine-tuning from the released weights is the default; the written
``model.pth`` / ``last.pt`` load with ``create_model("pieanet", weights=PATH)``.

Torch is imported when a torch-backed name is first used; :class:`TrainConfig` is plain data.

Examples
--------
>>> from iea_data.training import TrainConfig
>>> TrainConfig(epochs=2, batch_size=2).to_dict()["init"]
'official'
"""

from __future__ import annotations

import importlib

from ._config import RESUME_FREE_FIELDS, VAL_METRICS, TrainConfig

__all__ = [
    "TrainConfig",
    "VAL_METRICS",
    "RESUME_FREE_FIELDS",
    "TrainResult",
    "TRAIN_FILES",
    "train",
    "train_release",
    "validate",
    "collate_train",
    "read_checkpoint",
]

_LAZY = {
    "TrainResult": "._trainer",
    "TRAIN_FILES": "._trainer",
    "train": "._trainer",
    "train_release": "._trainer",
    "validate": "._trainer",
    "collate_train": "._trainer",
    "read_checkpoint": "._checkpoint",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
