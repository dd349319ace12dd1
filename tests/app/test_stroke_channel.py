"""The stroke channel (annotator_app/stroke_channel.py) without a server: bodies, registry, acknowledgement, patches."""

from __future__ import annotations

import base64
import json
import threading
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator_app import stroke_channel
from annotator_app._paint import MALFORMED, Painting
from iea_data.core.painting import PaintSession

H, W = 40, 60


def _painting(store=None) -> Painting:
    p = Painting(ident=("annotation", 1, "zero"), session=PaintSession(np.zeros((H, W), np.float32)), photo_url="")
    p.durable_id = p.session.last_id
    p.store = store
    p.status_of = lambda q: f"{q.session.n_strokes} stroke(s)"
    return p


class Store:
    """A draft store that records what it stored and can be made to fail."""

    def __init__(self):
        self.fail = False
        self.stored: list[list[int]] = []

    def __call__(self, p: Painting):
        if self.fail:
            return "Could not save — the catalog is unreachable; retrying"
        self.stored.append([s["id"] for s in p.session.stroke_log()])
        p.durable_id = p.session.last_id
        p.dirty = False
        return None


def _stroke(i, x=20.0, y=20.0, value=0.2):
    return {"id": i, "points": [[x, y], [x + 10, y]], "radius": 4, "value": value, "hardness": 1.0, "mode": "add"}


def _post(token, strokes, rev):
    return stroke_channel.handle(json.dumps({"token": token, "rev": rev, "strokes": strokes}).encode())


def _apply(shown: np.ndarray, values: dict) -> np.ndarray:
    """What the painter does with an answer's patches."""
    out = shown.copy()
    for p in values["patches"]:
        box = np.frombuffer(zlib.decompress(base64.b64decode(p["data"])), "<i2").reshape(p["h"], p["w"]) * 0.001
        out[p["y"] : p["y"] + p["h"], p["x"] : p["x"] + p["w"]] = box
    return out


@pytest.fixture
def opened():
    store = Store()
    p = _painting(store)
    stroke_channel.register(p, "session-1", "annotation")
    yield p, store
    stroke_channel.close(p)


def test_strokes_are_applied_once_stored_then_acknowledged_and_the_patches_give_the_server_map(opened):
    p, store = opened
    status, a = _post(p.token, [_stroke(1), _stroke(2, y=30)], 0)
    assert status == 200 and a["ack"] == 2 and a["errors"] == [] and a["status"] == "2 stroke(s)"
    assert store.stored == [[1, 2]]
    shown = _apply(np.zeros((H, W)), a["values"])
    np.testing.assert_allclose(shown, p.session.map, atol=6e-4)
    # re-sent with a new one: 1 and 2 are not applied again; the patches start at the browser's revision
    status, b = _post(p.token, [_stroke(1), _stroke(2, y=30), _stroke(3, x=40)], a["values"]["rev"])
    assert status == 200 and b["ack"] == 3 and b["values"]["from_rev"] == a["values"]["rev"]
    assert [s["id"] for s in p.session.stroke_log()] == [1, 2, 3]
    np.testing.assert_allclose(_apply(shown, b["values"]), p.session.map, atol=6e-4)
    assert p.session.map[20, 25] == pytest.approx(0.2, abs=1e-6)  # stroke 1 once, not twice


def test_a_store_that_fails_holds_the_acknowledgement_and_the_patches_until_it_succeeds(opened):
    p, store = opened
    store.fail = True
    status, a = _post(p.token, [_stroke(1)], 0)
    assert status == 200 and a["ack"] == -1 and "catalog is unreachable" in a["errors"][0]
    assert a["values"] == {"rev": 0, "from_rev": 0, "full": None, "patches": []}  # the browser keeps predicting
    store.fail = False
    status, b = _post(p.token, [_stroke(1)], 0)  # the painter re-sends
    assert b["ack"] == 1 and b["errors"] == [] and store.stored == [[1]]
    np.testing.assert_allclose(_apply(np.zeros((H, W)), b["values"]), p.session.map, atol=6e-4)


def test_refused_and_malformed_strokes_are_lines_not_exceptions(opened):
    p, _ = opened
    status, a = _post(p.token, [_stroke(1), {"id": 2, "points": "nope"}], 0)
    assert status == 200 and a["ack"] == 2 and a["errors"][0].startswith("A stroke was refused")
    status, b = _post(p.token, {"not": "a list"}, a["values"]["rev"])
    assert status == 200 and b["errors"] == [MALFORMED]
    status, c = _post(p.token, [], 10_000)  # a revision the painting never had: the browser resyncs
    assert status == 200 and c["resync"] is True and c["values"]["patches"] == []


def test_closed_replaced_and_signed_out_paintings_are_unknown():
    a, b, c = _painting(Store()), _painting(Store()), _painting(Store())
    stroke_channel.register(a, "s1", "annotation")
    stroke_channel.register(b, "s1", "annotation")  # another image in the same slot replaces it
    stroke_channel.register(c, "s2", "annotation")
    status, answer = _post(a.token, [_stroke(1)], 0)
    assert status == 404 and answer["instance"] == stroke_channel.INSTANCE
    assert a.session.last_id == -1  # nothing applied to the closed painting
    assert _post(b.token, [_stroke(1)], 0)[0] == 200
    stroke_channel.close_session("s1")
    assert _post(b.token, [_stroke(2)], 0)[0] == 404
    assert _post(c.token, [_stroke(1)], 0)[0] == 200  # another session's painting is untouched
    stroke_channel.close(c)
    assert _post(c.token, [_stroke(2)], 0)[0] == 404


def test_the_registry_does_not_keep_a_painting_alive():
    import gc

    p = _painting(Store())
    token = p.token
    stroke_channel.register(p, "s3", "annotation")
    del p
    gc.collect()
    assert stroke_channel.lookup(token) is None


def test_concurrent_posts_apply_each_stroke_exactly_once(opened):
    p, store = opened
    strokes = [_stroke(i, x=2 + (i % 20) * 2, y=5 + (i // 20) * 5, value=0.01) for i in range(1, 61)]

    def client(k):
        for n in range(1, 61, 3):  # each client re-sends overlapping prefixes, as painters do
            assert _post(p.token, strokes[: n + k], 0)[0] == 200

    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _post(p.token, strokes, 0)
    assert [s["id"] for s in p.session.stroke_log()] == list(range(1, 61))
    assert p.ack == 60 and store.stored[-1] == list(range(1, 61))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({"rev": json_values, "strokes": json_values}).map(lambda d: d)
)
def test_any_body_gets_an_answer_and_never_an_exception(opened, body):
    p, _ = opened  # one painting for every example: whatever came before, the next answer is still whole
    if isinstance(body, dict):  # the right token with hostile strokes and revision
        body = json.dumps({"token": p.token, **body}).encode()
    status, answer = stroke_channel.handle(body)
    assert status in (200, 400, 404)
    json.dumps(answer)  # always JSON
    if status != 200:
        assert isinstance(answer["error"], str)


def test_a_body_over_the_limit_is_refused_before_parsing():
    status, answer = stroke_channel.handle(b" " * (stroke_channel.MAX_BODY_BYTES + 1))
    assert status == 413 and str(stroke_channel.MAX_BODY_BYTES) in answer["error"]


def _call_endpoint(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, dict, int]:
    """Run the ASGI route on one request whose body arrives in ``chunks`` (as a chunked upload would)."""
    import asyncio

    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": stroke_channel.PATH,
        "headers": headers,
        "query_string": b"",
        "http_version": "1.1",
    }
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = []

    async def receive():
        read.append(1)
        return messages[len(read) - 1]

    response = asyncio.run(stroke_channel._endpoint(Request(scope, receive)))
    return response.status_code, json.loads(response.body), len(read)


def test_the_route_refuses_a_declared_or_streamed_body_over_the_limit_without_reading_it_all():
    big = stroke_channel.MAX_BODY_BYTES
    status, answer, read = _call_endpoint([(b"content-length", str(big + 1).encode())], [b"x"])
    assert status == 413 and read == 0  # refused from the header
    status, _, read = _call_endpoint([(b"content-length", b"12abc")], [b"x"])
    assert status == 413 and read == 0  # a length that is not a number
    # no length declared (chunked): read until the limit is passed, then stop
    chunks = [b" " * (big // 4)] * 4 + [b" "] + [b" " * 1000] * 50
    status, answer, read = _call_endpoint([], chunks)
    assert status == 413 and read == 5 and str(big) in answer["error"]
    # at the limit exactly it is parsed (and is no JSON: 400)
    status, answer, read = _call_endpoint([], [b" " * (big // 2)] * 2)
    assert status == 400 and read == 2
