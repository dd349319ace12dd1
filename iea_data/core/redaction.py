"""Masking secrets in text meant for people: the password of a database URL.

A database URL (``IEA_DATABASE_URL`` or ``[catalog] database_url``) may carry a password
(``postgresql+psycopg://iea:PASSWORD@host/db``). Every message, table or traceback that
could quote the URL goes through :func:`redact_url` before it is shown; the command line
also masks the bare password (:func:`url_password`) wherever a driver echoes it.

This module imports nothing heavy, so the command line can use it at start-up.

Examples
--------
>>> redact_url("postgresql+psycopg://iea:s3cretPW@db.example:5432/catalog")
'postgresql+psycopg://iea:***@db.example:5432/catalog'
>>> redact_url("cannot open 'mysql://iea:pw@host/db' (no driver)")
"cannot open 'mysql://iea:***@host/db' (no driver)"
>>> redact_url("sqlite:////tmp/catalog.sqlite")
'sqlite:////tmp/catalog.sqlite'
>>> url_password("mysql://iea:p%40ss@host/db")
'p%40ss'
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "redact_url", "url_password", "mask_secrets"]

MASK = "***"

# scheme://user:password@  — the user part has no ':', '/', '@' or space; the password runs to the
# last '@' before the host (an unquoted '@' in a password is common in hand-written URLs).
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<password>[^\s'\"]*?)(?P<at>@)(?=[^\s@'\"]*(?:[\s'\"]|$))"
)


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    Parameters
    ----------
    text : str
        A URL, or any message that may quote one (a driver error, a traceback).

    Returns
    -------
    str
        The same text; only the ``password`` of ``scheme://user:password@host`` changes.
    """
    if not isinstance(text, str):
        raise TypeError(f"redact_url: text must be a str, got {type(text).__name__}")
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)


def url_password(url: str) -> str | None:
    """The password of a URL as written (percent-encoded), or None when it has none.

    Parameters
    ----------
    url : str
        A URL such as ``postgresql+psycopg://user:password@host/db``.
    """
    m = _URL_USERINFO.search(url or "")
    return m["password"] or None if m else None


def mask_secrets(text: str, secrets: list[str] | tuple[str, ...] | set[str]) -> str:
    """``text`` with URL passwords and every one of ``secrets`` (also percent-decoded) masked.

    Parameters
    ----------
    text : str
        Text to show to a person.
    secrets : collection of str
        Bare secrets, e.g. ``url_password(database_url)``; values shorter than 3 characters
        are only masked inside URLs (masking them everywhere would garble ordinary words).
    """
    text = redact_url(text)
    forms = set()
    for s in secrets:
        if s:
            forms.update({s, unquote(s)})
    for s in sorted(forms, key=len, reverse=True):
        if len(s) >= 3:
            text = text.replace(s, MASK)
    return text
