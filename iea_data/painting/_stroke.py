"""The stroke record: what the browser sends, validated, and its JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["MODES", "MAX_POINTS", "Stroke"]

#: Brush modes. ``add``: add ``value`` (signed) under the brush; ``set``: move the map toward
#: ``value``; ``smooth``: blur the map under the brush; ``restore``: move the correction back
#: toward 0 (the map back toward its base).
MODES = ("add", "set", "smooth", "restore")

#: Most points one stroke may carry (a long drag is a few hundred; more is a malformed message).
MAX_POINTS = 20_000

#: Largest |value| a stroke may carry (residuals live in [-1, 1]; EV maps in a few stops).
MAX_ABS_VALUE = 16.0


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"stroke `{name}` must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"stroke `{name}` must be finite, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Stroke:
    """One brush stroke in map pixel coordinates.

    Parameters
    ----------
    id : int
        Increasing per painting session (>= 0); the app applies each id once.
    points : ndarray, float64, shape (K, 2), K >= 1
        The path as ``(x, y)`` = (column, row) in map pixels; pixel centres are at integers.
        Points may lie outside the map (the part outside is ignored).
    radius : float
        Brush radius in map pixels, > 0.
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
    ValueError: stroke `radius` must be > 0 map pixels, got 0.0
    """

    id: int
    points: np.ndarray
    radius: float
    value: float = 0.0
    hardness: float = 0.5
    flow: float = 1.0
    mode: str = "add"

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, (int, np.integer)) or int(self.id) < 0:
            raise ValueError(f"stroke `id` must be an integer >= 0, got {self.id!r}")
        object.__setattr__(self, "id", int(self.id))
        try:
            pts = np.array(self.points, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"stroke `points` must be a (K, 2) array of numbers (x, y), got {self.points!r:.80}") from None
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
            raise ValueError(f"stroke `points` must have shape (K, 2) with K >= 1 (x, y pairs), got shape {pts.shape}")
        if pts.shape[0] > MAX_POINTS:
            raise ValueError(f"stroke `points` holds {pts.shape[0]} points; at most {MAX_POINTS} are accepted")
        if not np.isfinite(pts).all():
            raise ValueError("stroke `points` must be finite; got NaN or infinity")
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        radius = _number(self.radius, "radius")
        if radius <= 0:
            raise ValueError(f"stroke `radius` must be > 0 map pixels, got {radius!r}")
        object.__setattr__(self, "radius", radius)
        value = _number(self.value, "value")
        if abs(value) > MAX_ABS_VALUE:
            raise ValueError(f"stroke `value` must be in [-{MAX_ABS_VALUE:g}, {MAX_ABS_VALUE:g}], got {value!r}")
        object.__setattr__(self, "value", value)
        hardness = _number(self.hardness, "hardness")
        if not 0.0 <= hardness <= 1.0:
            raise ValueError(f"stroke `hardness` must be in [0, 1] (1 = hard edge), got {hardness!r}")
        object.__setattr__(self, "hardness", hardness)
        flow = _number(self.flow, "flow")
        if not 0.0 < flow <= 1.0:
            raise ValueError(f"stroke `flow` must be in (0, 1], got {flow!r}")
        object.__setattr__(self, "flow", flow)
        if self.mode not in MODES:
            raise ValueError(f"stroke `mode` must be one of {', '.join(MODES)}, got {self.mode!r}")

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
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> "Stroke":
        """Parse a stroke from JSON text or an already-decoded dict, validating every field.

        Unknown keys are refused (a misspelt field would otherwise be silently defaulted).
        """
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ValueError(f"stroke is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise TypeError(f"a stroke must be a JSON object, got {type(data).__name__}")
        allowed = {"id", "points", "radius", "value", "hardness", "flow", "mode"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown stroke field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        missing = {"id", "points", "radius"} - set(data)
        if missing:
            raise ValueError(f"stroke is missing field(s) {sorted(missing)}")
        return cls(**dict(data))
