"""The painter component (``st.components.v2``): inline HTML, CSS and JS, no build step.

Python sends the photo, the heatmap lookup table and the quantised map (a snapshot with its
base, then patches of the changed boxes) in ``data``; the browser colours the map, shows the
value under the cursor, and sends strokes (trigger ``strokes``), toolbar or keyboard actions
(trigger ``action``: undo, redo, save, next) and, after a remount, ``resync``.

Each stroke is painted in the browser at once with ``paintStroke`` (``painter.js``), a port of
:func:`iea_data.core.painting.apply_stroke` tested against the same fixture
(``tests/core/painting/fixtures/brush_strokes.json``); Python's patch then replaces the prediction,
so once every stroke is acknowledged the screen shows the stored map.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

HERE = Path(__file__).resolve().parent

HTML = """
<div class="iea-painter">
  <div class="toolbar">
    <button class="undo" data-action="undo" title="Undo (Ctrl+Z)">&#8630; Undo</button>
    <button class="redo" data-action="redo" title="Redo (Ctrl+Y)">&#8631; Redo</button>
    <span class="status"></span>
  </div>
  <div class="viewport"><div class="stack">
    <canvas class="view"></canvas><canvas class="layer"></canvas>
    <svg class="preview" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="none">
      <g class="drawing" opacity="0.35" stroke-linecap="round" stroke-linejoin="round"></g>
    </svg>
    <div class="brush" style="display:none"></div>
  </div></div>
  <div class="readout">value under the cursor: -</div>
</div>
"""

_component = st.components.v2.component(
    "iea_painter",
    html=HTML,
    css=(HERE / "painter.css").read_text(encoding="utf-8"),
    js=(HERE / "painter.js").read_text(encoding="utf-8"),
)


def painter(
    *,
    key: str,
    data: dict[str, Any],
    on_strokes: Callable[[], None],
    on_action: Callable[[], None],
    on_resync: Callable[[], None],
):
    """Mount the painter; the callbacks read ``st.session_state[key]["strokes"|"action"|"resync"]``.

    ``data["photo"]`` and ``data["values"]["full"]`` may be None when the browser already has
    them; a remounted painter that lacks them asks again with the ``resync`` trigger.
    """
    return _component(
        key=key,
        data=data,
        on_strokes_change=on_strokes,
        on_action_change=on_action,
        on_resync_change=on_resync,
        width="stretch",
    )
