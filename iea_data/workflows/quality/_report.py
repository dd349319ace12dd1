"""Everything the Quality page and ``iea quality report`` show, from one function: :func:`quality_report`.

The per-annotator table (images done, strokes and time per image, scores on gold, pooled
bias and noise, agreement with the consensus, trend), reliability (ICC(2,1) and
Krippendorff's alpha over a deterministic pixel sample, with 95 % intervals), the images
worst first by expert spread, and the plots as PNG bytes. The table is cached in the
catalog (``workspace_settings``) under a fingerprint of the labels, reviews, gold images and
the last fit, so a page's first paint reads one row when nothing changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from sqlalchemy import func, select

from iea_data.core.files import atomic_write
from iea_data.store import (
    MAX_GAP_SECONDS,
    GoldImage,
    Image,
    Label,
    QualityAnnotator,
    QualityImage,
    Review,
    User,
    WorkspaceSetting,
    aware,
    utcnow,
)

from ._consensus import RATER_PARAMS_KEY, _consensus_heads, _load_maps, expert_heads
from ._figures import SAMPLE_PIXELS, expert_agreements, sample_key, sample_maps, stored_agreements, stored_sample
from ._gold import gold_results

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UnitOfWork, Workspace

__all__ = [
    "ANNOTATOR_COLUMNS",
    "IMAGE_COLUMNS",
    "QualityReport",
    "ImageQuality",
    "quality_report",
    "image_quality",
    "write_quality_report",
    "reliability",
    "rebuild_summary",
]

SUMMARY_CACHE_KEY = "quality.summary_cache"
GRID_CACHE_PREFIX = "quality.grid:"
ANNOTATOR_COLUMNS = (
    "name",
    "role",
    "images_done",
    "strokes_per_image",
    "seconds_per_image",
    "gold_done",
    "gold_mae",
    "gold_bias",
    "gold_sign_agreement",
    "gold_iou_under",
    "gold_iou_over",
    "bias",
    "bias_ci_low",
    "bias_ci_high",
    "noise_sd",
    "noise_sd_ci_low",
    "noise_sd_ci_high",
    "agreement_consensus",
    "trend_gold_mae",
)
IMAGE_COLUMNS = ("image_id", "name", "n_experts", "spread_mean", "consensus_label_id", "method")


@dataclass
class QualityReport:
    """What :func:`quality_report` returns: plain rows and PNG bytes (no ORM rows).

    Attributes
    ----------
    annotators : list of dict
        One row per expert with :data:`ANNOTATOR_COLUMNS` (None where not measurable).
    gold : list of dict
        Every scored gold revision (user, image, time, mae, bias, sign agreement, IoUs).
    images : list of dict
        Images with ≥ 2 experts, worst (largest mean spread) first, :data:`IMAGE_COLUMNS`.
    reliability : dict
        ``icc`` and ``alpha``: ``{value, ci_low, ci_high, n}`` (or None), ``n_images``.
    reliability_over_time : list of dict
        ``{date, value, ci_low, ci_high, n}`` per week of the newest expert revision.
    fit : dict or None
        The last pooled fit (method, iterations, converged...).
    plots : dict of str -> bytes
        ``bias.png``, ``noise.png``, ``reliability.png`` (absent when there is nothing to draw).
    cached : bool
        The report came from the catalog cache.
    as_of : str or None
        When a cached report was computed (ISO 8601, UTC).
    stale : bool
        Cached, and the catalog changed since (served because it is younger than ``max_age_s``).
    """

    annotators: list[dict] = field(default_factory=list)
    gold: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    reliability: dict = field(default_factory=dict)
    reliability_over_time: list[dict] = field(default_factory=list)
    fit: Optional[dict] = None
    plots: dict[str, bytes] = field(default_factory=dict)
    cached: bool = False
    as_of: Optional[str] = None
    stale: bool = False


@dataclass
class ImageQuality:
    """One image's experts, consensus and spread (the page's per-image view)."""

    image_id: int
    name: str
    experts: list[str]
    maps: dict[str, np.ndarray]
    consensus: Optional[np.ndarray]
    spread: Optional[np.ndarray]
    params: dict
    grid_png: Optional[bytes]


def _fingerprint(uow: UnitOfWork) -> str:
    s = uow.session
    labels = s.execute(select(func.count(), func.max(Label.id), func.max(Label.updated_at))).one()
    reviews = s.execute(select(func.count(), func.max(Review.id)).select_from(Review)).one()
    gold = s.execute(select(func.count(), func.max(GoldImage.added_at)).select_from(GoldImage)).one()
    fit = s.scalar(select(WorkspaceSetting.updated_at).where(WorkspaceSetting.key == RATER_PARAMS_KEY))
    users = s.execute(select(func.count(), func.max(User.id)).select_from(User)).one()
    return json.dumps([list(labels), list(reviews), list(gold), fit, list(users)], default=str)


def _rounded(x: Optional[float], nd: int = 4) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _summary_images(uow: UnitOfWork) -> dict[int, tuple[int, dt.datetime, Optional[int], Optional[str], Any, str]]:
    """image id -> (experts, newest head's time, consensus label id, method, mean spread, name), ≥ 2 experts.

    One read of the quality summary (:class:`~iea_data.store.QualityImage`, kept by the writers).
    """
    q = QualityImage
    rows = uow.session.execute(
        select(
            q.image_id,
            q.n_experts,
            q.newest_at,
            q.consensus_label_id,
            q.consensus_method,
            q.consensus_spread_mean,
            Image.name,
        )
        .join(Image, Image.id == q.image_id)
        .where(q.n_experts >= 2)
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def _median_gap(uow: UnitOfWork, user_id: int, n: int) -> Optional[float]:
    """The median of the author's ``n`` counted save gaps, read in order from the (author, gap) index."""
    if n <= 0:
        return None
    q = (
        select(Label.gap_s)
        .where(Label.author_id == user_id, Label.gap_s > 0, Label.gap_s <= MAX_GAP_SECONDS)
        .order_by(Label.gap_s)
        .offset((n - 1) // 2)
        .limit(2 - n % 2)
    )
    values = [float(v) for v in uow.session.scalars(q)]
    return float(np.mean(values)) if values else None


def _per_user_work(uow: UnitOfWork) -> dict[int, dict]:
    """Per author: done images, mean strokes per revision, median seconds between consecutive saves.

    From the quality summary (:class:`~iea_data.store.QualityAnnotator`): done = the author's
    chain heads in status submitted / accepted; strokes = mean ``n_strokes`` of its revisions
    not imported; seconds = the median of the gaps between consecutive saves (by time, then
    id) of at most :data:`MAX_GAP_SECONDS` that end on a revision not imported
    (``labels.gap_s``, by index).
    """
    a = QualityAnnotator
    out: dict[int, dict] = {}
    for uid, done, s_sum, s_n, g_n in uow.session.execute(
        select(a.user_id, a.images_done, a.strokes_sum, a.strokes_n, a.gaps_n)
    ):
        out[uid] = {
            "done": int(done),
            "strokes": float(s_sum) / s_n if s_n else None,
            "seconds": _median_gap(uow, uid, int(g_n)),
        }
    return out


def _agreement_with_consensus(ws: Workspace, uow: UnitOfWork, max_images: int, from_maps: bool) -> dict[int, float]:
    """Per author: mean agreement with the consensus over the newest ``max_images`` images that have one.

    An image's values come from its consensus revision (:func:`stored_agreements`) while its
    expert heads are the ones the consensus lists; otherwise (or ``from_maps``) from the maps.
    """
    newest_ids = list(
        uow.session.scalars(
            select(Label.image_id)
            .where(Label.chain == "consensus")
            .group_by(Label.image_id)
            .order_by(Label.image_id.desc())
            .limit(max_images)
        )
    )
    cons = _consensus_heads(uow, newest_ids) if newest_ids else {}
    if not cons:
        return {}
    ids = sorted(cons, reverse=True)[:max_images]
    heads = expert_heads(uow, ids)
    stored = {} if from_maps else {i: stored_agreements(cons[i], heads.get(i, [])) for i in ids}
    to_read = [cons[i]["label_id"] for i in ids if stored.get(i) is None]
    objs = (
        dict(uow.session.execute(select(Label.id, Label.map_object).where(Label.id.in_(to_read))).all())
        if to_read
        else {}
    )
    sums: dict[int, list[float]] = defaultdict(list)
    objects = ws.objects
    for i in ids:
        hs = heads.get(i, [])
        if len(hs) < 2:
            continue
        values = stored.get(i)
        if values is None:
            if cons[i]["label_id"] not in objs:
                continue
            values = expert_agreements(_load_maps(objects, hs), objects.get_array(objs[cons[i]["label_id"]]))
        for h in hs:
            if h.chain in values:
                sums[h.author_id].append(values[h.chain])
    return {uid: float(np.mean(v)) for uid, v in sums.items()}


def _trend(values: list[float]) -> Optional[float]:
    """Mean of the newer half minus mean of the older half (negative MAE trend: improving)."""
    if len(values) < 2:
        return None
    half = len(values) // 2
    return float(np.mean(values[half:]) - np.mean(values[:half]))


def _annotator_rows(ws: Workspace, gold: list, fit: Optional[dict], max_images: int, from_maps: bool) -> list[dict]:
    from iea_data.core.quality import RaterParams

    with ws.unit() as uow:
        users = {uid: (name, role) for uid, name, role in uow.session.execute(select(User.id, User.name, User.role))}
        work = _per_user_work(uow)
        agree = _agreement_with_consensus(ws, uow, max_images, from_maps)
    params = RaterParams.from_dict(fit["params"]) if fit and fit.get("params") else None
    by_user_gold: dict[int, list] = defaultdict(list)
    for g in gold:
        by_user_gold[g.user_id].append(g)
    rows = []
    for uid, d in sorted(work.items(), key=lambda kv: users.get(kv[0], ("", ""))[0]):
        if uid not in users:
            continue
        name, role = users[uid]
        gs = by_user_gold.get(uid, [])
        est = params[f"user:{uid}"] if params is not None and f"user:{uid}" in params else None
        row: dict[str, Any] = {
            "user_id": uid,
            "name": name,
            "role": role,
            "images_done": d["done"],
            "strokes_per_image": _rounded(d["strokes"], 2),
            "seconds_per_image": _rounded(d["seconds"], 1),
            "gold_done": len(gs),
        }
        for key in ("mae", "bias", "sign_agreement", "iou_under", "iou_over"):
            row[f"gold_{key}"] = _rounded(float(np.mean([getattr(g, key) for g in gs])) if gs else None)
        row["bias"] = _rounded(est.bias if est else None)
        row["bias_ci_low"] = _rounded(est.bias_ci[0] if est else None)
        row["bias_ci_high"] = _rounded(est.bias_ci[1] if est else None)
        row["noise_sd"] = _rounded(est.sigma if est else None)
        row["noise_sd_ci_low"] = _rounded(est.sigma_ci[0] if est else None)
        row["noise_sd_ci_high"] = _rounded(est.sigma_ci[1] if est else None)
        row["agreement_consensus"] = _rounded(agree.get(uid))
        row["trend_gold_mae"] = _rounded(_trend([g.mae for g in gs]))
        rows.append(row)
    return rows


def _rel_dict(r) -> Optional[dict]:
    if r is None:
        return None
    return {"value": _rounded(r.value), "ci_low": _rounded(r.ci_low), "ci_high": _rounded(r.ci_high), "n": int(r.n)}


def reliability(
    ws: Workspace,
    *,
    image_ids: Optional[list[int]] = None,
    pixels: int = SAMPLE_PIXELS,
    max_images: int = 200,
    from_maps: bool = False,
) -> dict:
    """ICC(2,1) and Krippendorff's alpha (interval) over a deterministic pixel sample; commits (reads only).

    Parameters
    ----------
    image_ids : list of int, optional
        Only these images (e.g. a release split); default every image with ≥ 2 experts.
    pixels : int
        Pixels sampled per image (:func:`iea_data.core.quality.pixel_sample`, keyed by the
        image's sha256 or id).
    max_images : int
        At most this many images (the newest), which bounds the work.
    from_maps : bool
        Sample every image's maps. By default an image whose consensus revision is current
        (built from its expert heads) and stored the sample of ``pixels`` pixels is read from
        that sample: the same values, so the same figures.

    Returns
    -------
    dict
        ``alpha``: over raters × sampled pixels (missing where an expert did not label an
        image); ``icc``: ICC(2,1) over the largest group of images sharing one rater set
        (ICC needs a complete table); each ``{value, ci_low, ci_high, n}`` or None; and
        ``n_images``, ``n_raters``.
    """
    return _reliability(ws, image_ids=image_ids, pixels=pixels, max_images=max_images, samples={}, from_maps=from_maps)


def _reliability(
    ws: Workspace, *, image_ids: Optional[list[int]], pixels: int, max_images: int, samples: dict, from_maps: bool
) -> dict:
    """:func:`reliability`, with ``samples``: (image, pixels) -> (its heads' label ids, chain -> sampled values).

    One report computes the overall figure and one per week over images that mostly overlap;
    each image's sample is read (from its consensus revision, else from its maps) once for all of them.
    """
    from iea_data.core.quality import icc_2_1, krippendorff_alpha_interval

    with ws.unit() as uow:
        if image_ids is None:  # the newest images with >= 2 experts, found by one aggregate
            image_ids = sorted(_summary_images(uow), reverse=True)[:max_images]
        heads = {i: h for i, h in expert_heads(uow, image_ids).items() if len(h) >= 2} if image_ids else {}
        ids = sorted(heads, reverse=True)[:max_images]
        keys = dict(uow.session.execute(select(Image.id, Image.sha256).where(Image.id.in_(ids))).all()) if ids else {}
        todo = [i for i in ids if (i, pixels) not in samples]
        cons = _consensus_heads(uow, todo) if todo and not from_maps else {}
    if not ids:
        return {"icc": None, "alpha": None, "n_images": 0, "n_raters": 0}
    raters = sorted({h.chain for i in ids for h in heads[i]})
    col = {r: k for k, r in enumerate(raters)}
    blocks = []
    groups: dict[tuple[str, ...], list[np.ndarray]] = defaultdict(list)
    objects = ws.objects
    for i in ids:
        label_ids = tuple(sorted(h.label_id for h in heads[i]))
        hit = samples.get((i, pixels))
        if hit is None or hit[0] != label_ids:
            key = sample_key(keys.get(i), i)
            sampled = stored_sample(objects, cons.get(i), heads[i], key, pixels) if cons else None
            if sampled is None:
                sampled = sample_maps(_load_maps(objects, heads[i]), key, pixels)
            hit = samples[(i, pixels)] = (label_ids, sampled)
        sampled = hit[1]
        block = np.full((len(raters), len(next(iter(sampled.values())))), np.nan)
        for chain, v in sampled.items():
            block[col[chain]] = v
        blocks.append(block)
        rs = tuple(sorted(sampled))
        groups[rs].append(np.stack([sampled[c] for c in rs], axis=1))
    ratings = np.concatenate(blocks, axis=1)
    alpha = krippendorff_alpha_interval(ratings) if ratings.shape[1] >= 2 else None
    best = max(groups.values(), key=lambda g: sum(len(x) for x in g))
    table = np.concatenate(best, axis=0)
    icc = icc_2_1(table) if table.shape[0] >= 2 else None
    return {"icc": _rel_dict(icc), "alpha": _rel_dict(alpha), "n_images": len(ids), "n_raters": len(raters)}


def _over_time(
    ws: Workspace, experts: dict[int, tuple], samples: dict, from_maps: bool, max_weeks: int = 12
) -> list[dict]:
    newest = {i: r[1] for i, r in experts.items()}
    if not newest:
        return []
    weeks: dict[dt.date, list[int]] = defaultdict(list)
    for i, t in newest.items():
        d = aware(t).date()
        weeks[d - dt.timedelta(days=d.weekday())].append(i)
    out = []
    for week in sorted(weeks)[-max_weeks:]:
        # every image here has >= 2 experts, so its newest 100 are the ones reliability() would keep
        week_ids = sorted(weeks[week], reverse=True)[:100]
        r = _reliability(
            ws, image_ids=week_ids, pixels=SAMPLE_PIXELS, max_images=100, samples=samples, from_maps=from_maps
        ).get("alpha")
        if r is not None and r["value"] is not None:
            out.append({"date": week.isoformat(), **r})
    return out


def _params_by_name(ws: Workspace, fit: Optional[dict]):
    from iea_data.core.quality import RaterParams

    if not fit or not fit.get("params"):
        return None
    params = RaterParams.from_dict(fit["params"])
    with ws.unit() as uow:
        names = {f"user:{uid}": name for uid, name in uow.session.execute(select(User.id, User.name))}
    return RaterParams(tuple(dataclasses.replace(e, rater=names.get(e.rater, e.rater)) for e in params.estimates))


def _plots(ws: Workspace, fit: Optional[dict], over_time: list[dict]) -> dict[str, bytes]:
    from iea_data.core import quality

    out: dict[str, bytes] = {}
    params = _params_by_name(ws, fit)
    if params is not None and len(params):
        out["bias.png"] = quality.bias_plot_png(params)
        out["noise.png"] = quality.noise_plot_png(params)
    if over_time:
        points = [
            (dt.date.fromisoformat(p["date"]), quality.Reliability(p["value"], p["ci_low"], p["ci_high"], p["n"]))
            for p in over_time
        ]
        out["reliability.png"] = quality.reliability_over_time_png(points, label="Krippendorff's alpha")
    return out


def _images(experts: dict[int, tuple]) -> list[dict]:
    """Images with ≥ 2 experts (``experts``: :func:`_summary_images`), most disagreement first."""
    images = []
    for i, (n, _t, lid, method, spread, name) in experts.items():
        images.append(
            {
                "image_id": i,
                "name": name or "",
                "n_experts": int(n),
                "spread_mean": None if spread is None else float(spread),
                "consensus_label_id": lid,
                "method": method,
            }
        )
    images.sort(key=lambda r: (-(r["spread_mean"] if r["spread_mean"] is not None else -1.0), r["name"], r["image_id"]))
    return images


def rebuild_summary(ws: Workspace) -> dict[str, int]:
    """Recompute the quality summary from the labels (:func:`~iea_data.store.rebuild_quality_summary`); commits.

    The writers keep it in their transactions; this is the repair after rows changed behind
    their back. Returns ``images`` and ``annotators``: rows written.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> rebuild_summary(init_workspace(tempfile.mkdtemp()))
    {'images': 0, 'annotators': 0}
    """
    from iea_data.store import rebuild_quality_summary

    with ws.unit() as uow:
        return rebuild_quality_summary(uow.session)


def _put_setting(ws: Workspace, key: str, value: str) -> None:
    with ws.unit() as uow:
        row = uow.session.get(WorkspaceSetting, key)
        if row is None:
            uow.session.add(WorkspaceSetting(key=key, value=value))
        else:
            row.value, row.updated_at = value, utcnow()


def quality_report(
    ws: Workspace,
    *,
    use_cache: bool = True,
    plots: bool = True,
    max_images: int = 500,
    max_age_s: float = 0.0,
    from_maps: bool = False,
) -> QualityReport:
    """Every number and plot of the Quality page and ``iea quality report``; commits (reads only, plus the cache).

    Parameters
    ----------
    ws : Workspace
    use_cache : bool
        Read the report from the catalog cache when its fingerprint matches (labels,
        reviews, gold, users and the last fit unchanged): then no map is read and no plot is
        drawn. The cache is written either way.
    plots : bool
        Include the PNG plots.
    max_images : int
        Images (the newest with a consensus) over which agreement with the consensus is averaged.
    max_age_s : float
        Also serve a cached report made less than this many seconds ago when the catalog
        changed since (``stale_since`` tells; the Quality page uses 300 s so that a busy
        catalog, where every save changes the fingerprint, still paints at once).
    from_maps : bool
        Compute agreement with the consensus and the reliability samples from the maps. By
        default an image whose consensus revision is current (built from the image's expert
        heads) contributes the figures that revision stored when it was written — the values
        the maps give, so the report is the same, without reading ≈ 13 maps per image
        (docs/quality.md); ``True`` is the reference the stored figures are tested against.

    Returns
    -------
    QualityReport
    """
    with ws.unit() as uow:
        fp = _fingerprint(uow)
        cached = uow.session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == SUMMARY_CACHE_KEY))
        fit_value = uow.session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == RATER_PARAMS_KEY))
    fit = json.loads(fit_value) if fit_value else None
    report = QualityReport(fit=({"method": fit["method"], **fit["fit"]} if fit else None))
    data = json.loads(cached) if (cached and use_cache) else None
    fresh_enough = (
        data is not None
        and max_age_s > 0
        and (utcnow() - dt.datetime.fromisoformat(data["at"])).total_seconds() < max_age_s
    )
    if data is not None and (data.get("fingerprint") == fp or fresh_enough):
        report.as_of = data["at"]
        report.stale = data.get("fingerprint") != fp
        report.annotators, report.gold, report.cached = data["annotators"], data["gold"], True
        report.reliability, report.reliability_over_time = data["reliability"], data["over_time"]
        report.images = data["images"]
        if plots:
            report.plots = {name: ws.objects.get_bytes(key) for name, key in data["plots"].items()}
        return report
    gold = gold_results(ws)
    report.gold = [{**dataclasses.asdict(g), "created_at": g.created_at.isoformat()} for g in gold]
    report.annotators = _annotator_rows(ws, gold, fit, max_images, from_maps)
    with ws.unit() as uow:  # one read of the quality summary feeds the three below
        experts = _summary_images(uow)
    report.images = _images(experts)
    samples: dict = {}  # each image's maps read and sampled once for the overall and weekly figures
    newest = sorted(experts, reverse=True)[:200]
    report.reliability = _reliability(
        ws, image_ids=newest, pixels=SAMPLE_PIXELS, max_images=200, samples=samples, from_maps=from_maps
    )
    report.reliability_over_time = _over_time(ws, experts, samples, from_maps)
    drawn = _plots(ws, fit, report.reliability_over_time)
    keys = {name: ws.objects.put_bytes(png) for name, png in drawn.items()}
    report.plots = drawn if plots else {}
    _put_setting(
        ws,
        SUMMARY_CACHE_KEY,
        json.dumps(
            {
                "fingerprint": fp,
                "annotators": report.annotators,
                "gold": report.gold,
                "reliability": report.reliability,
                "over_time": report.reliability_over_time,
                "images": report.images,
                "plots": keys,
                "at": utcnow().isoformat(),
            }
        ),
    )
    return report


def image_quality(ws: Workspace, image_id: int) -> ImageQuality:
    """One image's expert maps (by expert name), its consensus and spread, and the grid PNG; commits (reads only)."""
    from iea_data.core.quality import expert_grid_png

    with ws.unit() as uow:
        image = uow.session.get(Image, int(image_id))
        if image is None:
            from iea_data.core.errors import NotFoundError

            raise NotFoundError(f"no image with id {image_id}")
        hs = expert_heads(uow, [image.id]).get(image.id, [])
        names = {f"user:{uid}": n for uid, n in uow.session.execute(select(User.id, User.name))}
        cons = _consensus_heads(uow, [image.id]).get(image.id)
        cons_obj = uow.session.scalar(select(Label.map_object).where(Label.id == cons["label_id"])) if cons else None
        image_name = image.name
    maps = {names.get(c, c): m for c, m in (_load_maps(ws.objects, hs).items() if hs else [])}
    consensus = ws.objects.get_array(cons_obj).astype(np.float32) if cons_obj else None
    spread = (
        ws.objects.get_array(cons["spread_object"]).astype(np.float32) if cons and cons.get("spread_object") else None
    )
    if maps and (consensus is None or spread is None):
        from iea_data.core.quality import consensus_map

        res = consensus_map(maps) if len(maps) >= 2 else None
        consensus = consensus if consensus is not None else (res.map if res else next(iter(maps.values())))
        spread = spread if spread is not None else (res.spread if res else np.zeros_like(consensus))
    grid = None
    grid_key = f"{GRID_CACHE_PREFIX}{cons['label_id']}" if cons else None
    if grid_key is not None:  # drawn once per consensus revision (its experts are fixed by it)
        with ws.unit() as uow:
            obj = uow.session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == grid_key))
        grid = ws.objects.get_bytes(obj) if obj else None
    if grid is None and maps and consensus is not None and spread is not None:
        shape = next(iter(maps.values())).shape
        if consensus.shape == shape and spread.shape == shape:
            grid = expert_grid_png(maps, consensus, spread)
            if grid_key is not None and set(maps) == {names.get(c, c) for c in cons.get("experts", [])}:
                _put_setting(ws, grid_key, ws.objects.put_bytes(grid))
    return ImageQuality(image.id, image_name, sorted(maps), maps, consensus, spread, dict(cons or {}), grid)


def _html_table(rows: list[dict], columns) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_quality_report(report: QualityReport, out: str | Path) -> list[Path]:
    """Write ``report`` as ``index.html`` (every text escaped), CSV and Parquet tables and the PNG plots.

    Files: ``annotators.csv/.parquet``, ``gold.csv/.parquet``, ``images.csv/.parquet``,
    ``reliability.json``, the plots, then ``index.html``; each written to a temporary name and
    renamed. Returns the paths written.
    """
    import pandas as pd

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables = {
        "annotators": (report.annotators, ANNOTATOR_COLUMNS),
        "gold": (
            report.gold,
            (
                "user_name",
                "image_id",
                "label_id",
                "created_at",
                "mae",
                "bias",
                "sign_agreement",
                "iou_under",
                "iou_over",
            ),
        ),
        "images": (report.images, IMAGE_COLUMNS),
    }
    for name, (rows, cols) in tables.items():
        df = pd.DataFrame(rows, columns=list(dict.fromkeys([*cols, *(k for r in rows for k in r)])))
        p = folder / f"{name}.csv"
        atomic_write(p, df.to_csv(index=False).encode("utf-8"))
        written.append(p)
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        p = folder / f"{name}.parquet"
        atomic_write(p, buf.getvalue())
        written.append(p)
    p = folder / "reliability.json"
    atomic_write(
        p,
        (
            json.dumps(
                {"overall": report.reliability, "over_time": report.reliability_over_time, "fit": report.fit},
                indent=2,
                default=str,
            )
            + "\n"
        ).encode(),
    )
    written.append(p)
    for name, png in report.plots.items():
        p = folder / name
        atomic_write(p, png)
        written.append(p)
    rel = report.reliability or {}

    def fig(r: Optional[dict]) -> str:
        if not r:
            return "not measurable (fewer than two experts on any image)"
        return f"{r['value']} (95 % CI {r['ci_low']} to {r['ci_high']}; n = {r['n']})"

    plots = "".join(
        f'<figure><img src="{html.escape(n)}" alt="{html.escape(n)}"><figcaption>{html.escape(n)}</figcaption></figure>'
        for n in report.plots
    )
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Annotation quality</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body>
<h1>Annotation quality</h1>
<h2>Reliability</h2>
<p>ICC(2,1): {html.escape(fig(rel.get("icc")))}</p>
<p>Krippendorff's alpha (interval): {html.escape(fig(rel.get("alpha")))}</p>
<p>Images: {html.escape(str(rel.get("n_images", 0)))}; experts: {html.escape(str(rel.get("n_raters", 0)))}</p>
<h2>Annotators</h2>
{_html_table(report.annotators, ANNOTATOR_COLUMNS)}
<h2>Plots</h2>
{plots or "<p>nothing to plot yet (run iea quality consensus)</p>"}
<h2>Images, most disagreement first</h2>
{_html_table(report.images[:200], IMAGE_COLUMNS)}
</body></html>
"""
    p = folder / "index.html"
    atomic_write(p, doc.encode("utf-8"))
    written.append(p)
    return written
