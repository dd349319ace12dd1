"""Shared helpers of the app: the workspace, data URLs, messages (library workflows do the database work)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace


@st.cache_resource(show_spinner=False)
def workspace() -> Workspace:
    """The workspace from ``IEA_HOME`` (set by ``iea app``)."""
    from iea_data.store.workspace import find_workspace

    return find_workspace()


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def flash(kind: str, text: str) -> None:
    """A message shown once on the next run (success, info, warning, error)."""
    st.session_state.setdefault("_flash", []).append((kind, text))


def show_flash() -> None:
    """Show the queued messages as literal text (they quote names and comments).

    Always one container, messages or none, so that the elements after it (the painter) keep
    their place in the page across reruns: Streamlit matches elements by position.
    """
    from annotator_app._text import literal

    box = st.container()
    for kind, text in st.session_state.pop("_flash", []):
        getattr(box, kind)(literal(text))


@st.cache_resource(show_spinner=False)
def app_icon():
    """The page icon: a 64 px blue-white-red disc (the heatmap's colours), made here, served by the app."""
    import numpy as np
    from PIL import Image

    from iea_data.core.heatmaps import colorize

    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    ramp = ((xx - 31.5) / 63.0).astype(np.float32)  # -0.5 (blue) … +0.5 (red)
    rgb = colorize(ramp, vmax=0.5)  # uint8 (64, 64, 3)
    alpha = ((((yy - 31.5) ** 2 + (xx - 31.5) ** 2) <= 31.0**2) * 255).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


@st.cache_data(show_spinner=False)
def legend_png(vmax: float, width: int = 420) -> bytes:
    from iea_data.core.heatmaps import legend
    from iea_data.core.painting import encode_layer

    return encode_layer(legend(width, 44, vmax=vmax))
