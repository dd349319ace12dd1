"""The consensus benchmark runs end to end on a tiny panel and its figures say something true."""

from __future__ import annotations

import json

from pipelines.benchmarks import consensus


def test_consensus_benchmark_small(tmp_path, capsys):
    out = tmp_path / "consensus.json"
    result = consensus.main(["--images", "12", "--experts", "5", "--side", "32", "--sample", "256", "--out", str(out)])
    assert json.loads(out.read_text())["images"] == 12
    assert result["fit"]["converged"] and result["max_bias_error"] < 0.01
    assert result["mae_staple"] < result["mae_median"]
    assert result["peak_rss_mib"] > 0 and result["ratio_staple_vs_median"] > 0
    assert "STAPLE/median" in capsys.readouterr().out
