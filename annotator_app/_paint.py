"""The painter on a page: brush controls, the component, stroke and action events.

Shared by the annotation page (residual corrections) and the ideal-target page (EV stops).
The server-side state of an open painter is an :class:`iea_data.painting.PaintSession`
kept in ``st.session_state``; strokes are applied by id, exactly once.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import streamlit as st

from annotator_app._common import data_url

PAINTER_KEY = "painter"
MODE_LABELS = {"add": "Add", "set": "Set to", "smooth": "Smooth", "restore": "Restore base"}


@dataclass
class Painting:
    """One open painter: what is painted, the session, and caches of what the browser draws."""

    ident: Any  # e.g. ("annotation", image_id, base) — a change opens a new painter
    session: Any  # iea_data.painting.PaintSession
    photo_url: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    payload: Any = None  # the library state object (AnnotationState, TargetState)
    dirty: bool = False  # strokes not yet autosaved
    _layer: tuple = (None, None)
    _values: tuple = (None, None)

    def layer_url(self, vmax: float, to_residual: Callable[[np.ndarray], np.ndarray] | None = None) -> str:
        from iea_data.painting import encode_layer, heatmap_layer

        key = (self.session.revision, vmax)
        if self._layer[0] != key:
            m = self.session.map if to_residual is None else to_residual(self.session.map)
            self._layer = (key, data_url(encode_layer(heatmap_layer(m, vmax=vmax)), "image/png"))
        return self._layer[1]

    def values(self) -> tuple[str, str]:
        from iea_data.painting import quantize_map

        key = f"{self.token}:{self.session.revision}"
        if self._values[0] != key:
            self._values = (key, base64.b64encode(quantize_map(self.session.map)).decode("ascii"))
        return self._values


def _trigger(name: str):
    value = st.session_state.get(PAINTER_KEY)
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError):
        return getattr(value, name, None)


def _on_strokes() -> None:
    st.session_state.setdefault("_strokes_in", []).append(_trigger("strokes"))


def _on_action() -> None:
    st.session_state.setdefault("_actions_in", []).append(_trigger("action"))


def brush_controls(*, unit: str, strength_max: float, strength_default: float, signs: tuple[str, str]) -> dict:
    """The sidebar brush controls; returns the brush sent to the browser."""
    st.sidebar.markdown("**Brush**")
    mode = st.sidebar.segmented_control(
        "Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, default="add", key="brush_mode",
        help="Add: add the signed strength. Set to: move the map toward the value. Smooth: blur. "
             "Restore base: take the correction back to the base.",
    ) or "add"
    sign = st.sidebar.radio("Sign", signs, horizontal=True, key="brush_sign", disabled=mode in ("smooth", "restore"))
    strength = st.sidebar.slider(f"Strength ({unit})", 0.01, strength_max, strength_default, 0.01, key="brush_strength",
                                 disabled=mode in ("smooth", "restore"))
    radius = st.sidebar.slider("Radius (map pixels)", 2, 200, 24, key="brush_radius")
    soft = st.sidebar.slider("Soft edge", 0.0, 1.0, 0.5, 0.05, key="brush_soft")
    flow = st.sidebar.slider("Flow", 0.05, 1.0, 1.0, 0.05, key="brush_flow",
                             help="How far one stroke goes toward its target (set, smooth, restore) or of its strength (add).")
    value = -strength if sign == signs[0] else strength
    return {"mode": mode, "value": float(value), "radius": float(radius), "hardness": float(1.0 - soft), "flow": float(flow)}


def view_controls() -> dict:
    st.sidebar.markdown("**View**")
    show = st.sidebar.toggle("Heatmap", True, key="view_show")
    opacity = st.sidebar.slider("Opacity", 0.0, 1.0, 0.65, 0.05, key="view_opacity", disabled=not show)
    zoom = st.sidebar.select_slider("Zoom", [1.0, 1.5, 2.0, 3.0, 4.0], 1.0, format_func=lambda z: f"{z:g}x", key="view_zoom")
    return {"show": show, "opacity": opacity, "zoom": zoom}


def take_events(painting: Painting) -> tuple[list[str], list[str]]:
    """Apply the strokes that arrived (each id once) and return (actions, errors) to handle."""
    errors: list[str] = []
    for msg in st.session_state.pop("_strokes_in", []):
        if not isinstance(msg, dict) or msg.get("token") != painting.token:
            continue  # from a painter that is no longer open
        try:
            if painting.session.apply(msg.get("strokes") or []):
                painting.dirty = True
        except (ValueError, TypeError) as exc:
            errors.append(f"A stroke was refused: {exc}")
    actions = []
    for msg in st.session_state.pop("_actions_in", []):
        if isinstance(msg, dict) and msg.get("token") == painting.token and msg.get("action") in ("undo", "redo", "save", "next"):
            actions.append(msg["action"])
    for a in actions:
        if a == "undo" and painting.session.undo():
            painting.dirty = True
        elif a == "redo" and painting.session.redo():
            painting.dirty = True
    return [a for a in actions if a in ("save", "next")], errors


def mount(painting: Painting, brush: dict, view: dict, *, vmax: float, unit: str, status: str,
          to_residual: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """Draw the painter with the current map."""
    from annotator_app.components.painter import painter
    from iea_data.labels import IDEAL_TOLERANCE

    h, w = painting.session.base.shape
    values_key, values = painting.values()
    data = {
        "token": painting.token,
        "ack": painting.session.last_id,
        "rev": painting.session.revision,
        "width": w,
        "height": h,
        "photo": painting.photo_url,
        "layer": painting.layer_url(vmax, to_residual),
        "values": values,
        "values_key": values_key,
        "values_step": 0.001,
        "unit": unit,
        "ideal_tolerance": IDEAL_TOLERANCE,
        "brush": brush,
        "show": view["show"],
        "opacity": view["opacity"],
        "zoom": view["zoom"],
        "can_undo": painting.session.can_undo,
        "can_redo": painting.session.can_redo,
        "status": status,
    }
    painter(key=PAINTER_KEY, data=data, on_strokes=_on_strokes, on_action=_on_action)
