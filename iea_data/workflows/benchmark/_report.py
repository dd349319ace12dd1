"""Benchmark outputs: metrics table (Markdown, CSV, JSON), per-image Parquet, PNG plots, HTML report.

Every file is written to a temporary name in the output folder and renamed into place.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
import time
from pathlib import Path

from iea_data.core.files import atomic_write
from iea_data.core.metrics import get_metric_cfg

from ._plots import heatmap_grid_png, metric_bars_png, score_scatter_png
from ._runner import BenchmarkResult

__all__ = ["write_report", "REPORT_FILES"]

log = logging.getLogger(__name__)

#: Files :func:`write_report` writes, relative to the output folder.
REPORT_FILES = {
    "markdown": "metrics.md",
    "csv": "metrics.csv",
    "json": "metrics.json",
    "parquet": "per_image.parquet",
    "bars": "plots/metric_bars.png",
    "scatter": "plots/score_scatter.png",
    "heatmaps": "plots/heatmaps.png",
    "html": "report.html",
}


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "inf"
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _columns(result: BenchmarkResult):
    cfgs = {n: get_metric_cfg(n) for n in result.metrics}
    map_cols = [n for n in result.metrics if cfgs[n].kind == "map"]
    score_cols = [f"{n}@{k}" for k in result.mappings for n in result.metrics if cfgs[n].kind == "score"]
    return cfgs, map_cols, score_cols


def _score_rows(result: BenchmarkResult):
    """Score metrics as a long table: one row per (mapping, method), one column per score metric."""
    cfgs = {n: get_metric_cfg(n) for n in result.metrics}
    names = [n for n in result.metrics if cfgs[n].kind == "score"]
    rows = []
    for k in result.mappings:
        for r in result.table.to_dict(orient="records"):
            rows.append({"mapping": k, "method": r["method"], **{n: r.get(f"{n}@{k}") for n in names}})
    return names, rows


def _arrow(cfg) -> str:
    return "↓" if cfg.lower_better else "↑"


def _md_table(rows: list[dict], cols: list[str], heads: list[str]) -> str:
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


def _markdown(result: BenchmarkResult, created: str) -> str:
    cfgs, map_cols, score_cols = _columns(result)
    rows = result.table.to_dict(orient="records")
    lines = [
        "# Benchmark",
        "",
        f"{result.n_images} images · {created} · true image scores: {result.true_score_source} · "
        "predicted scores: each method's map through the stated mapping (`mean_abs`: 10·(1 − mean|r|); "
        "`rule:<name>`: the rule base's score / 10).",
        "",
        "## Map metrics (mean over images)",
        "",
        _md_table(
            rows,
            ["method"] + map_cols + ["images_per_s"],
            ["method"] + [f"{c} {_arrow(cfgs[c])}" for c in map_cols] + ["images/s"],
        ),
    ]
    if score_cols:
        names, srows = _score_rows(result)
        heads = ["mapping", "method"] + [f"{n} {_arrow(cfgs[n])}" for n in names]
        lines += [
            "",
            "## Image-level score metrics (columns `<metric>@<mapping>` in the CSV and JSON)",
            "",
            _md_table(srows, ["mapping", "method"] + names, heads),
        ]
    lines += ["", "## Methods", ""]
    for label, inf in result.method_info.items():
        status = inf["status"] + (f" ({inf['reason']})" if inf["reason"] else "")
        lines.append(f"- **{label}** ({inf['kind']}): {inf['description']}. Status: {status}.")
        for note in inf["notes"]:
            lines.append(f"  - {note}")
    if result.errors:
        lines += ["", f"## Failed predictions ({len(result.errors)})", ""]
        lines += [f"- {m} · {n}: {msg}" for m, n, msg in result.errors[:100]]
    return "\n".join(lines) + "\n"


def _html(result: BenchmarkResult, created: str, pngs: dict[str, bytes]) -> str:
    cfgs, map_cols, score_cols = _columns(result)
    rows = result.table.to_dict(orient="records")

    def table(cols, heads, rows=rows):
        th = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
        body = []
        for r in rows:
            body.append("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>")
        return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def img(key, alt):
        data = base64.b64encode(pngs[key]).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>"
        )

    methods = "".join(
        f"<li><b>{html.escape(k)}</b> ({html.escape(v['kind'])}): {html.escape(v['description'])}. "
        f"Status: {html.escape(v['status'])}{(' — ' + html.escape(v['reason'])) if v['reason'] else ''}"
        + ("".join(f"<br><small>{html.escape(n)}</small>" for n in v["notes"]))
        + "</li>"
        for k, v in result.method_info.items()
    )
    errors = "".join(
        f"<li>{html.escape(m)} · {html.escape(str(n))}: {html.escape(msg)}</li>" for m, n, msg in result.errors[:200]
    )
    names, srows = _score_rows(result)
    score_html = (
        "<h2>Image-level score metrics</h2>"
        + table(["mapping", "method"] + names, ["mapping", "method"] + [f"{n} {_arrow(cfgs[n])}" for n in names], srows)
        if score_cols
        else ""
    )
    map_table = table(
        ["method"] + map_cols + ["images_per_s"],
        ["method"] + [f"{c} {_arrow(cfgs[c])}" for c in map_cols] + ["images/s"],
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>IEA benchmark</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}
</style></head><body>
<h1>Benchmark</h1>
<p>{result.n_images} images · {html.escape(created)} · true image scores: {html.escape(result.true_score_source)} ·
predicted scores: each method's map through the stated mapping (<code>mean_abs</code>: 10·(1 − mean|r|);
<code>rule:&lt;name&gt;</code>: the rule base's score / 10). ↓ lower is better, ↑ higher is better.</p>
<h2>Map metrics (mean over images)</h2>
{map_table}
{score_html}
<h2>Plots</h2>
{img("bars", "Map metrics per method")}
{img("scatter", "Predicted against true image score (mean_abs mapping)")}
{img("heatmaps", "Example residual maps: blue too dark, white ideal, red too bright")}
<h2>Methods</h2><ul>{methods}</ul>
{f"<h2>Failed predictions ({len(result.errors)})</h2><ul>{errors}</ul>" if result.errors else ""}
</body></html>
"""


def write_report(result: BenchmarkResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write every benchmark output into ``out``.

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`run_benchmark`.
    out : path-like
        Output folder (created).

    Returns
    -------
    dict
        kind -> path, for the kinds of :data:`REPORT_FILES`.

    Notes
    -----
    Files are written to a temporary name and renamed, so a killed run leaves whole files.
    The HTML report inlines its images (base64), so it can be mailed on its own.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from iea_data.workflows.benchmark import run_benchmark
    >>> item = {"image": np.full((3, 8, 8), 0.25, np.float32), "residual": np.full((1, 8, 8), -0.25, np.float32)}
    >>> res = run_benchmark([item, item], ["zero", "global_offset"], metrics=["mae"], mappings=["mean_abs"])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in write_report(res, d).values())
    ['heatmaps.png', 'metric_bars.png', 'metrics.csv', 'metrics.json', 'metrics.md', 'per_image.parquet',
     'report.html', 'score_scatter.png']
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cfgs, map_cols, _ = _columns(result)
    paths = {k: out / v for k, v in REPORT_FILES.items()}
    atomic_write(paths["markdown"], _markdown(result, created).encode(), make_dirs=True)
    atomic_write(paths["csv"], result.table.to_csv(index=False).encode(), make_dirs=True)
    summary = result.to_json()
    summary["created"] = created
    atomic_write(paths["json"], (json.dumps(summary, indent=2, default=str) + "\n").encode(), make_dirs=True)
    import io

    buf = io.BytesIO()
    result.per_image.to_parquet(buf, index=False)
    atomic_write(paths["parquet"], buf.getvalue(), make_dirs=True)
    ran = list(result.table["method"]) if len(result.table) else []
    pngs = {
        "bars": metric_bars_png(result.table, map_cols, {c: cfgs[c].lower_better for c in map_cols}) if ran else b"",
        "scatter": b"",
        "heatmaps": heatmap_grid_png(result.examples, ran),
    }
    if ran and len(result.per_image):
        mapping = result.mappings[0]
        true_col = "true_score" if result.true_score_source == "dataset" else f"true_score[{mapping}]"
        pngs["scatter"] = score_scatter_png(
            result.per_image,
            mapping,
            true_column=true_col,
            title=f"predicted ({mapping}) vs true score ({result.true_score_source})",
        )
    if not pngs["bars"]:
        pngs["bars"] = heatmap_grid_png([], [])
    if not pngs["scatter"]:
        pngs["scatter"] = heatmap_grid_png([], [])
    for key in ("bars", "scatter", "heatmaps"):
        atomic_write(paths[key], pngs[key], make_dirs=True)
    atomic_write(paths["html"], _html(result, created, pngs).encode(), make_dirs=True)
    log.info("benchmark report written to %s", out)
    return paths
