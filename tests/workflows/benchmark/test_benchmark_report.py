"""The runner and the report: every method and every metric present, values from the data, files whole."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iea_data.core import metrics
from iea_data.core.errors import IeaError
from iea_data.workflows.benchmark import (
    REPORT_FILES,
    Method,
    MethodCfg,
    create_method,
    run_benchmark,
    write_report,
)

from .conftest import make_items

BASELINES = ["zero", "global_offset", "local_offset", "histeq", "clahe", "refdiff"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, items):
    res = run_benchmark(items, BASELINES, batch_size=4)
    out = tmp_path_factory.mktemp("bench")
    return res, write_report(res, out)


def test_report_contains_every_method_and_metric(report):
    res, paths = report
    assert set(paths) == set(REPORT_FILES) and all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    md = paths["markdown"].read_text()
    html = paths["html"].read_text()
    csv = pd.read_csv(paths["csv"])
    js = json.loads(paths["json"].read_text())
    assert list(csv["method"]) == BASELINES
    for name in metrics.list_metrics(kind="map"):
        assert name in csv.columns and name in md and name in html
    for name in metrics.list_metrics(kind="score"):
        assert name in md and name in html
        for mapping in res.mappings:
            assert f"{name}@{mapping}" in csv.columns
            assert f"| {mapping} | zero |" in md and f"<td>{mapping}</td>" in html
    for m in BASELINES:
        assert f"| {m} |" in md and f"<td>{m}</td>" in html and m in js["methods"]
    assert {r["method"] for r in js["table"]} == set(BASELINES)


def test_values_come_from_the_data(report, items):
    res, paths = report
    table = res.table.set_index("method")
    targets = [it["residual"][0] for it in items]
    # the zero map's MAE is the mean |label|, the oracle's is 0 and its SSIM 1
    assert table.loc["zero", "mae"] == pytest.approx(np.mean([np.abs(t).mean() for t in targets]), abs=1e-6)
    assert table.loc["refdiff", "mae"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc["refdiff", "ssim"] == pytest.approx(1.0, abs=1e-6)
    # the oracle's predicted scores are the true ones: rank correlation 1
    assert table.loc["refdiff", "srcc@mean_abs"] == pytest.approx(1.0)
    # a constant method cannot be ranked: NaN in the table and a note saying why
    assert np.isnan(table.loc["zero", "srcc@mean_abs"])
    assert any("constant" in n for n in res.method_info["zero"]["notes"])
    per = pd.read_parquet(paths["parquet"])
    assert len(per) == len(BASELINES) * len(items)
    sub = per[per["method"] == "global_offset"].sort_values("image_id")
    recomputed = [
        metrics.ssim(np.full_like(t, p), t)[0]
        for t, p in zip(targets, create_method("global_offset")([it["image"].transpose(1, 2, 0) for it in items]))
    ]
    np.testing.assert_allclose(sub["ssim"].to_numpy(), np.array(recomputed), atol=1e-9)
    assert res.true_score_source == "mapping of the true map"


def test_plots_are_pngs_and_html_is_self_contained(report):
    res, paths = report
    for key in ("bars", "scatter", "heatmaps"):
        with Image.open(paths[key]) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100
    # the heatmap grid has a column per method besides photo and truth
    with Image.open(paths["heatmaps"]) as im:
        assert im.size[0] >= 110 + (2 + len(BASELINES)) * 48
    html = paths["html"].read_text()
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[2].split(",", 1)[1]) == paths["heatmaps"].read_bytes()
    assert "href=" not in html


def test_dataset_scores_are_used_when_every_image_has_one():
    items = make_items(scores=True)
    res = run_benchmark(items, ["refdiff", "global_offset"], metrics=["mae", "srcc"], mappings=["mean_abs"])
    assert res.true_score_source == "dataset"
    sub = res.per_image[res.per_image["method"] == "global_offset"]
    assert res.table.set_index("method").loc["global_offset", "srcc@mean_abs"] == pytest.approx(
        metrics.srcc(sub["pred_score[mean_abs]"].to_numpy(), np.array([it["score"] for it in items]))
    )


def test_oracle_skipped_without_references_and_progress_reported():
    items = make_items(references=False)
    seen = []
    res = run_benchmark(
        items, ["refdiff", "zero"], metrics=["mae"], batch_size=4, progress=lambda d, t: seen.append((d, t))
    )
    assert res.method_info["refdiff"]["status"] == "skipped"
    assert list(res.table["method"]) == ["zero"]
    assert seen == [(4, 6), (6, 6)]


def test_one_bad_image_does_not_stop_the_run():
    items = make_items()
    bad = items[2]["name"]

    def predict(images, refs):
        for img in images:
            if np.array_equal(img, items[2]["image"].transpose(1, 2, 0)):
                raise RuntimeError("boom")
        return [np.zeros(img.shape[:2], np.float32) for img in images]

    flaky = Method(MethodCfg("flaky", "baseline", "fails on one image"), predict)
    res = run_benchmark(items, [flaky, "zero"], metrics=["mae"], batch_size=3)
    assert [(m, n) for m, n, _ in res.errors] == [("flaky", bad)]
    assert res.method_info["flaky"]["status"] == "partial"
    assert (res.per_image["method"] == "flaky").sum() == len(items) - 1
    assert res.method_info["zero"]["status"] == "ok"


def test_bad_arguments():
    with pytest.raises(IeaError, match="empty"):
        run_benchmark([], ["zero"])
    with pytest.raises(IeaError, match="unknown metric"):
        run_benchmark(make_items(), ["zero"], metrics=["nope"])
    with pytest.raises(IeaError, match="unknown score mapping"):
        run_benchmark(make_items(), ["zero"], mappings=["nope"])
    with pytest.raises(ValueError, match="batch_size"):
        run_benchmark(make_items(), ["zero"], batch_size=0)


def test_loader_workers_give_the_same_results():
    items = make_items(photos=("astronaut", "coffee"))
    a = run_benchmark(items, ["histeq", "refdiff"], metrics=["mae", "ssim"], mappings=["mean_abs"], batch_size=2)
    b = run_benchmark(
        items, ["histeq", "refdiff"], metrics=["mae", "ssim"], mappings=["mean_abs"], batch_size=3, num_workers=2
    )
    cols = ["method", "name", "mae", "ssim", "pred_score[mean_abs]"]
    pd.testing.assert_frame_equal(a.per_image[cols], b.per_image[cols])
