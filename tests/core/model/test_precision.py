"""Inference precision: the auto choice, bf16 within its recorded bound, the fused bf16 and
batched fast paths (prepacked oneDNN weights, FFA sub-batches) against plain float32."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iea_data.core.model import (
    BF16_ERROR,
    FP32_ERROR,
    PIEANet,
    PrecisionError,
    bf16_native,
    measure_precision_error,
    resolve_precision,
)
from iea_data.core.model import _pieanet as impl

from .conftest import SAMPLES

NATIVE_BF16 = bf16_native("cpu")
needs_bf16 = pytest.mark.skipif(
    not NATIVE_BF16,
    reason="this CPU has no native bfloat16 (AVX512-BF16 / AMX per oneDNN), or the fused bf16 self-test failed: "
    "the bf16 bound is only checked where auto would pick bf16",
)


def _max_abs(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# ----------------------------------------------------------------- choosing a precision


def test_explicit_precisions_are_taken_as_asked():
    assert resolve_precision("fp32").dtype == torch.float32
    p = resolve_precision("bf16")
    assert (p.name, p.dtype, p.error) == ("bf16", torch.bfloat16, BF16_ERROR)


def test_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\); got 'fp16'"):
        resolve_precision("fp16")


def test_auto_is_fp32_without_native_bf16(monkeypatch):
    import iea_data.core.model._precision as prec

    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": False)
    p = resolve_precision("auto")
    assert (p.name, p.dtype) == ("fp32", torch.float32) and "no native bf16" in p.reason


def test_auto_is_fp32_when_the_recorded_error_exceeds_its_bound(monkeypatch):
    import iea_data.core.model._precision as prec

    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": True)
    too_big = PrecisionError("bf16", 0.03, 0, 0.05, 0, "test", "test")
    assert resolve_precision("auto", bf16_error=too_big).name == "fp32"
    score_flip = PrecisionError("bf16", 0.03, 0, 0.01, 20, "test", "test")
    assert resolve_precision("auto", bf16_error=score_flip).name == "fp32"
    fine = PrecisionError("bf16", 0.03, 0, 0.01, 0, "test", "test")
    assert resolve_precision("auto", bf16_error=fine).name == "bf16"


def test_recorded_errors_are_measured_and_within_their_bounds():
    for err in (BF16_ERROR, FP32_ERROR):
        assert not math.isnan(err.map_measured) and err.measured_on != "not measured"
        assert err.within_bound()
    prov = resolve_precision("bf16").to_provenance()
    assert prov["precision"] == "bf16" and prov["dtype"] == "bfloat16"
    assert prov["precision_error"]["map_bound"] == BF16_ERROR.map_bound


# ----------------------------------------------------------------- bf16 on the goldens


@pytest.fixture(scope="module")
def golden_images():
    from .conftest import official_path

    return [
        np.ascontiguousarray(np.load(official_path("golden", f"{n}.input.npy")).transpose(1, 2, 0)) for n in SAMPLES
    ]


@needs_bf16
def test_bf16_stays_within_the_recorded_bound_on_the_goldens(official_model, golden_images):
    got = measure_precision_error(official_model, golden_images, names=SAMPLES)
    assert 0 < got["map_max_abs"] <= BF16_ERROR.map_bound  # > 0: bf16 really ran
    assert got["score_max_abs"] <= BF16_ERROR.score_bound
    # the recorded figure covers the goldens (same CPU kind; rounding may differ slightly)
    assert got["map_max_abs"] <= BF16_ERROR.map_measured * 1.5


@needs_bf16
def test_fused_bf16_path_is_taken_and_close_to_fp32(official_model, golden):
    x = torch.from_numpy(golden["test_low"]["input"])[None]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert impl._Exec.for_input(x) == impl._Exec(True, True, torch.bfloat16)
        out = official_model.forward_official(x)
    assert out.dtype == torch.float32
    err = _max_abs(out[0, 0], golden["test_low"]["official_output"])
    assert 0 < err <= 2e-2


@needs_bf16
@pytest.mark.skipif(
    "amx_bf16" not in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else True,
    reason="no AMX (amx_bf16 in /proc/cpuinfo) on this CPU",
)
def test_bf16_convolutions_use_amx_kernels():
    code = (
        "import torch\n"
        "from iea_data.core.model._pieanet import _conv, _Exec\n"
        "conv = torch.nn.Conv2d(64, 64, 3, padding=1)\n"
        "x = torch.rand(1, 64, 32, 32).bfloat16().contiguous(memory_format=torch.channels_last)\n"
        "with torch.inference_mode():\n"
        "    _conv(conv, x, _Exec(True, True, torch.bfloat16))\n"
    )
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert run.returncode == 0, run.stderr
    convs = [line for line in run.stdout.splitlines() if ",exec," in line and ",convolution," in line]
    assert convs and all("amx" in line for line in convs), convs


# ----------------------------------------------------------------- batched fast path


def test_sub_batches_and_prepacked_weights_match_plain_ops(monkeypatch, rng):
    torch.manual_seed(0)
    model = PIEANet().eval()
    x = torch.from_numpy(rng.random((3, 3, 256, 256), dtype=np.float32))
    with torch.inference_mode():
        fast = model(x)
        monkeypatch.setattr(model, "inference_chunk", 3)  # one sub-batch
        whole = model(x)
        monkeypatch.setattr(impl, "_onednn_fusion_works", lambda: False)
        plain = model(x)
    assert _max_abs(fast, plain) <= 1e-4 and _max_abs(whole, plain) <= 1e-4


def test_prepacked_weights_follow_weight_updates(rng):
    torch.manual_seed(1)
    model = PIEANet().eval()
    if not impl._onednn_fusion_works():
        pytest.skip("oneDNN fused convolutions are unavailable in this torch build")
    x = torch.from_numpy(rng.random((1, 3, 256, 256), dtype=np.float32))
    with torch.inference_mode():
        before = model(x)
    with torch.no_grad():
        model.ffa.tail[0].weight.mul_(0.5)  # in place: same storage, new version
    with torch.inference_mode():
        after = model(x)
        ref = model.forward_official(x, impl="reference")
    assert _max_abs(before, after) > 1e-4
    assert _max_abs(-after, ref) <= 1e-4
