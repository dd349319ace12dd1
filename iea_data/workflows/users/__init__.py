"""Users of the annotator app: accounts, roles, password policy, login with throttling, idle expiry, demo accounts.

Every rule lives here, not in the app: library writes re-read the acting user
(:func:`current_user`) and check :func:`require`, so a forbidden write is refused
whatever the browser sends.

Roles (``ROLES``) and what they may do (``PERMISSIONS``):

========== =========================================================================
annotator  ``annotate`` — paint, save and submit labels in their own revision chain
reviewer   + ``review`` (accept / reject other people's labels), ``paint_target``
admin      everything, also ``manage_users`` and ``manage_scenes``
========== =========================================================================

Admins run the team (:func:`add_user`, :func:`disable_user`, :func:`enable_user`,
:func:`reset_password`, :func:`set_role`); every change to an account is written to the audit
log (:func:`list_user_events`) in the same transaction, with who made it. A user whose password
was reset must choose a new one (:func:`change_own_password`) before anything else.
"""

from iea_data.store import ACTIONS, PERMISSIONS, ROLES, AuthError, UserInfo, require

from ._accounts import (
    NAME_PATTERN,
    add_user,
    authenticate,
    configure_auth_log,
    current_user,
    disable_user,
    enable_user,
    failed_logins,
    get_user,
    list_users,
    load_actor,
    log_sign_out,
    session_expired,
    set_password,
)
from ._admin import (
    PasswordReset,
    change_own_password,
    generate_password,
    list_user_events,
    reset_password,
    set_role,
)
from ._audit import USER_EVENT_ACTIONS, UserEventInfo
from ._demo import DEMO_RUN_KIND, DEMO_USERS, is_demo_workspace, seed_demo_users
from ._policy import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_password_policy, is_common_password
from ._throttle import (
    ADDRESS_MAX_FAILURES,
    GLOBAL_MAX_FAILURES,
    GLOBAL_WINDOW_SECONDS,
    THROTTLE_BASE_SECONDS,
    THROTTLE_MAX_SECONDS,
    THROTTLE_WINDOW_SECONDS,
    client_address,
    prune_login_throttle,
)

__all__ = [
    "ROLES",
    "ACTIONS",
    "PERMISSIONS",
    "UserInfo",
    "AuthError",
    "require",
    "add_user",
    "set_password",
    "disable_user",
    "enable_user",
    "list_users",
    "get_user",
    "reset_password",
    "set_role",
    "change_own_password",
    "generate_password",
    "PasswordReset",
    "list_user_events",
    "UserEventInfo",
    "USER_EVENT_ACTIONS",
    "current_user",
    "load_actor",
    "authenticate",
    "session_expired",
    "failed_logins",
    "log_sign_out",
    "configure_auth_log",
    "client_address",
    "prune_login_throttle",
    "check_password_policy",
    "is_common_password",
    "NAME_PATTERN",
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "THROTTLE_BASE_SECONDS",
    "THROTTLE_MAX_SECONDS",
    "THROTTLE_WINDOW_SECONDS",
    "ADDRESS_MAX_FAILURES",
    "GLOBAL_MAX_FAILURES",
    "GLOBAL_WINDOW_SECONDS",
    "DEMO_RUN_KIND",
    "DEMO_USERS",
    "is_demo_workspace",
    "seed_demo_users",
]
