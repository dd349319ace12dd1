"""Users of the annotator app: accounts, roles, login with throttling, idle expiry, demo accounts.

Every rule lives here, not in the app: library writes re-read the acting user
(:func:`current_user`) and check :func:`require`, so a forbidden write is refused
whatever the browser sends.

Roles (``ROLES``) and what they may do (``PERMISSIONS``):

========== =========================================================================
annotator  ``annotate`` — paint, save and submit labels in their own revision chain
reviewer   + ``review`` (accept / reject other people's labels), ``paint_target``
admin      everything, also ``manage_users`` and ``manage_scenes``
========== =========================================================================
"""

from ._accounts import (
    MIN_PASSWORD_LENGTH,
    NAME_PATTERN,
    THROTTLE_BASE_SECONDS,
    THROTTLE_MAX_SECONDS,
    add_user,
    authenticate,
    current_user,
    disable_user,
    enable_user,
    get_user,
    list_users,
    load_actor,
    session_expired,
    set_password,
)
from ._demo import DEMO_USERS, seed_demo_users
from ._roles import ACTIONS, PERMISSIONS, ROLES, AuthError, UserInfo, require

__all__ = [
    "ROLES", "ACTIONS", "PERMISSIONS", "UserInfo", "AuthError", "require",
    "add_user", "set_password", "disable_user", "enable_user", "list_users", "get_user", "current_user", "load_actor",
    "authenticate", "session_expired", "NAME_PATTERN", "MIN_PASSWORD_LENGTH", "THROTTLE_BASE_SECONDS",
    "THROTTLE_MAX_SECONDS", "DEMO_USERS", "seed_demo_users",
]
