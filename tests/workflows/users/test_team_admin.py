"""Issue 13, running the team: reset a password, change a role, the forced new password, the audit log."""

from __future__ import annotations

import getpass
import threading

import pytest
from sqlalchemy import select

from iea_data.core.errors import IeaError, NotFoundError, PermissionDeniedError
from iea_data.store import User, UserEvent
from iea_data.workflows.users import (
    AuthError,
    PasswordReset,
    add_user,
    authenticate,
    change_own_password,
    current_user,
    disable_user,
    enable_user,
    generate_password,
    list_user_events,
    require,
    reset_password,
    set_password,
    set_role,
)

from ..conftest import PASSWORD, reader

NEW = "a quiet river at dawn"


def _events(ws) -> list[tuple]:
    """(action, user, by, old_role, new_role) oldest first."""
    return [(e.action, e.user, e.by, e.old_role, e.new_role) for e in reversed(list_user_events(ws, limit=None))]


def _raw_events(ws) -> list[tuple]:
    with reader(ws) as s:
        return [tuple(r) for r in s.execute(select(UserEvent.__table__)).all()]


def test_reset_password_forces_a_new_one_before_anything_else(workspace, people):
    reset = reset_password(workspace, "ann1", by=people["admin"])
    assert isinstance(reset, PasswordReset) and reset.generated and reset.name == "ann1"
    assert reset.password not in repr(reset)
    with pytest.raises(AuthError, match="wrong user name or password"):
        authenticate(workspace, "ann1", PASSWORD)  # the old password is gone
    ann = authenticate(workspace, "ann1", reset.password)
    assert ann.must_change_password and current_user(workspace, ann.id).must_change_password
    with pytest.raises(PermissionDeniedError, match="must set a new password"):
        require(current_user(workspace, ann.id), "annotate")
    # the new password: the temporary one must be typed again, and the policy applies
    with pytest.raises(AuthError, match="current password is wrong"):
        change_own_password(workspace, ann, PASSWORD, NEW)
    with pytest.raises(IeaError, match="differ from the current"):
        change_own_password(workspace, ann, reset.password, reset.password)
    with pytest.raises(IeaError, match="at least 12 characters"):
        change_own_password(workspace, ann, reset.password, "too short")
    with pytest.raises(IeaError, match="must not contain the user name"):
        change_own_password(workspace, ann, reset.password, "ann1 and a long tail")
    assert current_user(workspace, ann.id).must_change_password  # nothing changed by the refusals
    after = change_own_password(workspace, ann, reset.password, NEW)
    assert not after.must_change_password and after == current_user(workspace, ann.id)
    require(after, "annotate")
    with pytest.raises(AuthError):
        authenticate(workspace, "ann1", reset.password)
    assert authenticate(workspace, "ann1", NEW).must_change_password is False
    assert _events(workspace)[-2:] == [
        ("password_reset", "ann1", "admin", None, None),
        ("password_changed", "ann1", "ann1", None, None),
    ]


def test_the_log_never_holds_a_password_or_a_hash(workspace, people):
    reset = reset_password(workspace, "ann2", password="kettle north violet", by=people["admin"])
    assert not reset.generated and reset.password == "kettle north violet"
    change_own_password(workspace, authenticate(workspace, "ann2", "kettle north violet"), "kettle north violet", NEW)
    set_password(workspace, "rev", "violet kettle north")
    with reader(workspace) as s:
        hashes = list(s.scalars(select(User.password_hash)))
    text = repr(_raw_events(workspace)) + repr(list_user_events(workspace, limit=None))
    for secret in ("kettle north violet", NEW, "violet kettle north", PASSWORD, *hashes, "$argon2"):
        assert secret not in text


def test_a_given_temporary_password_follows_the_policy_and_a_bad_one_changes_nothing(workspace, people):
    before = len(_raw_events(workspace))
    for bad, message in (("short", "at least 12"), ("ann1-temporary-pw", "user name"), ("password1234", "common")):
        with pytest.raises(IeaError, match=message):
            reset_password(workspace, "ann1", password=bad, by=people["admin"])
    with pytest.raises(NotFoundError, match="no user named 'ghost'"):
        reset_password(workspace, "ghost", by=people["admin"])
    with pytest.raises(PermissionDeniedError, match="your own password"):
        reset_password(workspace, "admin", by=people["admin"])
    assert len(_raw_events(workspace)) == before
    assert authenticate(workspace, "ann1", PASSWORD).must_change_password is False


def test_generated_passwords_follow_the_policy_and_differ():
    drawn = {generate_password("ann") for _ in range(50)}
    assert len(drawn) == 50
    assert all(len(p) == 19 and "ann" not in p for p in drawn)


def test_set_role_applies_at_once_and_is_logged_old_to_new(workspace, people):
    ann = people["ann1"]
    with pytest.raises(PermissionDeniedError):
        require(current_user(workspace, ann.id), "review")
    assert set_role(workspace, "ann1", "reviewer", by=people["admin"]).role == "reviewer"
    require(current_user(workspace, ann.id), "review")  # no new sign-in needed
    n = len(_raw_events(workspace))
    assert set_role(workspace, "ann1", "reviewer", by=people["admin"]).role == "reviewer"  # no change: no entry
    assert len(_raw_events(workspace)) == n
    set_role(workspace, "ann1", "annotator")  # the local operator
    assert _events(workspace)[-2:] == [
        ("role_changed", "ann1", "admin", "annotator", "reviewer"),
        ("role_changed", "ann1", f"local operator ({getpass.getuser()})", "reviewer", "annotator"),
    ]
    with pytest.raises(IeaError, match="role must be one of"):
        set_role(workspace, "ann1", "boss")


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(workspace, people):
    for role in ("reviewer", "annotator"):
        with pytest.raises(IeaError, match="only enabled admin"):
            set_role(workspace, "admin", role)
    with pytest.raises(IeaError, match="only enabled admin"):
        disable_user(workspace, "admin")
    boss = add_user(workspace, "boss", role="admin", password=PASSWORD)
    with pytest.raises(PermissionDeniedError, match="your own role"):
        set_role(workspace, "admin", "reviewer", by=people["admin"])
    set_role(workspace, "admin", "reviewer", by=boss)  # another admin may
    with pytest.raises(IeaError, match="'boss' is the only enabled admin"):
        set_role(workspace, "boss", "annotator")
    set_role(workspace, "admin", "admin", by=boss)
    disable_user(workspace, "admin", by=boss)  # a disabled admin does not count
    with pytest.raises(IeaError, match="only enabled admin"):
        set_role(workspace, "boss", "reviewer")
    assert current_user(workspace, boss.id).role == "admin"


def test_two_admins_demoting_each_other_at_once_leave_one_admin(workspace, people):
    a2 = add_user(workspace, "admin2", role="admin", password=PASSWORD)
    a1 = people["admin"]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def demote(name, by):
        barrier.wait()
        try:
            outcomes.append(set_role(workspace, name, "reviewer", by=by))
        except IeaError as exc:  # the guard, or the actor was demoted first
            outcomes.append(exc)

    threads = [threading.Thread(target=demote, args=a) for a in (("admin2", a1), ("admin", a2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    with reader(workspace) as s:
        assert s.scalars(select(User.name).where(User.role == "admin", User.enabled.is_(True))).all() in (
            ["admin"],
            ["admin2"],
        )


def test_a_reviewer_or_annotator_cannot_run_the_team(workspace, people):
    disable_user(workspace, "ann2")
    before = (_raw_events(workspace), [(u.name, u.role, u.enabled) for u in _users(workspace)])
    for who in ("rev", "ann1"):
        by = people[who]
        for fn, *args in (
            (reset_password, "ann2"),
            (set_role, "ann2", "admin"),
            (set_role, who, "admin"),
            (enable_user, "ann2"),
            (disable_user, "rev2"),
            (list_user_events,),
        ):
            with pytest.raises(PermissionDeniedError, match="may not manage users"):
                fn(workspace, *args, by=by)
        with pytest.raises(PermissionDeniedError, match="may not manage users"):
            add_user(workspace, "sneaky", role="admin", password=PASSWORD, by=by)
    assert (_raw_events(workspace), [(u.name, u.role, u.enabled) for u in _users(workspace)]) == before


def test_an_admin_whose_password_was_reset_cannot_manage_until_they_set_one(workspace, people):
    boss = add_user(workspace, "boss", role="admin", password=PASSWORD)
    reset = reset_password(workspace, "admin", by=boss)
    admin = authenticate(workspace, "admin", reset.password)
    with pytest.raises(PermissionDeniedError, match="must set a new password"):
        set_role(workspace, "ann1", "reviewer", by=admin)
    admin = change_own_password(workspace, admin, reset.password, NEW)
    assert set_role(workspace, "ann1", "reviewer", by=admin).role == "reviewer"


def test_every_change_is_logged_with_who_made_it(workspace, people):
    admin = people["admin"]
    me = f"local operator ({getpass.getuser()})"
    disable_user(workspace, "ann1", by=admin)
    disable_user(workspace, "ann1", by=admin)  # already disabled: nothing changes, nothing logged
    enable_user(workspace, "ann1")
    enable_user(workspace, "ann1")
    set_password(workspace, "ann2", "violet kettle north", by=admin)
    set_password(workspace, "rev", "violet kettle north", by=people["rev"])
    events = _events(workspace)
    assert events[:5] == [("added", n, me, None, r) for n, r in _PEOPLE]
    assert events[5:] == [
        ("disabled", "ann1", "admin", None, None),
        ("enabled", "ann1", me, None, None),
        ("password_set", "ann2", "admin", None, None),
        ("password_changed", "rev", "rev", None, None),
    ]
    newest = list_user_events(workspace, user="ann1", limit=1)
    assert [(e.action, e.actor, e.operator) for e in newest] == [("enabled", None, getpass.getuser())]
    assert all(e.at.tzinfo is not None for e in list_user_events(workspace))
    with pytest.raises(ValueError, match="limit must be"):
        list_user_events(workspace, limit=0)
    with pytest.raises(NotFoundError):
        list_user_events(workspace, user="ghost")


_PEOPLE = [("admin", "admin"), ("rev", "reviewer"), ("rev2", "reviewer"), ("ann1", "annotator"), ("ann2", "annotator")]


def _users(ws):
    from iea_data.workflows.users import list_users

    return list_users(ws)
