"""The app's pages. Each one calls :mod:`iea_data` for every rule and computation and renders the result."""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from annotator_app import _paint
from annotator_app._common import data_url, flash, legend_png, show_flash
from annotator_app._errors import error_line, guarded
from annotator_app._text import literal

log = logging.getLogger("annotator_app")

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UserInfo, Workspace

VMAX = 0.5  # the heatmap range of iea_data.core.heatmaps (±0.5)
EV_DISPLAY = 2.0  # EV stops shown at full colour on the target page


def pages_for(user) -> dict[str, Callable]:
    """The pages this user may open (the library refuses forbidden writes whatever is shown)."""
    from iea_data.workflows.users import PERMISSIONS

    allowed = PERMISSIONS.get(user.role, frozenset())
    out: dict[str, Callable] = {}
    if "annotate" in allowed:
        out["Annotate"] = annotate_page
    if "review" in allowed:
        out["Review"] = review_page
    if "paint_target" in allowed and importlib.util.find_spec("iea_data.workflows.targets") is not None:
        out["Ideal target"] = target_page
    if "manage_users" in allowed:
        out["Users"] = users_page
    if "review" in allowed:  # issue 15
        from annotator_app.quality_page import quality_page

        out["Quality"] = quality_page
    return out


# --------------------------------------------------------------------------- annotate


def _open_annotation(ws: Workspace, user: UserInfo, image_id: int, base: str) -> _paint.Painting:
    from iea_data.core.painting import PaintSession
    from iea_data.workflows.catalog import photo_jpeg
    from iea_data.workflows.labels import open_annotation

    state = open_annotation(ws, user, image_id, base=base)
    photo = photo_jpeg(ws, image_id, state.base.shape)
    session = PaintSession(state.base, state.correction, log=state.strokes)
    return _paint.Painting(
        ident=("annotation", image_id, base), session=session, photo_url=data_url(photo, "image/jpeg"), payload=state
    )


def _current_state(p: _paint.Painting, score: float | None, comment: str | None):
    state = p.payload
    state.correction = p.session.correction
    state.strokes = p.session.stroke_log()
    state.score = score
    state.comment = comment or None
    return state


SAVE_UNREACHABLE = "Could not save — the catalog is unreachable; retrying (your strokes are kept in this tab)."


def _autosave(
    ws: Workspace, user: UserInfo, score: float | None, comment: str | None, p: _paint.Painting
) -> str | None:
    """Store the open painter's state as the user's draft now (library ``save_draft``, ~10 ms).

    Written before the stroke is acknowledged (the painter drawn, or the stroke channel's
    answer), so a stroke is acknowledged to the browser only once it is in the catalog
    (``Painting.durable_id``): a replica killed after the acknowledgement loses nothing. On
    failure the strokes stay unacknowledged; the browser re-sends them from 0.6 s on, and each
    re-send retries the write. Returns the message to show, or None. Call with ``p.lock`` held.
    """
    from annotator_app._errors import error_line
    from iea_data.store import catalog_unreachable
    from iea_data.workflows.labels import save_draft

    state = _current_state(p, score, comment)
    last = p.session.last_id
    try:
        save_draft(ws, user, state)
    except Exception as exc:
        if catalog_unreachable(exc):
            log.warning("draft not saved, catalog unreachable: %s", type(exc).__name__)
            return SAVE_UNREACHABLE
        return f"The draft could not be autosaved: {error_line(exc)}"
    p.durable_id = last
    p.dirty = False
    return None


def _save(ws: Workspace, user: UserInfo, p: _paint.Painting, *, submit: bool) -> bool:
    from iea_data.core.errors import IeaError, StaleRevisionError
    from iea_data.workflows.labels import save_annotation, save_draft

    state = _current_state(p, st.session_state.get("ann_score"), st.session_state.get("ann_comment"))
    try:
        label = save_annotation(ws, user, state, submit=submit)
    except StaleRevisionError as exc:
        try:  # keep this tab's work as the draft, whatever another tab did meanwhile
            save_draft(ws, user, state)
        except IeaError:
            pass
        st.session_state["ann_error"] = f"Not saved: {exc}"
        return False
    except IeaError as exc:
        st.session_state["ann_error"] = f"Not saved: {exc}"
        return False
    except Exception as exc:
        from iea_data.store import catalog_unreachable

        if not catalog_unreachable(exc):
            raise
        st.session_state["ann_error"] = SAVE_UNREACHABLE.replace("retrying", "save again in a moment")
        return False
    verb = "submitted for review" if submit else "saved"
    text = f"Revision {label.revision} of {st.session_state.get('ann_name', 'the image')} {verb} (label {label.id})."
    if submit:
        flash("success", text)  # shown at the top of the next image's page
        _paint.close_channel(st.session_state.pop("ann_painting", None))  # on to the next image
    else:
        st.session_state["ann_saved"] = text  # shown by the fragment that saved (its run alone)
        _continue_after_save(p, label.id)
    return True


def _continue_after_save(p: _paint.Painting, label_id: int) -> None:
    """Keep the open painter after *Save revision*: the revision holds exactly what it shows.

    Its session, token and stroke ids go on, so a stroke drawn while the save and the page's
    rerun run (sent with this painter's token) is applied and acknowledged like any other;
    reopening the painter here would give it a new token and drop such a stroke as "from a
    painter no longer open". The next save's parent is the revision just written.
    """
    p.payload.parent_id = label_id
    p.payload.from_draft = False
    p.payload.notice = None
    p.durable_id = p.session.last_id  # every applied stroke is in the revision
    p.dirty = False  # and the draft is gone with the save


def _show_save_messages(box) -> None:
    """The last save's outcome, shown by whichever of the two fragments draws next (the one that saved)."""
    if saved := st.session_state.pop("ann_saved", None):
        box.success(literal(saved))
    if msg := st.session_state.pop("ann_error", None):
        box.error(literal(msg))


def _set_store(p: _paint.Painting, ws: Workspace, user: UserInfo) -> None:
    """How the stroke channel stores strokes: the draft, with the score and comment the form shows now."""
    p.store = functools.partial(
        _autosave, ws, user, st.session_state.get("ann_score"), st.session_state.get("ann_comment")
    )
    p.status_of = _annotation_status


# The annotation page's two fragments. A page run re-renders all of Streamlit's page in the browser,
# the sidebar's controls included: several times the work of a fragment's run (issue 13), on cores that
# the other people's frames share in a team deployment. A stroke, an undo or Ctrl+S reruns the painter
# alone; a change of score or comment and *Save revision* rerun the form alone (neither changes what
# the painter shows); *Submit*, Alt+N and the page's own controls run the whole page.


@st.fragment
@guarded  # a fragment reruns alone, outside the page's error boundary
def _annotation_painter(ws: Workspace, user: UserInfo, brush: dict, view: dict) -> None:
    """The painter alone: a stroke reruns only this fragment (apply, redraw, autosave)."""
    p: _paint.Painting | None = st.session_state.get("ann_painting")
    if p is None:
        st.rerun(scope="app")  # submitted meanwhile: the next image is the whole page
    assert p is not None  # st.rerun does not return
    with p.lock:  # the stroke channel's workers change it too
        actions, errors = _paint.take_events(p)
        if "save" in actions:  # Ctrl+S: saved in this run, and shown in its box
            _save(ws, user, p, submit=False)
        if "next" in actions:  # the next image needs the whole page
            st.session_state["ann_actions"] = actions
            st.rerun(scope="app")
        _set_store(p, ws, user)
        if p.dirty and (err := p.store(p)):  # type: ignore[misc]  # set just above
            errors.append(err)
        box = st.container()  # always there, so that the painter below keeps its place (see show_flash)
        _show_save_messages(box)
        for e in errors:
            box.error(literal(e))
        _paint.mount(p, brush, view, vmax=VMAX, unit="", status=_annotation_status(p))


@st.fragment
@guarded
def _annotation_form(ws: Workspace, user: UserInfo, ids: list[int], current: int) -> None:
    """What the painting is on, the score, the comment and the buttons: a save reruns only this fragment."""
    p: _paint.Painting | None = st.session_state.get("ann_painting")
    if p is None or p.ident[1] != current:
        st.rerun(scope="app")  # submitted (its callback moved on to the next image): the whole page
    assert p is not None
    with st.container(border=True):
        box = st.container()  # always there: the widgets below keep their place
        box.caption(
            f"painting on **{literal(p.payload.base_kind)}**" + (" (resumed draft)" if p.payload.from_draft else "")
        )
        if p.payload.notice:
            box.info(literal(p.payload.notice))
        _show_save_messages(box)
        cols = st.columns([2, 3])
        cols[0].slider(
            "Image score (0–10)",
            0.0,
            10.0,
            step=0.5,
            key="ann_score",
            help="Overall exposure quality of the image, as in the released manifests",
        )
        cols[1].text_area("Comment", key="ann_comment", height=80, placeholder="Optional note for reviewers")
        with p.lock:  # strokes from now on are stored with this score and comment
            _set_store(p, ws, user)
        b = st.columns([1, 1, 4])
        # callbacks: the run a click starts saves first and then shows the result, one run and not two
        b[0].button(
            "Save revision", key="ann_save", help="Ctrl+S", on_click=_on_save, args=(ws, user, ids, current, False)
        )
        b[1].button(
            "Submit",
            key="ann_submit",
            type="primary",
            help="Save and send to review",
            on_click=_on_save,
            args=(ws, user, ids, current, True),
        )


def _annotation_status(p: _paint.Painting) -> str:
    """The painter's status line: strokes, and whether they are in the draft."""
    if not p.session.n_strokes:
        return "no strokes yet"
    if p.dirty:
        return f"{p.session.n_strokes} stroke(s) · not saved yet, retrying"
    return f"{p.session.n_strokes} stroke(s) · autosaved as a draft"


def _queue_step(ids: list[int], current: int, step: int) -> int:
    if current not in ids:
        return ids[0]
    return ids[(ids.index(current) + step) % len(ids)]


def annotate_page(ws: Workspace, user: UserInfo) -> None:
    from iea_data.workflows.labels import BASES, annotation_progress, annotation_queue

    queue = annotation_queue(ws, user)
    done, total = annotation_progress(ws, user)
    top = st.columns([3, 2])
    top[0].markdown("### Annotate")
    top[1].progress(done / total if total else 1.0, text=f"{done} / {total} images done")
    show_flash()
    if not queue:
        st.success("Nothing left to annotate: every image has your submitted label.")
        return
    ids = [q.image_id for q in queue]
    history: list[int] = st.session_state.setdefault("ann_history", [])
    current = st.session_state.get("ann_image")
    if current not in ids:
        current = ids[0]
    base = st.sidebar.selectbox(
        "Start from",
        BASES,
        key="ann_base",
        format_func={"model": "model pre-label", "refdiff": "reference difference", "zero": "zero (no pre-label)"}.get,
        help="The map you correct. Fixed once you have painted on an image.",
    )
    brush = _paint.brush_controls(
        unit="residual", strength_max=1.0, strength_default=0.1, signs=("Too dark (−)", "Too bright (+)")
    )
    view = _paint.view_controls()

    p: _paint.Painting | None = st.session_state.get("ann_painting")
    if p is not None and p.ident[1] != current:
        p = None
    if p is not None and p.ident[2] != base and p.session.n_strokes == 0 and not p.payload.from_draft:
        p = None  # a new base before any stroke: reopen on it
    if p is None:
        p = st.session_state["ann_painting"] = _open_annotation(ws, user, current, base)
        p.durable_id = p.session.last_id  # the strokes it opens with are stored (a draft or none)
        st.session_state["ann_score"] = float(p.payload.score) if p.payload.score is not None else 5.0
        st.session_state["ann_comment"] = p.payload.comment or ""
    item = queue[ids.index(current)]
    st.session_state["ann_name"] = item.name

    moved = None
    if "next" in st.session_state.pop("ann_actions", []):
        moved = _queue_step(ids, current, +1)

    nav = st.container(horizontal=True, vertical_alignment="center", gap="small")
    if nav.button("◀ Back", key="ann_back", disabled=not history, help="The previous image you opened"):
        moved = history.pop()
    if nav.button("Skip ▶", key="ann_skip", help="Next image in the queue (Alt+N)"):
        moved = _queue_step(ids, current, +1)
    if moved is not None and moved != current:
        if moved != (history[-1] if history else None):
            history.append(current)
        st.session_state["ann_image"] = moved
        st.rerun()
    st.session_state["ann_image"] = current

    scene = f" · scene {literal(item.scene)}" if item.scene else ""
    nav.markdown(f"**{literal(item.name)}**{scene} · {item.n_experts} expert(s) so far")
    notes = st.container()  # always there, messages or none: the painter keeps its place (see show_flash)
    if item.status == "rejected" and item.rejected_comment:
        notes.warning(f"Rejected by a reviewer: {literal(item.rejected_comment)}")
    _annotation_painter(ws, user, brush, view)
    st.image(legend_png(VMAX), width=420)
    _annotation_form(ws, user, ids, current)


def _on_save(ws: Workspace, user: UserInfo, ids: list[int], current: int, submit: bool) -> None:
    """*Save revision* and *Submit*, run by Streamlit before the run the click starts, which shows the result.

    (A save in the page's body had to rerun the whole page to show it: twice the work in the replica
    and in the browser for every save, issue 13.) A save's run is the form's fragment alone; a
    submit's goes on to the whole page (:func:`_annotation_form`). Errors go where the fragment
    shows them, never raised out of a callback, which would put a traceback in the page.
    """
    p: _paint.Painting | None = st.session_state.get("ann_painting")
    if p is None or p.ident[1] != current:
        return  # the painter the button belonged to is gone (another tab moved on): nothing to save here
    try:
        with p.lock:
            saved = _save(ws, user, p, submit=submit)
    except Exception as exc:
        st.session_state["ann_error"] = error_line(exc)
        return
    if saved and submit:
        st.session_state["ann_image"] = _queue_step(ids, current, +1) if len(ids) > 1 else None


# --------------------------------------------------------------------------- review


def review_page(ws: Workspace, user: UserInfo) -> None:
    from iea_data.core.heatmaps import colorize, overlay
    from iea_data.workflows.catalog import photo_for_map
    from iea_data.workflows.labels import (
        annotator_summary,
        expert_labels,
        expert_spread,
        label_map,
        review_queue,
    )
    from iea_data.workflows.users import list_users

    st.markdown("### Review")
    show_flash()
    items = review_queue(ws, user, order="disagreement")  # issue 15: the worst images first
    # tabs that track which one is open: a run draws the open tab alone (the hidden table cost every
    # review page a catalog query and a data grid in the browser, issue 13)
    tab_queue, tab_summary = st.tabs([f"Submitted ({len(items)})", "Annotators"], key="rev_tab", on_change="rerun")
    if tab_summary.open:
        rows = annotator_summary(ws)
        if rows:
            tab_summary.dataframe(
                [
                    {k: r[k] for k in ("name", "role", "done", "accepted", "rejected", "pending", "agreement")}
                    for r in rows
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            tab_summary.caption("No annotations yet.")
        return
    with tab_queue:
        if not items:
            st.success("No submitted labels are waiting for review.")
            return
        labels = {
            f"{it.image_name} · {it.author_name} · r{it.revision}" + (" · rebased" if it.rebased else ""): it
            for it in items
        }
        choice = st.selectbox("Label", list(labels), key="rev_choice")
        it = labels[choice]
        experts = expert_labels(ws, it.image_id)
        own = next((m for lab, m in experts if lab.id == it.label_id), None)
        if own is None:  # the submitted head itself
            own = label_map(ws, it.label_id)
        photo = photo_for_map(ws, it.image_id, own.shape)
        names = {u.id: u.name for u in list_users(ws)}
        meta = [
            f"score {it.score:g}" if it.score is not None else "no score",
            literal(it.comment) if it.comment else "no comment",
        ]
        st.caption(
            f"{literal(it.image_name)} · by **{literal(it.author_name)}** · revision {it.revision} · "
            + " · ".join(meta)
        )
        others = [(lab, m) for lab, m in experts if lab.id != it.label_id and m.shape == own.shape]
        c = st.columns(3)
        c[0].image(photo, caption="photo", width="stretch", clamp=True)
        c[1].image(
            overlay(photo, own, opacity=0.65, vmax=VMAX),
            caption=f"{literal(it.author_name)} (under review)",
            width="stretch",
        )
        if others:
            spread = expert_spread([own] + [m for _, m in others])
            c[2].image(
                colorize(spread, vmax=VMAX),
                width="stretch",
                caption=f"per-pixel spread (std) across {len(others) + 1} experts: white = they agree",
            )
        else:
            c[2].caption("No other expert has labelled this image yet: no spread to show.")
        if others:
            st.markdown("**Other experts**")
            oc = st.columns(3)
            for i, (lab, m) in enumerate(others):
                oc[i % 3].image(
                    overlay(photo, m, opacity=0.65, vmax=VMAX),
                    width="stretch",
                    caption=f"{literal(names.get(lab.author_id, lab.author_id))} · {literal(lab.status)}",
                )
        st.image(legend_png(VMAX), width=420)
        with st.form("review_form"):
            st.text_area("Comment (required to reject)", key="rev_comment")
            a, r, _ = st.columns([1, 1, 4])
            # callbacks, as for the annotator's save: the run a click starts shows the next label
            a.form_submit_button(
                "Accept", type="primary", on_click=_on_review, args=(ws, user, it.label_id, choice, "accept")
            )
            r.form_submit_button("Reject", on_click=_on_review, args=(ws, user, it.label_id, choice, "reject"))
        if msg := st.session_state.pop("rev_error", None):
            st.error(literal(msg))


def _on_review(ws: Workspace, user: UserInfo, label_id: int, choice: str, decision: str) -> None:
    """*Accept* / *Reject*, run by Streamlit before the page; an error is shown under the form."""
    from iea_data.workflows.labels import review_label

    try:
        review_label(ws, user, label_id, decision=decision, comment=st.session_state.get("rev_comment") or None)
    except Exception as exc:
        st.session_state["rev_error"] = error_line(exc)
        return
    flash("success", f"{'Accepted' if decision == 'accept' else 'Rejected'} {choice}.")


# --------------------------------------------------------------------------- ideal target


BLOCKED_SHOWN = 50  # scenes listed with the reason they cannot be painted (the rest counted)


@st.fragment
@guarded  # a fragment reruns alone, outside the page's error boundary
def _target_painter(ws: Workspace, brush: dict, view: dict) -> None:
    """The target painter and its preview: a stroke reruns only this fragment, never a save the page runs."""
    from iea_data.core.residuals import ideal_from_ev
    from iea_data.workflows.catalog import photo_for_map

    p: _paint.Painting = st.session_state["tgt_painting"]
    actions, errors = _paint.take_events(p)
    if actions:  # save needs the whole page
        st.session_state["tgt_actions"] = actions
        st.rerun(scope="app")
    box = st.container()  # always there, so that the painter below keeps its place
    for e in errors:
        box.error(literal(e))
    p.dirty = False  # a target has no draft: each save is a new revision
    _paint.mount(
        p,
        brush,
        view,
        vmax=VMAX,
        unit="EV",
        status=f"{p.session.n_strokes} stroke(s)",
        color_scale=VMAX / EV_DISPLAY,
        words=("darker", "unchanged", "brighter"),
        tolerance=0.01,
    )
    st.image(legend_png(VMAX), width=420, caption=f"±{VMAX:g} on this bar = ±{EV_DISPLAY:g} EV")
    if st.toggle("Preview the ideal image", key="tgt_preview"):
        ref = photo_for_map(ws, p.payload.reference_image_id, p.session.map.shape)
        st.image(ideal_from_ev(ref, p.session.map), caption="reference × 2^EV in linear light", width=640, clamp=True)


def target_page(ws: Workspace, user: UserInfo) -> None:
    from iea_data.core.errors import IeaError
    from iea_data.core.painting import PaintSession
    from iea_data.core.residuals import EV_LIMIT
    from iea_data.workflows.catalog import photo_jpeg
    from iea_data.workflows.targets import open_target, paintable_scenes, save_target

    st.markdown("### Ideal-exposure target")
    show_flash()
    listed = paintable_scenes(ws)
    scenes = {sc.name: sc for sc in listed if sc.paintable}
    blocked = [sc for sc in listed if not sc.paintable]
    if blocked:
        with st.expander(f"{len(blocked)} scene(s) cannot be painted yet", expanded=not scenes):
            shown = blocked[:BLOCKED_SHOWN]
            more = f"\n- … and {len(blocked) - len(shown)} more" if len(blocked) > len(shown) else ""
            st.markdown("\n".join(f"- **{literal(sc.name)}**: {literal(sc.reason)}" for sc in shown) + more)
    if not scenes:
        st.info(
            "No scene can be painted yet: a target is painted on a scene's reference image, "
            "which must have a decoded file (the list above says what to do for each scene)."
        )
        return
    name = st.sidebar.selectbox("Scene", list(scenes), key="tgt_scene")
    scene_id = scenes[name].scene_id
    brush = _paint.brush_controls(
        unit="EV", strength_max=3.0, strength_default=0.3, signs=("Darker (−EV)", "Brighter (+EV)")
    )
    view = _paint.view_controls()
    p = st.session_state.get("tgt_painting")
    if p is None or p.ident != ("target", scene_id):
        try:
            state = open_target(ws, user, scene_id)
            photo = photo_jpeg(ws, state.reference_image_id, state.ev_map.shape)
        except IeaError as exc:  # e.g. the reference's file was moved or deleted since it was ingested
            st.error(literal(f"Scene {name} cannot be opened: {exc}"))
            return
        session = PaintSession(
            np.zeros_like(state.ev_map), state.ev_map, log=state.strokes, value_range=(-EV_LIMIT, EV_LIMIT)
        )
        p = st.session_state["tgt_painting"] = _paint.Painting(
            ident=("target", scene_id), session=session, photo_url=data_url(photo, "image/jpeg"), payload=state
        )
    head = f"painting on target {p.payload.parent_id}" if p.payload.parent_id else "no target yet"
    st.caption(
        f"Scene **{literal(name)}**, reference {literal(scenes[name].reference)} ({head}). "
        "Paint exposure changes in EV stops: "
        f"blue = make darker, red = make brighter; colours saturate at ±{EV_DISPLAY:g} EV."
    )
    _target_painter(ws, brush, view)
    actions = st.session_state.pop("tgt_actions", [])
    if st.button("Save target revision", type="primary", key="tgt_save") or "save" in actions:
        state = p.payload
        state.ev_map = p.session.map
        state.strokes = p.session.stroke_log()
        bar = st.progress(0.0, text="Saving the target, recomputing reference differences, rebasing annotations…")
        try:
            report = save_target(
                ws, user, state, progress=lambda done, total: bar.progress(done / total if total else 1.0)
            )
        except IeaError as exc:
            st.error(literal(f"Not saved: {exc}"))
            return
        flash(
            "success",
            f"Target revision {report.revision} saved: {report.n_refdiff} reference difference(s) recomputed, "
            f"{report.n_rebased} annotation(s) rebased for re-review, {report.n_drafts_moved} draft(s) moved.",
        )
        for img, msg in report.errors:
            flash("warning", f"{img}: {msg}")
        p.payload.parent_id = report.target_id  # the painter stays open: strokes drawn meanwhile are kept
        st.rerun()


# --------------------------------------------------------------------------- users


def users_page(ws: Workspace, user: UserInfo) -> None:
    """Admins run the team: add, disable, enable, reset a password, change a role; the audit log.

    Every rule (who may, the last admin, the password policy) and the log entry is the library's;
    a temporary password is shown once, as text.
    """
    from iea_data.workflows.users import list_user_events, list_users

    st.markdown("### Users")
    show_flash()
    _show_temporary_password()
    users = list_users(ws)
    st.dataframe(
        [
            {"name": u.name, "role": u.role, "enabled": u.enabled, "must set a new password": u.must_change_password}
            for u in users
        ],
        hide_index=True,
        width="stretch",
    )
    others = [u for u in users if u.id != user.id]
    c = st.columns(2)
    with c[0]:
        _add_user_form(ws, user)
        _role_form(ws, user, others)
    with c[1]:
        _enable_disable_form(ws, user, others)
        _reset_password_form(ws, user, others)
    st.markdown("#### Audit log")
    st.caption("Every change to an account, newest first: what, whom, and who made it. Never a password.")
    st.dataframe(
        [
            {
                "at": e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "action": e.action,
                "user": e.user,
                "old role": e.old_role or "",
                "new role": e.new_role or "",
                "by": e.by,
            }
            for e in list_user_events(ws, by=user, limit=200)
        ],
        hide_index=True,
        width="stretch",
        key="user_events",
    )


def _users_call(done: str, write: Callable[[], object]) -> bool:
    """Run one library write; its refusal as one line of text, or a success message on the next run."""
    from iea_data.core.errors import IeaError

    try:
        write()
    except IeaError as exc:
        st.error(literal(exc))
        return False
    flash("success", done)
    return True


def _add_user_form(ws: Workspace, user: UserInfo) -> None:
    from iea_data.workflows.users import ROLES, add_user

    with st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("Name")
        role = st.selectbox("Role", ROLES)
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Add") and _users_call(
            f"Added {name.strip()} ({role}).",
            lambda: add_user(ws, name.strip(), role=role, password=password, by=user),
        ):
            st.rerun()


def _enable_disable_form(ws: Workspace, user: UserInfo, others: list[UserInfo]) -> None:
    from iea_data.workflows.users import disable_user, enable_user

    with st.form("disable_user"):
        st.markdown("**Disable or enable a user** (a disabled user is signed out at once)")
        target = st.selectbox(
            "User", [u.name for u in others], key="able_target", index=None, placeholder="Choose a user"
        )
        left, right = st.columns(2)
        disable = left.form_submit_button("Disable")
        enable = right.form_submit_button("Enable")
        if target and disable and _users_call(f"Disabled {target}.", lambda: disable_user(ws, target, by=user)):
            st.rerun()
        if target and enable and _users_call(f"Enabled {target}.", lambda: enable_user(ws, target, by=user)):
            st.rerun()


def _role_form(ws: Workspace, user: UserInfo, others: list[UserInfo]) -> None:
    from iea_data.workflows.users import ROLES, set_role

    with st.form("set_role"):
        st.markdown("**Change a role** (it applies at once)")
        target = st.selectbox(
            "User", [u.name for u in others], key="role_target", index=None, placeholder="Choose a user"
        )
        role = st.selectbox("New role", ROLES, key="role_new")
        if (
            st.form_submit_button("Change role")
            and target
            and _users_call(f"{target} is now {role}.", lambda: set_role(ws, target, role, by=user))
        ):
            st.rerun()


def _reset_password_form(ws: Workspace, user: UserInfo, others: list[UserInfo]) -> None:
    from iea_data.workflows.users import reset_password

    with st.form("reset_password", clear_on_submit=True):
        st.markdown("**Reset a password** (the user must choose a new one at their next sign-in)")
        target = st.selectbox(
            "User", [u.name for u in others], key="reset_target", index=None, placeholder="Choose a user"
        )
        given = st.text_input("Temporary password (leave empty to generate one)", type="password", key="reset_pw")
        if st.form_submit_button("Reset password") and target:
            result: list = []
            if _users_call(
                f"Reset the password of {target}.",
                lambda: result.append(reset_password(ws, target, password=given or None, by=user)),
            ):
                if result[0].generated:  # shown once, on the next run, then gone from the session
                    st.session_state["_temporary_password"] = (result[0].name, result[0].password)
                st.rerun()


def _show_temporary_password() -> None:
    shown = st.session_state.pop("_temporary_password", None)
    if shown is None:
        return
    name, password = shown
    st.warning(
        literal(
            f"Temporary password of {name}, shown only this once: give it to them privately. "
            "They must choose a new password at their next sign-in."
        )
    )
    st.code(password, language=None)
