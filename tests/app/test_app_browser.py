"""The annotator app in real Chromium: login gate, painting, undo, review, separate chains, stale tabs.

One app server for the module (tests/app/conftest.py); each test signs in as its own users so
that the tests do not depend on each other's order.
"""

from __future__ import annotations

import contextlib
import json
import re

import numpy as np
import pytest
from sqlalchemy import select

from tests.workflows.conftest import reader, reader_unit

PASSWORD = "browser-test-pw"
USERS = ["ann_a", "ann_b", "ann_c", "ann_d", "ann_e", "ann_f", "ann_g", "ann_h", "ann_i", "ann_j", "ann_k", "ann_l"]


@pytest.fixture(scope="module")
def ws(app_server):
    from iea_data.workflows.users import add_user

    ws = app_server[1]
    for name in USERS:
        add_user(ws, name, role="annotator", password=PASSWORD)
    return ws


# ------------------------------------------------------------------ helpers


def login(page, name, password=PASSWORD):
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_painter(page, name):
    login(page, name)
    page.locator("svg.preview").wait_for()
    page.locator(".iea-painter[data-ack]").wait_for()


def drag(page, fx0, fy0, fx1, fy1, steps=20):
    """Drag across the painter between two points given as fractions of the image."""
    preview = page.locator("svg.preview")
    preview.scroll_into_view_if_needed()  # a click on a button below it (Save revision) scrolls the page
    box = preview.bounding_box()
    x0, y0 = box["x"] + fx0 * box["width"], box["y"] + fy0 * box["height"]
    x1, y1 = box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
    page.mouse.up()


def wait_ack(page, stroke_id):
    page.locator(f'.iea-painter[data-ack="{stroke_id}"]').wait_for()


def wait_status(page, text):
    page.locator(".iea-painter .status", has_text=text).wait_for()


def user_id(ws, name):
    from iea_data.workflows.users import get_user

    return get_user(ws, name).id


def newest_label(ws, name):
    from iea_data.store import Label
    from iea_data.workflows.labels import load_label_map

    with reader(ws) as s:
        lab = s.scalar(
            select(Label).where(Label.chain == f"user:{user_id(ws, name)}").order_by(Label.id.desc()).limit(1)
        )
        assert lab is not None, f"{name} has no saved label"
        return lab, load_label_map(ws.objects, lab)


def chain_labels(ws, name):
    from iea_data.store import Label

    with reader(ws) as s:
        return list(s.scalars(select(Label).where(Label.chain == f"user:{user_id(ws, name)}")))


@contextlib.contextmanager
def catalog_writes_held(ws):
    """Another connection holds the catalog's write lock meanwhile (label, draft and target saves wait)."""
    from sqlalchemy import create_engine, text

    url = ws.database_url
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"isolation_level": None}) if sqlite else ws.engine()
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("LOCK TABLE labels, drafts, targets IN SHARE ROW EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.exec_driver_sql("COMMIT") if sqlite else conn.commit()
    if sqlite:
        engine.dispose()


def row_of(fy, h):
    return int(round(fy * h - 0.5))


def cols_of(fx0, fx1, w):
    return int(round(fx0 * w - 0.5)), int(round(fx1 * w - 0.5))


# ------------------------------------------------------------------ tests


def test_login_gate_shows_no_data(new_page, ws):
    page = new_page()
    page.get_by_role("button", name="Sign in").wait_for()
    html = page.content()
    body = page.locator("body").inner_text()
    for secret in ("alpha", "beta", "images done", "annotator1", "Annotate", "Review"):
        assert secret not in body and secret not in html, f"{secret!r} shown before login"
    assert page.locator("canvas").count() == 0 and page.locator("img").count() == 0
    assert page.locator('[data-testid="stSidebar"]').count() == 0
    login(page, "ann_a", "wrong-password")
    page.get_by_text("wrong user name or password", exact=False).wait_for()
    assert page.locator("canvas").count() == 0 and "alpha" not in page.content()


def test_drag_changes_the_label_at_the_painted_place_with_sign_and_strength(new_page, ws):
    page = new_page()
    open_painter(page, "ann_a")
    assert "painting on zero" in page.locator("body").inner_text()
    drag(page, 0.2, 0.3, 0.45, 0.3)  # too dark (the default sign), strength 0.1
    wait_ack(page, 1)
    page.get_by_text("Too bright (+)").click()
    page.locator(".iea-painter .status", has_text="1 stroke").wait_for()
    drag(page, 0.55, 0.75, 0.8, 0.75)
    wait_ack(page, 2)
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("saved (label", exact=False).wait_for()

    lab, m = newest_label(ws, "ann_a")
    h, w = m.shape
    assert lab.kind == "annotation" and lab.status == "draft" and lab.base_id is None
    r1, (c0, c1) = row_of(0.3, h), cols_of(0.2, 0.45, w)
    r2, (d0, d1) = row_of(0.75, h), cols_of(0.55, 0.8, w)
    # full strength along the paths (inside the hard core of the soft brush), with the sign chosen
    np.testing.assert_allclose(m[r1, c0 + 3 : c1 - 3], -0.1, atol=2e-3)
    np.testing.assert_allclose(m[r2, d0 + 3 : d1 - 3], +0.1, atol=2e-3)
    # nothing beyond the brush radius (24 px) of either path
    far = np.ones_like(m, bool)
    far[max(0, r1 - 27) : r1 + 28, max(0, c0 - 27) : c1 + 28] = False
    far[max(0, r2 - 27) : r2 + 28, max(0, d0 - 27) : d1 + 28] = False
    assert np.all(m[far] == 0)
    assert m.min() >= -0.1 - 2e-3 and m.max() <= 0.1 + 2e-3
    assert np.all(m[max(0, r1 - 27) : r1 + 28] <= 0)  # the dark stroke only darkens


PREVIEW_INK = """(root) => {
  // what the preview shows: the stroke being drawn (its elements and their box) and the brush outline
  const svg = root.querySelector("svg.preview"), ink = svg.querySelector("g.drawing");
  const brush = root.querySelector(".stack .brush");
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
  const shown = getComputedStyle(brush).display !== "none";
  return { ink: ink.childElementCount, inkBox: ink.childElementCount ? box(ink) : null,
           brush: shown ? box(brush) : null, others: svg.childElementCount, svg: box(svg),
           width: root.__iea.data.width, radius: root.__iea.data.brush.radius };
}"""


def test_the_preview_draws_the_stroke_and_the_brush_and_leaves_no_trace(new_page, ws):
    """A mouse step adds one segment or moves the brush outline (issue 13): no trail, nothing left after a stroke."""
    from playwright.sync_api import expect

    page = new_page()
    open_painter(page, "ann_a")
    box = page.locator("svg.preview").bounding_box()
    painter = page.locator(".iea-painter")
    for fx, fy in [(0.2, 0.2), (0.7, 0.3), (0.4, 0.8), (0.5, 0.5)]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=4)
    ink = painter.evaluate(PREVIEW_INK)
    assert ink["ink"] == 0 and ink["others"] == 1, ink  # the outline alone: no element per step
    bx, by, bw, bh = ink["brush"]  # centred on the cursor, the brush's size
    assert abs(bx + bw / 2 - (box["x"] + 0.5 * box["width"])) < 1.5, ink
    assert abs(by + bh / 2 - (box["y"] + 0.5 * box["height"])) < 1.5, ink
    scale, radius = box["width"] / ink["width"], ink["radius"]  # screen px a map px
    assert 2 * radius * scale < bw < 2 * radius * scale + 3, (ink, scale)  # the black ring centred on the radius
    ack = int(painter.get_attribute("data-ack"))  # the module's workspace may hold strokes
    x0, x1, y = box["x"] + 0.2 * box["width"], box["x"] + 0.45 * box["width"], box["y"] + 0.3 * box["height"]
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=10)
    ink = painter.evaluate(PREVIEW_INK)  # mid-stroke: the path so far (the box of its geometry: the dot, the line)
    assert 2 <= ink["ink"] <= 11, ink
    ix, iy, iw, ih = ink["inkBox"]
    assert abs(ix - (x0 - radius * scale)) < 2 and abs(ix + iw - x1) < 2, (ink, scale)
    assert abs(ih - 2 * radius * scale) < 2, (ink, scale)
    page.mouse.up()
    wait_ack(page, max(ack, 0) + 1)
    ink = painter.evaluate(PREVIEW_INK)
    assert ink["ink"] == 0 and ink["brush"] is not None, ink  # the finished stroke left no trace on the preview
    page.mouse.move(box["x"] + box["width"] + 40, box["y"] - 40)  # off the painter: nothing at all
    expect(page.locator(".iea-painter .readout")).to_have_text("value under the cursor: -")
    ink = painter.evaluate(PREVIEW_INK)
    assert (ink["ink"], ink["brush"]) == (0, None), ink


def test_a_stroke_drawn_while_save_revision_runs_is_kept(new_page, ws):
    """The painter stays open across *Save revision*: a stroke painted before the page's rerun ends is not dropped."""
    page = new_page()
    open_painter(page, "ann_k")
    drag(page, 0.2, 0.3, 0.45, 0.3)
    wait_ack(page, 1)
    with catalog_writes_held(ws):  # as by a maintainer's job: the save waits, the stroke comes meanwhile
        page.get_by_role("button", name="Save revision").click()
        drag(page, 0.55, 0.75, 0.8, 0.75)
        page.wait_for_timeout(800)
        assert page.get_by_text("Revision 1 of", exact=False).count() == 0, "the save did not wait"
    page.get_by_text("Revision 1 of", exact=False).wait_for()
    wait_ack(page, 2)  # before: sent with the closed painter's token, dropped, and gone from the screen
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("Revision 2 of", exact=False).wait_for()
    labs = sorted(chain_labels(ws, "ann_k"), key=lambda lab: lab.revision)
    assert [lab.revision for lab in labs] == [1, 2] and labs[1].parent_id == labs[0].id
    logs = [[s["id"] for s in json.loads(ws.objects.get_bytes(lab.strokes_object))] for lab in labs]
    # the stroke channel may apply stroke 2 before the save takes the painting (the page's rerun is
    # still on its way there): then the first revision holds it too; it is never lost nor doubled
    assert logs[0] in ([1], [1, 2]) and logs[1] == [1, 2]
    lab, m = newest_label(ws, "ann_k")
    h, w = m.shape
    d0, d1 = cols_of(0.55, 0.8, w)
    np.testing.assert_allclose(m[row_of(0.75, h), d0 + 3 : d1 - 3], -0.1, atol=2e-3)


PAINTER_CONTAINER = """() => {
  const found = [];
  const walk = (root) => root.querySelectorAll("*").forEach((n) => {
    if (n.classList && n.classList.contains("iea-painter")) found.push(n);
    if (n.shadowRoot) walk(n.shadowRoot);
  });
  walk(document);
  let e = found[0];
  while (e && !(e.getAttribute && e.getAttribute("data-testid") === "stElementContainer"))
    e = e.parentElement || (e.getRootNode && e.getRootNode().host);
  return e ? { stale: e.getAttribute("data-stale"), opacity: getComputedStyle(e).opacity } : null;
}"""


def test_the_painter_does_not_fade_while_its_stroke_waits_for_the_catalog(new_page, ws):
    page = new_page()
    open_painter(page, "ann_l")
    drag(page, 0.2, 0.3, 0.45, 0.3)
    wait_ack(page, 1)
    with catalog_writes_held(ws):
        # a stroke goes by the stroke channel: no rerun, nothing stale, while its autosave waits
        drag(page, 0.2, 0.6, 0.45, 0.6)
        page.wait_for_timeout(800)
        assert page.evaluate(PAINTER_CONTAINER) == {"stale": "false", "opacity": "1"}
        assert page.locator(".iea-painter").get_attribute("data-ack") == "1"
        # a rerun of the page (the heatmap switched off) waits for the painting: the painter is stale, not faded
        page.locator("[data-testid='stSidebar']").get_by_text("Heatmap").click()
        page.wait_for_function(f"() => ({PAINTER_CONTAINER})()?.stale === 'true'")
        page.wait_for_timeout(1800)  # Streamlit dims a stale element from 0.5 s on, over 1 s
        shown = page.evaluate(PAINTER_CONTAINER)
        assert shown == {"stale": "true", "opacity": "1"}
    wait_ack(page, 2)
    wait_status(page, "2 stroke(s) · autosaved as a draft")


def test_undo_and_redo(new_page, ws):
    page = new_page()
    open_painter(page, "ann_b")
    drag(page, 0.2, 0.25, 0.5, 0.25)
    wait_ack(page, 1)
    drag(page, 0.3, 0.75, 0.7, 0.75)
    wait_ack(page, 2)
    wait_status(page, "2 stroke")
    page.locator("svg.preview").click(position={"x": 2, "y": 2}, button="right")  # focus the page, paint nothing
    page.keyboard.press("Control+z")
    wait_status(page, "1 stroke")
    page.locator(".iea-painter button.redo").click()
    wait_status(page, "2 stroke")
    page.locator(".iea-painter button.undo").click()
    wait_status(page, "1 stroke")
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("saved (label", exact=False).wait_for()
    lab, m = newest_label(ws, "ann_b")
    h, w = m.shape
    c0, c1 = cols_of(0.2, 0.5, w)
    np.testing.assert_allclose(m[row_of(0.25, h), c0 + 3 : c1 - 3], -0.1, atol=2e-3)
    assert np.all(m[row_of(0.75, h) - 5 : row_of(0.75, h) + 5] == 0)  # the undone stroke is gone
    log = json.loads(ws.objects.get_bytes(lab.strokes_object))  # the stroke log kept with the revision
    assert [s["id"] for s in log] == [1]


def test_reviewer_accepts_and_an_annotator_cannot(new_page, ws):
    from iea_data.core.errors import PermissionDeniedError
    from iea_data.workflows.labels import review_label
    from iea_data.workflows.users import get_user

    ann = new_page()
    open_painter(ann, "ann_c")
    drag(ann, 0.3, 0.5, 0.6, 0.5)
    wait_ack(ann, 1)
    ann.get_by_role("button", name="Submit").click()
    ann.get_by_text("submitted for review", exact=False).wait_for()
    lab, _ = newest_label(ws, "ann_c")
    assert lab.status == "submitted"
    # an annotator has no review page, and the library refuses the decision whatever the browser sends
    assert ann.get_by_text("Review", exact=True).count() == 0
    with reader(ws) as s, pytest.raises(PermissionDeniedError):
        review_label(ws, get_user(ws, "ann_c"), lab.id, decision="accept")

    rev = new_page()
    login(rev, "reviewer", "reviewer-demo")
    rev.locator('[data-testid="stSidebar"]').get_by_text("Review", exact=True).click()
    rev.get_by_text("ann_c", exact=False).first.wait_for()
    # a rejection without a comment is refused under the form, in words, and changes nothing
    rev.get_by_role("button", name="Reject").click()
    rev.locator('[data-testid="stAlertContentError"]', has_text="a rejection needs a comment").wait_for()
    assert "Traceback" not in rev.inner_text("body")
    assert newest_label(ws, "ann_c")[0].status == "submitted"
    rev.get_by_role("button", name="Accept").click()
    rev.get_by_text("Accepted", exact=False).first.wait_for()
    with reader(ws) as s:
        from iea_data.store import Label

        assert s.get(Label, lab.id).status == "accepted"
    # the annotators' table is drawn only when its tab is open (issue 13: each review run drew it hidden)
    table = rev.locator('[data-testid="stDataFrame"]')
    assert table.count() == 0
    rev.get_by_role("tab", name="Annotators").click()
    table.wait_for()
    assert rev.get_by_role("button", name="Accept").count() == 0  # and the queue's tab is not drawn meanwhile
    rev.get_by_role("tab", name=re.compile(r"^Submitted")).click()
    table.wait_for(state="detached")


def test_two_annotators_on_one_image_keep_separate_labels(new_page, ws):
    d, e = new_page(), new_page()
    open_painter(d, "ann_d")
    open_painter(e, "ann_e")
    drag(d, 0.2, 0.2, 0.8, 0.2)
    wait_ack(d, 1)
    drag(e, 0.2, 0.8, 0.8, 0.8)
    wait_ack(e, 1)
    for page in (d, e):
        page.get_by_role("button", name="Save revision").click()
        page.get_by_text("saved (label", exact=False).wait_for()
    lab_d, m_d = newest_label(ws, "ann_d")
    lab_e, m_e = newest_label(ws, "ann_e")
    assert lab_d.image_id == lab_e.image_id and lab_d.chain != lab_e.chain
    h = m_d.shape[0]
    assert np.all(m_d[h // 2 :] == 0) and m_d[row_of(0.2, h)].min() < -0.09
    assert np.all(m_e[: h // 2] == 0) and m_e[row_of(0.8, h)].min() < -0.09


def test_save_from_a_stale_tab_is_refused_and_the_draft_survives(new_page, ws):
    from iea_data.workflows.labels import open_annotation
    from iea_data.workflows.users import get_user

    a, b = new_page(), new_page()
    open_painter(a, "ann_f")
    open_painter(b, "ann_f")
    drag(a, 0.2, 0.2, 0.8, 0.2)
    wait_ack(a, 1)
    a.get_by_role("button", name="Save revision").click()
    a.get_by_text("saved (label", exact=False).wait_for()
    drag(b, 0.2, 0.8, 0.8, 0.8)
    wait_ack(b, 1)
    b.get_by_role("button", name="Save revision").click()
    b.get_by_text("Not saved", exact=False).first.wait_for()
    labels = chain_labels(ws, "ann_f")
    assert len(labels) == 1  # only tab A's revision
    state = open_annotation(ws, get_user(ws, "ann_f"), labels[0].image_id)
    h = state.correction.shape[0]
    assert state.from_draft
    assert state.correction[row_of(0.8, h)].min() < -0.09  # tab B's stroke is in the draft
    assert len(state.strokes) >= 1


def test_a_save_leaves_one_painter_on_the_page_throughout(new_page, ws):
    """A message that appears after a save must not move the painter (the stale one stayed beside it)."""
    import time

    page = new_page()
    open_painter(page, "ann_j")
    drag(page, 0.2, 0.3, 0.8, 0.3)
    wait_ack(page, 1)
    page.get_by_role("button", name="Save revision").click()
    counts = []
    end = time.monotonic() + 3.0
    while time.monotonic() < end:  # through the rerun: Streamlit keeps stale elements until replaced
        counts.append(page.locator(".iea-painter").count())
        page.wait_for_timeout(10)
    page.get_by_text("saved (label", exact=False).wait_for()
    assert max(counts) == 1, f"painters on the page while saving: {sorted(set(counts))}"
    assert page.locator(".iea-painter").count() == 1


def test_a_disabled_user_is_signed_out_at_the_next_action(new_page, ws):
    from playwright.sync_api import expect

    from iea_data.workflows.users import disable_user

    page = new_page()
    open_painter(page, "ann_g")
    disable_user(ws, "ann_g")
    page.get_by_role("button", name="Skip ▶").click()
    page.get_by_role("button", name="Sign in").wait_for()
    expect(page.locator("canvas")).to_have_count(0)  # the painter leaves with the rerun that signs out
    assert "Signed out" in page.locator("body").inner_text()


def test_a_burst_of_strokes_is_applied_once_each_and_drawn_in_the_heatmap_colours(new_page, ws):
    from iea_data.core.painting import heatmap_layer

    page = new_page()
    open_painter(page, "ann_h")
    for k in range(8):  # no waiting between strokes: triggers coalesce, unacknowledged strokes are resent
        drag(page, 0.1 + 0.1 * k, 0.2, 0.1 + 0.1 * k, 0.8, steps=6)
    wait_ack(page, 8)
    wait_status(page, "8 stroke")
    layer = page.locator("canvas.layer").evaluate(
        "(c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
    )
    page.get_by_role("button", name="Save revision").click()
    page.get_by_text("saved (label", exact=False).wait_for()
    lab, m = newest_label(ws, "ann_h")
    ids = [s["id"] for s in json.loads(ws.objects.get_bytes(lab.strokes_object))]
    assert ids == list(range(1, 9))  # each stroke once, in order
    # the browser's colours are those of iea_data.core.heatmaps (compare where alpha makes colours exact enough)
    drawn = np.asarray(layer, np.int16).reshape(m.shape + (4,))
    expected = heatmap_layer(m).astype(np.int16)
    assert np.abs(drawn[..., 3] - expected[..., 3]).max() <= 2
    solid = expected[..., 3] >= 128
    if solid.any():
        assert np.abs(drawn[solid][:, :3] - expected[solid][:, :3]).max() <= 8
    assert (expected[..., 3] > 0).mean() > 0.3  # the strokes cover much of the image


def test_closing_the_tab_keeps_the_strokes_as_a_draft(new_page, ws):
    page = new_page()
    open_painter(page, "ann_i")
    drag(page, 0.2, 0.4, 0.7, 0.4)
    wait_ack(page, 1)
    drag(page, 0.2, 0.6, 0.7, 0.6)
    wait_ack(page, 2)
    page.wait_for_timeout(1500)  # the autosave runs shortly after the last stroke
    page.close()
    again = new_page()
    open_painter(again, "ann_i")
    assert "(resumed draft)" in again.locator("body").inner_text()
    wait_status(again, "2 stroke")
    assert chain_labels(ws, "ann_i") == []  # a draft, not a revision


def test_a_reviewer_paints_and_saves_an_ideal_target(new_page, ws):
    # last in the module: a new target recomputes reference differences and rebases annotations
    from playwright.sync_api import expect

    from iea_data.store import Scene
    from iea_data.workflows.targets import target_head

    page = new_page()
    login(page, "reviewer", "reviewer-demo")
    page.locator('[data-testid="stSidebar"]').get_by_text("Ideal target", exact=True).click()
    page.get_by_text("Paint exposure changes in EV stops", exact=False).wait_for()
    wait_status(page, "0 stroke")  # the target painter is drawn (not the annotation painter it replaces)
    expect(page.locator(".iea-painter[data-ack]")).to_have_count(1)  # the other leaves when the rerun ends
    expect(page.locator("svg.preview")).to_have_count(1)  # its canvas too (slower under load)
    drag(page, 0.2, 0.5, 0.8, 0.5)  # darker (the default sign) by 0.3 EV
    wait_ack(page, 1)
    with catalog_writes_held(ws):  # a stroke drawn while the save waits is kept for the next revision
        page.get_by_role("button", name="Save target revision").click()
        drag(page, 0.2, 0.15, 0.8, 0.15)
        page.wait_for_timeout(500)
    page.get_by_text("Target revision 1 saved", exact=False).wait_for()
    wait_ack(page, 2)
    with reader_unit(ws) as uow:
        heads = [target_head(uow, sc.id) for sc in uow.session.query(Scene).all()]
        heads = [h for h in heads if h is not None]
        assert len(heads) == 1 and heads[0].revision == 1
        ev = ws.objects.get_array(heads[0].ev_map_object).astype(np.float32)
    h, w = ev.shape
    c0, c1 = cols_of(0.2, 0.8, w)
    np.testing.assert_allclose(ev[row_of(0.5, h), c0 + 3 : c1 - 3], -0.3, atol=2e-3)
    assert np.all(ev[: row_of(0.5, h) - 30] == 0) and np.all(ev[row_of(0.5, h) + 30 :] == 0)
    page.get_by_role("button", name="Save target revision").click()
    page.get_by_text("Target revision 2 saved", exact=False).wait_for()
    with reader_unit(ws) as uow:
        head = target_head(uow, heads[0].scene_id)
        assert head.revision == 2 and head.parent_id == heads[0].id
        ev2 = ws.objects.get_array(head.ev_map_object).astype(np.float32)
    np.testing.assert_allclose(ev2[row_of(0.5, h)], ev[row_of(0.5, h)], atol=1e-6)
    np.testing.assert_allclose(ev2[row_of(0.15, h), c0 + 3 : c1 - 3], -0.3, atol=2e-3)


def test_sign_in_failure_and_sign_out_reach_the_server_log_without_passwords(new_page, ws, app_server):
    import time

    from iea_data.workflows.users import add_user

    add_user(ws, "ann_log", role="annotator", password=PASSWORD)
    page = new_page()
    login(page, "ann_log", "typed-wrong-secret-pw")
    page.get_by_text("wrong user name or password", exact=False).wait_for()
    login(page, "ann_log")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Signed out.").wait_for()
    wanted = (
        "sign-in failed: user='ann_log' address='local' at=",
        "signed in: user='ann_log' role=annotator",
        "signed out ('signed out'): user='ann_log'",
    )
    for _ in range(50):
        log = app_server[2].read_text(errors="replace")
        if all(w in log for w in wanted):
            break
        time.sleep(0.1)
    assert all(w in log for w in wanted), log[-2000:]
    assert "typed-wrong-secret-pw" not in log and PASSWORD not in log


def test_quality_page_shows_the_report_to_a_reviewer_and_not_to_an_annotator(new_page, ws):
    """Issue 15: three imported experts, a consensus run, then the reviewer's Quality page; annotators have none."""
    from iea_data.store import Image
    from iea_data.workflows.quality import compute_consensus, import_expert_labels

    with reader(ws) as s:
        images = s.execute(select(Image.name, Image.height, Image.width).where(Image.status == "ok")).all()[:3]
    for k, (name, sd) in enumerate([("q_exp0", 0.02), ("q_exp1", 0.05), ("q_exp2", 0.2)]):
        folder = ws.root.parent / f"import-{name}"
        folder.mkdir()
        rng = np.random.default_rng(k)
        for image_name, _h, _w in images:
            truth = np.linspace(-0.4, 0.4, 32 * 32, dtype=np.float32).reshape(32, 32)
            np.save(folder / f"{image_name}.npy", np.clip(truth + rng.normal(0, sd, truth.shape), -1, 1))
        assert import_expert_labels(ws, folder, author=name, status="accepted").n_saved == len(images)
    assert compute_consensus(ws).n_saved == len(images)
    ann = new_page()
    login(ann, "ann_i")
    ann.locator('[data-testid="stSidebar"]').wait_for()
    assert ann.locator('[data-testid="stSidebar"]').get_by_text("Quality", exact=True).count() == 0
    page = new_page()
    login(page, "reviewer", "reviewer-demo")
    page.locator('[data-testid="stSidebar"]').get_by_text("Quality", exact=True).click()
    page.get_by_text("ICC(2,1):", exact=False).wait_for()
    # the table is a canvas data grid: its cells are in the page for assistive technology, not "visible"
    page.locator('[data-testid="stDataFrame"]').get_by_text("q_exp2").first.wait_for(state="attached", timeout=30_000)
    page.locator('[data-testid="stImage"] img').first.wait_for()
    # (another test's expert may have labelled the same image: the three imported experts are there)
    page.get_by_text(re.compile(r"^experts: .*q_exp0, q_exp1, q_exp2")).wait_for()
    assert page.locator('[data-testid="stImage"] img').count() >= 2  # the plots and the expert grid
