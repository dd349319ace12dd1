"""Fixtures for the model tests: the released P-IEANet weights and golden arrays.

The reference material lives in ``../shared/reference/p-ieanet-official`` beside the
repository (never copied into it). Tests that need it skip with the reason when it is
absent. Provenance of the goldens: ``ARCHITECTURE.md`` in that folder (the released
model run on each sample photo as a duplicated pair, eval mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

OFFICIAL_DIR = (Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "p-ieanet-official").resolve()
SAMPLES = ("test1_high", "test_low")  # one too bright, one too dark

#: Tolerances, in one table (max abs difference).
TOL = {
    "golden_fp32": 1e-4,  # against the released outputs and both branches
    "fast_vs_reference": 1e-4,
    "batch_independence": 1e-4,
    "to_batch_vs_golden_input": 1e-6,
    "golden_bf16": 5e-2,  # measured 0.012 (bright) / 0.007 (dark) on an AVX2 CPU
    "onednn_fusion": 1e-5,
}


def official_path(*parts: str) -> Path:
    """A path in the released-model folder, skipping the test when it is absent."""
    p = OFFICIAL_DIR.joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"reference data {p} is absent: the released P-IEANet weights and goldens are "
            "only in ../shared beside the repository (CI and dev checkouts)"
        )
    return p


@pytest.fixture(scope="session")
def official_model():
    """PIEANet with the released weights, eval mode, fast path."""
    from iea_data.core.model import PIEANet

    return PIEANet.from_official(official_path("official_epoch2.pth"))


@pytest.fixture(scope="session")
def golden():
    """name -> {"input", "official_output", "ffa_branch", "encoder_branch"} arrays."""
    out = {}
    for name in SAMPLES:
        out[name] = {
            kind: np.load(official_path("golden", f"{name}.{kind}.npy"))
            for kind in ("input", "official_output", "ffa_branch", "encoder_branch")
        }
    return out


@pytest.fixture(scope="session")
def golden_batch(golden):
    """float32 (2, 3, 256, 256): the golden inputs in SAMPLES order."""
    import torch

    return torch.from_numpy(np.stack([golden[n]["input"] for n in SAMPLES]))


@pytest.fixture(scope="session")
def fast_run(official_model, golden_batch):
    """(official output (2, 1, 256, 256), Branches) of the fast path on the golden inputs."""
    import torch

    with torch.inference_mode():
        return official_model._run(golden_batch, "fast")
