"""The stroke channel: strokes sent to the replica that holds the painter, outside Streamlit's reruns.

Without it, each stroke is a component trigger: a rerun of the painter's fragment on the
server, and in the browser about seven websocket messages and as many re-renders of
Streamlit's front end, for an answer of a few hundred bytes (docs/benchmarks.md, team round
8). With it, the painter POSTs its unacknowledged strokes to :data:`PATH` on the same origin
(the proxy's sticky cookie takes the request to the replica of the session) and gets the
acknowledgement and the changed boxes of the map back in the answer.

The painter's token (128 random bits, sent only to its session's browser through the
websocket) is the capability: the channel knows only the paintings a page registered with
:func:`register`, and forgets one when its page closes it, opens another in the same slot,
or signs out (:func:`close`, :func:`close_session`). A painting that has no ``store``
(nothing to make a stroke durable) is never registered, and the page keeps the trigger path.
Unknown tokens get 404 with this process's :data:`INSTANCE`: the painter of a page served by
another process reloads it (its session is gone: the browser signs in again on a live replica);
otherwise (a painter closed meanwhile) it falls back to the trigger for that painting.

A painting's state is changed under its ``lock``, by this channel's worker threads and by the
page's script thread alike.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import weakref
from typing import Any, Protocol

log = logging.getLogger("annotator_app")

PATH = "/api/painter/strokes"
MAX_BODY_BYTES = 1 << 20  # ~4000 strokes of 20 points; the painter sends what is unacknowledged
MAX_TOKEN_CHARS = 64

_guard = threading.Lock()
_open: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_slots: dict[tuple[str, str], str] = {}  # (session id, slot) -> token
_enabled = False
#: this server process, in each painter's data and in each 404: a painter whose server is another
#: process (its replica died and the proxy sent the browser to another; a restart) reloads the page
INSTANCE = uuid.uuid4().hex


class Channeled(Protocol):  # what :class:`annotator_app._paint.Painting` offers the channel
    token: str
    lock: Any

    def channel_answer(self, strokes: Any, rev: Any) -> dict[str, Any]: ...


def enable() -> list[Any]:
    """The Starlette routes of the channel; the app's ASGI entry (``annotator_app/asgi.py``) mounts them.

    Until this runs in the process, :func:`url` is None and painters use the trigger path.
    """
    from starlette.routing import Route

    global _enabled
    _enabled = True
    return [Route(PATH, _endpoint, methods=["POST"])]


#: the environment variable that turns the channel off (``0``, ``off``, ``false``, ``no``): strokes go
#: through Streamlit's reruns, as before the channel (a proxy that cannot route ``/api/``, a comparison)
SWITCH = "IEA_STROKE_CHANNEL"


def url() -> str | None:
    """Where painters POST strokes, or None when the process serves no channel.

    None under ``streamlit run main.py`` (no route mounted), in Streamlit's ``AppTest``, and
    when :data:`SWITCH` is off.
    """
    off = os.environ.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no")
    return PATH if _enabled and not off else None


def register(painting: Channeled, session_id: str, slot: str) -> None:
    """Let the channel reach ``painting`` by its token; it replaces the session's previous one in ``slot``."""
    with _guard:
        old = _slots.get((session_id, slot))
        if old is not None and old != painting.token:
            _open.pop(old, None)
        _slots[(session_id, slot)] = painting.token
        _open[painting.token] = painting


def close(painting: Channeled | None) -> None:
    """Forget ``painting``: strokes sent to its token from now on get 404 (and are dropped by the page)."""
    if painting is None:
        return
    with _guard:
        _open.pop(painting.token, None)
        for key in [k for k, t in _slots.items() if t == painting.token]:
            del _slots[key]


def close_session(session_id: str) -> None:
    """Forget every painting of a browser session (sign-out)."""
    with _guard:
        for key in [k for k in _slots if k[0] == session_id]:
            _open.pop(_slots.pop(key), None)


def lookup(token: str) -> Channeled | None:
    with _guard:
        return _open.get(token)


def handle(body: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) for one POST body; never raises.

    The body is ``{"token": str, "rev": int, "strokes": [stroke, ...]}``: ``rev`` is the map
    revision the browser shows, so the answer carries every box changed after it.

    Examples
    --------
    >>> handle(b"not json")
    (400, {'error': 'the body is not JSON'})
    >>> handle(b'{"token": "nobody", "rev": 0, "strokes": []}')[0]
    404
    """
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": f"the body has more than {MAX_BODY_BYTES} bytes"}
    try:
        msg = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, {"error": "the body is not JSON"}
    if not isinstance(msg, dict):
        return 400, {"error": "the body is not a JSON object"}
    token = msg.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        return 400, {"error": f"token: expected a string of 1 to {MAX_TOKEN_CHARS} characters"}
    painting = lookup(token)
    if painting is None:
        return 404, {"error": "no painter open with this token on this server", "instance": INSTANCE}
    try:
        with painting.lock:
            return 200, painting.channel_answer(msg.get("strokes"), msg.get("rev"))
    except Exception:  # the painting's own errors are in its answer; anything else is a bug, logged
        log.exception("stroke channel: unexpected error")
        return 500, {"error": "unexpected error on the server (details in its log)"}


async def _endpoint(request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return JSONResponse({"error": f"the body has more than {MAX_BODY_BYTES} bytes"}, status_code=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return JSONResponse({"error": f"the body has more than {MAX_BODY_BYTES} bytes"}, status_code=413)
        chunks.append(chunk)
    status, answer = await run_in_threadpool(handle, b"".join(chunks))
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})
