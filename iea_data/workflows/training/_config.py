"""Training configuration as data (no torch import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["TrainConfig", "VAL_METRICS", "RESUME_FREE_FIELDS"]

#: Metrics computed on the validation split after every epoch (map metrics on the maps,
#: score metrics on ``mean_abs`` image scores).
VAL_METRICS = ("mae", "mse", "psnr", "ssim", "pixel_acc", "miou", "f1_macro", "srcc", "plcc")

#: Fields that may differ between a run and its ``--resume`` (they do not change the result).
RESUME_FREE_FIELDS = ("num_workers", "device", "log_every")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result.

    Parameters
    ----------
    model : str
        A registered model (:func:`iea_data.core.model.list_models`).
    init : str
        ``"official"`` (fine-tune the released weights, the default), ``"scratch"``
        (random initialisation from ``seed``) or a checkpoint path.
    epochs : int
        Passes over the training split, >= 1.
    batch_size : int
        Images per optimiser step (per process under DDP), >= 1.
    lr : float
        Peak learning rate of Adam; a cosine schedule takes it to 0 over the run.
    weight_decay : float
        Adam's L2 weight decay.
    amp : bool
        Mixed precision: float16 with a gradient scaler on CUDA, bfloat16 autocast on CPU.
    seed : int
        Seeds initialisation and the per-epoch shuffle (``seed + epoch``).
    num_workers : int
        DataLoader processes (does not change the result).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    val_metrics : tuple of str
        Metric names for validation.
    log_every : int
        Progress callback every this many steps (does not change the result).

    Examples
    --------
    >>> TrainConfig(epochs=2).init
    'official'
    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
        ...
    ValueError: `epochs` must be an integer >= 1; got 0.
    """

    model: str = "pieanet"
    init: str = "official"
    epochs: int = 10
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    amp: bool = False
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    val_metrics: tuple[str, ...] = VAL_METRICS
    log_every: int = 1

    def __post_init__(self):
        for name in ("epochs", "batch_size", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {v!r}.")
        for name in ("num_workers", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"`{name}` must be an integer >= 0; got {v!r}.")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"`lr` must be a number > 0; got {self.lr!r}.")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be a number >= 0; got {self.weight_decay!r}.")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"`device` must be 'auto', 'cpu' or 'cuda[:N]'; got {self.device!r}.")
        object.__setattr__(self, "val_metrics", tuple(self.val_metrics))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples), as stored in checkpoints."""
        d = asdict(self)
        d["val_metrics"] = list(self.val_metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "val_metrics" in kw:
            kw["val_metrics"] = tuple(kw["val_metrics"])
        return cls(**kw)

    def differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Fields (other than :data:`RESUME_FREE_FIELDS`) whose values differ: name -> (self, other)."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in RESUME_FREE_FIELDS and a[k] != b[k]}
