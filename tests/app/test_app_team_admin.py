"""Issue 13 in Chromium: an admin resets a password and changes a role on the Users page; the user must
set a new password at the next sign-in before anything else (on each backend the fixture offers)."""

from __future__ import annotations

import pytest

PASSWORD = "team-admin-test-pw"
NEW = "a quiet river at dawn"


@pytest.fixture(scope="module")
def ws(app_server):
    from iea_data.workflows.users import add_user

    ws = app_server[1]
    add_user(ws, "boss", role="admin", password=PASSWORD)
    add_user(ws, "tm_ann", role="annotator", password=PASSWORD)
    return ws


def _login(page, name, password):
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _form(page, heading):
    return page.get_by_test_id("stForm").filter(has_text=heading)


def _choose(page, form, label, option):
    """Pick ``option`` in the form's select box ``label`` (typed into its search, as a keyboard user would)."""
    box = form.get_by_role("combobox", name=label, exact=True)
    for _ in range(3):  # a rerun that lands during the typing resets the box: try again
        box.click()
        page.keyboard.type(option)
        page.keyboard.press("Enter")
        page.wait_for_timeout(200)
        if box.input_value() == option:
            return
        page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {option!r} in {label!r}: the box shows {box.input_value()!r}")


def _events(ws, name):
    from iea_data.workflows.users import list_user_events

    return [(e.action, e.by, e.old_role, e.new_role) for e in list_user_events(ws, user=name)]


def test_admin_resets_a_password_and_changes_a_role_and_the_user_must_set_a_new_one(new_page, ws):
    early = new_page()  # tm_ann, signed in before the reset
    _login(early, "tm_ann", PASSWORD)
    early.get_by_test_id("stSidebar").get_by_text("Sign out").wait_for()
    admin = new_page()
    _login(admin, "boss", PASSWORD)
    admin.get_by_test_id("stSidebar").get_by_text("Users", exact=True).click()
    admin.get_by_text("Audit log", exact=True).wait_for()

    reset = _form(admin, "Reset a password")
    _choose(admin, reset, "User", "tm_ann")
    reset.get_by_role("button", name="Reset password").click()
    admin.get_by_text("shown only this once", exact=False).wait_for()
    temporary = admin.get_by_test_id("stCode").inner_text().strip()
    assert len(temporary) == 19 and temporary.count("-") == 3
    admin.get_by_text("Reset the password of tm_ann.", exact=True).wait_for()

    role = _form(admin, "Change a role")
    _choose(admin, role, "User", "tm_ann")
    _choose(admin, role, "New role", "reviewer")
    role.get_by_role("button", name="Change role").click()
    admin.get_by_text("tm_ann is now reviewer.", exact=True).wait_for()
    assert admin.get_by_test_id("stCode").count() == 0  # the temporary password was shown once
    assert temporary not in admin.locator("body").inner_text()
    assert _events(ws, "tm_ann") == [
        ("role_changed", "boss", "annotator", "reviewer"),
        ("password_reset", "boss", None, None),
        ("added", f"local operator ({__import__('getpass').getuser()})", None, "annotator"),
    ]

    # the session that was open before the reset gets the form at its next run, and can sign out
    early.locator("body").press("r")  # Streamlit's rerun shortcut
    early.get_by_text("Set a new password", exact=True).wait_for()
    # the form's own button (the sidebar's, left from the page before, may still show for a moment)
    early.locator(".st-key-np_logout").get_by_role("button", name="Sign out").click()
    early.get_by_role("button", name="Sign in").wait_for()

    user = new_page()
    _login(user, "tm_ann", PASSWORD)
    user.get_by_text("wrong user name or password", exact=False).wait_for()
    _login(user, "tm_ann", temporary)
    user.get_by_text("Set a new password", exact=True).wait_for()
    assert user.get_by_test_id("stSidebar").count() == 0  # nothing else until a new password is set
    user.get_by_label("Temporary password").fill(temporary)
    user.get_by_label("New password", exact=True).fill(NEW)
    user.get_by_label("New password again").fill(NEW + "!")
    user.get_by_role("button", name="Set new password").click()
    user.get_by_text("The two new passwords differ", exact=False).wait_for()
    user.get_by_label("New password", exact=True).fill("too short")
    user.get_by_label("New password again").fill("too short")
    user.get_by_role("button", name="Set new password").click()
    user.get_by_text("at least 12 characters", exact=False).wait_for()
    user.get_by_label("New password", exact=True).fill(NEW)
    user.get_by_label("New password again").fill(NEW)
    user.get_by_role("button", name="Set new password").click()
    sidebar = user.get_by_test_id("stSidebar")
    sidebar.get_by_text("Review", exact=True).wait_for()  # signed in, with the new role
    assert "reviewer" in sidebar.inner_text()
    assert _events(ws, "tm_ann")[0] == ("password_changed", "tm_ann", None, None)

    from iea_data.workflows.users import authenticate

    assert authenticate(ws, "tm_ann", NEW).must_change_password is False
