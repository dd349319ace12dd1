"""The app's error boundary: a page error is logged with its traceback on the server and shown
in the browser as one line that says what to do (never a traceback, a server path or a link)."""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Iterator

import streamlit as st

from annotator_app._text import literal, one_line

log = logging.getLogger("annotator_app")

UNREACHABLE = "The catalog is unreachable (its database is down or restarting); retrying — reload the page in a moment."
PAGE_ERROR = (
    "This page could not be shown (error {ref}, logged on the server). Reload the page; if it happens "
    "again, give the workspace admin the error number."
)


def error_line(exc: BaseException) -> str:
    """The one line shown for ``exc``: an :class:`~iea_data.core.errors.IeaError`'s own message (it says
    what to do), or :data:`PAGE_ERROR` with a reference to the server log for anything else."""
    from iea_data.core.errors import IeaError
    from iea_data.store import catalog_unreachable

    if catalog_unreachable(exc):
        log.warning("catalog unreachable: %s", type(exc).__name__)  # no message: it may quote a URL
        return UNREACHABLE
    if isinstance(exc, IeaError) and str(exc).strip():
        return one_line(exc)
    ref = uuid.uuid4().hex[:8]
    log.error("page error %s: %s", ref, type(exc).__name__, exc_info=exc)
    return PAGE_ERROR.format(ref=ref)


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Show any exception raised inside as one ``st.error`` line (Markdown-safe); log it server-side.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) raises ``BaseException`` subclasses,
    which pass through.
    """
    try:
        yield
    except Exception as exc:
        st.error(literal(error_line(exc)))


def guarded(fn: Callable) -> Callable:
    """``fn`` run inside :func:`error_boundary` (for fragments, which rerun on their own)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with error_boundary():
            return fn(*args, **kwargs)

    return wrapper
