"""The painter predicts each stroke in the browser with the Python brush, and the server corrects it.

- The JavaScript brush of ``painter.js`` (loaded as a module in Chromium) paints the strokes of
  ``tests/core/painting/fixtures/brush_strokes.json`` (made by the Python rasteriser) one after
  another and must stay within 1e-3 of Python's map after every stroke, in every mode.
- In the app, each stroke is on screen before Python answers; after the answer the screen is
  the stored map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.app.test_app_browser import PASSWORD, drag, login, newest_label, wait_ack, wait_status

ROOT = Path(__file__).resolve().parents[2]
PAINTER_JS = ROOT / "annotator_app" / "components" / "painter.js"
FIXTURE = ROOT / "tests" / "core" / "painting" / "fixtures" / "brush_strokes.json"

# paint the fixture's strokes with painter.js's brush; per stroke the largest |JS - Python| in its box
RUN_FIXTURE = """
async ({ src, fx, tweak }) => {
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const m = await import(url);
  const dec = (b) => new Float32Array(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)).buffer);
  const [H, W] = fx.shape, [lo, hi] = fx.value_range;
  const base = dec(fx.base), map = dec(fx.map0);
  const out = [];
  for (const s0 of fx.strokes) {
    const s = Object.assign({}, s0, tweak || {});
    const before = map.slice();
    const t0 = performance.now();
    const box = m.paintStroke(map, base, W, H, s, lo, hi);
    const ms = performance.now() - t0;
    let err = 0, outside = 0;
    if (s0.box) {
      const [y0, y1, x0, x1] = s0.box, e = dec(s0.expected);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++)
        err = Math.max(err, Math.abs(map[y * W + x] - e[(y - y0) * (x1 - x0) + x - x0]));
    }
    for (let i = 0; i < map.length; i++) {
      const y = Math.floor(i / W), x = i % W, b = s0.box;
      if (!(b && y >= b[0] && y < b[1] && x >= b[2] && x < b[3]) && map[i] !== before[i]) outside++;
    }
    out.push({ id: s.id, mode: s.mode, err, outside, ms, box, expectedBox: s0.box });
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def page_blank(browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto("about:blank")
    yield page
    ctx.close()


def run_fixture(page, tweak=None):
    fx = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return page.evaluate(RUN_FIXTURE, {"src": PAINTER_JS.read_text(encoding="utf-8"), "fx": fx, "tweak": tweak})


def test_the_browser_brush_matches_the_python_rasteriser_on_the_fixture(page_blank):
    rows = run_fixture(page_blank)
    assert len(rows) >= 50
    worst = {}
    for r in rows:
        assert r["box"] == r["expectedBox"], f"stroke {r['id']}: box {r['box']} != {r['expectedBox']}"
        assert r["outside"] == 0, f"stroke {r['id']} changed {r['outside']} pixels outside its box"
        worst[r["mode"]] = max(worst.get(r["mode"], 0.0), r["err"])
    assert set(worst) == {"add", "set", "smooth", "restore"}
    for mode, err in worst.items():
        assert err <= 1e-3, f"{mode}: the browser's map is {err:.2e} from Python's"
    print("max |JS - Python| per mode:", {k: f"{v:.1e}" for k, v in worst.items()})


@pytest.mark.parametrize("tweak", [{"radius": 4.5}, {"hardness": 1.0}, {"flow": 0.5}])
def test_the_comparison_notices_a_different_brush(page_blank, tweak):
    # the fixture test can fail: a brush that differs a little is far outside 1e-3
    assert max(r["err"] for r in run_fixture(page_blank, tweak)) > 1e-2


# ------------------------------------------------------------------ in the app

PRED_STATE = """(el) => {
  const st = el.__iea;
  const d = st.data, W = d.width;
  const preds = {};
  for (const [id, p] of Object.entries(st.predictions)) {
    const [y0, y1, x0, x1] = p.box, server = [];
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) server.push(st.server[y * W + x]);
    preds[id] = { box: p.box, predicted: Array.from(p.values), server };
  }
  let shownVsServer = 0;
  for (let i = 0; i < st.pred.length; i++) shownVsServer = Math.max(shownVsServer, Math.abs(st.pred[i] - st.server[i]));
  return { preds, shownVsServer, pending: st.pending.length, width: W, height: d.height,
           shown: Array.from(st.pred),
           latencies: JSON.parse(el.dataset.latencies || '[]'),
           ackLatencies: JSON.parse(el.dataset.ackLatencies || '[]') };
}"""


@pytest.fixture(scope="module")
def ws(app_server):
    from iea_data.workflows.users import add_user

    ws = app_server[1]
    add_user(ws, "ann_p", role="annotator", password=PASSWORD)
    add_user(ws, "ann_q", role="annotator", password=PASSWORD)
    add_user(ws, "ann_r", role="annotator", password=PASSWORD)
    return ws


def choose_mode(page, label):
    page.locator('[data-testid="stSidebar"] [data-testid="stButtonGroup"]').get_by_text(label, exact=True).click()
    page.wait_for_timeout(300)


def test_each_stroke_is_predicted_at_once_and_the_server_map_replaces_it(new_page, ws):
    page = new_page()
    login(page, "ann_p")
    page.locator(".iea-painter[data-ack]").wait_for()
    strokes = [
        ("Add", (0.15, 0.3, 0.45, 0.35)),
        ("Set to", (0.3, 0.2, 0.35, 0.6)),
        ("Smooth", (0.2, 0.3, 0.4, 0.4)),
        ("Restore base", (0.4, 0.25, 0.42, 0.5)),
        ("Add", (0.6, 0.7, 0.85, 0.72)),
    ]
    for i, (mode, (x0, y0, x1, y1)) in enumerate(strokes, start=1):
        choose_mode(page, mode)
        drag(page, x0, y0, x1, y1, steps=12)
        page.locator(f'.iea-painter[data-predicted="{i}"]').wait_for()
        wait_ack(page, i)
        # the strokes overlap: compare each prediction with the server's map of that moment
        p = page.locator(".iea-painter").evaluate(PRED_STATE)["preds"][str(i)]
        err = np.abs(np.asarray(p["predicted"]) - np.asarray(p["server"])).max()
        assert err <= 1e-3, f"stroke {i} ({mode}): the prediction is {err:.2e} from the server's map"
        assert np.abs(np.asarray(p["server"])).max() > 0 or mode == "Restore base"
    wait_status(page, "5 stroke")
    state = page.locator(".iea-painter").evaluate(PRED_STATE)
    assert state["pending"] == 0
    # after the answers the screen shows the server's map exactly ...
    assert state["shownVsServer"] == 0
    # ... which is the stored map (sent as int16 multiples of 0.001: +-5e-4; stored as float16:
    # +-2.5e-4 below 0.5, +-4.9e-4 below 1)
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("saved (label", exact=False).wait_for()
    _, stored = newest_label(ws, "ann_p")
    shown = np.asarray(state["shown"], np.float32).reshape(state["height"], state["width"])
    assert stored.shape == shown.shape
    half_ulp = np.where(np.abs(stored) < 0.5, 2.0**-12, 2.0**-11)
    assert np.all(np.abs(shown - stored) <= 5e-4 + half_ulp + 1e-6)
    assert np.abs(stored).max() > 0.05  # something was painted
    # the stroke is on screen before Python's answer
    lat, ack = state["latencies"][-5:], state["ackLatencies"][-5:]
    assert len(lat) == 5 and len(ack) == 5
    assert np.median(lat) < np.median(ack)


def _post(url, body: bytes, headers=None):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _declare_oversized(url: str, size: int) -> int:
    """POST headers that declare ``size`` bytes and send none: the route must refuse from the header.

    (Sending the whole oversized body races the server's early 413 and close: the client may get a
    broken pipe instead of the answer, as any HTTP client can when a server refuses early.)
    """
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(
            f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_strokes_go_by_the_stroke_channel_without_a_streamlit_rerun(new_page, ws, app_server):
    """Each stroke is one POST to the replica, answered with its acknowledgement; the websocket stays silent."""
    from annotator_app.stroke_channel import MAX_BODY_BYTES, PATH
    from tests.app.test_app_team import _draft_strokes

    page = new_page()
    login(page, "ann_q")
    page.locator(".iea-painter[data-ack]").wait_for()
    page.wait_for_timeout(500)  # the page's own run is over
    frames, posts = [], []
    cdp = page.context.new_cdp_session(page)  # the page's websocket is open already: watch it through CDP
    cdp.send("Network.enable")
    cdp.on("Network.webSocketFrameSent", lambda e: frames.append(e["response"]["payloadData"][:20]))
    page.on("response", lambda r: posts.append(r.status) if r.url.endswith(PATH) else None)
    for i in range(1, 4):
        drag(page, 0.1 + 0.2 * i, 0.3, 0.2 + 0.2 * i, 0.6, steps=8)
        wait_ack(page, i)
    wait_status(page, "3 stroke(s) · autosaved as a draft")
    assert frames == [], "a stroke went through Streamlit's websocket"
    assert len(posts) >= 3 and set(posts) == {200}
    assert _draft_strokes(ws, "ann_q") == [1, 2, 3]  # acknowledged = stored
    # the route itself: hostile bodies get a status and a reason, never a page
    url = app_server[0] + PATH
    assert _post(url, b"{not json")[0] == 400
    status, why = _post(url, json.dumps({"token": "0" * 32, "rev": 0, "strokes": []}).encode())
    assert status == 404 and len(why["instance"]) == 32
    assert _declare_oversized(url, MAX_BODY_BYTES + 1) == 413
    token = page.locator(".iea-painter").get_attribute("data-token")
    stroke = {"id": 9, "points": [[1e9, 1e9]], "radius": 4, "value": 0.1, "hardness": 1.0, "mode": "add"}
    status, answer = _post(url, json.dumps({"token": token, "rev": 0, "strokes": [stroke]}).encode())
    assert status == 200 and answer["errors"][0].startswith("A stroke was refused")


def _script_runs(page):
    """A list that fills with the kind of each script run the page is told of, "page" or "fragment", read
    from the websocket through CDP (Streamlit's ``new_session`` message starts every run; a fragment's run
    names its fragments in the message's metadata)."""
    import base64

    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    runs: list[str] = []

    def on_frame(e):
        r = e["response"]
        if r.get("opcode") != 2:  # Streamlit's messages are binary
            return
        msg = ForwardMsg.FromString(base64.b64decode(r["payloadData"]))
        if msg.WhichOneof("type") == "new_session":
            runs.append("fragment" if msg.metadata.run.fragment_ids else "page")

    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.on("Network.webSocketFrameReceived", on_frame)
    return runs


def test_a_save_reruns_the_editor_alone_and_a_submit_the_page_once(new_page, ws):
    """A click on Save revision or Submit saves in the button's callback, and one run shows the result (there
    were two, the second only to show it, which doubled the replica's and the browser's work per save). A save
    changes nothing outside the editor's fragment: its run is the fragment's alone, no page run (a page run
    re-renders the sidebar and all, about four times the browser's work); a submit, the next image's page."""
    page = new_page()
    login(page, "ann_r")
    page.locator(".iea-painter[data-ack]").wait_for()
    page.wait_for_timeout(500)
    runs = _script_runs(page)
    drag(page, 0.3, 0.3, 0.5, 0.5, steps=8)
    wait_ack(page, 1)
    page.wait_for_timeout(300)
    assert runs == []  # a stroke is no run at all (the stroke channel)
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("saved (label", exact=False).first.wait_for()
    page.wait_for_timeout(1000)  # a second run would have come by now
    assert runs == ["fragment"], runs
    # Ctrl+S too: the painter's action is saved in the fragment's run
    drag(page, 0.6, 0.3, 0.7, 0.4, steps=8)
    wait_ack(page, 2)
    runs.clear()
    page.locator("svg.preview").hover()
    page.keyboard.press("Control+s")
    page.get_by_text("Revision 2 of", exact=False).wait_for()
    page.wait_for_timeout(1000)
    assert runs == ["fragment"], runs
    lab, _ = newest_label(ws, "ann_r")
    assert (lab.revision, lab.status) == (2, "draft")
    token = page.locator(".iea-painter").get_attribute("data-token")
    drag(page, 0.3, 0.6, 0.5, 0.7, steps=8)
    wait_ack(page, 3)
    runs.clear()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("submitted for review", exact=False).first.wait_for()
    page.locator(f'.iea-painter[data-ack][data-token]:not([data-token="{token}"])').wait_for()  # the next image
    page.wait_for_timeout(1000)
    assert runs.count("page") == 1, runs  # (the new image's painter may ask for its data: a fragment run)
    lab, _ = newest_label(ws, "ann_r")
    assert (lab.revision, lab.status) == (3, "submitted")
