"""Quality pictures drawn with Pillow: bias per rater, noise vs images done, reliability over time, expert grid.

Each function returns PNG bytes. Residual maps use :mod:`iea_data.core.heatmaps` (blue-white-red,
±0.5 by default) with its legend; the per-pixel spread uses a sequential map (viridis) with its
own legend. Rater names are drawn as plain text.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from iea_data.core.heatmaps import DEFAULT_RANGE, colorize, legend
from iea_data.core.imaging import check_residual

from ._reliability import Reliability
from ._staple import RaterParams

__all__ = [
    "SPREAD_COLORMAP",
    "bias_plot_png",
    "colorize_spread",
    "expert_grid_png",
    "noise_plot_png",
    "reliability_over_time_png",
    "spread_legend",
]

_BLUE, _RED, _GREY, _INK = (33, 102, 172), (178, 24, 43), (120, 120, 120), (20, 20, 20)

# viridis at 9 stops (matplotlib's table), interpolated to 256 steps.
_VIRIDIS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
#: uint8 (256, 3): the sequential map for spread, from 0 (row 0) to the top of the scale (row 255).
SPREAD_COLORMAP = np.round(
    np.stack(
        [np.interp(np.linspace(0, len(_VIRIDIS) - 1, 256), np.arange(len(_VIRIDIS)), _VIRIDIS[:, c]) for c in range(3)],
        axis=1,
    )
).astype(np.uint8)


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # zlib level 6: ~3x faster than optimize=True, ~9 % larger (issue 15's cold paint)
    return buf.getvalue()


def _check_params(params: object) -> RaterParams:
    if not isinstance(params, RaterParams):
        raise TypeError(f"params must be RaterParams (from estimate_raters), got {type(params).__name__}")
    if len(params) == 0:
        raise ValueError("params holds no raters; nothing to plot")
    return params


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def colorize_spread(spread: np.ndarray, *, vmax: float | None = None) -> np.ndarray:
    """Colour a spread map (>= 0) with the sequential map; ``vmax`` (default: its 99th percentile) saturates.

    Returns uint8 (h, w, 3).

    Examples
    --------
    >>> colorize_spread(np.array([[0.0, 0.1]], np.float32), vmax=0.1).tolist()
    [[[68, 1, 84], [253, 231, 37]]]
    """
    s = np.asarray(spread, dtype=np.float64)
    if s.ndim != 2 or not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"spread must be a finite, non-negative (h, w) map, got shape {s.shape}")
    top = _spread_top(s, vmax)
    idx = np.rint(np.clip(s / top, 0.0, 1.0) * 255).astype(np.intp)
    return SPREAD_COLORMAP[idx]


def _spread_top(s: np.ndarray, vmax: float | None) -> float:
    if vmax is None:
        top = float(np.percentile(s, 99)) if s.size else 0.0
        return top if top > 0 else 0.1
    if not (math.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a positive spread, got {vmax!r}")
    return float(vmax)


def spread_legend(width: int = 256, height: int = 44, *, vmax: float = 0.1) -> np.ndarray:
    """A horizontal bar for the spread colours: ``0 experts agree`` to ``vmax`` (uint8 (height, width, 3))."""
    from PIL import Image, ImageDraw

    if width < 120 or height < 30:
        raise ValueError(f"legend needs width >= 120 and height >= 30 pixels, got {width}x{height}")
    bar_h = max(8, height // 3)
    ramp = np.linspace(0, vmax, width)[None, :].repeat(bar_h, axis=0)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(Image.fromarray(colorize_spread(ramp, vmax=vmax)), (0, 0))
    d = ImageDraw.Draw(canvas)
    font = _font(max(9, (height - bar_h) * 2 // 5))
    d.text((2, bar_h + 2), "0 agree", fill=_INK, font=font)
    d.text((width // 2, bar_h + 2), "spread (sd)", fill=_INK, font=font, anchor="ma")
    d.text((width - 3, bar_h + 2), f"{vmax:.3g}+", fill=_INK, font=font, anchor="ra")
    return np.asarray(canvas)


def bias_plot_png(params: RaterParams, *, title: str | None = None) -> bytes:
    """Each rater's bias with its 95 % interval, one row per rater (most negative first).

    Parameters
    ----------
    params : RaterParams
        From :func:`estimate_raters`.
    title : str, optional
        Printed on top (default says what a bias is).

    Returns
    -------
    bytes
        A PNG: blue dots for raters who paint darker than the panel, red for brighter.

    Examples
    --------
    >>> p = RaterParams.from_values({"ann": 0.05, "bob": -0.05}, {"ann": 0.01, "bob": 0.04})
    >>> bias_plot_png(p)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from PIL import Image, ImageDraw

    params = _check_params(params)
    ests = sorted(params.estimates, key=lambda e: e.bias)
    reach = max(max(abs(e.bias_ci[0]), abs(e.bias_ci[1]), abs(e.bias)) for e in ests)
    reach = 1.15 * reach if reach > 0 else 0.05
    name_w = max(80, 7 * max(len(e.rater) for e in ests) + 12)
    plot_w, row_h, top, bottom = 360, 20, 44, 40
    width = name_w + plot_w + 80
    height = top + row_h * len(ests) + bottom
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    f, fs = _font(12), _font(11)
    d.text(
        (8, 6), title or "Rater bias (mean of map - consensus, relative to the panel), 95 % interval", fill=_INK, font=f
    )
    d.text((8, 22), "left: paints darker than the panel   right: paints brighter", fill=_GREY, font=fs)

    def px(v: float) -> int:
        return name_w + int(round((v + reach) / (2 * reach) * plot_w))

    y_end = top + row_h * len(ests)
    for t in _ticks(-reach, reach):
        x = px(t)
        d.line([x, top - 2, x, y_end], fill=(230, 230, 230))
        d.text((x, y_end + 4), _fmt(t), fill=_GREY, font=fs, anchor="ma")
    d.line([px(0), top - 4, px(0), y_end], fill=_GREY, width=1)
    for i, e in enumerate(ests):
        y = top + i * row_h + row_h // 2
        colour = _RED if e.bias > 0 else _BLUE
        d.text((6, y - 7), e.rater[: (name_w - 10) // 6], fill=_INK, font=fs)
        d.line([px(e.bias_ci[0]), y, px(e.bias_ci[1]), y], fill=colour, width=2)
        for v in e.bias_ci:
            d.line([px(v), y - 4, px(v), y + 4], fill=colour, width=1)
        d.ellipse([px(e.bias) - 4, y - 4, px(e.bias) + 4, y + 4], fill=colour)
        d.text((name_w + plot_w + 8, y - 7), f"{e.bias:+.3f}", fill=_INK, font=fs)
    d.text((name_w + plot_w // 2, y_end + 20), "bias (residual units)", fill=_GREY, font=fs, anchor="ma")
    return _png(img)


def noise_plot_png(params: RaterParams, *, title: str | None = None) -> bytes:
    """Each rater's noise (sd) with its 95 % interval against the images they labelled.

    Parameters
    ----------
    params : RaterParams
    title : str, optional

    Returns
    -------
    bytes
        A PNG; the x axis is logarithmic when the counts span more than a factor 20.

    Examples
    --------
    >>> p = RaterParams.from_values({"ann": 0.05, "bob": -0.05}, {"ann": 0.01, "bob": 0.04})
    >>> noise_plot_png(p)[:4] == b"\\x89PNG"
    True
    """
    from PIL import Image, ImageDraw

    params = _check_params(params)
    ests = list(params.estimates)
    counts = [max(e.n_images, 1) for e in ests]
    log_x = max(counts) / min(counts) > 20
    xs = [math.log10(c) for c in counts] if log_x else [float(c) for c in counts]
    x_lo, x_hi = (min(xs), max(xs)) if max(xs) > min(xs) else (min(xs) - 1, max(xs) + 1)
    pad_x = 0.06 * (x_hi - x_lo)
    x_lo, x_hi = x_lo - pad_x, x_hi + pad_x
    y_hi = 1.12 * max(max(e.sigma_ci[1], e.sigma) for e in ests) or 0.1
    left, top, plot_w, plot_h = 60, 40, 440, 260
    img = Image.new("RGB", (left + plot_w + 130, top + plot_h + 50), "white")
    d = ImageDraw.Draw(img)
    f, fs = _font(12), _font(11)
    d.text(
        (8, 6), title or "Rater noise (sd around consensus + bias) vs images labelled, 95 % interval", fill=_INK, font=f
    )

    def px(v: float) -> int:
        return left + int(round((v - x_lo) / (x_hi - x_lo) * plot_w))

    def py(v: float) -> int:
        return top + plot_h - int(round(v / y_hi * plot_h))

    d.rectangle([left, top, left + plot_w, top + plot_h], outline=(150, 150, 150))
    for t in _ticks(0, y_hi):
        d.line([left, py(t), left + plot_w, py(t)], fill=(235, 235, 235))
        d.text((left - 4, py(t)), _fmt(t), fill=_GREY, font=fs, anchor="rm")
    xt = _ticks(x_lo, x_hi)
    if not log_x and len([t for t in xt if float(t).is_integer()]) >= 2:
        xt = [t for t in xt if float(t).is_integer()]  # image counts are whole numbers
    for t in xt:
        d.text((px(t), top + plot_h + 4), _fmt(10**t if log_x else t), fill=_GREY, font=fs, anchor="ma")
    d.text(
        (left + plot_w // 2, top + plot_h + 22),
        "images labelled" + (" (log)" if log_x else ""),
        fill=_GREY,
        font=fs,
        anchor="ma",
    )
    for e, x in zip(ests, xs):
        lo, hi = e.sigma_ci
        d.line([px(x), py(lo), px(x), py(hi)], fill=_BLUE, width=2)
        d.ellipse([px(x) - 4, py(e.sigma) - 4, px(x) + 4, py(e.sigma) + 4], fill=_BLUE)
        if len(ests) <= 30:
            d.text((px(x) + 6, py(e.sigma) - 6), e.rater[:16], fill=_INK, font=fs)
    return _png(img)


def _as_date(v: object, i: int) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            pass
    raise ValueError(f"points[{i}] must start with a date (datetime.date or 'YYYY-MM-DD'), got {v!r}")


def reliability_over_time_png(
    points: Sequence[tuple[object, Reliability]], *, label: str = "ICC(2,1)", title: str | None = None
) -> bytes:
    """A reliability coefficient over time: the value as a line with its 95 % interval as a band.

    Parameters
    ----------
    points : sequence of (date, Reliability)
        ``date`` a ``datetime.date`` / ``datetime`` or ISO string; sorted here.
    label : str
        The coefficient's name (y axis).
    title : str, optional

    Returns
    -------
    bytes
        A PNG.

    Examples
    --------
    >>> pts = [("2026-11-01", Reliability(0.6, 0.5, 0.7, 100)), ("2026-11-08", Reliability(0.7, 0.62, 0.78, 100))]
    >>> reliability_over_time_png(pts)[:4] == b"\\x89PNG"
    True
    """
    from PIL import Image, ImageDraw

    if not points:
        raise ValueError("points must hold at least one (date, Reliability) pair; got none")
    rows = []
    for i, p in enumerate(points):
        if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Reliability)):
            raise TypeError(f"points[{i}] must be a (date, Reliability) pair, got {p!r}")
        rows.append((_as_date(p[0], i), p[1]))
    rows.sort(key=lambda r: r[0])
    days = [(r[0] - rows[0][0]).days for r in rows]
    span = max(days[-1], 1)
    vals = [v for _, r in rows for v in (r.value, r.ci_low, r.ci_high) if math.isfinite(v)]
    y_lo, y_hi = min([0.0, *vals]), max([1.0, *vals])
    left, top, plot_w, plot_h = 60, 40, 480, 240
    img = Image.new("RGB", (left + plot_w + 30, top + plot_h + 50), "white")
    d = ImageDraw.Draw(img, "RGBA")
    f, fs = _font(12), _font(11)
    d.text((8, 6), title or f"{label} over time, with its 95 % interval", fill=_INK, font=f)

    def px(day: int) -> int:
        return left + (int(round(day / span * plot_w)) if days[-1] else plot_w // 2)

    def py(v: float) -> int:
        return top + plot_h - int(round((v - y_lo) / (y_hi - y_lo) * plot_h))

    d.rectangle([left, top, left + plot_w, top + plot_h], outline=(150, 150, 150))
    for t in _ticks(y_lo, y_hi):
        d.line([left, py(t), left + plot_w, py(t)], fill=(235, 235, 235))
        d.text((left - 4, py(t)), _fmt(t), fill=_GREY, font=fs, anchor="rm")
    band = [(r, x) for (_, r), x in zip(rows, days) if math.isfinite(r.ci_low) and math.isfinite(r.ci_high)]
    if len(band) >= 2:
        poly = [(px(x), py(r.ci_high)) for r, x in band] + [(px(x), py(r.ci_low)) for r, x in reversed(band)]
        d.polygon(poly, fill=(146, 197, 222, 140))
    elif band:
        r, x = band[0]
        d.line([px(x), py(r.ci_low), px(x), py(r.ci_high)], fill=(67, 147, 195), width=3)
    line = [(px(x), py(r.value)) for (_, r), x in zip(rows, days)]
    if len(line) >= 2:
        d.line(line, fill=_BLUE, width=2)
    for x, y in line:
        d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=_BLUE)
    shown = {0, len(rows) - 1, *range(0, len(rows), max(1, len(rows) // 5))}
    for k in sorted(shown):
        d.text((px(days[k]), top + plot_h + 4), rows[k][0].isoformat(), fill=_GREY, font=fs, anchor="ma")
    d.text((left, top - 14), f"y: {label}", fill=_GREY, font=fs)
    return _png(img)


def expert_grid_png(
    maps: Mapping[str, np.ndarray],
    consensus: np.ndarray,
    spread: np.ndarray,
    *,
    vmax: float = DEFAULT_RANGE,
    spread_max: float | None = None,
    columns: int = 6,
    cell: int = 160,
) -> bytes:
    """One image's experts side by side, then the consensus (blue-white-red) and the spread (sequential).

    Parameters
    ----------
    maps : mapping rater -> ndarray, float32 (h, w) in [-1, 1]
    consensus : ndarray, float32 (h, w) in [-1, 1]
    spread : ndarray, (h, w), >= 0
        Per-pixel spread (e.g. :attr:`ConsensusResult.spread`).
    vmax : float
        Residual at full colour (the legend says it).
    spread_max : float, optional
        Spread at the top of its scale (default: its 99th percentile).
    columns : int
        Tiles per row.
    cell : int
        Tile size in pixels (maps are resized by nearest neighbour for display).

    Returns
    -------
    bytes
        A PNG with both legends.

    Examples
    --------
    >>> m = {"ann": np.full((4, 4), 0.2, np.float32), "bob": np.full((4, 4), -0.2, np.float32)}
    >>> expert_grid_png(m, np.zeros((4, 4), np.float32), np.full((4, 4), 0.2))[:4] == b"\\x89PNG"
    True
    """
    from PIL import Image, ImageDraw

    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must be a non-empty mapping rater -> residual map")
    consensus = check_residual(consensus, "consensus")
    tiles = [(str(r), colorize(check_residual(m, f"maps[{r!r}]"), vmax=vmax)) for r, m in maps.items()]
    s = np.asarray(spread, dtype=np.float64)
    if s.shape != consensus.shape:
        raise ValueError(f"spread has shape {s.shape} but consensus has {consensus.shape}")
    top_s = _spread_top(s, spread_max)
    tiles.append(("consensus", colorize(consensus, vmax=vmax)))
    tiles.append(("spread", colorize_spread(s, vmax=top_s)))
    cols = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    head = 18
    leg_w = max(240, min(400, cell * 2))
    width = max(cols * (cell + 6) + 6, 2 * leg_w + 30)
    height = rows * (cell + head + 6) + 60
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    f = _font(12)
    for k, (name, tile) in enumerate(tiles):
        x = 6 + (k % cols) * (cell + 6)
        y = (k // cols) * (cell + head + 6) + 4
        special = k >= len(tiles) - 2
        d.text((x, y), name[: cell // 7], fill=_BLUE if special else _INK, font=f)
        pic = Image.fromarray(tile).resize((cell, cell), Image.Resampling.NEAREST)
        img.paste(pic, (x, y + head))
        d.rectangle([x - 1, y + head - 1, x + cell, y + head + cell], outline=(190, 190, 190))
    y_leg = rows * (cell + head + 6) + 8
    img.paste(Image.fromarray(legend(leg_w, 44, vmax=vmax)), (6, y_leg))
    img.paste(Image.fromarray(spread_legend(leg_w, 44, vmax=top_s)), (leg_w + 24, y_leg))
    return _png(img)
