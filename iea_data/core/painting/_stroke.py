"""The stroke record: what the browser sends, validated, and its JSON form.

Every field is checked when a :class:`Stroke` is made (types, finiteness, ranges); what depends
on the map painted on (radius at most the map's diagonal, points within a margin around it) is
checked by :func:`check_stroke`, which the rasteriser calls before any work. Every refusal is a
:class:`StrokeRefused` that names the field and the allowed range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iea_data.core.errors import IeaError

__all__ = [
    "MODES",
    "MAX_POINTS",
    "MAX_ABS_VALUE",
    "MIN_MAX_RADIUS",
    "Stroke",
    "StrokeRefused",
    "check_stroke",
    "max_radius",
    "point_margin",
]

#: Brush modes. ``add``: add ``value`` (signed) under the brush; ``set``: move the map toward
#: ``value``; ``smooth``: blur the map under the brush; ``restore``: move the correction back
#: toward 0 (the map back toward its base).
MODES = ("add", "set", "smooth", "restore")

#: Most points one stroke may carry (a long drag is a few hundred; more is a malformed message).
MAX_POINTS = 20_000

#: Largest |value| a stroke may carry (residuals live in [-1, 1]; EV maps in a few stops).
MAX_ABS_VALUE = 16.0

#: Largest stroke id (the browser counts ids in JavaScript numbers, exact up to 2**53).
MAX_ID = 2**53

#: The radius limit on small maps: a map's diagonal, but never below this (the app's radius
#: slider goes to 200 map pixels, and a small map must still take every slider position).
MIN_MAX_RADIUS = 256.0


class StrokeRefused(IeaError, ValueError, TypeError):
    """A stroke was refused: a field is missing, of the wrong type or out of its range.

    The message names the field and the allowed range. It is a ``ValueError`` and a
    ``TypeError`` too, so callers that catch either keep working.
    """


_NUMBER_TYPES = (int, float, np.integer, np.floating)


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, (bool, np.bool_))


def _number(value: Any, name: str) -> float:
    if not _is_number(value):
        raise StrokeRefused(f"stroke `{name}` must be a number, got {type(value).__name__} {value!r:.40}")
    try:
        value = float(value)
    except OverflowError:
        raise StrokeRefused(f"stroke `{name}` must be finite, got an integer too large for a float") from None
    if not math.isfinite(value):
        raise StrokeRefused(f"stroke `{name}` must be finite, got {value!r}")
    return value


def _points(points: Any) -> np.ndarray:
    """``points`` as float64 (K, 2), refusing bools, strings and anything that is not a number."""
    shape_msg = f"stroke `points` must be a list of [x, y] number pairs, shape (K, 2) with 1 <= K <= {MAX_POINTS}"
    if isinstance(points, np.ndarray):
        if points.dtype.kind not in "iuf":
            raise StrokeRefused(f"{shape_msg}; got an array of dtype {points.dtype}")
        arr = points
    else:
        if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence):
            raise StrokeRefused(f"{shape_msg}; got {type(points).__name__}")
        if len(points) > MAX_POINTS:
            raise StrokeRefused(f"stroke `points` holds {len(points)} points; at most {MAX_POINTS} are accepted")
        try:
            arr = np.array(points, dtype=object)
        except (TypeError, ValueError):
            raise StrokeRefused(f"{shape_msg}; got a ragged list") from None
        if arr.ndim == 2 and arr.shape[1] == 2:
            bad = [
                t
                for t in set(map(type, arr.ravel()))
                if not (issubclass(t, _NUMBER_TYPES) and not issubclass(t, (bool, np.bool_)))
            ]
            if bad:
                raise StrokeRefused(
                    f"stroke `points` must hold numbers only; got {', '.join(sorted(t.__name__ for t in bad))}"
                )
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise StrokeRefused(f"{shape_msg}; got shape {arr.shape}")
    if arr.shape[0] > MAX_POINTS:
        raise StrokeRefused(f"stroke `points` holds {arr.shape[0]} points; at most {MAX_POINTS} are accepted")
    try:
        pts = np.array(arr, dtype=np.float64)
    except OverflowError:
        raise StrokeRefused("stroke `points` must be finite; got an integer too large for a float") from None
    if not np.isfinite(pts).all():
        raise StrokeRefused("stroke `points` must be finite; got NaN or infinity")
    return pts


def max_radius(shape: Sequence[int]) -> float:
    """The largest brush radius accepted on a map of ``shape`` (H, W): its diagonal, at least 256 px.

    Examples
    --------
    >>> round(max_radius((683, 1024)), 1), max_radius((40, 50))
    (1230.9, 256.0)
    """
    return max(math.hypot(int(shape[0]), int(shape[1])), MIN_MAX_RADIUS)


def point_margin(shape: Sequence[int]) -> float:
    """How far (map pixels) outside a map of ``shape`` a stroke's points may lie: 16 x :func:`max_radius`.

    A drag that leaves the canvas keeps sending points (pointer capture), in map pixels that
    may be several screen pixels each; further out than this is not a drag but a malformed
    message. (Points outside the map cost nothing: every segment's work is clipped to it.)

    Examples
    --------
    >>> point_margin((40, 50))
    4096.0
    """
    return 16.0 * max_radius(shape)


def check_stroke(stroke: Stroke, shape: Sequence[int]) -> None:
    """Refuse a stroke that does not fit a map of ``shape`` (H, W).

    The radius must be at most :func:`max_radius` and every point within :func:`point_margin`
    of the map (``-margin <= x <= W - 1 + margin``, the same for ``y``).

    Raises
    ------
    StrokeRefused
        Naming the field and the allowed range.

    Examples
    --------
    >>> check_stroke(Stroke(id=1, points=[[5, 5]], radius=1e6), (683, 1024))
    Traceback (most recent call last):
    ...
    iea_data.core.painting._stroke.StrokeRefused: stroke `radius` must be in (0, 1230.9] map pixels ..., got 1000000.0
    """
    h, w = int(shape[0]), int(shape[1])
    rmax = max_radius(shape)
    if stroke.radius > rmax:
        why = "its diagonal" if rmax > MIN_MAX_RADIUS else f"at least {MIN_MAX_RADIUS:g}"
        raise StrokeRefused(
            f"stroke `radius` must be in (0, {rmax:.1f}] map pixels on this {h}x{w} map ({why}), got {stroke.radius!r}"
        )
    m = point_margin(shape)
    pts = stroke.points
    xs, ys = pts[:, 0], pts[:, 1]
    if xs.min() < -m or xs.max() > w - 1 + m or ys.min() < -m or ys.max() > h - 1 + m:
        i = int(np.argmax((xs < -m) | (xs > w - 1 + m) | (ys < -m) | (ys > h - 1 + m)))
        raise StrokeRefused(
            f"stroke `points` must lie within {m:.0f} px of this {h}x{w} map "
            f"(x in [{-m:.0f}, {w - 1 + m:.0f}], y in [{-m:.0f}, {h - 1 + m:.0f}]); point {i} is {pts[i].tolist()}"
        )


@dataclass(frozen=True, eq=False)
class Stroke:
    """One brush stroke in map pixel coordinates.

    Parameters
    ----------
    id : int
        Increasing per painting session (>= 0); the app applies each id once.
    points : ndarray, float64, shape (K, 2), K >= 1
        The path as ``(x, y)`` = (column, row) in map pixels; pixel centres are at integers.
        Points may lie outside the map (the part outside is ignored), up to
        :func:`point_margin` away (checked against the map by :func:`check_stroke`).
    radius : float
        Brush radius in map pixels, > 0 and at most :func:`max_radius` of the map (the
        diagonal; checked by :func:`check_stroke`).
    value : float
        ``add``: the signed amount added at full brush weight, in the map's units
        (residual units: -0.2 = "too dark by 0.2"); ``set``: the value the map moves toward.
        Ignored by ``smooth`` and ``restore``.
    hardness : float in [0, 1]
        1 = a hard disc; 0 = weight falling smoothly from the centre to the rim
        (the app's "soft edge" is ``1 - hardness``).
    flow : float in (0, 1]
        Strength of the stroke: the brush weight is multiplied by it.
    mode : {"add", "set", "smooth", "restore"}

    Raises
    ------
    StrokeRefused
        A field of the wrong type (a bool or a string is not a number), not finite, or out
        of its range; the message names it and the range.

    Examples
    --------
    >>> s = Stroke(id=1, points=[[10, 10], [20, 10]], radius=5, value=-0.2)
    >>> s.mode, s.points.shape, s.hardness
    ('add', (2, 2), 0.5)
    >>> Stroke.from_json(s.to_json()) == s
    True
    >>> Stroke(id=1, points=[[0, 0]], radius=0, value=0.1)
    Traceback (most recent call last):
    ...
    iea_data.core.painting._stroke.StrokeRefused: stroke `radius` must be > 0 map pixels, got 0.0
    """

    id: int
    points: np.ndarray
    radius: float
    value: float = 0.0
    hardness: float = 0.5
    flow: float = 1.0
    mode: str = "add"

    def __post_init__(self) -> None:
        if (
            not isinstance(self.id, (int, np.integer))
            or isinstance(self.id, (bool, np.bool_))
            or not 0 <= self.id <= MAX_ID
        ):
            raise StrokeRefused(f"stroke `id` must be an integer in [0, 2**53], got {self.id!r:.40}")
        object.__setattr__(self, "id", int(self.id))
        pts = _points(self.points)
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        radius = _number(self.radius, "radius")
        if radius <= 0:
            raise StrokeRefused(f"stroke `radius` must be > 0 map pixels, got {radius!r}")
        object.__setattr__(self, "radius", radius)
        value = _number(self.value, "value")
        if abs(value) > MAX_ABS_VALUE:
            raise StrokeRefused(f"stroke `value` must be in [-{MAX_ABS_VALUE:g}, {MAX_ABS_VALUE:g}], got {value!r}")
        object.__setattr__(self, "value", value)
        hardness = _number(self.hardness, "hardness")
        if not 0.0 <= hardness <= 1.0:
            raise StrokeRefused(f"stroke `hardness` must be in [0, 1] (1 = hard edge), got {hardness!r}")
        object.__setattr__(self, "hardness", hardness)
        flow = _number(self.flow, "flow")
        if not 0.0 < flow <= 1.0:
            raise StrokeRefused(f"stroke `flow` must be in (0, 1], got {flow!r}")
        object.__setattr__(self, "flow", flow)
        if not isinstance(self.mode, str) or self.mode not in MODES:
            raise StrokeRefused(f"stroke `mode` must be one of {', '.join(MODES)}, got {self.mode!r:.40}")
        object.__setattr__(self, "mode", str(self.mode))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stroke):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (points as a list of ``[x, y]``)."""
        return {
            "id": self.id,
            "points": self.points.tolist(),
            "radius": self.radius,
            "value": self.value,
            "hardness": self.hardness,
            "flow": self.flow,
            "mode": self.mode,
        }

    def to_json(self) -> str:
        """The stroke as a compact JSON object."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Stroke:
        """Parse a stroke from JSON text or an already-decoded dict, validating every field.

        Unknown keys are refused (a misspelt field would otherwise be silently defaulted).
        """
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise StrokeRefused(f"stroke is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise StrokeRefused(f"a stroke must be a JSON object, got {type(data).__name__}")
        allowed = {"id", "points", "radius", "value", "hardness", "flow", "mode"}
        unknown = set(data) - allowed
        if unknown:
            raise StrokeRefused(f"unknown stroke field(s) {sorted(map(str, unknown))[:5]}; allowed: {sorted(allowed)}")
        missing = {"id", "points", "radius"} - set(data)
        if missing:
            raise StrokeRefused(f"stroke is missing field(s) {sorted(missing)}")
        return cls(**dict(data))
