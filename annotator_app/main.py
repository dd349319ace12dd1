"""The IEA annotator app (Streamlit). Start it with ``iea app``; it opens the workspace in ``IEA_HOME``.

A thin layer: every rule (who may do what, revisions, drafts, queues, reviews) and every
computation (rasterising strokes, heatmaps) is a call into :mod:`iea_data`. Only catalog ids
travel to and from the browser.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import streamlit as st

from annotator_app._common import app_icon

# the icon is a generated PNG served by the app itself: a ":material/…:" or emoji icon makes
# every browser fetch it from an outside server (fonts.gstatic.com, a CDN)
st.set_page_config(page_title="IEA annotator", page_icon=app_icon(), layout="wide")
# The painter never fades while a rerun runs (Streamlit dims elements 0.5 s into a rerun): it already
# shows each stroke as predicted and says in its status line what is not saved yet; dimming it under load
# would make the strokes look lost, and animating nine painters' opacity costs the browser frames.
st.html(
    "<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }"
    " .stElementContainer[class*='st-key-painter_'][data-stale='true'] { opacity: 1 !important;"
    " transition: none !important; }</style>"
)

from annotator_app import pages  # noqa: E402  (after set_page_config)
from annotator_app._common import workspace  # noqa: E402
from annotator_app._errors import error_boundary  # noqa: E402
from annotator_app._text import literal  # noqa: E402
from iea_data.workflows.users import configure_auth_log  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UserInfo, Workspace

log = logging.getLogger("annotator_app")
configure_auth_log()  # sign-ins, failures and sign-outs (never a password) to the server's log


def _logout(message: str | None = None, reason: str = "signed out") -> None:
    if name := st.session_state.get("user_name"):
        from iea_data.workflows.users import log_sign_out

        log_sign_out(name, reason=reason, address=_client_address())
    from annotator_app._paint import close_channel

    close_channel(session=True)  # the session's painter stops taking strokes with its sign-in
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if message:
        st.session_state["flash_login"] = message


def _sign_out() -> None:
    _logout("Signed out.")
    st.rerun()


def _client_address() -> str:
    """The browser's address for login throttling: the websocket peer; ``X-Forwarded-For`` only
    when the peer is a proxy listed in ``IEA_TRUSTED_PROXIES`` (comma-separated; ``local`` = this machine)."""
    import os

    from iea_data.workflows.users import client_address

    trusted = [p for p in os.environ.get("IEA_TRUSTED_PROXIES", "").split(",") if p.strip()]
    forwarded = st.context.headers.get("X-Forwarded-For") if trusted else None
    return client_address(st.context.ip_address, forwarded, trusted)


def _login_page(ws: Workspace) -> None:
    from iea_data.workflows.users import AuthError, authenticate

    st.markdown("## IEA annotator")
    left, _ = st.columns([1, 2])
    with left:
        if msg := st.session_state.pop("flash_login", None):
            st.info(literal(msg))
        with st.form("login", enter_to_submit=True):
            name = st.text_input("User name", key="login_name")
            password = st.text_input("Password", type="password", key="login_password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            try:
                user = authenticate(
                    ws,
                    name.strip(),
                    password,
                    address=_client_address(),
                    max_failures=ws.settings.login_max_failures,
                )
            except AuthError as exc:
                st.error(literal(exc))
                return
            st.session_state["user_id"] = user.id
            st.session_state["user_name"] = user.name  # for the sign-out log line
            st.session_state["last_seen"] = dt.datetime.now(dt.UTC)
            st.rerun()


def _signed_in_user(ws: Workspace) -> UserInfo | None:
    """The user of this browser session, or None (expired, disabled, deleted: logged out)."""
    from iea_data.workflows.users import AuthError, current_user, session_expired

    uid = st.session_state.get("user_id")
    if uid is None:
        return None
    now = dt.datetime.now(dt.UTC)
    if session_expired(st.session_state["last_seen"], now, ws.settings.session_idle_minutes):
        _logout(f"Signed out after {ws.settings.session_idle_minutes} idle minutes; please sign in again.", "idle")
        return None
    try:
        user = current_user(ws, uid)
    except AuthError as exc:
        _logout(f"Signed out: {exc}", "disabled or deleted")
        return None
    st.session_state["last_seen"] = now
    return user


def _replica_footer() -> None:
    """Which replica served this session (``IEA_REPLICA``, set by ``iea app --replicas``); nothing when unset."""
    import os

    if name := os.environ.get("IEA_REPLICA", "").strip():
        st.caption(literal(f"replica {name}"))


def main() -> None:
    with error_boundary():  # one line in the browser, the traceback in the server log
        _main()
    _replica_footer()


def _main() -> None:
    ws = workspace()
    user = _signed_in_user(ws)
    if user is None:
        _login_page(ws)
        return
    if user.must_change_password:  # an admin reset the password: a new one before anything else
        from annotator_app._account import new_password_page

        new_password_page(ws, user, sign_out=_sign_out)
        return
    available = pages.pages_for(user)
    with st.sidebar:
        st.markdown(f"**{literal(user.name)}** · {literal(user.role)}")
        page = st.radio("Page", list(available), key="page", label_visibility="collapsed")
        if st.button("Sign out", key="logout"):
            _logout("Signed out.")
            st.rerun()
        st.divider()
    with error_boundary():  # the sidebar (sign out) stays usable when a page fails
        available[page](ws, user)


main()
