"""The brush fixture: strokes and the maps the Python rasteriser paints from them.

The browser predicts each stroke with its own port of the brush (``painter.js``); both
implementations are tested against this one fixture (``tests/core/painting/test_brush_fixture.py``
and ``tests/app/test_painter_prediction.py``), so that they cannot drift apart.
Regenerate the checked-in file after a change to the rasteriser with (from the repository root)::

    python -c "import iea_data.core.painting as p, sys; p.write_brush_fixture(sys.argv[1])" \\
        tests/core/painting/fixtures/brush_strokes.json
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from ._raster import RESIDUAL_RANGE, apply_stroke, stroke_bbox
from ._stroke import MODES, Stroke

__all__ = ["brush_fixture", "write_brush_fixture", "decode_f32"]

#: Version of the fixture's layout (bump when the keys change).
FIXTURE_VERSION = 1


def _f32(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode("ascii")


def decode_f32(text: str, shape: tuple[int, int]) -> np.ndarray:
    """A float32 array from the fixture's base64 form (little-endian, row-major)."""
    return np.frombuffer(base64.b64decode(text), "<f4").reshape(shape).astype(np.float32)


def _drag(rng: np.random.Generator, w: int, h: int, k: int, step: tuple[float, float]) -> np.ndarray:
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, k))
    pts = np.stack([np.cos(heading), np.sin(heading)], 1) * rng.uniform(*step)
    start = [rng.uniform(-3, w + 2), rng.uniform(-3, h + 2)]
    return np.cumsum(pts, axis=0) + start


def _strokes(rng: np.random.Generator, n: int, w: int, h: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        mode = MODES[i % len(MODES)]
        kind = i % 10
        if kind == 0:  # a click
            pts = np.array([[rng.uniform(0, w - 1), rng.uniform(0, h - 1)]])
        elif kind == 5:  # a closed loop: first point == last point (Douglas-Peucker's closed branch)
            t = np.linspace(0, 2 * np.pi, int(rng.integers(8, 24)))
            pts = np.stack([w / 2 + 8 * np.cos(t), h / 2 + 6 * np.sin(t)], 1)
            pts[-1] = pts[0]
        elif kind == 7:  # a long, dense scribble (pieces of 512 points)
            pts = _drag(rng, w, h, 700, (0.3, 0.8))
            pts = np.clip(pts, -4, [w + 3, h + 3])
        else:  # a hand-drawn drag, points a fraction of a pixel to a few pixels apart
            pts = _drag(rng, w, h, int(rng.integers(2, 14)), (0.4, 3.5))
        hardness = 1.0 if i % 7 == 3 else float(np.round(rng.uniform(0, 0.95), 2))
        out.append(
            {
                "id": i + 1,
                "points": np.round(pts, 2).tolist(),  # what the browser sends
                "radius": float(rng.choice([1.0, 2.0, 2.5, 3.0, 4.0, 5.5, 6.0, 8.0, 10.0])),
                "value": float(np.round(rng.uniform(-1.2, 1.2) if mode == "set" else rng.uniform(-0.6, 0.6), 3)),
                "hardness": hardness,
                "flow": 1.0 if i % 3 else float(np.round(rng.uniform(0.05, 1.0), 2)),
                "mode": mode,
            }
        )
    return out


def brush_fixture(n: int = 52, *, seed: int = 16, shape: tuple[int, int] = (32, 48)) -> dict[str, Any]:
    """Strokes painted one after another by :func:`apply_stroke`, with the map after each.

    Returns a JSON-ready dict: ``shape`` (H, W), ``value_range``, ``base`` and ``map0`` (the
    starting map ``clip(base + correction)``) as base64 float32, and ``strokes``: each the
    stroke's JSON plus ``box`` ``[y0, y1, x0, x1]`` (or None) and ``expected``, the painted
    map inside that box after this stroke (base64 float32). Every mode appears; strokes cover
    clicks, hard and soft brushes, low flow, closed loops, points outside the map and one long
    scribble per ten strokes.

    Examples
    --------
    >>> fx = brush_fixture(8)
    >>> fx["shape"], len(fx["strokes"]), sorted({s["mode"] for s in fx["strokes"]})
    ([32, 48], 8, ['add', 'restore', 'set', 'smooth'])
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    lo, hi = RESIDUAL_RANGE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = 0.5 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    base = np.clip(wave + rng.normal(0, 0.05, (h, w)), -0.9, 0.9).astype(np.float32)
    corr = np.clip(rng.normal(0, 0.08, (h, w)), -0.1, 0.1).astype(np.float32)
    map0 = np.clip(base + corr, lo, hi)
    strokes = _strokes(rng, n, w, h)
    out = []
    for s in strokes:
        stroke = Stroke.from_json(s)
        corr = apply_stroke(corr, stroke, base=base)
        box = stroke_bbox(stroke, (h, w))
        m = np.clip(base + corr, lo, hi)
        rec = dict(s, box=None if box is None else list(box), expected=None)
        if box is not None:
            rec["expected"] = _f32(m[box[0] : box[1], box[2] : box[3]])
        out.append(rec)
    return {
        "version": FIXTURE_VERSION,
        "about": "generated by iea_data.core.painting._fixture.brush_fixture from the Python rasteriser; do not edit",
        "shape": [h, w],
        "value_range": [lo, hi],
        "base": _f32(base),
        "map0": _f32(map0),
        "strokes": out,
    }


def write_brush_fixture(path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`brush_fixture` as JSON to ``path`` (the checked-in test fixture); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(brush_fixture(**kwargs), separators=(",", ":")) + "\n", encoding="utf-8")
    return path
