"""Every library write, for every role and for a disabled user: refused or allowed as the role table says."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from iea_data.core.errors import PermissionDeniedError
from iea_data.store import Label, Review, Target, User
from iea_data.workflows.labels import open_annotation, review_label, save_annotation
from iea_data.workflows.targets import open_target, save_target
from iea_data.workflows.users import PERMISSIONS, AuthError, add_user, disable_user, enable_user, set_password

from ..conftest import PASSWORD, reader

WRITES = {
    # name: (action needed, call(ws, actor, ctx), count of rows it adds)
    "add_user": (
        "manage_users",
        lambda ws, u, c: add_user(ws, f"new{u.id}", role="annotator", password=PASSWORD, by=u),
        lambda s: s.scalar(select(func.count()).select_from(User)),
    ),
    "set_password": ("manage_users", lambda ws, u, c: set_password(ws, "ann2", "another password", by=u), None),
    "disable_user": (
        "manage_users",
        lambda ws, u, c: disable_user(ws, "ann2", by=u),
        lambda s: s.scalar(select(func.count()).select_from(User).where(User.enabled.is_(False))),
    ),
    "enable_user": ("manage_users", lambda ws, u, c: enable_user(ws, "ann2", by=u), None),
    "review_label": (
        "review",
        lambda ws, u, c: review_label(ws, u, c["submitted"], decision="accept"),
        lambda s: s.scalar(select(func.count()).select_from(Review)),
    ),
    "save_target": (
        "paint_target",
        lambda ws, u, c: save_target(ws, u, open_target(ws, u, c["scene_id"])),
        lambda s: s.scalar(select(func.count()).select_from(Target)),
    ),
    "save_annotation": (
        "annotate",
        lambda ws, u, c: save_annotation(ws, u, open_annotation(ws, u, c["image"])),
        lambda s: s.scalar(select(func.count()).select_from(Label)),
    ),
}


@pytest.fixture
def ctx(workspace, people, catalog):
    img = catalog["images"][0]
    st = open_annotation(workspace, people["ann2"], img)
    submitted = save_annotation(workspace, people["ann2"], st, submit=True)
    return {"submitted": submitted.id, "scene_id": catalog["scene_id"], "image": catalog["images"][1]}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("who", ["ann1", "rev", "admin", "disabled"])
def test_write_is_refused_unless_the_role_allows_it(workspace, people, ctx, write, who):
    action, call, count = WRITES[write]
    with reader(workspace) as s:
        if who == "disabled":
            add_user(workspace, "gone", role="admin", password=PASSWORD)
            from iea_data.workflows.users import get_user

            actor = get_user(workspace, "gone")
            disable_user(workspace, "gone")
        else:
            actor = people[who]
        before = count(s) if count else None
        if who != "disabled" and action in PERMISSIONS[actor.role]:
            call(workspace, actor, ctx)
            if count:
                assert count(s) > before
        else:
            with pytest.raises((PermissionDeniedError, AuthError)):
                call(workspace, actor, ctx)
            if count:
                assert count(s) == before  # nothing was written
