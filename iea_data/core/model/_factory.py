"""Front door: the ``MODELS`` registry, ``create_model``, ``list_models`` and ``predict``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
import torch

from iea_data.core.errors import IeaError
from iea_data.core.registry import Registry

from ._boundary import from_batch, resize_maps, to_batch
from ._config import PIEANET_CFG, ModelCfg, official_weights_path, sha256_file
from ._pieanet import PIEANet

__all__ = ["MODELS", "create_model", "list_models", "get_model_cfg", "predict"]

#: Registry of model entrypoints; each entry has a ``cfg`` attribute (:class:`ModelCfg`).
MODELS = Registry("model")


def _register(cfg: ModelCfg) -> Callable[[Callable[..., torch.nn.Module]], Callable[..., torch.nn.Module]]:
    def deco(fn: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
        setattr(fn, "cfg", cfg)  # noqa: B010 - an attribute on a function object
        return MODELS.register(cfg.name)(fn)

    return deco


@_register(PIEANET_CFG)
def pieanet(*, weights: str | os.PathLike | None = None, impl: str = "fast") -> PIEANet:
    """P-IEANet; ``weights`` is ``None`` (random init), ``"official"`` or a path."""
    if weights is None:
        return PIEANet(impl=impl).eval()
    if isinstance(weights, str) and weights == "official":
        path = official_weights_path()
        digest = sha256_file(path)
        if digest != PIEANET_CFG.sha256:
            raise IeaError(
                f"{path} is not the released P-IEANet checkpoint: sha256 {digest}, expected "
                f"{PIEANET_CFG.sha256}. Replace the file, or pass its path as weights=... "
                "to load a fine-tuned checkpoint deliberately."
            )
        return PIEANet.from_official(path, impl=impl)
    if isinstance(weights, (str, os.PathLike)):
        return PIEANet.from_official(weights, impl=impl)
    raise TypeError(f"weights must be None, 'official' or a path; got {type(weights).__name__}")


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching an fnmatch ``pattern``.

    Examples
    --------
    >>> list_models("pie*")
    ['pieanet']
    """
    return MODELS.list(pattern)


def get_model_cfg(name: str) -> ModelCfg:
    """The :class:`ModelCfg` of a registered model (unknown names raise with a hint)."""
    return MODELS.get(name).cfg


def create_model(
    name: str, *, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu", impl: str = "fast"
) -> torch.nn.Module:
    """Build a registered model in eval mode.

    Parameters
    ----------
    name : str
        Registry name, see :func:`list_models`.
    weights : None, "official" or path-like, optional
        ``None``: random initialisation. ``"official"``: the released checkpoint found by
        :func:`official_weights_path`, checked against :attr:`ModelCfg.sha256`. A path:
        a checkpoint with the released keys (e.g. fine-tuned), loaded without hash check.
    device : str or torch.device, optional
        Where the parameters go.
    impl : {"fast", "reference"}, optional
        Which computation the network's ``forward`` uses.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    IeaError
        Unknown name (with "did you mean"), weights not found, not the checkpoint.

    Examples
    --------
    >>> model = create_model("pieanet")
    >>> model.impl
    'fast'
    """
    return MODELS.get(name)(weights=weights, impl=impl).to(device)


def _bf16_cpu_native() -> bool:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def predict(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    sizes: Optional[Sequence[tuple[int, int]]] = None,
) -> list[np.ndarray]:
    """Residual maps for library images.

    Parameters
    ----------
    model : torch.nn.Module
        E.g. ``create_model("pieanet", weights="official")``; taking float32
        (N, 3, 256, 256) and returning (N, 1, 256, 256) residuals.
    images : sequence of ndarray
        float32 (H, W, 3) RGB in [0, 1]; any sizes (resized by :func:`to_batch`).
    batch_size : int, optional
        Images per forward call. Each image's result does not depend on its batch-mates.
    device : str or torch.device, optional
        Where to run; default: the model's device. The model is not moved.
    dtype : torch.dtype, optional
        ``torch.float32`` (default), or ``torch.bfloat16`` / ``torch.float16`` to run the
        convolutions under autocast (the structure branch stays float32). On a CPU
        without native bf16 support autocast is far slower than float32.
    sizes : sequence of (int, int) or "input", optional
        ``None``: maps at the model's 256x256. A list of ``(height, width)``, one per
        image, or ``"input"`` for each image's own size: maps resized bilinearly.

    Returns
    -------
    list of ndarray
        float32 (h, w) residual maps ``test - ideal``, roughly in [-1, 1]; not clipped.

    Notes
    -----
    Runs under ``torch.inference_mode``. Measured error against the released outputs:
    float32 fast path <= 1e-4 (about 1e-6); bfloat16 about 1e-2 (see
    ``docs/benchmarks.md``). Citing: He et al., NeurIPS 2024 (P-IEANet).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16; got {dtype}")
    if isinstance(sizes, str):
        if sizes != "input":
            raise ValueError(f"sizes must be None, 'input' or a list of (h, w); got {sizes!r}")
        sizes = [tuple(img.shape[:2]) for img in images]
    if sizes is not None and len(sizes) != len(images):
        raise ValueError(f"sizes has {len(sizes)} entries for {len(images)} images")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if dtype == torch.bfloat16 and device.type == "cpu" and not _bf16_cpu_native():
        warnings.warn(
            "this CPU has no native bfloat16 support: autocast to bfloat16 is much slower than float32 here",
            RuntimeWarning,
            stacklevel=2,
        )
    out: list[np.ndarray] = []
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32):
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = to_batch(chunk).to(device)
            maps = model(x).float()
            if sizes is None:
                out += from_batch(maps)
            else:
                for j, m in enumerate(maps.split(1)):
                    h, w = sizes[start + j]
                    out += from_batch(resize_maps(m, size=(int(h), int(w))))
    return out
