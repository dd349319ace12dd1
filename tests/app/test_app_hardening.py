"""Issue 10 §2 in the app: text from users is text, no request leaves the app, no traceback reaches a browser.

The browser tests share one app server (tests/app/conftest.py) whose workspace gets, in the
module fixture ``hostile``: a bracket whose file names are built to render as Markdown, a
submitted label whose comment is built to fetch an image and show a phishing link (both
pointing at a local recorder server), a scene imported from a manifest whose reference has no
file yet, and a scene whose target row is corrupt (a forced page error).
"""

from __future__ import annotations

import html
import http.server
import re
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator_app._text import literal, one_line
from tests.workflows.conftest import reader

PASSWORD = "hardening-test-pw-2026"
STEM = "*B*[clk](javascript:alert(1))"
FILE_NAME = f"{STEM}_N1.png"
LEAKS = ("Traceback", "Ask Google", "Ask ChatGPT", "site-packages", 'File "', ".py", "/tmp/", "/home/", "/work/")


# ------------------------------------------------------------------ literal(): every Markdown context


def _render_plain(md: str) -> tuple[str, str]:
    """(html, visible text) of ``md`` rendered by CommonMark (markdown-it, as react-markdown)."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").render(md)
    text = html.unescape(re.sub(r"<[^>]+>", " ", out))
    return out, text


GFM_AUTOLINK = re.compile(r"(?i)(?:https?://|www\.|[\w.+-]@[\w-])")  # what GFM's autolink-literal looks for

TOKENS = [
    "http://",
    "https://x.org/a",
    "www.",
    "a@b.co",
    "![x](http://h/t.png)",
    "[l](javascript:alert(1))",
    ":red[r]",
    ":material/home:",
    ":smile:",
    "$x^2$",
    "<img src=x>",
    "&amp;",
    "&#42;",
    "    code",
    "1. ",
    "---",
    "\n\n",
    "> ",
    "| a | b |",
    "~~s~~",
    "`c`",
    "**b**",
    "_i_",
    "\\",
    "[^1]",
    "<http://h>",
]
text_strategy = st.lists(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2060")
        | st.sampled_from(list("\n\t*_[]()!<>&#`~$:|\\-+=.@/ ")),
        max_size=6,
    )
    | st.sampled_from(TOKENS),
    max_size=8,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(text_strategy)
def test_literal_renders_as_exactly_the_text_with_no_markup(text):
    out, visible = _render_plain(literal(text))
    tags = set(re.findall(r"</?([a-z0-9]+)", out))
    assert tags <= {"p", "br"}, f"{text!r} rendered with {tags - {'p', 'br'}}"
    assert " ".join(visible.replace("\u2060", "").split()) == " ".join(text.split())
    assert not GFM_AUTOLINK.search(visible), f"{text!r} would still be autolinked by GitHub-flavoured Markdown"


def test_literal_of_none_and_non_strings():
    assert literal(None) == ""
    assert _render_plain(literal(ValueError("bad *x*")))[1].strip() == "bad *x*"
    assert one_line("a\nb  c\r\nd", limit=100) == "a b c d"
    assert len(one_line("x" * 500, limit=50)) == 50


# ------------------------------------------------------------------ painter messages from an untrusted browser


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _painting():
    from annotator_app._paint import Painting
    from iea_data.core.painting import PaintSession

    z = np.zeros((16, 24), np.float32)
    return Painting(ident=("annotation", 1, "zero"), session=PaintSession(z, z.copy()), photo_url="")


def _stroke_like(token):
    keys = st.sampled_from(["id", "mode", "value", "radius", "hardness", "flow", "points", "x", "y"])
    stroke = st.dictionaries(keys, json_values, max_size=8)
    return st.fixed_dictionaries(
        {"token": st.just(token), "strokes": st.lists(stroke | json_values, max_size=3) | json_values}
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_painter_messages_give_one_line_errors_never_an_exception(data):
    from annotator_app._paint import take_events

    p = _painting()
    state = {
        "_strokes_in": data.draw(st.lists(_stroke_like(p.token) | json_values, max_size=3)),
        "_actions_in": data.draw(
            st.lists(
                st.fixed_dictionaries({"token": st.just(p.token), "action": json_values}) | json_values, max_size=3
            )
        ),
        "_resync_in": data.draw(json_values),
    }
    actions, errors = take_events(p, state)  # never raises
    assert set(actions) <= {"save", "next"}
    for e in errors:
        assert isinstance(e, str) and "\n" not in e and "Traceback" not in e and 0 < len(e) <= 400
    assert not {"_strokes_in", "_actions_in", "_resync_in"} & set(state)


def test_a_good_stroke_still_applies_and_garbage_beside_it_is_reported():
    from annotator_app._paint import MALFORMED, take_events

    p = _painting()
    good = {
        "id": 1,
        "mode": "add",
        "value": 0.1,
        "radius": 3.0,
        "hardness": 0.5,
        "flow": 1.0,
        "points": [[5, 5], [8, 5]],
    }
    actions, errors = take_events(
        p,
        {
            "_strokes_in": [
                {"token": p.token, "strokes": [good]},
                "garbage",
                None,
                {"token": "an-old-painter", "strokes": [good]},
            ],
            "_actions_in": [{"token": p.token, "action": "save"}, {"token": p.token, "action": 7}],
        },
    )
    assert p.session.last_id == 1 and p.dirty and float(np.abs(p.session.correction).max()) > 0
    assert actions == ["save"] and errors == [MALFORMED]


def test_the_server_turns_error_details_off():
    from annotator_app.server import streamlit_command

    cmd = streamlit_command(8501)
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"  # "false" would mean "stacktrace"


def test_the_server_does_not_collect_garbage_after_every_run():
    """A stroke reruns the painter's fragment; a full gc.collect(2) after each run was 3/4 of a replica's CPU."""
    from streamlit import config

    from annotator_app.server import streamlit_command

    cmd = streamlit_command(8501)
    assert cmd[cmd.index("--runner.postScriptGC") + 1] == "false"
    assert config.get_option("runner.postScriptGC") is True  # the option Streamlit still has (its default: on)


# ------------------------------------------------------------------ library: which scenes can be painted


def test_paintable_scenes_marks_why_a_scene_cannot_be_painted(workspace):
    from iea_data.store import Image, Scene
    from iea_data.workflows.targets import paintable_scenes

    with reader(workspace) as s:
        missing = Image(name="a0001.png", status="missing")
        broken = Image(name="b.png", status="error")
        good = Image(name="c.png", status="ok", width=40, height=30, sha256="ab" * 32)
        s.add_all([missing, broken, good])
        s.flush()
        s.add_all(
            [
                Scene(name="a0001", reference_image_id=missing.id),
                Scene(name="b", reference_image_id=broken.id),
                Scene(name="c", reference_image_id=good.id),
                Scene(name="d"),
            ]
        )
        s.commit()
        got = {p.name: p for p in paintable_scenes(workspace)}
    assert [n for n, p in got.items() if p.paintable] == ["c"]
    assert "no file yet" in got["a0001"].reason and "ingest" in got["a0001"].reason
    assert "could not be decoded" in got["b"].reason
    assert "set-reference" in got["d"].reason and got["d"].reference is None


# ------------------------------------------------------------------ browser

#: The browser tests run on SQLite only: what they check is rendering, which no backend changes
#: (the one query they rely on, paintable_scenes, runs on both backends above); this keeps the
#: module's added time small.
SQLITE_APP = pytest.mark.parametrize("app_server", ["sqlite"], indirect=True)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def recorder():
    """A local HTTP server that records every request (a tracking pixel's and a phishing link's host)."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def hostile(app_server, recorder, tmp_path_factory):
    """The app's workspace with hostile names and comments, a manifest-only scene and a corrupt target."""
    from iea_data.core.imaging import write_image
    from iea_data.store import Image, Scene, Target
    from iea_data.workflows.catalog import ingest
    from iea_data.workflows.labels import open_annotation, save_annotation
    from iea_data.workflows.users import add_user, get_user

    url, ws, log_path = app_server
    port2 = recorder.server_address[1]
    comment = (
        f"![t](http://127.0.0.1:{port2}/track.png) [Session expired, sign in here](http://127.0.0.1:{port2}/phish)"
        f" www.127.0.0.1.nip.io:{port2} <img src=http://127.0.0.1:{port2}/raw.png> :red[x] $y$"
    )
    reject = f"Redo it: [click](http://127.0.0.1:{port2}/reject) ![r](http://127.0.0.1:{port2}/r.png) **bold**"
    photos = tmp_path_factory.mktemp("hostile-photos")
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    rgb = np.clip(np.stack([xx / 128, yy / 96, 0.5 + 0 * xx], -1), 0, 1).astype(np.float32)
    write_image(photos / f"{STEM}.png", rgb)
    write_image(photos / FILE_NAME, (rgb * 0.6).astype(np.float32))
    report = ingest(ws, [photos], workers=1)
    assert report.n_errors == 0, report.errors
    with reader(ws) as s:
        add_user(ws, "mallory@evil.example", role="annotator", password=PASSWORD)
        add_user(ws, "rev_h", role="reviewer", password=PASSWORD)
        add_user(ws, "adm_h", role="admin", password=PASSWORD)
        author = get_user(ws, "mallory@evil.example")
        image_id = s.query(Image.id).filter(Image.name == FILE_NAME).scalar()
        state = open_annotation(ws, author, image_id, base="zero")
        state.comment = comment
        state.score = 4.0
        save_annotation(ws, author, state, submit=True)
        # the state right after `iea import-manifest`, before the images: the reference has no file
        ref = Image(name="a0001.png", status="missing")
        s.add(ref)
        s.flush()
        s.add(Scene(name="a0001", reference_image_id=ref.id, source="manifest"))
        # a corrupt catalog row: scene beta's target names an object that cannot exist
        beta = s.query(Scene).filter(Scene.name == "beta").one()
        s.add(
            Target(
                scene_id=beta.id,
                base_image_id=beta.reference_image_id,
                revision=1,
                ev_map_object="zz" * 32,
                status="submitted",
            )
        )
        s.commit()
    return {"url": url, "ws": ws, "log": log_path, "comment": comment, "reject": reject, "port2": port2}


def _login(page, name):
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _watch(page, app_url):
    """Every request the page makes that does not go to the app's own origin."""
    outside = []

    def on_request(req):
        u = req.url
        if not (u.startswith((app_url + "/", "data:", "blob:", "about:")) or u == app_url):
            outside.append(u)

    page.on("request", on_request)
    return outside


def _visible(page) -> str:
    return page.locator("body").inner_text().replace("\u2060", "").replace("\u00a0", " ")


def _no_markup_from(page, *needles):
    """No link or image on the page comes from user text (hrefs/srcs naming the recorder, javascript:, …)."""
    bad = page.evaluate(
        """(needles) => Array.from(document.querySelectorAll('a, img, iframe, source, video, audio'))
        .map(e => (e.getAttribute('href') || '') + ' ' + (e.getAttribute('src') || '') + ' ' + (e.innerText || ''))
        .filter(t => needles.some(n => t.includes(n)))""",
        list(needles),
    )
    assert bad == [], f"markup made from user text: {bad}"


def _go(page, name):
    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()


def _no_leak(page, ws_root):
    body = page.locator("body").inner_text()
    for leak in LEAKS + (str(ws_root),):
        assert leak not in body, f"{leak!r} reached the browser"


@SQLITE_APP
def test_hostile_comment_and_file_name_are_literal_for_reviewer_and_annotator(new_page, hostile, recorder):
    url, port2 = hostile["url"], str(hostile["port2"])
    page = new_page()
    outside = _watch(page, url)
    _login(page, "rev_h")
    _go(page, "Review")
    page.get_by_text("Session expired, sign in here", exact=False).first.wait_for()
    text = _visible(page)
    assert hostile["comment"] in text, "the comment is not shown as its literal text"
    assert FILE_NAME in text and "mallory@evil.example" in text
    _no_markup_from(page, port2, "javascript", "clk", "Session expired", "mailto", "evil.example")
    page.wait_for_function(
        "() => { const im = document.querySelectorAll('[data-testid=stMain] img');"
        " return im.length >= 3 && Array.from(im).every(i => i.complete && i.naturalWidth > 0); }"
    )
    page.screenshot(path=str(hostile["log"].parent / "reviewer-hostile.png"), full_page=True)
    page.get_by_label("Comment (required to reject)").fill(hostile["reject"])
    page.get_by_role("button", name="Reject").click()
    page.get_by_text("Rejected", exact=False).first.wait_for()
    assert FILE_NAME in _visible(page)  # the flash names the label literally
    _no_markup_from(page, port2, "javascript", "clk", "mailto")

    ann = new_page()
    outside += _watch(ann, url)
    _login(ann, "mallory@evil.example")
    ann.get_by_text("Rejected by a reviewer", exact=False).wait_for()
    text = _visible(ann)
    assert f"Rejected by a reviewer: {hostile['reject']}" in text
    assert FILE_NAME in text and f"scene {STEM}" in text  # the file and scene names, literally
    _no_markup_from(ann, port2, "javascript", "clk", "mailto", "evil.example")
    assert ann.locator("strong", has_text="bold").count() == 0
    ann.screenshot(path=str(hostile["log"].parent / "annotator-hostile.png"))
    ann.wait_for_timeout(500)
    assert recorder.RequestHandlerClass.hits == [], (
        f"user text made the browser call {recorder.RequestHandlerClass.hits}"
    )
    assert outside == [], f"requests left the app: {outside}"


@SQLITE_APP
def test_no_request_leaves_the_app_during_login_and_navigation(new_page, hostile):
    url = hostile["url"]
    page = new_page()  # new_page already loaded the login form: watch from a fresh load
    outside = _watch(page, url)
    page.reload()
    page.wait_for_load_state("networkidle")
    icon = page.locator("link[rel~='icon']").first.get_attribute("href")
    assert icon.startswith(("/", url, "data:")) and "gstatic" not in icon, icon
    page.get_by_label("User name").fill("adm_h")
    page.get_by_label("Password", exact=True).fill("not-the-password")  # the error path too
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong user name or password", exact=False).wait_for()
    _login(page, "adm_h")
    page.get_by_role("button", name="Sign out").wait_for()
    for name in ("Review", "Ideal target", "Users", "Annotate"):
        _go(page, name)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.wait_for_load_state("networkidle")
    assert outside == [], f"requests left the app: {outside}"


@SQLITE_APP
def test_target_page_offers_only_paintable_scenes_and_a_page_error_is_one_line(new_page, hostile):
    url, ws = hostile["url"], hostile["ws"]
    page = new_page()
    outside = _watch(page, url)
    _login(page, "rev_h")
    _go(page, "Ideal target")
    page.get_by_text("1 scene(s) cannot be painted yet").wait_for()
    page.locator("svg.preview").wait_for()
    _no_leak(page, ws.root)
    sidebar_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Scene")
    sidebar_box.click()
    options = page.get_by_role("option").all_inner_texts()
    assert "a0001" not in options and "alpha" in options and STEM in options, options
    page.get_by_role("option", name=STEM).click()
    page.wait_for_function(
        "(t) => document.body.innerText.replaceAll('\\u2060', '').includes(t)",
        arg=f"Scene {STEM}, reference {STEM}.png",
    )
    _no_markup_from(page, "javascript", "clk")
    page.get_by_text("1 scene(s) cannot be painted yet").click()
    page.get_by_text("no file yet", exact=False).first.wait_for()

    sidebar_box.click()
    page.get_by_role("option", name="beta").click()  # its target row is corrupt: a page error
    err = page.locator('[data-testid="stAlertContentError"]')
    err.wait_for()
    line = err.inner_text().replace("\u2060", "")
    assert "could not be shown (error " in line and "Reload the page" in line and "\n" not in line.strip()
    _no_leak(page, ws.root)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(hostile["log"].parent / "page-error.png"))
    page.get_by_role("button", name="Sign out").wait_for()  # the sidebar still works
    ref = re.search(r"error ([0-9a-f]{8})", line).group(1)
    log = hostile["log"].read_text(errors="replace")
    assert f"page error {ref}" in log and "Traceback" in log  # the details stay on the server
    assert outside == []


def test_iea_app_prints_a_folder_name_as_text_not_rich_markup(tmp_path):
    import socket
    import subprocess
    import sys

    from iea_data.store.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws[red]x[/red]")
    with socket.socket() as busy:  # the port is taken: streamlit stops at once, after the banner
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "-w", str(ws.root), "app", "--port", str(busy.getsockname()[1])],
            capture_output=True,
            text=True,
            timeout=120,
        )
    out = "".join(r.stdout.split())
    assert "ws[red]x[/red]" in out, r.stdout
