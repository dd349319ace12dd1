"""Consensus in the catalog: one ``consensus`` label revision per image with ≥ 2 experts, and its provenance.

:func:`compute_consensus` reads every expert's chain head (``submitted`` or ``accepted``),
fits the raters' pooled bias and noise over all images (continuous STAPLE,
:func:`iea_data.core.quality.estimate_raters`, streamed one image at a time) and writes, per
image, the estimated consensus (:func:`iea_data.core.quality.consensus_map`) — or a simpler
method (``median``, ``mean``, ``trimmed``) — as a revision of the image's ``consensus`` chain.
Its ``params`` record the method, the raters' parameters used, and the expert revisions it
was built from (``expert_revisions``: label ids). The run is resumable: an image whose
consensus head lists the current expert revisions (with the same method) and that is not
marked stale is skipped; images are written in transactions of :data:`WRITE_BATCH`. The pooled fit
reads a deterministic sample of at most :data:`FIT_IMAGES` images (:func:`fit_sample`). A save, import or
review that makes an expert revision ``submitted`` / ``accepted`` marks the image stale
(:func:`iea_data.workflows.labels.mark_consensus_stale`), and
:func:`update_consensus` recomputes just the stale images with the stored rater parameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from sqlalchemy import and_, delete, func, select

from iea_data.core.imaging import resize_map
from iea_data.core.progress import ProgressFn
from iea_data.store import ConsensusStale, Image, Label, WorkspaceSetting, utcnow
from iea_data.workflows.labels import CONSENSUS_INPUT_STATUSES, save_label_batch, store_label_map

from ._figures import sample_key, stored_figures

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import ObjectStore, UnitOfWork, Workspace

__all__ = [
    "CONSENSUS_RUN_METHODS",
    "RATER_PARAMS_KEY",
    "ConsensusReport",
    "ExpertHead",
    "FIT_IMAGES",
    "compute_consensus",
    "fit_sample",
    "update_consensus",
    "expert_heads",
    "stored_rater_params",
]

log = logging.getLogger(__name__)

CONSENSUS_RUN_METHODS = ("staple", "median", "mean", "trimmed")
#: :class:`WorkspaceSetting` key of the last pooled fit (JSON: method, params, fit info, time).
RATER_PARAMS_KEY = "quality.rater_params"


@dataclass(frozen=True)
class ExpertHead:
    """An expert's chain head on one image (the input of a consensus)."""

    label_id: int
    image_id: int
    chain: str
    author_id: int
    status: str
    map_object: str
    height: int
    width: int


@dataclass
class ConsensusReport:
    """What :func:`compute_consensus` did."""

    method: str
    n_images: int = 0  # images with >= 2 experts
    n_saved: int = 0
    n_skipped: int = 0  # consensus already up to date
    errors: list[tuple[str, str]] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)


def expert_heads(uow: UnitOfWork, image_ids: Optional[list[int]] = None) -> dict[int, list[ExpertHead]]:
    """image id -> the experts' chain heads in status submitted / accepted (by chain), inside the caller's unit."""
    newest_q = select(Label.image_id, Label.chain, func.max(Label.revision).label("rev")).where(
        Label.kind == "annotation"
    )
    if image_ids is not None:  # through the (image_id, kind) index, not the whole table
        newest_q = newest_q.where(Label.image_id.in_(image_ids))
    newest = newest_q.group_by(Label.image_id, Label.chain).subquery()
    q = (
        select(
            Label.id,
            Label.image_id,
            Label.chain,
            Label.author_id,
            Label.status,
            Label.map_object,
            Label.height,
            Label.width,
        )
        .join(
            newest,
            and_(Label.image_id == newest.c.image_id, Label.chain == newest.c.chain, Label.revision == newest.c.rev),
        )
        .where(Label.status.in_(CONSENSUS_INPUT_STATUSES))
        .order_by(Label.image_id, Label.chain)
    )
    if image_ids is not None:
        q = q.where(Label.image_id.in_(image_ids))
    out: dict[int, list[ExpertHead]] = defaultdict(list)
    for row in uow.session.execute(q):
        out[row[1]].append(ExpertHead(*row))
    return dict(out)


def _consensus_heads(uow: UnitOfWork, image_ids: Optional[list[int]] = None) -> dict[int, dict]:
    """image id -> params of the newest consensus revision (of ``image_ids``, default all)."""
    newest_q = select(Label.image_id, func.max(Label.revision).label("rev")).where(Label.chain == "consensus")
    if image_ids is not None:
        newest_q = newest_q.where(Label.image_id.in_(image_ids))
    newest = newest_q.group_by(Label.image_id).subquery()
    rows = uow.session.execute(
        select(Label.image_id, Label.id, Label.params)
        .join(newest, and_(Label.image_id == newest.c.image_id, Label.revision == newest.c.rev))
        .where(Label.chain == "consensus")
    )
    return {i: {"label_id": lid, **(json.loads(p) if p else {})} for i, lid, p in rows}


def _load_maps(objects: ObjectStore, heads: list[ExpertHead]) -> dict[str, np.ndarray]:
    """chain -> float32 map, all at the image's most common label shape."""
    shape = Counter((h.height, h.width) for h in heads).most_common(1)[0][0]
    out = {}
    for h in heads:
        m = objects.get_array(h.map_object).astype(np.float32)
        if m.shape != shape:
            m = np.clip(resize_map(m, shape), -1.0, 1.0).astype(np.float32)
        out[h.chain] = m
    return out


def _check_method(method: str) -> str:
    if method not in CONSENSUS_RUN_METHODS:
        raise ValueError(f"method must be one of {', '.join(CONSENSUS_RUN_METHODS)}, got {method!r}")
    return method


def _combine(maps: dict[str, np.ndarray], method: str, params) -> tuple[np.ndarray, np.ndarray, dict]:
    """(consensus map, spread map, per-rater weights and biases) by ``method`` (core ``CONSENSUS_METHODS``)."""
    from iea_data.core.quality import get_consensus

    res = get_consensus(method)(maps, params=params if method == "staple" else None)
    details = {
        "weights": {k: float(v) for k, v in res.weights.items()},
        "bias": {k: float(v) for k, v in res.bias.items()},
    }
    return res.map, res.spread, details


#: Images the pooled rater fit reads at most (a deterministic sample; every image is still written).
FIT_IMAGES = 2000
#: Each rater is in at least this many of the sampled images (or all of its images, if fewer).
FIT_MIN_PER_RATER = 50


def fit_sample(
    per_image: dict[int, list[ExpertHead]], keys: dict[int, str], *, max_images: Optional[int] = FIT_IMAGES
) -> list[int]:
    """The images the pooled fit reads: a deterministic sample, topped up so every rater is seen.

    Images are ordered by the sha256 of their key (the content hash, else the id), the first
    ``max_images`` taken, then, for each rater in fewer than :data:`FIT_MIN_PER_RATER` of them,
    the next images it labelled. ``max_images=None`` (or at least the image count): all images.

    Examples
    --------
    >>> h = lambda i, c: ExpertHead(i, i, c, 0, "accepted", "", 1, 1)
    >>> per = {i: [h(i, "a"), h(i, "b")] for i in range(200)}
    >>> per[200] = [h(200, "a"), h(200, "rare")]
    >>> s = fit_sample(per, {}, max_images=60)
    >>> len(s) <= 61, 200 in s, fit_sample(per, {}, max_images=60) == s
    (True, True, True)
    """
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None (every image), got {max_images!r}")
    ids = sorted(per_image)
    if max_images is None or max_images >= len(ids):
        return ids
    order = sorted(ids, key=lambda i: hashlib.sha256((keys.get(i) or str(i)).encode()).digest())
    chosen = order[:max_images]
    seen: Counter[str] = Counter(h.chain for i in chosen for h in per_image[i])
    total: Counter[str] = Counter(h.chain for i in ids for h in per_image[i])
    short = {c for c in total if seen[c] < min(FIT_MIN_PER_RATER, total[c])}
    if short:
        for i in order[max_images:]:
            if not short:
                break
            chains = {h.chain for h in per_image[i]}
            if chains & short:
                chosen.append(i)
                for c in chains:
                    seen[c] += 1
                short = {c for c in short if seen[c] < min(FIT_MIN_PER_RATER, total[c])}
    return sorted(chosen)


def _fit(
    ws: Workspace,
    per_image: dict[int, list[ExpertHead]],
    keys: dict[int, str],
    progress: Optional[ProgressFn],
    sample: list[int],
    total: int,
):
    from iea_data.core.quality import estimate_raters

    objects = ws.objects

    def stream() -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        for n, image_id in enumerate(sample, 1):
            yield keys.get(image_id) or str(image_id), _load_maps(objects, per_image[image_id])
            if progress is not None:
                progress(n, total)

    return estimate_raters(stream())


def stored_rater_params(ws: Workspace) -> Optional[dict]:
    """The last pooled fit saved by :func:`compute_consensus` (None before the first run); commits (reads only)."""
    with ws.unit() as uow:
        value = uow.session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == RATER_PARAMS_KEY))
    return json.loads(value) if value else None


#: Images whose consensus revisions are written in one unit of work (a stopped run keeps whole batches).
WRITE_BATCH = 256


def _prepare(objects: ObjectStore, image_id: int, heads: list[ExpertHead], method: str, params, fit_id, key: str):
    maps = _load_maps(objects, heads)
    cmap, spread, details = _combine(maps, method, params)
    spread_key = objects.put_array(spread.astype(np.float16))
    used = None
    if params is not None:
        used = {c: {"bias": params[c].bias, "sigma2": params[c].sigma2} for c in maps if c in params}
    clipped = np.clip(cmap, -1.0, 1.0).astype(np.float32)
    experts = sorted(h.chain for h in heads)
    provenance = {
        "method": method,
        "expert_revisions": sorted(h.label_id for h in heads),
        "experts": experts,
        "parameters": used,
        **details,
        "fit": fit_id,
        "spread_object": spread_key,
        "spread_mean": round(float(spread.astype(np.float64).mean()), 6),
        # the report's per-image figures, against the consensus as stored (float16): docs/quality.md
        **stored_figures(objects, maps, clipped.astype(np.float16), experts, key),
    }
    return image_id, store_label_map(objects, clipped), provenance


def _save_batch(ws: Workspace, prepared: list) -> None:
    """One unit of work: a consensus revision per prepared image (one insert), and their stale marks cleared."""
    if not prepared:
        return
    ids = [p[0] for p in prepared]
    with ws.unit() as uow:
        heads = _consensus_heads(uow, ids)
        save_label_batch(
            uow,
            [(i, stored, heads[i]["label_id"] if i in heads else None, prov) for i, stored, prov in prepared],
            kind="consensus",
            status="accepted",
        )
        uow.session.execute(delete(ConsensusStale).where(ConsensusStale.image_id.in_(ids)))


def _write_all(ws, todo, heads, method, params, fit_id, report, names, keys, progress, base, total) -> None:
    batch: list = []
    objects = ws.objects
    for n, image_id in enumerate(todo, 1):
        try:
            key = sample_key(keys.get(image_id), image_id)
            batch.append(_prepare(objects, image_id, heads[image_id], method, params, fit_id, key))
        except (ValueError, OSError) as exc:  # one bad image never stops the run
            report.errors.append((names.get(image_id, str(image_id)), str(exc)))
            log.warning("consensus of image %d failed: %s", image_id, exc)
        if len(batch) >= WRITE_BATCH or n == len(todo):
            _save_batch(ws, batch)
            report.n_saved += len(batch)
            batch = []
        if progress is not None:
            progress(base + n, total)


def _up_to_date(current: Optional[dict], heads: list[ExpertHead], method: str) -> bool:
    return (
        current is not None
        and current.get("method") == method
        and current.get("expert_revisions") == sorted(h.label_id for h in heads)
    )


def compute_consensus(
    ws: Workspace,
    *,
    method: str = "staple",
    redo: bool = False,
    fit_images: Optional[int] = FIT_IMAGES,
    progress: Optional[ProgressFn] = None,
) -> ConsensusReport:
    """Write a consensus revision for every image with ≥ 2 experts whose consensus is missing or out of date.

    Parameters
    ----------
    ws : Workspace
    method : {"staple", "median", "mean", "trimmed"}
        ``staple`` (default): rater bias and noise pooled over all images, then per image the
        precision-weighted mean of bias-corrected maps. The others: per-pixel statistics.
    redo : bool
        Recompute every image (e.g. after many new experts changed the pooled fit).
    fit_images : int or None
        ``staple``: the pooled rater fit reads at most this many images, a deterministic sample
        (:func:`fit_sample`; every rater in at least :data:`FIT_MIN_PER_RATER` of them); None: all.
        The consensus is still written for every image. At 2,000 images × 4,096 sampled pixels
        a rater's bias and noise are pinned to well under the 95 % interval the full fit gives
        (docs/quality.md); the sample keeps the run to one read of each map for big catalogs.
    progress : callable, optional
        ``progress(done, total)``: the fit pass, then the writing pass.

    Returns
    -------
    ConsensusReport
        Counts, failed images (name, reason) and the fit summary.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from iea_data.store import Image, User, init_workspace
    >>> from iea_data.workflows.labels import save_label
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add_all([Image(name="a.png", status="ok", width=2, height=1),
    ...                          User(name="x", role="annotator"), User(name="y", role="annotator")])
    ...     uow.session.flush()
    ...     for uid, v in ((1, 0.1), (2, 0.3)):
    ...         _ = save_label(uow, np.full((1, 2), v, np.float32), image_id=1, kind="annotation",
    ...                        author_id=uid, status="accepted")
    >>> r = compute_consensus(ws, method="mean")
    >>> r.n_images, r.n_saved, compute_consensus(ws, method="mean").n_skipped
    (1, 1, 1)

    Notes
    -----
    Maps are read one image at a time (streamed): the fit sample once for the fit, then every
    image once for its consensus. Consensus revisions are written in units of work of
    :data:`WRITE_BATCH` images (one insert each, :func:`~iea_data.workflows.labels.save_label_batch`),
    so a run stopped at any point keeps the batches it wrote and the next run goes on.
    """
    _check_method(method)
    with ws.unit() as uow:
        per_image = {i: h for i, h in expert_heads(uow).items() if len(h) >= 2}
        current = _consensus_heads(uow)
        stale = set(uow.session.scalars(select(ConsensusStale.image_id)))
        # every image, filtered here: an IN list of 40,000 ids passes SQLite's 32,766 bound variables
        keys, names = {}, {}
        for i, sha, name in uow.session.execute(select(Image.id, Image.sha256, Image.name)):
            if i in per_image:
                keys[i], names[i] = sha, name
    report = ConsensusReport(method=method, n_images=len(per_image))
    todo = [i for i in sorted(per_image) if redo or i in stale or not _up_to_date(current.get(i), per_image[i], method)]
    report.n_skipped = len(per_image) - len(todo)
    params, fit_id, sample = None, None, []
    if todo and method == "staple":
        sample = fit_sample(per_image, {k: v for k, v in keys.items() if v}, max_images=fit_images)
        total = len(sample) + len(todo)
        params, info = _fit(ws, per_image, {k: v for k, v in keys.items() if v}, progress, sample, total)
        fit_id = utcnow().isoformat(timespec="seconds")
        info_d = {k: getattr(info, k) for k in ("iterations", "converged", "max_change", "n_images", "n_skipped")}
        report.fit = {"id": fit_id, **info_d, "sampled": len(sample) < len(per_image), "of_images": len(per_image)}
        with ws.unit() as uow:
            value = json.dumps({"method": method, "fit": report.fit, "params": params.to_dict()}, default=str)
            row = uow.session.get(WorkspaceSetting, RATER_PARAMS_KEY)
            if row is None:
                uow.session.add(WorkspaceSetting(key=RATER_PARAMS_KEY, value=value))
            else:
                row.value, row.updated_at = value, utcnow()
    base = len(sample) if method == "staple" and todo else 0
    _write_all(ws, todo, per_image, method, params, fit_id, report, names, keys, progress, base, base + len(todo))
    return report


def update_consensus(ws: Workspace, *, progress: Optional[ProgressFn] = None) -> ConsensusReport:
    """Recompute only the images marked stale, with the stored pooled rater parameters (no refit); commits.

    Each image keeps the method of its current consensus revision (``staple`` with the stored
    pooled parameters; raters new since get the pooled median variance and zero bias); an
    image without one gets ``staple`` (fitted on the image alone before any pooled fit). Images
    that fell below two experts lose their stale mark only.
    """
    from iea_data.core.quality import RaterParams

    stored = stored_rater_params(ws)
    method = stored["method"] if stored else "staple"
    params = RaterParams.from_dict(stored["params"]) if stored and stored.get("params") else None
    fit_id = stored["fit"]["id"] if stored else None
    with ws.unit() as uow:
        stale = sorted(uow.session.scalars(select(ConsensusStale.image_id)))
        heads = expert_heads(uow, stale) if stale else {}
        names, keys = {}, {}
        for i, name, sha in uow.session.execute(select(Image.id, Image.name, Image.sha256).where(Image.id.in_(stale))):
            names[i], keys[i] = name, sha
        for i in stale:
            if len(heads.get(i, [])) < 2:
                uow.session.execute(delete(ConsensusStale).where(ConsensusStale.image_id == i))
        current = _consensus_heads(uow, stale) if stale else {}
    todo = [i for i in stale if len(heads.get(i, [])) >= 2]
    report = ConsensusReport(method=method, n_images=len(todo))
    by_method: dict[str, list[int]] = defaultdict(list)
    for i in todo:  # an image keeps the method of its current consensus revision
        m = current.get(i, {}).get("method")
        by_method[m if m in CONSENSUS_RUN_METHODS else method].append(i)
    done = 0
    for m, ids in sorted(by_method.items()):
        p = params if m == "staple" else None

        def step(n: int, _total: int, _base: int = done) -> None:
            if progress is not None:
                progress(_base + n, len(todo))

        _write_all(ws, ids, heads, m, p, fit_id if p is not None else None, report, names, keys, step, 0, len(ids))
        done += len(ids)
    return report
