"""The painter on a page: brush controls, the component, stroke and action events.

Shared by the annotation page (residual corrections) and the ideal-target page (EV stops).
The server-side state of an open painter is an :class:`iea_data.core.painting.PaintSession`
kept in ``st.session_state``; strokes are applied by id, exactly once.
"""

from __future__ import annotations

import base64
import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import streamlit as st

PAINTER_KEY = "painter"
MODE_LABELS = {"add": "Add", "set": "Set to", "smooth": "Smooth", "restore": "Restore base"}


@st.cache_data(show_spinner=False)
def _lut_b64() -> str:
    from iea_data.core.painting import heatmap_lut

    return base64.b64encode(heatmap_lut().tobytes()).decode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Painting:
    """One open painter: what is painted, the session, and what the browser has been sent.

    The browser colours the map itself with the heatmap lookup table of
    :func:`iea_data.core.painting.heatmap_lut`. It gets the whole map (quantised, compressed) once,
    and after each change only the box the change touched: a patch.
    """

    ident: Any  # e.g. ("annotation", image_id, base) — a change opens a new painter
    session: Any  # iea_data.core.painting.PaintSession
    photo_url: str
    # 128 random bits: the stroke channel's capability (annotator_app.stroke_channel)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    payload: Any = None  # the library state object (AnnotationState, TargetState)
    dirty: bool = False  # strokes not yet autosaved
    # the highest stroke id stored durably, the acknowledgement the browser gets (it re-sends every
    # stroke above it); None: every applied stroke is acknowledged (a painter without drafts)
    durable_id: int | None = None
    resync: bool = False  # the browser lost track (a remount, a skipped update): send everything again
    _sent_rev: int | None = None  # the map revision the browser was last sent; None: nothing yet
    # for the stroke channel (set by the page before each mount): store the strokes durably (the
    # draft), returning an error line or None; and the painter's status line. No ``store``: no channel.
    store: Optional[Callable[[Painting], Optional[str]]] = field(default=None, repr=False, compare=False)
    status_of: Optional[Callable[[Painting], str]] = field(default=None, repr=False, compare=False)
    # the page's script thread and the channel's workers change the painting under this lock
    lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def ack(self) -> int:
        """The highest stroke id the browser may forget: stored durably (or applied, without drafts)."""
        return self.session.last_id if self.durable_id is None else self.durable_id

    def _patches_since(self, rev: int) -> list[dict]:
        """The current values of each box changed after revision ``rev`` (quantised, compressed)."""
        from iea_data.core.painting import quantize_map

        ps = self.session
        lo, hi = ps.value_range
        patches = []
        for r, (y0, y1, x0, x1) in ps.changes:
            if r > rev:
                box = np.clip(ps.base[y0:y1, x0:x1] + ps.correction[y0:y1, x0:x1], lo, hi)
                patches.append({"y": y0, "x": x0, "h": y1 - y0, "w": x1 - x0, "data": _b64(quantize_map(box))})
        return patches

    def channel_answer(self, strokes: Any, rev: Any) -> dict[str, Any]:
        """Apply strokes from the stroke channel, store them, and the answer for the browser at ``rev``.

        Call with :attr:`lock` held. Like :func:`take_events`, whatever the browser sent never
        raises: a refused stroke or a malformed message is a line in ``errors``. The values are
        the patches since ``rev`` (the revision the browser shows), none while a stroke applied
        is not stored yet (``hold``, as in :meth:`browser_data`); ``resync`` when ``rev`` is not
        one this painting had (the browser then asks for everything through Streamlit).
        """
        malformed, errors = apply_strokes(self, strokes)
        if self.dirty and self.store is not None and (err := self.store(self)):
            errors.append(err)
        ps = self.session
        valid_rev = isinstance(rev, int) and not isinstance(rev, bool) and 0 <= rev <= ps.revision
        at = rev if valid_rev else ps.revision
        if self.ack < ps.last_id or not valid_rev:
            values = {"rev": at, "from_rev": at, "full": None, "patches": []}
        else:
            values = {"rev": ps.revision, "from_rev": at, "full": None, "patches": self._patches_since(at)}
            self._sent_rev = ps.revision  # the browser has every change up to it (revisions only grow)
        if malformed:
            errors.append(MALFORMED)
        return {
            "token": self.token,
            "ack": self.ack,
            "values": values,
            "resync": not valid_rev,
            "can_undo": ps.can_undo,
            "can_redo": ps.can_redo,
            "status": self.status_of(self) if self.status_of is not None else "",
            "errors": errors,
        }

    def browser_data(self, *, hold: bool = False) -> tuple[str | None, dict]:
        """(photo or None, values) for this render.

        The first render (and any after a ``resync`` request) sends the photo, the whole map and
        its base (the browser predicts each stroke with the same brush, see ``painter.js``);
        later ones send only patches: the current values of each box changed since the last
        render, with the revision they start from (``from_rev``) so the browser can tell a gap.
        ``hold`` sends no change (the strokes applied since are not acknowledged: not yet stored),
        so the browser, which paints every unacknowledged stroke on the map it has, shows each once.
        """
        from iea_data.core.painting import quantize_map

        ps = self.session
        if self._sent_rev is None or self.resync:
            self.resync = False
            self._sent_rev = ps.revision
            # the base too: the browser paints each stroke at once (restore needs the base)
            return self.photo_url, {
                "rev": ps.revision,
                "from_rev": None,
                "full": _b64(quantize_map(ps.map)),
                "base": _b64(quantize_map(ps.base)),
                "patches": [],
            }
        if hold:  # strokes applied but not yet stored: the browser keeps predicting them on the old map
            return None, {"rev": self._sent_rev, "from_rev": self._sent_rev, "full": None, "patches": []}
        patches = self._patches_since(self._sent_rev)
        out = {"rev": ps.revision, "from_rev": self._sent_rev, "full": None, "patches": patches}
        self._sent_rev = ps.revision
        return None, out


def _trigger(key: str, name: str):
    value = st.session_state.get(key)
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError):
        return getattr(value, name, None)


def _on_strokes(key: str) -> None:
    st.session_state.setdefault("_strokes_in", []).append(_trigger(key, "strokes"))


def _on_action(key: str) -> None:
    st.session_state.setdefault("_actions_in", []).append(_trigger(key, "action"))


def _on_resync(key: str) -> None:
    st.session_state["_resync_in"] = _trigger(key, "resync")


def brush_controls(*, unit: str, strength_max: float, strength_default: float, signs: tuple[str, str]) -> dict:
    """The sidebar brush controls; returns the brush sent to the browser."""
    st.sidebar.markdown("**Brush**")
    mode = (
        st.sidebar.segmented_control(
            "Mode",
            list(MODE_LABELS),
            format_func=MODE_LABELS.get,
            default="add",
            key="brush_mode",
            help="Add: add the signed strength. Set to: move the map toward the value. Smooth: blur. "
            "Restore base: take the correction back to the base.",
        )
        or "add"
    )
    sign = st.sidebar.radio("Sign", signs, horizontal=True, key="brush_sign", disabled=mode in ("smooth", "restore"))
    strength = st.sidebar.slider(
        f"Strength ({unit})",
        0.01,
        strength_max,
        strength_default,
        0.01,
        key="brush_strength",
        disabled=mode in ("smooth", "restore"),
    )
    radius = st.sidebar.slider("Radius (map pixels)", 2, 200, 24, key="brush_radius")
    soft = st.sidebar.slider("Soft edge", 0.0, 1.0, 0.5, 0.05, key="brush_soft")
    flow = st.sidebar.slider(
        "Flow",
        0.05,
        1.0,
        1.0,
        0.05,
        key="brush_flow",
        help="How far one stroke goes toward its target (set, smooth, restore) or of its strength (add).",
    )
    value = -strength if sign == signs[0] else strength
    return {
        "mode": mode,
        "value": float(value),
        "radius": float(radius),
        "hardness": float(1.0 - soft),
        "flow": float(flow),
    }


def view_controls() -> dict:
    st.sidebar.markdown("**View**")
    show = st.sidebar.toggle("Heatmap", True, key="view_show")
    opacity = st.sidebar.slider("Opacity", 0.0, 1.0, 0.65, 0.05, key="view_opacity", disabled=not show)
    zoom = st.sidebar.select_slider(
        "Zoom", [1.0, 1.5, 2.0, 3.0, 4.0], 1.0, format_func=lambda z: f"{z:g}x", key="view_zoom"
    )
    return {"show": show, "opacity": opacity, "zoom": zoom}


MALFORMED = "A message from the painter was malformed and ignored; reload the page if the painter stops responding."


def _is_ours(msg, painting: Painting) -> bool | None:
    """True: a message of this painter; False: of a painter no longer open (or none); None: malformed."""
    if msg is None:
        return False
    if not isinstance(msg, dict) or not isinstance(msg.get("token"), str):
        return None
    return msg["token"] == painting.token


def apply_strokes(painting: Painting, strokes: Any) -> tuple[bool, list[str]]:
    """Apply a message's strokes (each id once); (malformed, error lines). Never raises.

    ``strokes`` is what the browser sent: None (nothing), or a list of stroke objects. A refused
    stroke is one error line; unexpected failures are logged with their traceback on the server
    (:func:`annotator_app._errors.error_line`).
    """
    from annotator_app._errors import error_line
    from annotator_app._text import one_line

    if strokes is None:
        return False, []
    if not isinstance(strokes, list):
        return True, []
    before = painting.session.last_id
    try:
        painting.session.apply(strokes)
        return False, []
    except (ValueError, TypeError) as exc:
        return False, [f"A stroke was refused: {one_line(exc)}"]
    except Exception as exc:
        return False, [error_line(exc)]
    finally:
        # strokes applied, or a refused one passed over: to be stored, then acknowledged
        if painting.session.last_id != before:
            painting.dirty = True


def take_events(painting: Painting, state=None) -> tuple[list[str], list[str]]:
    """Apply the strokes that arrived (each id once) and return (actions, errors) to handle.

    ``state`` is ``st.session_state`` unless given (the tests pass a dict). Whatever the
    browser sent — garbage, wrong types, hostile values — this never raises: a refused stroke
    or a malformed message becomes one line in ``errors`` (unexpected failures are logged with
    their traceback on the server, see :func:`annotator_app._errors.error_line`).
    """
    state = st.session_state if state is None else state
    errors: list[str] = []
    malformed = False
    msg = state.pop("_resync_in", None)
    if msg is not None:
        ours = _is_ours(msg, painting)
        malformed |= ours is None
        if ours:
            painting.resync = True
    for msg in state.pop("_strokes_in", None) or []:
        ours = _is_ours(msg, painting)
        if ours is None:
            malformed = True
            continue
        if not ours:
            continue  # from a painter that is no longer open
        bad, refused = apply_strokes(painting, msg.get("strokes"))
        malformed |= bad
        errors += refused
    actions = []
    for msg in state.pop("_actions_in", None) or []:
        ours = _is_ours(msg, painting)
        if ours is None or (ours and msg.get("action") not in ("undo", "redo", "save", "next")):
            malformed = True
        elif ours:
            actions.append(msg["action"])
    for a in actions:
        if a == "undo" and painting.session.undo():
            painting.dirty = True
        elif a == "redo" and painting.session.redo():
            painting.dirty = True
    if malformed:
        errors.append(MALFORMED)
    return [a for a in actions if a in ("save", "next")], errors


def _session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def close_channel(painting: Painting | None = None, *, session: bool = False) -> None:
    """Stop the stroke channel reaching ``painting`` (closed, submitted), or every painting of this session."""
    from annotator_app import stroke_channel

    if session:
        stroke_channel.close_session(_session_id())
    else:
        stroke_channel.close(painting)


def mount(
    painting: Painting,
    brush: dict,
    view: dict,
    *,
    vmax: float,
    unit: str,
    status: str,
    color_scale: float = 1.0,
    words: tuple[str, str, str] = ("too dark", "about ideal", "too bright"),
    tolerance: float | None = None,
) -> None:
    """Draw the painter with the current map; colours at ``value * color_scale`` on ±``vmax``.

    ``words`` name a negative, a near-zero (within ``tolerance``) and a positive value under the cursor.
    """
    from annotator_app import stroke_channel
    from annotator_app.components.painter import painter
    from iea_data.core.residuals import IDEAL_TOLERANCE

    h, w = painting.session.base.shape
    ack = painting.ack
    photo, values = painting.browser_data(hold=ack < painting.session.last_id)
    channel = stroke_channel.url() if painting.store is not None else None
    if channel is not None:
        stroke_channel.register(painting, _session_id(), painting.ident[0])
    data = {
        "token": painting.token,
        "channel": channel,
        "instance": stroke_channel.INSTANCE,
        "ack": ack,
        "rev": values["rev"],
        "width": w,
        "height": h,
        "photo": photo,
        "values": values,
        "values_step": 0.001,
        "value_range": list(painting.session.value_range),
        "lut": _lut_b64(),
        "vmax": vmax,
        "color_scale": color_scale,
        "unit": unit,
        "ideal_tolerance": IDEAL_TOLERANCE if tolerance is None else tolerance,
        "words": list(words),
        "brush": brush,
        "show": view["show"],
        "opacity": view["opacity"],
        "zoom": view["zoom"],
        "can_undo": painting.session.can_undo,
        "can_redo": painting.session.can_redo,
        "status": status,
    }
    # one component per page (its own key): a painter never inherits another page's browser state
    key = f"{PAINTER_KEY}_{painting.ident[0]}"
    painter(
        key=key,
        data=data,
        on_strokes=functools.partial(_on_strokes, key),
        on_action=functools.partial(_on_action, key),
        on_resync=functools.partial(_on_resync, key),
    )
