"""The signed-in user's own account: the "set a new password" form shown after an admin reset it.

A user whose ``must_change_password`` is set sees only this form (and sign out) until they
have chosen a new password; the library refuses them every other action whatever the browser
sends (:func:`iea_data.store.require`). The rules (policy, checking the temporary password)
are :func:`iea_data.workflows.users.change_own_password`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from annotator_app._common import flash
from annotator_app._text import literal

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UserInfo, Workspace


def new_password_page(ws: Workspace, user: UserInfo, *, sign_out: Callable[[], None]) -> None:
    """The form a user whose password was reset fills in before anything else."""
    from iea_data.core.errors import IeaError
    from iea_data.workflows.users import MIN_PASSWORD_LENGTH, change_own_password

    st.markdown("## Set a new password")
    left, _ = st.columns([1, 2])
    with left:
        st.info(
            literal(
                f"{user.name}: an admin reset your password. Choose a new one to continue — at least "
                f"{MIN_PASSWORD_LENGTH} characters, not your name; a few unrelated words make a good password."
            )
        )
        with st.form("new_password", enter_to_submit=True):
            current = st.text_input("Temporary password", type="password", key="np_current")
            new = st.text_input("New password", type="password", key="np_new")
            again = st.text_input("New password again", type="password", key="np_again")
            submitted = st.form_submit_button("Set new password", type="primary")
        if submitted:
            if new != again:
                st.error("The two new passwords differ; type them again.")
            else:
                try:
                    change_own_password(ws, user, current, new)
                except IeaError as exc:  # AuthError too: a wrong temporary password, a disabled account
                    st.error(literal(exc))
                else:
                    flash("success", "Your new password is set.")
                    st.rerun()
        if st.button("Sign out", key="np_logout"):
            sign_out()
