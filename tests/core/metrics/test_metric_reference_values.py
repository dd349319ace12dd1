"""Pinned reference values (tests/reference/metrics_reference.csv, with tool, version, command and date).

The live agreement tests compare against the installed scipy / scikit-image; these pin the
values those versions gave, so a change in either library (or in ours) shows up here.
Inputs are regenerated exactly as the CSV's ``input`` column describes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from iea_data.core import metrics

CSV = Path(__file__).resolve().parents[2] / "reference" / "metrics_reference.csv"
TOL = 1e-3  # the agreement tolerance of the issue; observed differences are < 1e-6


def _inputs():
    rng = np.random.default_rng(20261125)
    t = rng.uniform(-1, 1, (32, 32)).astype(np.float32)
    p = np.clip(t + rng.normal(0, 0.25, t.shape), -1, 1).astype(np.float32)
    ts = rng.uniform(0, 10, 64)
    ps = np.round(ts + rng.normal(0, 2, 64), 1)
    return p, t, ps, ts


def _rows():
    with open(CSV, newline="") as fh:
        return list(csv.DictReader(fh))


def test_reference_file_has_provenance():
    rows = _rows()
    assert {r["metric"] for r in rows} == {"ssim", "psnr", "srcc", "plcc", "krcc"}
    assert all(r["tool"] and r["version"] and r["command"] and r["date"] and r["input"] for r in rows)


@pytest.mark.reference
@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["metric"])
def test_pinned_values(row):
    p, t, ps, ts = _inputs()
    value = float(row["value"])
    m = metrics.create(row["metric"])
    got = m(p, t)[0] if m.cfg.kind == "map" else m(ps, ts)
    assert got == pytest.approx(value, abs=TOL)
