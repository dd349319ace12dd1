"""The password policy (NIST SP 800-63B style): long enough, not the name, not a common password.

No composition rules (no "one digit, one symbol"): length and a block list of guessable
passwords are what makes a password hard to guess online.
"""

from __future__ import annotations

import functools
from importlib import resources

from iea_data.core.errors import IeaError

__all__ = ["MIN_PASSWORD_LENGTH", "MAX_PASSWORD_LENGTH", "check_password_policy", "is_common_password"]

#: At least this many characters (Unicode code points).
MIN_PASSWORD_LENGTH = 12
#: At most this many characters (argon2 hashes any length; this bounds the work of one request).
MAX_PASSWORD_LENGTH = 1024


@functools.lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("iea_data.workflows.users").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def is_common_password(password: str) -> bool:
    """True when ``password`` (compared case-insensitively) is in the shipped list of common passwords.

    Examples
    --------
    >>> is_common_password("Password1234"), is_common_password("otter lamp quietly")
    (True, False)
    """
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, got {type(password).__name__}")
    return password.casefold() in _common_passwords() or password.lower() in _common_passwords()


def check_password_policy(password: str, *, name: str) -> str:
    """Refuse a password that is too short, contains the user name, or is a common password.

    Applied by :func:`~iea_data.workflows.users.add_user`, :func:`~iea_data.workflows.users.set_password`,
    :func:`~iea_data.workflows.users.reset_password` (a typed temporary password) and
    :func:`~iea_data.workflows.users.change_own_password`, so the ``iea users`` commands, the app's
    Users page and its "set a new password" form follow the same rules.

    Parameters
    ----------
    password : str
        The new password: :data:`MIN_PASSWORD_LENGTH` to :data:`MAX_PASSWORD_LENGTH` characters,
        not containing ``name`` (case-insensitive) and not in ``common_passwords.txt``.
    name : str
        The user the password is for.

    Returns
    -------
    str
        ``password``, unchanged.

    Raises
    ------
    IeaError
        One line saying which rule the password breaks and what to do.
    TypeError
        ``password`` is not a str.

    Examples
    --------
    >>> check_password_policy("otter lamp quietly", name="ann")
    'otter lamp quietly'
    >>> check_password_policy("ann-is-my-password", name="ann")
    Traceback (most recent call last):
    ...
    iea_data.core.errors.IeaError: password must not contain the user name 'ann'; a few unrelated words make a ...
    """
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, got {type(password).__name__}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IeaError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long, got {len(password)}; "
            "a few unrelated words make a good password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise IeaError(f"password must be at most {MAX_PASSWORD_LENGTH} characters long, got {len(password)}")
    if isinstance(name, str) and name and name.casefold() in password.casefold():
        raise IeaError(f"password must not contain the user name {name!r}; a few unrelated words make a good password")
    if is_common_password(password):
        raise IeaError(
            "this password is in the list of common passwords that attackers try first; choose another "
            "(a few unrelated words make a good password)"
        )
    return password
