"""Users: argon2 hashes, login, throttling that survives restarts, idle expiry, disabling, roles."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError
from iea_data.store import IngestRun, User
from iea_data.workflows.users import (
    ACTIONS,
    DEMO_USERS,
    PERMISSIONS,
    ROLES,
    AuthError,
    UserInfo,
    add_user,
    authenticate,
    current_user,
    disable_user,
    enable_user,
    failed_logins,
    list_users,
    require,
    seed_demo_users,
    session_expired,
    set_password,
)

from ..conftest import PASSWORD, reader

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def test_password_is_stored_as_salted_argon2id(workspace, people):
    with reader(workspace) as s:
        hashes = dict(s.execute(select(User.name, User.password_hash)).all())
    assert hashes["ann1"].startswith("$argon2id$")
    assert PASSWORD not in hashes["ann1"]
    assert hashes["ann1"] != hashes["ann2"]  # same password, different salt


def test_login_ok_and_wrong_password_and_unknown_user_say_the_same(workspace, people):
    assert authenticate(workspace, "ann1", PASSWORD) == people["ann1"]
    with pytest.raises(AuthError) as wrong:
        authenticate(workspace, "ann1", PASSWORD + "x")
    with pytest.raises(AuthError) as unknown:
        authenticate(workspace, "nobody", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"
    assert isinstance(wrong.value, IeaError)


def test_throttling_grows_exponentially_and_survives_a_restart(workspace, people):
    for k in range(3):
        with pytest.raises(AuthError, match="wrong user name"):
            authenticate(workspace, "ann1", "bad password", max_failures=3, now=T0 + dt.timedelta(seconds=k))
    # third failure locked the name for 1 s: even the right password is refused now
    with pytest.raises(AuthError, match=r"try again in 1 s"):
        authenticate(workspace, "ann1", PASSWORD, max_failures=3, now=T0 + dt.timedelta(seconds=2.5))
    from iea_data.store import dispose_engines

    dispose_engines()  # "restart": new engine, new session
    assert failed_logins(workspace, "ann1", now=T0 + dt.timedelta(seconds=3)) == 3
    t = T0 + dt.timedelta(seconds=3.5)  # lock over; fail again: now locked for 2 s, then 4 s
    with pytest.raises(AuthError, match="wrong user name"):
        authenticate(workspace, "ann1", "bad", max_failures=3, now=t)
    with pytest.raises(AuthError, match=r"try again in 2 s"):
        authenticate(workspace, "ann1", PASSWORD, max_failures=3, now=t)
    t += dt.timedelta(seconds=2.5)
    with pytest.raises(AuthError, match="wrong user name"):
        authenticate(workspace, "ann1", "bad", max_failures=3, now=t)
    with pytest.raises(AuthError, match=r"try again in 4 s"):
        authenticate(workspace, "ann1", PASSWORD, max_failures=3, now=t + dt.timedelta(seconds=0.1))
    # after the lock, the right password works and resets the count
    assert authenticate(workspace, "ann1", PASSWORD, max_failures=3, now=t + dt.timedelta(seconds=5)).name == "ann1"
    assert failed_logins(workspace, "ann1", now=t) == 0
    # another user is not affected by ann1's failures
    assert authenticate(workspace, "ann2", PASSWORD, max_failures=3, now=t).name == "ann2"


def test_unknown_names_are_throttled_like_real_ones(workspace, people):
    for name in ("ann1", "ghost"):
        for _ in range(2):
            with pytest.raises(AuthError):
                authenticate(workspace, name, "bad", max_failures=2, now=T0)
        with pytest.raises(AuthError) as e:
            authenticate(workspace, name, "bad", max_failures=2, now=T0)
        assert "try again in 1 s" in str(e.value)


def test_disabled_user_cannot_log_in_and_is_logged_out(workspace, people):
    assert current_user(workspace, people["ann1"].id).enabled
    disable_user(workspace, "ann1")
    with pytest.raises(AuthError, match="disabled"):
        authenticate(workspace, "ann1", PASSWORD)
    with pytest.raises(AuthError, match="logged out"):
        current_user(workspace, people["ann1"].id)
    with pytest.raises(AuthError):
        current_user(workspace, 999_999)
    enable_user(workspace, "ann1")
    assert current_user(workspace, people["ann1"].id).enabled


def test_disabled_in_another_session_is_seen_at_once(workspace, people):
    assert current_user(workspace, people["ann2"].id).enabled  # s1 caches the row
    disable_user(workspace, "ann2")
    with pytest.raises(AuthError):
        current_user(workspace, people["ann2"].id)


def test_set_password(workspace, people):
    set_password(workspace, "ann1", "a new password")
    with pytest.raises(AuthError):
        authenticate(workspace, "ann1", PASSWORD)
    assert authenticate(workspace, "ann1", "a new password").id == people["ann1"].id
    with pytest.raises(NotFoundError):
        set_password(workspace, "nobody", "a new password")


@pytest.mark.parametrize("name", ["", "has space", "-dash", "x" * 129, "semi;colon", "new\nline"])
def test_bad_names_are_refused(workspace, name):
    with pytest.raises(IeaError, match="user name must be"):
        add_user(workspace, name, role="annotator", password=PASSWORD)


def test_bad_role_short_password_and_duplicate_are_refused(workspace, people):
    with pytest.raises(IeaError, match="role must be one of"):
        add_user(workspace, "zed", role="boss", password=PASSWORD)
    with pytest.raises(IeaError, match="at least 12 characters"):
        add_user(workspace, "zed", role="annotator", password="too short")
    with pytest.raises(IeaError, match="already exists"):
        add_user(workspace, "ann1", role="annotator", password=PASSWORD)
    assert [u.name for u in list_users(workspace)] == sorted(["admin", "rev", "rev2", "ann1", "ann2"])


def test_user_management_from_the_app_needs_an_admin(workspace, people):
    for who in ("ann1", "rev"):
        with pytest.raises(PermissionDeniedError):
            add_user(workspace, "new1", role="annotator", password=PASSWORD, by=people[who])
        with pytest.raises(PermissionDeniedError):
            disable_user(workspace, "ann2", by=people[who])
        with pytest.raises(PermissionDeniedError):
            set_password(workspace, "ann2", "another password", by=people[who])
    set_password(workspace, "ann1", "my own new password", by=people["ann1"])  # one's own: allowed
    assert add_user(workspace, "new1", role="annotator", password=PASSWORD, by=people["admin"]).role == "annotator"
    disable_user(workspace, "new1", by=people["admin"])
    with pytest.raises(PermissionDeniedError, match="your own account"):
        disable_user(workspace, "admin", by=people["admin"])
    with pytest.raises(IeaError, match="only enabled admin"):
        disable_user(workspace, "admin")
    # a disabled admin's stale UserInfo is refused too
    add_user(workspace, "admin2", role="admin", password=PASSWORD)
    disable_user(workspace, "admin2")
    stale = UserInfo(
        id=list_users(workspace)[[u.name for u in list_users(workspace)].index("admin2")].id,
        name="admin2",
        role="admin",
        enabled=True,
    )
    with pytest.raises(AuthError):
        add_user(workspace, "new2", role="annotator", password=PASSWORD, by=stale)


def test_require_matches_the_role_table():
    for role in ROLES:
        user = UserInfo(1, "u", role, True)
        for action in ACTIONS:
            if action in PERMISSIONS[role]:
                require(user, action)
            else:
                with pytest.raises(PermissionDeniedError, match=f"may not {action.replace('_', ' ')}"):
                    require(user, action)
    assert PERMISSIONS["annotator"] == {"annotate"}
    assert PERMISSIONS["reviewer"] == {"annotate", "review", "paint_target"}
    assert PERMISSIONS["admin"] == set(ACTIONS)
    with pytest.raises(PermissionDeniedError, match="disabled"):
        require(UserInfo(1, "u", "admin", False), "annotate")
    with pytest.raises(ValueError, match="did you mean 'review'"):
        require(UserInfo(1, "u", "admin", True), "reveiw")


@settings(max_examples=60, deadline=None)
@given(idle=st.integers(1, 10_000), gap=st.integers(-(10**7), 10**7))
def test_session_expiry_is_strictly_after_idle_minutes(idle, gap):
    now = T0 + dt.timedelta(seconds=gap)
    assert session_expired(T0, now, idle) == (gap > idle * 60)


def test_session_expiry_validates():
    with pytest.raises(ValueError, match="both be timezone-aware"):
        session_expired(T0.replace(tzinfo=None), T0, 5)
    with pytest.raises(ValueError, match="idle_minutes"):
        session_expired(T0, T0, 0)


def test_seed_demo_users_is_idempotent_and_logins_work(workspace):
    with reader(workspace) as s:
        s.add(IngestRun(kind="demo", status="done"))  # what `iea demo` records
        s.commit()
        first = seed_demo_users(workspace)
        assert [u.name for u in first] == list(DEMO_USERS)
        assert seed_demo_users(workspace) == first
        for name, (role, password) in DEMO_USERS.items():
            assert authenticate(workspace, name, password).role == role


def test_concurrent_failures_are_all_counted(workspace, people):
    import threading

    from iea_data.store import dispose_engines

    barrier = threading.Barrier(4)

    def fail():
        barrier.wait()
        with pytest.raises(AuthError):
            authenticate(workspace, "ann1", "wrong password", max_failures=100, now=T0)

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failed_logins(workspace, "ann1", now=T0) == 4
    dispose_engines()
