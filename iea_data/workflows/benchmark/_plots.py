"""Benchmark pictures drawn with Pillow: metric bars, score scatter, heatmap grid.

Each function returns PNG bytes. Heatmaps use :mod:`iea_data.core.heatmaps` (blue-white-red,
±0.5 by default) with its legend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np

from iea_data.core.heatmaps import DEFAULT_RANGE, colorize, legend

__all__ = ["metric_bars_png", "score_scatter_png", "heatmap_grid_png", "method_colours"]

_PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def method_colours(labels: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per method label (cycled palette).

    Examples
    --------
    >>> method_colours(["zero", "clahe"])["clahe"]
    (255, 127, 14)
    """
    return {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(labels)}


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def metric_bars_png(table, metrics: Sequence[str], lower_better: dict[str, bool], *, columns: int = 3) -> bytes:
    """One horizontal bar panel per metric, one bar per method, value printed at each bar.

    Parameters
    ----------
    table : pandas.DataFrame
        A ``method`` column and one column per metric.
    metrics : sequence of str
        Columns to draw.
    lower_better : dict
        metric -> True when lower is better (said in the panel title).
    columns : int, optional
        Panels per row.

    Returns
    -------
    bytes
        A PNG.
    """
    from PIL import Image, ImageDraw

    labels = list(table["method"])
    colours = method_colours(labels)
    name_w = max(80, 7 * max((len(s) for s in labels), default=4) + 10)
    bar_w, row_h = 170, 18
    panel_w = name_w + bar_w + 60
    panel_h = 34 + row_h * len(labels) + 10
    n = max(1, len(metrics))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    img = Image.new("RGB", (panel_w * cols, panel_h * rows), "white")
    d = ImageDraw.Draw(img)
    f_title, f_txt = _font(13), _font(11)
    for k, met in enumerate(metrics):
        x0, y0 = (k % cols) * panel_w, (k // cols) * panel_h
        lb = lower_better.get(met, False)
        d.text((x0 + 6, y0 + 6), f"{met}  ({'lower' if lb else 'higher'} is better)", fill=(0, 0, 0), font=f_title)
        vals = np.array([float(v) for v in table[met]], dtype=float)
        finite = vals[np.isfinite(vals)]
        lo = min(0.0, float(finite.min())) if finite.size else 0.0
        hi = max(0.0, float(finite.max())) if finite.size else 1.0
        span = (hi - lo) or 1.0
        zero_x = x0 + name_w + int(bar_w * (0 - lo) / span)
        for i, (lab, v) in enumerate(zip(labels, vals)):
            y = y0 + 30 + i * row_h
            d.text((x0 + 6, y + 2), lab[: (name_w - 10) // 6], fill=(40, 40, 40), font=f_txt)
            if np.isfinite(v):
                xv = x0 + name_w + int(bar_w * (v - lo) / span)
                d.rectangle([min(zero_x, xv), y + 2, max(zero_x, xv) + 1, y + row_h - 3], fill=colours[lab])
            d.text((x0 + name_w + bar_w + 6, y + 2), _fmt(float(v)), fill=(0, 0, 0), font=f_txt)
        d.line([zero_x, y0 + 28, zero_x, y0 + 30 + row_h * len(labels)], fill=(90, 90, 90))
    return _png(img)


def score_scatter_png(
    per_image, mapping: str, *, true_column: str, title: str = "", columns: int = 4, scale: float = 10.0
) -> bytes:
    """Predicted against true image score, one panel per method, with the diagonal.

    Parameters
    ----------
    per_image : pandas.DataFrame
        ``method``, ``pred_score[<mapping>]`` and ``true_column``.
    mapping : str
        Which mapping's predicted score to plot.
    true_column : str
        Column of the true score (``true_score`` or ``true_score[<mapping>]``).
    title : str, optional
        Printed above the panels.
    columns : int, optional
        Panels per row.
    scale : float, optional
        Axis range ``[0, scale]``.

    Returns
    -------
    bytes
        A PNG.
    """
    from PIL import Image, ImageDraw

    labels = list(dict.fromkeys(per_image["method"]))
    colours = method_colours(labels)
    size, pad = 200, 34
    n = max(1, len(labels))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    top = 24 if title else 0
    img = Image.new("RGB", (cols * (size + 2 * pad), top + rows * (size + 2 * pad)), "white")
    d = ImageDraw.Draw(img)
    f = _font(11)
    if title:
        d.text((6, 4), title, fill=(0, 0, 0), font=_font(13))
    for k, lab in enumerate(labels):
        sub = per_image[per_image["method"] == lab]
        x0 = (k % cols) * (size + 2 * pad) + pad
        y0 = top + (k // cols) * (size + 2 * pad) + pad
        d.rectangle([x0, y0, x0 + size, y0 + size], outline=(120, 120, 120))
        d.line([x0, y0 + size, x0 + size, y0], fill=(200, 200, 200))
        for t in (0, scale / 2, scale):
            tx = x0 + int(size * t / scale)
            ty = y0 + size - int(size * t / scale)
            d.text((tx - 4, y0 + size + 3), f"{t:g}", fill=(80, 80, 80), font=f)
            d.text((x0 - 18, ty - 6), f"{t:g}", fill=(80, 80, 80), font=f)
        d.text((x0, y0 - 16), lab[:32], fill=colours[lab], font=_font(12))
        d.text((x0 + size // 2 - 20, y0 + size + 16), "true score", fill=(80, 80, 80), font=f)
        d.text((x0 + size - 52, y0 + 4), "predicted", fill=(150, 150, 150), font=f)
        xs = np.clip(sub[true_column].to_numpy(dtype=float), 0, scale)
        ys = np.clip(sub[f"pred_score[{mapping}]"].to_numpy(dtype=float), 0, scale)
        for xv, yv in zip(xs, ys):
            if np.isfinite(xv) and np.isfinite(yv):
                px = x0 + int(size * xv / scale)
                py = y0 + size - int(size * yv / scale)
                d.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colours[lab])
    return _png(img)


def heatmap_grid_png(examples: list[dict], labels: Sequence[str], *, vmax: float = DEFAULT_RANGE) -> bytes:
    """Rows of examples: the photo, the true map and each method's map, with the legend below.

    Parameters
    ----------
    examples : list of dict
        ``name``, ``photo`` uint8 (h, w, 3), ``target`` (h, w) and ``pred`` (label -> (h, w)).
    labels : sequence of str
        Method columns, in order (a missing prediction is left blank).
    vmax : float, optional
        Residual at full colour (the legend says it).

    Returns
    -------
    bytes
        A PNG.
    """
    from PIL import Image, ImageDraw

    cell = max([max(e["photo"].shape[:2]) for e in examples] or [160])
    cols = ["photo", "truth"] + list(labels)
    head, side = 20, 110
    leg = legend(max(240, min(512, cell * 2)), 44, vmax=vmax)
    width = side + len(cols) * (cell + 4)
    height = head + len(examples) * (cell + 4) + leg.shape[0] + 8
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    f = _font(11)
    for c, name in enumerate(cols):
        d.text((side + c * (cell + 4) + 2, 4), name[: cell // 6], fill=(0, 0, 0), font=f)
    for r, ex in enumerate(examples):
        y = head + r * (cell + 4)
        d.text((4, y + cell // 2 - 6), str(ex["name"])[:17], fill=(0, 0, 0), font=f)
        tiles = [ex["photo"], colorize(ex["target"], vmax=vmax)]
        tiles += [colorize(ex["pred"][lab], vmax=vmax) if lab in ex["pred"] else None for lab in labels]
        for c, tile in enumerate(tiles):
            if tile is not None:
                x = side + c * (cell + 4)
                img.paste(Image.fromarray(tile), (x, y))
                d.rectangle([x - 1, y - 1, x + tile.shape[1], y + tile.shape[0]], outline=(190, 190, 190))
    img.paste(Image.fromarray(leg), (side, head + len(examples) * (cell + 4) + 4))
    return _png(img)
