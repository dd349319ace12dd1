"""The Quality page (reviewers and admins): per-annotator table, reliability, plots, one image's experts, gold (admin).

Thin: everything shown comes from :func:`iea_data.workflows.quality.quality_report` and
:func:`iea_data.workflows.quality.image_quality`; every write is a library call that checks
the user's rights. Names and other user text are shown as literal text, never markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from annotator_app._common import flash, show_flash
from annotator_app._text import literal

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UserInfo, Workspace

__all__ = ["quality_page"]

#: The page serves figures up to this old while the catalog changes (Refresh recomputes them).
PAGE_MAX_AGE_S = 300.0

_TABLE = (
    "name",
    "images_done",
    "strokes_per_image",
    "seconds_per_image",
    "gold_done",
    "gold_mae",
    "gold_bias",
    "gold_sign_agreement",
    "bias",
    "noise_sd",
    "agreement_consensus",
    "trend_gold_mae",
)


def _figure(r) -> str:
    if not r:
        return "not measurable yet"
    return f"{r['value']} (95 % CI {r['ci_low']} to {r['ci_high']}, n = {r['n']})"


def quality_page(ws: Workspace, user: UserInfo) -> None:
    """Render the page for ``user`` (needs ``review``)."""
    from iea_data.store import require
    from iea_data.workflows.quality import image_quality, quality_report, update_consensus

    require(user, "review")
    st.markdown("### Quality")
    show_flash()
    fresh = st.button("Refresh figures", key="q_refresh")
    report = quality_report(ws, use_cache=not fresh, max_age_s=PAGE_MAX_AGE_S)
    if report.stale:
        st.caption(literal(f"figures as of {report.as_of} (UTC); labels changed since: Refresh figures to recompute"))
    rel = report.reliability or {}
    st.text(f"ICC(2,1): {_figure(rel.get('icc'))}")
    st.text(f"Krippendorff's alpha (interval): {_figure(rel.get('alpha'))}")
    if report.fit:
        st.caption(
            literal(
                f"consensus fit: {report.fit.get('method')}, {report.fit.get('n_images')} images"
                + (f" (a fixed sample of {report.fit.get('of_images')})" if report.fit.get("sampled") else "")
                + f", converged {report.fit.get('converged')}"
            )
        )
    # sections one under another (not tabs): a rerun never hides what the user was looking at
    st.markdown("#### Annotators")
    if report.annotators:
        st.dataframe([{k: r.get(k) for k in _TABLE} for r in report.annotators], hide_index=True, width="stretch")
    else:
        st.caption("No annotations yet.")
    if st.button("Update stale consensus", key="q_update"):
        done = update_consensus(ws)
        flash("success", f"consensus updated on {done.n_saved} image(s)")
        st.rerun()
    st.markdown("#### Plots")
    if not report.plots:
        st.caption("Nothing to plot yet: run `iea quality consensus` once experts have labelled images.")
    for name, png in report.plots.items():
        st.image(png, caption=name)
    st.markdown("#### Images")
    if not report.images:
        st.caption("No image has two experts yet.")
    else:
        options = {r["image_id"]: r for r in report.images}
        choice = st.selectbox(
            "Image (most disagreement first)",
            list(options),
            format_func=lambda i: (
                f"{options[i]['name']} · {options[i]['n_experts']} experts · spread {options[i]['spread_mean']}"
            ),
            key="q_image",
        )
        iq = image_quality(ws, int(choice))
        st.text("experts: " + ", ".join(iq.experts))
        if iq.grid_png:
            st.image(iq.grid_png, caption="experts, consensus (blue-white-red), spread")
    if user.role == "admin":
        st.markdown("#### Gold images (admin)")
        _gold_admin(ws, user)


def _gold_admin(ws: Workspace, user: UserInfo) -> None:
    from iea_data.core.errors import IeaError
    from iea_data.workflows.quality import add_gold, get_gold_rate, list_gold, remove_gold, set_gold_rate

    rate = st.number_input(
        "Gold rate (share of queue positions)", 0.0, 0.5, float(get_gold_rate(ws)), 0.01, key="q_rate"
    )
    if st.button("Set rate", key="q_set_rate"):
        set_gold_rate(ws, float(rate), by=user)
        flash("success", f"gold rate set to {rate:.3g}")
        st.rerun()
    image = st.text_input("Image id or name to mark as gold", key="q_gold_image")
    if st.button("Mark as gold", key="q_gold_add") and image.strip():
        try:
            g = add_gold(ws, image.strip(), by=user)
            flash("success", f"{g.image_name} is gold (reference label {g.label_id})")
        except IeaError as exc:
            flash("error", str(exc))
        st.rerun()
    golds = list_gold(ws)
    if golds:
        st.dataframe(
            [{"image": g.image_name, "reference": g.label_id, "kind": g.label_kind, "by": g.added_by} for g in golds],
            hide_index=True,
            width="stretch",
        )
        gone = st.selectbox("Unmark", [g.image_name for g in golds], key="q_gold_rm_choice")
        if st.button("Unmark gold", key="q_gold_rm"):
            remove_gold(ws, gone, by=user)
            flash("success", f"{gone} is no longer gold")
            st.rerun()
