"""Rasterising strokes into a correction map: pure functions on float32 arrays.

The painted map is ``clip(base + correction, lo, hi)`` (residual maps: ``[-1, 1]``). A stroke
changes only the correction, only inside the bounding box of its path widened by the brush
radius, and never moves a pixel the brush does not reach.

The brush weight at a pixel is ``flow * profile(distance to the path / radius)``: the path is
the polyline through the stroke's points, so the weight equals the maximum over dabs placed
continuously along the path, and overlapping dabs within one stroke never add up (a slow drag
and a quick one paint the same). ``profile`` is 1 up to ``hardness`` and falls to 0 at the
rim with a smoothstep. Paths are first simplified to within :data:`PATH_TOLERANCE` (0.2 px).

The cost of one stroke is bounded: the exact distance costs one pass over each segment's box
(the segment widened by the radius, clipped to the map), and when the sum of those boxes would
exceed :data:`WORK_FACTOR` times the map's area (a long zigzag with a huge brush), the path is
simplified with a coarser tolerance, doubled until it fits. The distance to the path then moves
by at most that tolerance (Douglas-Peucker keeps the path within it), so a drag the app can
send keeps its look while a hostile stroke costs at most ``WORK_FACTOR`` full-map passes
(:func:`stroke_cost`). Fields the map bounds (radius, points) are checked by
:func:`~iea_data.core.painting.check_stroke` before any work.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from iea_data.core.imaging import check_range

from ._stroke import Stroke, check_stroke

__all__ = [
    "RESIDUAL_RANGE",
    "WORK_FACTOR",
    "brush_profile",
    "stroke_bbox",
    "stroke_cost",
    "stroke_weight",
    "apply_stroke",
    "replay",
]

#: The value range of residual maps, the default of :func:`apply_stroke`.
RESIDUAL_RANGE = (-1.0, 1.0)


def brush_profile(d: np.ndarray, hardness: float) -> np.ndarray:
    """Brush weight as a function of distance / radius ``d`` (>= 0).

    1 for ``d <= hardness``, 0 for ``d >= 1`` (except a hard brush, which is 1 up to and
    including the rim), a smoothstep in between.

    Examples
    --------
    >>> brush_profile(np.array([0.0, 0.5, 0.75, 1.0, 2.0]), 0.5).round(3).tolist()
    [1.0, 1.0, 0.5, 0.0, 0.0]
    """
    d = np.asarray(d, dtype=np.float32)
    h = float(hardness)
    if h >= 1.0:
        return (d <= 1.0).astype(np.float32)
    t = np.clip((d - h) / (1.0 - h), 0.0, 1.0)
    return (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)


def stroke_bbox(stroke: Stroke, shape: Sequence[int]) -> tuple[int, int, int, int] | None:
    """The pixel box ``(y0, y1, x0, x1)`` (half-open) a stroke can touch on a map of ``shape``.

    None when the stroke lies entirely outside the map.

    Examples
    --------
    >>> stroke_bbox(Stroke(id=0, points=[[5, 5]], radius=2), (100, 100))
    (3, 8, 3, 8)
    >>> stroke_bbox(Stroke(id=0, points=[[-50, 5]], radius=2), (100, 100)) is None
    True
    """
    h, w = int(shape[0]), int(shape[1])
    pts, r = stroke.points, stroke.radius
    x0 = max(0, math.ceil(pts[:, 0].min() - r))
    x1 = min(w, math.floor(pts[:, 0].max() + r) + 1)
    y0 = max(0, math.ceil(pts[:, 1].min() - r))
    y1 = min(h, math.floor(pts[:, 1].max() + r) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _dedupe(points: np.ndarray) -> np.ndarray:
    if len(points) < 2:
        return points
    keep = np.ones(len(points), bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    return points[keep]


#: Paths are simplified (Douglas-Peucker) to within this many pixels before rasterising.
PATH_TOLERANCE = 0.2


#: Douglas-Peucker runs on pieces of at most this many points (its worst case is quadratic:
#: 0.6 s for one hostile 20,000-point path; in pieces, a few milliseconds).
_DP_CHUNK = 512


def _simplify(points: np.ndarray, tolerance: float = PATH_TOLERANCE) -> np.ndarray:
    """Drop points that lie within ``tolerance`` px of the simplified path (keeps the ends).

    Douglas-Peucker on consecutive pieces of :data:`_DP_CHUNK` points (each piece keeps its
    ends), so the result stays within ``tolerance`` of the path and the time is linear.
    """
    pts = _dedupe(points)
    if len(pts) <= 2:
        return pts
    origin = pts.min(axis=0)
    rel = (pts - origin).astype(np.float32)
    pieces: list[np.ndarray] = []
    for i in range(0, len(rel) - 1, _DP_CHUNK):
        piece = rel[i : i + _DP_CHUNK + 1]
        kept = cv2.approxPolyDP(piece.reshape(-1, 1, 2), float(tolerance), False).reshape(-1, 2)
        if len(kept) < 2 or not (np.array_equal(kept[0], piece[0]) and np.array_equal(kept[-1], piece[-1])):
            kept = np.concatenate([piece[:1], kept, piece[-1:]])  # keep the piece's ends whatever DP did
        pieces.append(kept if not pieces else kept[1:])
    keep = _dedupe(np.concatenate(pieces).astype(np.float64) + origin)
    return keep if len(keep) >= 2 else pts[[0, -1]]


#: One stroke may cost at most this many times the map's pixels (at least 64 x 256 x 256);
#: see :func:`stroke_cost`.
WORK_FACTOR = 64

#: What one segment costs beyond its pixels, in pixel visits (the fixed cost of a segment's
#: few small array operations: about 60 us, as much as ~10,000 pixels of the distance pass).
SEGMENT_COST = 8192


def _segment_boxes(pts: np.ndarray, box: tuple[int, int, int, int], radius: float) -> np.ndarray:
    """Per segment of the path ``pts``, its box ``(sy0, sy1, sx0, sx1)`` inside ``box`` (int64 (S, 4))."""
    y0, y1, x0, x1 = box
    a, b = (pts[:1], pts[:1]) if len(pts) == 1 else (pts[:-1], pts[1:])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    sx0 = np.maximum(x0, np.ceil(lo[:, 0] - radius))
    sx1 = np.minimum(x1, np.floor(hi[:, 0] + radius) + 1)
    sy0 = np.maximum(y0, np.ceil(lo[:, 1] - radius))
    sy1 = np.minimum(y1, np.floor(hi[:, 1] + radius) + 1)
    return np.stack([sy0, sy1, sx0, sx1], axis=1).astype(np.int64)


def _work(boxes: np.ndarray) -> int:
    area = np.clip(boxes[:, 1] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 2], 0, None)
    return int(area.sum()) + SEGMENT_COST * int((area > 0).sum())


def _plan(
    points: np.ndarray, box: tuple[int, int, int, int], radius: float, shape: Sequence[int]
) -> tuple[float, np.ndarray, np.ndarray, int]:
    """The path to rasterise: ``(tolerance, simplified points, segment boxes, pixel visits)``."""
    budget = WORK_FACTOR * max(int(shape[0]) * int(shape[1]), 256 * 256)
    # past the path's extent every point is within ``tol`` of the first one: two ends suffice
    extent = float(np.ptp(points, axis=0).max()) if len(points) > 1 else 0.0
    tol = PATH_TOLERANCE
    while True:
        pts = _simplify(points, tol) if tol < extent else _dedupe(points[[0, -1]])
        boxes = _segment_boxes(pts, box, radius)
        work = _work(boxes)
        if work <= budget or len(pts) <= 2:
            return tol, pts, boxes, work
        tol *= 2.0


def stroke_cost(stroke: Stroke, shape: Sequence[int]) -> tuple[float, int]:
    """What painting ``stroke`` on a map of ``shape`` costs: ``(tolerance, pixel visits)``.

    ``pixel visits`` is the sum over the simplified path's segments (those that reach the map)
    of their boxes' pixels (the distance pass, the bulk of the work) plus :data:`SEGMENT_COST`
    per segment; it is at most ``WORK_FACTOR * max(H * W, 256 * 256)`` for any stroke
    :func:`~iea_data.core.painting.check_stroke` accepts (the rest of the work is one pass over
    the stroke's box). ``tolerance`` is the simplification used (px): :data:`PATH_TOLERANCE`
    unless the path had to be coarsened to fit.

    Raises
    ------
    StrokeRefused
        If the stroke does not fit the map (see :func:`~iea_data.core.painting.check_stroke`).

    Examples
    --------
    >>> stroke_cost(Stroke(id=0, points=[[5, 5], [15, 5]], radius=2), (100, 100))
    (0.2, 8267)
    >>> zigzag = [[x % 1024, 300 * (x % 2)] for x in range(20_000)]
    >>> tol, work = stroke_cost(Stroke(id=0, points=zigzag, radius=1200, mode="smooth"), (683, 1024))
    >>> tol > 1, work <= WORK_FACTOR * 683 * 1024
    (True, True)
    """
    check_stroke(stroke, shape)
    box = stroke_bbox(stroke, shape)
    if box is None:
        return PATH_TOLERANCE, 0
    tol, _, _, work = _plan(stroke.points, box, stroke.radius, shape)
    return tol, work


def _distance_to_path(
    points: np.ndarray, box: tuple[int, int, int, int], radius: float, shape: Sequence[int]
) -> np.ndarray:
    """Euclidean distance from each pixel centre of ``box`` to the polyline (capped at radius + 1)."""
    y0, y1, x0, x1 = box
    cap = np.float32((radius + 1.0) ** 2)
    d2 = np.full((y1 - y0, x1 - x0), cap, np.float32)
    _, pts, boxes, _ = _plan(points, box, radius, shape)
    segments = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    for (a, b), (sy0, sy1, sx0, sx1) in zip(segments, boxes.tolist()):
        # the segment's own box, widened by the radius, inside the stroke box
        if sx0 >= sx1 or sy0 >= sy1:
            continue
        px = np.arange(sx0, sx1, dtype=np.float32)[None, :] - np.float32(a[0])
        py = np.arange(sy0, sy1, dtype=np.float32)[:, None] - np.float32(a[1])
        dx, dy = np.float32(b[0] - a[0]), np.float32(b[1] - a[1])
        seg2 = dx * dx + dy * dy
        ex: np.ndarray
        ey: np.ndarray
        if seg2 > 0:
            t = np.clip((px * dx + py * dy) / seg2, 0.0, 1.0)
            ex, ey = px - t * dx, py - t * dy
        else:
            ex, ey = px, py
        sub = d2[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
        np.minimum(sub, ex * ex + ey * ey, out=sub)
    return np.sqrt(d2)


def stroke_weight(stroke: Stroke, shape: Sequence[int]) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The brush weight of a stroke on a map of ``shape``: ``(box, weight)`` or None if outside.

    ``weight`` is float32 in ``[0, flow]`` over ``box`` = ``(y0, y1, x0, x1)``.

    Examples
    --------
    >>> box, w = stroke_weight(Stroke(id=0, points=[[2, 2]], radius=1, hardness=1.0), (5, 5))
    >>> box, w.tolist()
    ((1, 4, 1, 4), [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    """
    check_stroke(stroke, shape)
    box = stroke_bbox(stroke, shape)
    if box is None:
        return None
    d = _distance_to_path(stroke.points, box, stroke.radius, shape)
    w = brush_profile(d / np.float32(stroke.radius), stroke.hardness)
    if stroke.flow != 1.0:
        w *= np.float32(stroke.flow)
    return box, w


def _check_maps(correction: np.ndarray, base: np.ndarray, value_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"`value_range` must be (lo, hi) with finite lo < hi, got {value_range!r}")
    for name, arr in (("correction", correction), ("base", base)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 2:
            got = f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(f"`{name}` must be a float32 numpy array of shape (H, W); got {got}")
    if correction.shape != base.shape:
        raise ValueError(f"`correction` and `base` must have the same shape; got {correction.shape} and {base.shape}")
    check_range(base, lo, hi, "base")
    check_range(correction, lo - hi, hi - lo, "correction")
    return lo, hi


def _smooth(region_map: np.ndarray, radius: float) -> np.ndarray:
    # stack blur: a Gaussian-like kernel spanning the brush (sigma about radius / 3), O(1) per pixel
    k = 2 * max(1, int(round(radius))) + 1
    return cv2.stackBlur(region_map, (k, k))


def apply_stroke(
    correction: np.ndarray,
    stroke: Stroke,
    *,
    base: np.ndarray,
    value_range: tuple[float, float] = RESIDUAL_RANGE,
) -> np.ndarray:
    """Paint one stroke: a new correction map (the input is not modified).

    With ``m = base + correction`` (the painted map) and ``w`` the brush weight
    (:func:`stroke_weight`, in ``[0, flow]``), each pixel the brush reaches becomes:

    - ``add``: ``m + value * w``;
    - ``set``: ``m + w * (value - m)`` (toward ``value``);
    - ``smooth``: ``m + w * (blur(m) - m)`` (a stack blur as wide as the brush, sigma about radius / 3);
    - ``restore``: correction ``* (1 - w)`` (toward the base);

    clipped to ``value_range``, and stored as the correction ``new m - base``. Pixels the
    brush does not reach (``w == 0``) keep their correction bit for bit.

    Parameters
    ----------
    correction : ndarray, float32, shape (H, W)
        The current correction, values in ``[lo - hi, hi - lo]``.
    stroke : Stroke
        Points in map pixels; parts outside the map are ignored.
    base : ndarray, float32, shape (H, W), values in ``value_range``
        The map painted on (a pre-label, or zeros).
    value_range : (float, float)
        Range of the painted map: ``(-1, 1)`` for residuals, e.g. ``(-4, 4)`` for EV maps.

    Returns
    -------
    ndarray, float32, shape (H, W)
        The new correction.

    Examples
    --------
    >>> base = np.zeros((5, 5), np.float32)
    >>> s = Stroke(id=1, points=[[2, 2]], radius=1, value=-0.25, hardness=1.0)
    >>> apply_stroke(np.zeros_like(base), s, base=base)[1:4, 1:4].tolist()
    [[0.0, -0.25, 0.0], [-0.25, -0.25, -0.25], [0.0, -0.25, 0.0]]
    """
    if not isinstance(stroke, Stroke):
        raise TypeError(f"`stroke` must be a Stroke (see Stroke.from_json), got {type(stroke).__name__}")
    lo, hi = _check_maps(correction, base, value_range)
    return _apply_unchecked(correction, stroke, base, lo, hi)


def _apply_unchecked(correction: np.ndarray, stroke: Stroke, base: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """:func:`apply_stroke` without the boundary checks (for callers that validated the maps once)."""
    out = correction.copy()
    sw = stroke_weight(stroke, correction.shape)
    if sw is None:
        return out
    (y0, y1, x0, x1), w = sw
    b = base[y0:y1, x0:x1]
    c = out[y0:y1, x0:x1]
    touched = w > 0
    if stroke.mode == "restore":
        np.copyto(c, c * (1.0 - w), where=touched)
        return out
    m = b + c
    if stroke.mode == "add":
        new_m = m + np.float32(stroke.value) * w
    elif stroke.mode == "set":
        target = np.float32(min(max(stroke.value, lo), hi))
        new_m = m + w * (target - m)
    else:  # smooth: blur a region widened by the blur's reach so the box edge sees real neighbours
        pad = int(math.ceil(stroke.radius)) + 1
        H, W = correction.shape
        py0, py1, px0, px1 = max(0, y0 - pad), min(H, y1 + pad), max(0, x0 - pad), min(W, x1 + pad)
        big = base[py0:py1, px0:px1] + correction[py0:py1, px0:px1]
        blurred = _smooth(big, stroke.radius)[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
        new_m = m + w * (blurred - m)
    np.clip(new_m, lo, hi, out=new_m)
    new_m -= b
    np.copyto(c, new_m, where=touched)
    return out


def replay(
    strokes: Iterable[Stroke | dict | str],
    base: np.ndarray,
    *,
    correction: np.ndarray | None = None,
    value_range: tuple[float, float] = RESIDUAL_RANGE,
) -> np.ndarray:
    """Apply strokes in order, starting from ``correction`` (default zeros): the final correction.

    Strokes may be :class:`Stroke` objects or their JSON (text or dict), e.g. a stored stroke log.

    Examples
    --------
    >>> base = np.zeros((4, 4), np.float32)
    >>> log = [{"id": 1, "points": [[1, 1]], "radius": 1, "value": 0.5, "hardness": 1.0}]
    >>> float(replay(log, base)[1, 1])
    0.5
    """
    corr = np.zeros_like(base) if correction is None else correction
    if correction is None and (not isinstance(base, np.ndarray) or base.dtype != np.float32):
        _check_maps(np.zeros((1, 1), np.float32), base, value_range)  # raises with a clear message
    for s in strokes:
        stroke = s if isinstance(s, Stroke) else Stroke.from_json(s)
        corr = apply_stroke(corr, stroke, base=base, value_range=value_range)
    return corr
