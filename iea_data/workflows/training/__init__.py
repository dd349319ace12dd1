"""Training residual-map models on release splits: ``iea train``.

L1 loss on the residual map (as the released P-IEANet training code), validation with
:mod:`iea_data.core.metrics` every epoch, CSV logs (TensorBoard when installed), atomic
checkpoints with model, optimiser, scheduler, scaler, epoch and RNG states, exact resume,
DDP under ``torchrun``. Fine-tuning from the released weights is the default; the written
``model.pth`` / ``last.pt`` load with ``create_model("pieanet", weights=PATH)``.

Torch is imported when a torch-backed name is first used; :class:`TrainConfig` is plain data.

Examples
--------
>>> from iea_data.workflows.training import TrainConfig
>>> TrainConfig(epochs=2, batch_size=2).to_dict()["init"]
'official'
"""

from __future__ import annotations

from iea_data.core.lazy import lazy_attributes

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
    "train_step",
]

_LAZY = {
    "TrainResult": "._trainer",
    "TRAIN_FILES": "._trainer",
    "train": "._trainer",
    "train_release": "._trainer",
    "validate": "._trainer",
    "collate_train": "._trainer",
    "read_checkpoint": "._checkpoint",
    "train_step": "._step",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, namespace=globals())
