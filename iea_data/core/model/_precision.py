"""Inference precision: ``auto`` / ``fp32`` / ``bf16``, its measured error, and the choice.

``bf16`` runs P-IEANet's FFA branch in bfloat16 (``torch.autocast``; on a CPU with native
bf16 the fast path runs it explicitly in bf16 with oneDNN's AMX / AVX512-BF16 kernels, see
:mod:`iea_data.core.model._pieanet`); the structure branch and the merge stay float32.

``auto`` takes bf16 only where the device computes it natively (CPU flags via oneDNN, or a
CUDA device with bf16) **and** the recorded effect of bf16 on the outputs
(:data:`BF16_ERROR`) is within its stated bound; otherwise fp32. The error is measured by
:func:`measure_precision_error` on the demo and golden photos, the way pre-labels are
stored: maps at label resolution, clipped to [-1, 1], float16, and every rule base's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, NamedTuple, Optional, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - types only; torch is imported where it runs
    import torch

Device = Union[str, "torch.device"]

__all__ = [
    "PRECISIONS",
    "PrecisionError",
    "BF16_ERROR",
    "FP32_ERROR",
    "Precision",
    "resolve_precision",
    "bf16_native",
    "measure_precision_error",
]

#: Values of ``precision=`` / ``--precision``.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class PrecisionError:
    """The measured effect of a precision on the stored outputs, against float32.

    Attributes
    ----------
    precision : str
        ``"fp32"`` or ``"bf16"``.
    map_bound : float
        Stated bound on ``max |delta|`` of the stored float16 maps (values in [-1, 1]).
    score_bound : int
        Stated bound on ``max |delta score|`` (0-100 points) of any rule base.
    map_measured : float
        Measured ``max |delta|`` over the photos.
    score_measured : int
        Measured ``max |delta score|`` over the photos and every rule base.
    photos : str
        Which photos were measured.
    measured_on : str
        Date, CPU (model and bf16 flags) and torch version of the measurement.
    """

    precision: str
    map_bound: float
    score_bound: int
    map_measured: float
    score_measured: int
    photos: str
    measured_on: str

    def within_bound(self) -> bool:
        """Whether the measured error is within the stated bound."""
        return self.map_measured <= self.map_bound and self.score_measured <= self.score_bound

    def to_provenance(self) -> dict:
        """The record stored in a label's ``params`` (plain JSON types)."""
        return asdict(self)


#: bf16 against fp32, measured with ``python -m pipelines.benchmarks.model --precision-error``
#: (demo photos: the six scikit-image photos at -2, -1, 0, +1, +2 EV; golden: the released
#: model's two sample inputs). Bounds: 0.03 on the map is 3 % of the residual range [-1, 1],
#: below the ±0.5 full scale of the heatmaps by a factor 16; rule-base scores are discrete
#: levels, and no score may change.
BF16_ERROR = PrecisionError(
    precision="bf16",
    map_bound=0.03,
    score_bound=0,
    map_measured=0.0134,  # 0.013427734375: immunohistochemistry_+2EV; goldens 0.0121 / 0.0061
    score_measured=0,  # no score of the 5 rule bases changed on any of the 32 photos
    photos="demo (6 photos x 5 exposures) + golden (2), label long side 1024, 5 rule bases",
    measured_on="2026-12-01, Intel Xeon (2 cores; avx512f avx512_bf16 amx_bf16 amx_tile), torch 2.13.0+cpu, "
    "fused bf16 path (oneDNN AMX)",
)

#: fp32 fast path against the released computation (tests/model: <= 1e-4, measured ~1.3e-6).
FP32_ERROR = PrecisionError(
    precision="fp32",
    map_bound=1e-4,
    score_bound=0,
    map_measured=1.3e-6,
    score_measured=0,
    photos="golden (2)",
    measured_on="2026-12-01, tests/core/model/test_pieanet_fidelity.py",
)


class Precision(NamedTuple):
    """A resolved precision.

    Attributes
    ----------
    requested : str
        What was asked (``"auto"``, ``"fp32"`` or ``"bf16"``).
    name : str
        What is used: ``"fp32"`` or ``"bf16"``.
    dtype : torch.dtype
        The autocast dtype (``torch.float32`` means no autocast).
    reason : str
        Why (for ``auto``: native bf16 or not, bound met or not).
    error : PrecisionError
        The recorded error of ``name``.
    """

    requested: str
    name: str
    dtype: object
    reason: str
    error: PrecisionError

    def to_provenance(self) -> dict:
        """``precision``, ``precision_requested``, ``dtype`` and ``precision_error`` for a label's params."""
        return {
            "precision": self.name,
            "precision_requested": self.requested,
            "dtype": "bfloat16" if self.name == "bf16" else "float32",
            "precision_error": self.error.to_provenance(),
        }


def bf16_native(device: Device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively.

    CPU: oneDNN reports AVX512-BF16 / AMX and the fused bf16 path passes its self-test.
    CUDA: ``torch.cuda.is_bf16_supported()``.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        from ._pieanet import onednn_bf16_works

        return onednn_bf16_works()
    return False


def resolve_precision(
    precision: str = "auto", device: Device = "cpu", *, bf16_error: Optional[PrecisionError] = None
) -> Precision:
    """Choose the precision to run with.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16"}
        ``auto``: bf16 where the device computes it natively and the recorded bf16 error is
        within its bound; otherwise fp32. ``fp32`` / ``bf16``: as asked (bf16 on a CPU without
        native bf16 works, but is slower than fp32).
    device : str or torch.device
    bf16_error : PrecisionError, optional
        The recorded bf16 error; default :data:`BF16_ERROR`.

    Returns
    -------
    Precision

    Raises
    ------
    ValueError
        If ``precision`` is not one of :data:`PRECISIONS`.

    Examples
    --------
    >>> resolve_precision("fp32").name
    'fp32'
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    err = BF16_ERROR if bf16_error is None else bf16_error
    if precision == "fp32":
        return Precision(precision, "fp32", torch.float32, "asked for", FP32_ERROR)
    if precision == "bf16":
        return Precision(precision, "bf16", torch.bfloat16, "asked for", err)
    if not bf16_native(device):
        return Precision(
            precision, "fp32", torch.float32, f"{torch.device(device).type} has no native bf16", FP32_ERROR
        )
    if not err.within_bound():
        return Precision(
            precision,
            "fp32",
            torch.float32,
            f"bf16 error {err.map_measured:.3g} (scores ±{err.score_measured}) is not within the "
            f"bound {err.map_bound:g} (scores ±{err.score_bound})",
            FP32_ERROR,
        )
    return Precision(precision, "bf16", torch.bfloat16, "native bf16, measured error within the bound", err)


def _stored_map(model: torch.nn.Module, x: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype) -> np.ndarray:
    """The map as a pre-label stores it: label resolution, clipped, float16 (back to float32)."""
    import torch

    from ._boundary import resize_maps

    with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = model(x).float()
    m = resize_maps(out, size=(int(shape[0]), int(shape[1])))[0, 0].cpu().numpy()
    return np.clip(m, -1.0, 1.0).astype(np.float16).astype(np.float32)


def measure_precision_error(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    *,
    dtype: Optional[torch.dtype] = None,
    max_side: int = 1024,
    rule_bases: Optional[Sequence] = None,
    names: Optional[Sequence[str]] = None,
) -> dict:
    """Effect of running ``model`` in ``dtype`` instead of float32 on stored maps and scores.

    Parameters
    ----------
    model : torch.nn.Module
        A residual-map model, e.g. ``create_model("pieanet", weights="official")``.
    images : sequence of ndarray
        float32 (H, W, 3) RGB in [0, 1].
    dtype : torch.dtype, optional
        Default ``torch.bfloat16``.
    max_side : int, optional
        Long side of the label resolution, as the workspace's ``labels.max_side``.
    rule_bases : sequence of str or RuleBase, optional
        Default: every registered rule base.
    names : sequence of str, optional
        One name per image, for the per-image rows.

    Returns
    -------
    dict
        ``map_max_abs``: max ``|delta|`` of the float16 maps (float); ``score_max_abs``: max
        ``|delta score|`` over images and rule bases (int); ``score_changes``: the number of
        (image, rule base) pairs whose score changed; ``rows``: per image
        ``{"name", "map_max_abs", "score_deltas": {rule base: delta}}``.
    """
    import torch

    from iea_data.core.imaging import label_shape
    from iea_data.core.rules import get_rule_base, list_rule_bases, score_map

    from ._boundary import to_batch

    dtype = torch.bfloat16 if dtype is None else dtype
    rbs = [rb if not isinstance(rb, str) else get_rule_base(rb) for rb in (rule_bases or list_rule_bases())]
    device = next(model.parameters()).device
    rows: list[dict] = []
    for i, img in enumerate(images):
        shape = label_shape(img.shape[0], img.shape[1], max_side)
        x = to_batch([img]).to(device)
        ref = _stored_map(model, x, shape, torch.float32)
        got = _stored_map(model, x, shape, dtype)
        deltas = {rb.name: int(score_map(got, rb).score) - int(score_map(ref, rb).score) for rb in rbs}
        rows.append(
            {
                "name": names[i] if names else str(i),
                "map_max_abs": float(np.abs(got - ref).max()),
                "score_deltas": deltas,
            }
        )
    return {
        "map_max_abs": max((r["map_max_abs"] for r in rows), default=0.0),
        "score_max_abs": max((abs(d) for r in rows for d in r["score_deltas"].values()), default=0),
        "score_changes": sum(1 for r in rows for d in r["score_deltas"].values() if d),
        "rows": rows,
    }
