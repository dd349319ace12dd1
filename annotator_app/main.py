"""The IEA annotator app (Streamlit). Start it with ``iea app``; it opens the workspace in ``IEA_HOME``.

A thin layer: every rule (who may do what, revisions, drafts, queues, reviews) and every
computation (rasterising strokes, heatmaps) is a call into :mod:`iea_data`. Only catalog ids
travel to and from the browser.
"""

from __future__ import annotations

import datetime as dt
import logging

import streamlit as st

st.set_page_config(page_title="IEA annotator", page_icon=":material/brush:", layout="wide")
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>")

from annotator_app import pages  # noqa: E402  (after set_page_config)
from annotator_app._common import db, workspace  # noqa: E402

log = logging.getLogger("annotator_app")


def _logout(message: str | None = None) -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if message:
        st.session_state["flash_login"] = message


def _login_page(ws) -> None:
    from iea_data.users import AuthError, authenticate

    st.markdown("## IEA annotator")
    left, _ = st.columns([1, 2])
    with left:
        if msg := st.session_state.pop("flash_login", None):
            st.info(msg)
        with st.form("login", enter_to_submit=True):
            name = st.text_input("User name", key="login_name")
            password = st.text_input("Password", type="password", key="login_password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            try:
                with db(ws) as s:
                    user = authenticate(s, name.strip(), password, max_failures=ws.settings.login_max_failures)
            except AuthError as exc:
                st.error(str(exc))
                return
            st.session_state["user_id"] = user.id
            st.session_state["last_seen"] = dt.datetime.now(dt.timezone.utc)
            st.rerun()


def _signed_in_user(ws):
    """The user of this browser session, or None (expired, disabled, deleted: logged out)."""
    from iea_data.users import AuthError, current_user, session_expired

    uid = st.session_state.get("user_id")
    if uid is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if session_expired(st.session_state["last_seen"], now, ws.settings.session_idle_minutes):
        _logout(f"Signed out after {ws.settings.session_idle_minutes} idle minutes; please sign in again.")
        return None
    try:
        with db(ws) as s:
            user = current_user(s, uid)
    except AuthError as exc:
        _logout(f"Signed out: {exc}")
        return None
    st.session_state["last_seen"] = now
    return user


def main() -> None:
    ws = workspace()
    user = _signed_in_user(ws)
    if user is None:
        _login_page(ws)
        return
    available = pages.pages_for(user)
    with st.sidebar:
        st.markdown(f"**{user.name}** · {user.role}")
        page = st.radio("Page", list(available), key="page", label_visibility="collapsed")
        if st.button("Sign out", key="logout"):
            _logout("Signed out.")
            st.rerun()
        st.divider()
    available[page](ws, user)


main()
