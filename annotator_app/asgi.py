"""The app's ASGI entry: the Streamlit script (``main.py``) with the stroke channel's route beside it.

``streamlit run annotator_app/asgi.py`` (what :func:`annotator_app.server.streamlit_command`
runs) finds ``app`` and serves both from one process, so the channel reaches the paintings
of that process's sessions (:mod:`annotator_app.stroke_channel`).
"""

from __future__ import annotations

import streamlit as st

from annotator_app import stroke_channel
from annotator_app.server import MAIN

app = st.App(MAIN, routes=stroke_channel.enable())
