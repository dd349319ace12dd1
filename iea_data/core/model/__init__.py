"""P-IEANet and the model boundary: registry, loading, conversion and prediction.

Public names are listed in ``__all__``. Names that need torch load it on first use, so
``import iea_data.core.model`` stays cheap for code that only reads :class:`ModelCfg`.

Conventions at the boundary: images in are float32 (N, 3, 256, 256) RGB in [0, 1]
(:func:`to_batch` makes them from (H, W, 3) library images); maps out are float32
(N, 1, 256, 256) residuals ``test - ideal`` (:func:`from_batch` makes (H, W) arrays).
The released network's ``ideal - test`` sign is converted only by
:func:`official_to_residual` / :func:`residual_to_official`.

Notes
-----
P-IEANet is the pixel-level exposure assessment network of He, Zheng, Ming, Wu, Ma,
"Rethinking No-reference Image Exposure Assessment from Holism to Pixel: Models,
Datasets and Benchmarks", NeurIPS 2024, as publicly released (a simplified version).
``PIEANet(impl="reference")`` reproduces the released computation step by step;
``impl="fast"`` (the default) computes the same function several times faster.

Examples
--------
>>> from iea_data.core.model import list_models, get_model_cfg
>>> list_models()
['pieanet']
>>> get_model_cfg("pieanet").input_size
(256, 256)
"""

from __future__ import annotations

from iea_data.core.lazy import lazy_attributes

from ._config import PIEANET_CFG, WEIGHTS_ENV_VAR, ModelCfg, official_weights_path, sha256_file

__all__ = [
    # configuration (no torch)
    "ModelCfg",
    "PIEANET_CFG",
    "WEIGHTS_ENV_VAR",
    "official_weights_path",
    "sha256_file",
    # registry and factory
    "MODELS",
    "create_model",
    "list_models",
    "get_model_cfg",
    "predict",
    # network
    "PIEANet",
    "Branches",
    # boundary
    "validate_batch",
    "official_to_residual",
    "residual_to_official",
    "to_batch",
    "from_batch",
    "resize_maps",
    # checkpoints
    "load_official_state_dict",
    "convert_official_state_dict",
    "to_official_state_dict",
    # image files
    "ImageFileDataset",
    "FileMap",
    "predict_files",
    "DECODE_AHEAD_ENV",
    "work_beside_model",
    "predict_batch",
    # precision
    "PRECISIONS",
    "PrecisionError",
    "BF16_ERROR",
    "FP32_ERROR",
    "Precision",
    "resolve_precision",
    "bf16_native",
    "measure_precision_error",
]

_LAZY = {
    "MODELS": "._factory",
    "create_model": "._factory",
    "list_models": "._factory",
    "get_model_cfg": "._factory",
    "predict": "._factory",
    "PIEANet": "._pieanet",
    "Branches": "._pieanet",
    "validate_batch": "._boundary",
    "official_to_residual": "._boundary",
    "residual_to_official": "._boundary",
    "to_batch": "._boundary",
    "from_batch": "._boundary",
    "resize_maps": "._boundary",
    "load_official_state_dict": "._convert",
    "convert_official_state_dict": "._convert",
    "to_official_state_dict": "._convert",
    "ImageFileDataset": "._files",
    "FileMap": "._files",
    "predict_files": "._files",
    "DECODE_AHEAD_ENV": "._files",
    "work_beside_model": "._files",
    "predict_batch": "._files",
    "PRECISIONS": "._precision",
    "PrecisionError": "._precision",
    "BF16_ERROR": "._precision",
    "FP32_ERROR": "._precision",
    "Precision": "._precision",
    "resolve_precision": "._precision",
    "bf16_native": "._precision",
    "measure_precision_error": "._precision",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, namespace=globals())
