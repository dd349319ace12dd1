"""Roles, the actions each allows, and the user value the app holds after login."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from iea_data.core.errors import IeaError, PermissionDeniedError

from ._models import ROLES

__all__ = ["ROLES", "ACTIONS", "PERMISSIONS", "UserInfo", "AuthError", "require"]

#: Everything a signed-in person can be allowed to do; every library write checks one of these.
ACTIONS = ("annotate", "review", "paint_target", "manage_scenes", "manage_users")

#: What each role may do: an annotator paints and submits their own labels; a reviewer also
#: accepts or rejects other people's labels and paints scene targets; an admin may do everything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "annotator": frozenset({"annotate"}),
    "reviewer": frozenset({"annotate", "review", "paint_target"}),
    "admin": frozenset(ACTIONS),
}


class AuthError(IeaError):
    """A login was refused, or a signed-in user no longer exists or was disabled."""


@dataclass(frozen=True)
class UserInfo:
    """A user as the app holds it after login (no password hash).

    Attributes
    ----------
    id : int
        Catalog id (``users.id``).
    name : str
        Login name.
    role : {"annotator", "reviewer", "admin"}
    enabled : bool
        False once disabled; a disabled user can neither log in nor write.
    must_change_password : bool
        True after an admin reset the password: until the user sets a new one
        (:func:`~iea_data.workflows.users.change_own_password`) :func:`require` refuses every
        action. Left out of the repr, which stays ``UserInfo(id=…, name=…, role=…, enabled=…)``.
    """

    id: int
    name: str
    role: str
    enabled: bool
    must_change_password: bool = field(default=False, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> UserInfo:
        return cls(
            id=int(row.id),
            name=str(row.name),
            role=str(row.role),
            enabled=bool(row.enabled),
            must_change_password=bool(getattr(row, "must_change_password", False)),
        )


def require(user: UserInfo, action: str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``user``'s role allows ``action``.

    Parameters
    ----------
    user : UserInfo
        The acting user. Library writes re-read the user from the database first (see
        :func:`current_user`), so a role change or a disabling takes effect at once.
    action : {"annotate", "review", "paint_target", "manage_scenes", "manage_users"}

    Raises
    ------
    PermissionDeniedError
        The role does not allow the action, the user is disabled, or the user must first set a
        new password (``must_change_password``, after an admin reset it).
    ValueError
        ``action`` is not one of :data:`ACTIONS`.

    Examples
    --------
    >>> require(UserInfo(1, "ann", "annotator", True), "annotate")
    >>> require(UserInfo(1, "ann", "annotator", True), "review")
    Traceback (most recent call last):
    ...
    iea_data.core.errors.PermissionDeniedError: user 'ann' (annotator) may not review; that needs ... reviewer or admin
    """
    if not isinstance(user, UserInfo):
        raise TypeError(f"user must be a UserInfo (from authenticate or current_user), got {type(user).__name__}")
    if action not in ACTIONS:
        hint = difflib.get_close_matches(str(action), ACTIONS, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}{did}")
    if not user.enabled:
        raise PermissionDeniedError(f"user {user.name!r} is disabled and may not {action.replace('_', ' ')}")
    if user.must_change_password:
        raise PermissionDeniedError(
            f"user {user.name!r} must set a new password before they may {action.replace('_', ' ')} "
            "(an admin reset it); sign in again to set one"
        )
    if user.role not in PERMISSIONS or action not in PERMISSIONS[user.role]:
        allowed = " or ".join(r for r in ROLES if action in PERMISSIONS[r])
        raise PermissionDeniedError(
            f"user {user.name!r} ({user.role}) may not {action.replace('_', ' ')}; that needs the role {allowed}"
        )
