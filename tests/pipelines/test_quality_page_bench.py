"""The Quality page benchmark: a kept catalog is reused, the two cold paths give the same report."""

from __future__ import annotations

import json

import pytest

from pipelines.benchmarks import quality_page


def test_quality_page_benchmark_keeps_and_reuses_its_catalog(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws, out = tmp_path / "ws", tmp_path / "bench.json"
    args = ["--images", "30", "--experts", "3", "--side", "16", "--repeats", "2", "--workspace", str(ws)]
    assert quality_page.main([*args, "--compare", "--profile", str(tmp_path / "p.prof"), "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert not first["reused"] and first["consensus_saved"] == 30 and first["reports_equal"] is True
    assert len(first["first_paint_cold_all_s"]) == 2 and len(first["first_paint_cold_from_maps_all_s"]) == 2
    assert (tmp_path / "p.prof").stat().st_size > 0
    assert quality_page.main([*args, "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["reused"] and again["consensus_s"] == first["consensus_s"] and "reports_equal" not in again
    with pytest.raises(SystemExit, match="holds another catalog"):
        quality_page.main([*args[:1], "31", *args[2:], "--out", str(out)])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        quality_page.main([*args[:-1], str(tmp_path / "other"), "--out", str(out)])
