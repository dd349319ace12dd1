"""Shared helpers of the app: the workspace, database sessions, data URLs, messages."""

from __future__ import annotations

import base64
import contextlib
from typing import Iterator

import streamlit as st


@st.cache_resource(show_spinner=False)
def workspace():
    """The workspace from ``IEA_HOME`` (set by ``iea app``)."""
    from iea_data.workspace import find_workspace

    return find_workspace()


@contextlib.contextmanager
def db(ws) -> Iterator:
    """A catalog session for one step of a rerun."""
    with ws.session() as s:
        yield s


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def flash(kind: str, text: str) -> None:
    """A message shown once on the next run (success, info, warning, error)."""
    st.session_state.setdefault("_flash", []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop("_flash", []):
        getattr(st, kind)(text)


@st.cache_data(show_spinner=False)
def legend_png(vmax: float, width: int = 420) -> bytes:
    from iea_data.heatmaps import legend
    from iea_data.painting import encode_layer

    return encode_layer(legend(width, 44, vmax=vmax))
