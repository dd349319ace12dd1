"""Painting residual corrections: strokes, the brush rasteriser and a painting session.

Pure functions on float32 arrays, used by the annotator app and tested without a browser:
:class:`Stroke` (what the browser sends), :func:`apply_stroke` and :func:`replay` (the
rasteriser), :class:`PaintSession` (exactly-once application by stroke id, undo and redo),
and :func:`heatmap_layer` / :func:`encode_layer` (what the browser draws over the photo).
"""

from ._fixture import brush_fixture, decode_f32, write_brush_fixture
from ._layer import encode_layer, heatmap_layer, heatmap_lut, quantize_map
from ._raster import (
    RESIDUAL_RANGE,
    WORK_FACTOR,
    apply_stroke,
    brush_profile,
    replay,
    stroke_bbox,
    stroke_cost,
    stroke_weight,
)
from ._session import PaintSession
from ._stroke import MAX_POINTS, MODES, Stroke, StrokeRefused, check_stroke, max_radius, point_margin

__all__ = [
    "MODES",
    "MAX_POINTS",
    "Stroke",
    "StrokeRefused",
    "check_stroke",
    "max_radius",
    "point_margin",
    "RESIDUAL_RANGE",
    "WORK_FACTOR",
    "brush_profile",
    "stroke_bbox",
    "stroke_cost",
    "stroke_weight",
    "apply_stroke",
    "replay",
    "PaintSession",
    "heatmap_layer",
    "heatmap_lut",
    "encode_layer",
    "quantize_map",
    "brush_fixture",
    "write_brush_fixture",
    "decode_f32",
]
