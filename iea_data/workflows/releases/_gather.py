"""Read what a release needs from the catalog: samples, their scene references, scores, labels, splits."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from iea_data.core.files import sha256_file
from iea_data.store import Image, ImagePath, Label, Scene, Score, SplitMember, UnitOfWork

from ._errors import ReleaseError
from ._splits import Group, assign_splits, normalize_ratios, score_bin

__all__ = ["LABEL_POLICIES", "Gathered", "LabelRef", "Sample", "SceneRef", "check_stratify", "gather"]

log = logging.getLogger(__name__)

LABEL_POLICIES = ("consensus", "accepted", "prelabel", "refdiff")
_IMAGE_COLUMNS = {c.name for c in Image.__table__.columns}
_STRATIFY_EXTRA = ("score", "camera")


@dataclass(frozen=True)
class LabelRef:
    """One label revision a release uses."""

    id: int
    kind: str
    chain: str
    revision: int
    status: str
    map_object: str
    height: int
    width: int


@dataclass
class Sample:
    """One image of the release, with everything the writers need."""

    image_id: int
    name: str
    sha256: Optional[str]
    scene: Optional[str]
    meta: dict
    path: Optional[str] = None
    score: Optional[float] = None
    score_source: Optional[str] = None
    labels: list[LabelRef] = field(default_factory=list)
    split: str = ""
    position: int = 0
    #: ``--labels consensus``: the catalog's consensus revision (issue 15) when it was built from exactly
    #: these expert revisions (``labels``), with its method; else None and the build computes one.
    consensus_row: Optional[tuple[LabelRef, str]] = None

    @property
    def key(self) -> str:
        """Stable file key: the content sha256, else a hash of the name (no file yet)."""
        return self.sha256 or "name-" + hashlib.sha256(self.name.encode()).hexdigest()[:40]

    @property
    def ext(self) -> str:
        src = self.path or self.name
        return os.path.splitext(src)[1].lower() or ".img"


@dataclass
class SceneRef:
    name: str
    reference: Optional[str] = None
    reference_sha256: Optional[str] = None
    reference_path: Optional[str] = None


def _first_paths(s: Session, stale: list) -> dict[int, str]:
    """The first existing path of each image whose size and mtime match the catalog.

    A path whose size or mtime changed since ingest is re-hashed; changed bytes are
    reported in ``stale`` and not used.
    """
    sha_of = dict(s.execute(select(Image.id, Image.sha256).where(Image.sha256.is_not(None))).all())
    out: dict[int, str] = {}
    for image_id, path, size, mtime in s.execute(
        select(ImagePath.image_id, ImagePath.path, ImagePath.size, ImagePath.mtime_ns).order_by(ImagePath.id)
    ):
        if image_id in out:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size != size or st.st_mtime_ns != mtime:
            if sha256_file(path) != sha_of.get(image_id):
                stale.append((path, "the file changed since it was ingested; run `iea ingest` on it again"))
                continue
        out[image_id] = path
    return out


def _revision(s: Session) -> Optional[str]:
    """The catalog's migration, read on the unit's own connection (a second one would wait for its lock)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(s.connection()).get_current_revision()


def _labels(s: Session, policy: str) -> dict[int, list[LabelRef]]:
    cols = (
        Label.id,
        Label.image_id,
        Label.kind,
        Label.chain,
        Label.revision,
        Label.status,
        Label.map_object,
        Label.height,
        Label.width,
    )
    q = select(*cols).order_by(Label.image_id, Label.created_at, Label.id)
    if policy == "consensus":
        q = q.where(Label.kind == "annotation", Label.status == "accepted")
    elif policy == "accepted":
        q = q.where(Label.status == "accepted")
    elif policy == "prelabel":
        q = q.where(Label.kind == "model", Label.status != "rejected")
    else:
        q = q.where(Label.kind == "refdiff", Label.status != "rejected")
    per_image: dict[int, dict[str, LabelRef]] = defaultdict(dict)
    for lid, image_id, kind, chain, rev, status, obj, h, w in s.execute(q):
        ref = LabelRef(lid, kind, chain, rev, status, obj, h, w)
        if policy == "consensus":
            cur = per_image[image_id].get(chain)
            if cur is None or rev > cur.revision:  # the newest accepted revision of each expert
                per_image[image_id][chain] = ref
        else:
            per_image[image_id] = {"newest": ref}  # rows come oldest first
    return {i: sorted(d.values(), key=lambda r: r.chain) for i, d in per_image.items()}


def _consensus_rows(s: Session) -> dict[int, tuple[LabelRef, list[int], str]]:
    """image id -> (newest consensus revision, the expert revisions it lists, its method) (issue 15)."""
    import json

    q = (
        select(
            Label.id,
            Label.image_id,
            Label.kind,
            Label.chain,
            Label.revision,
            Label.status,
            Label.map_object,
            Label.height,
            Label.width,
            Label.params,
        )
        .where(Label.chain == "consensus")
        .order_by(Label.image_id, Label.revision)
    )
    out: dict[int, tuple[LabelRef, list[int], str]] = {}
    for lid, image_id, kind, chain, rev, status, obj, h, w, params in s.execute(q):
        p = json.loads(params) if params else {}
        out[image_id] = (
            LabelRef(lid, kind, chain, rev, status, obj, h, w),
            list(p.get("expert_revisions") or []),
            str(p.get("method")),
        )
    return out


def _stratum_value(samples: list[Sample], column: str):
    if column == "score":
        vals = [x.score for x in samples if x.score is not None]
        return score_bin(sum(vals) / len(vals)) if vals else -1
    values = Counter(x.meta.get(column) for x in samples)
    best = max(values.values())
    return sorted((str(v) if v is not None else "" for v, n in values.items() if n == best))[0]


def check_stratify(stratify: Sequence[str]) -> tuple[str, ...]:
    out = tuple(stratify or ())
    allowed = set(_STRATIFY_EXTRA) | _IMAGE_COLUMNS
    for c in out:
        if c not in allowed:
            raise ValueError(
                f"stratify must name score, camera or image columns (e.g. variant, format, exif_iso); got {c!r}"
            )
    return out


@dataclass(frozen=True)
class Gathered:
    """Everything a release takes from the catalog, read in one unit of work by :func:`gather`.

    Attributes
    ----------
    samples : list of Sample
        In split order, with ``split`` and ``position`` set.
    scenes : dict of str to SceneRef
        Every scene of the catalog by name, with its reference image.
    below_min_experts : list of (str, int)
        Images left out of a consensus release: (name, number of accepted experts).
    stale : list of (str, str)
        Files or images that could not be used: (path or name, reason).
    memberships : list of (Sample, str)
        (sample, split) pairs for the leak check, one per membership.
    revision : str or None
        The catalog's Alembic revision.
    backend : str
        The database dialect (``sqlite``, ``postgresql``).
    """

    samples: list[Sample]
    scenes: dict[str, SceneRef]
    below_min_experts: list[tuple[str, int]]
    stale: list[tuple[str, str]]
    memberships: list[tuple[Sample, str]]
    revision: Optional[str] = None
    backend: str = ""


def gather(
    uow: UnitOfWork,
    *,
    labels: str,
    splits_from: dict[str, str] | None,
    ratios,
    seed: int,
    stratify: tuple[str, ...],
    min_experts: int,
) -> Gathered:
    """Everything about the release from one read of the catalog, inside the caller's unit of work.

    An image in two catalog splits appears twice in ``memberships``. See :class:`Gathered`.
    """
    s = uow.session
    stale: list = []
    paths = _first_paths(s, stale)
    cols = [
        Image.id,
        Image.name,
        Image.sha256,
        Image.status,
        Image.scene_id,
        Image.variant,
        Image.ev,
        Image.width,
        Image.height,
        Image.format,
        Image.exif_camera_make,
        Image.exif_camera_model,
        Image.luma_mean,
        Image.frac_black,
        Image.frac_white,
        Image.thumbnail,
    ]
    extra = [c for c in stratify if c in _IMAGE_COLUMNS and c not in {col.key for col in cols}]
    cols += [getattr(Image, c) for c in extra]
    scenes_rows = s.execute(select(Scene.id, Scene.name, Scene.reference_image_id)).all()
    scene_name = {sid: name for sid, name, _ in scenes_rows}
    references = {ref: sid for sid, _, ref in scenes_rows if ref is not None}
    rows = s.execute(select(*cols).where(Image.status != "error").order_by(Image.id)).mappings().all()
    by_id: dict[int, dict] = {r["id"]: dict(r) for r in rows}
    score_rows = s.execute(select(Score.image_id, Score.value, Score.source).order_by(Score.created_at, Score.id)).all()
    scores: dict[int, tuple[float, str]] = {}
    by_source: dict[tuple[int, str], float] = {}
    for image_id, value, source in score_rows:
        scores[image_id] = (value, source)
        by_source[(image_id, source)] = value
    label_map = _labels(s, labels)
    consensus_rows = _consensus_rows(s) if labels == "consensus" else {}

    def make(r: dict, split_source: str | None = None) -> Sample:
        make_ = r.get("exif_camera_make") or ""
        model = r.get("exif_camera_model") or ""
        camera = (make_ + " " + model).strip() or None
        meta = {
            k: r.get(k)
            for k in (
                "variant",
                "ev",
                "width",
                "height",
                "format",
                "luma_mean",
                "frac_black",
                "frac_white",
                "thumbnail",
                *extra,
            )
        }
        meta["camera"] = camera
        smp = Sample(r["id"], r["name"], r["sha256"], scene_name.get(r["scene_id"]), meta, paths.get(r["id"]))
        if split_source is not None and (r["id"], split_source) in by_source:
            smp.score, smp.score_source = by_source[(r["id"], split_source)], split_source
        elif r["id"] in scores:
            smp.score, smp.score_source = scores[r["id"]]
        smp.labels = label_map.get(r["id"], [])
        fresh = consensus_rows.get(r["id"])
        if fresh is not None and fresh[1] == sorted(lab.id for lab in smp.labels):
            smp.consensus_row = (fresh[0], fresh[2])
        return smp

    below: list[tuple[str, int]] = []

    def qualifies(smp: Sample) -> bool:
        if labels == "consensus" and len(smp.labels) < min_experts:
            below.append((smp.name, len(smp.labels)))
            return False
        return True

    samples: list[Sample] = []
    memberships: list[tuple[Sample, str]] = []
    if splits_from:
        members = s.execute(
            select(SplitMember.split, SplitMember.image_id, SplitMember.position)
            .where(SplitMember.split.in_(list(splits_from.values())))
            .order_by(SplitMember.split, SplitMember.position, SplitMember.id)
        ).all()
        found = {m[0] for m in members}
        missing = [c for c in splits_from.values() if c not in found]
        if missing:
            known = sorted(set(s.scalars(select(SplitMember.split).distinct())))
            raise ReleaseError(
                f"splits_from names catalog split(s) {', '.join(map(repr, missing))} that have no images; "
                f"known splits: {', '.join(known) or 'none (import a manifest with `iea import-manifest`)'}"
            )
        per_catalog: dict[str, list] = defaultdict(list)
        for split, image_id, _pos in members:
            per_catalog[split].append(image_id)
        for release_split, catalog_split in splits_from.items():
            pos = 0
            for image_id in per_catalog[catalog_split]:
                r = by_id.get(image_id)
                if r is None:  # status error: nothing to release
                    name = s.scalar(select(Image.name).where(Image.id == image_id))
                    stale.append(
                        (
                            name,
                            f"status 'error' in the catalog (see `iea catalog errors`): "
                            f"left out of split {release_split!r}",
                        )
                    )
                    continue
                smp = make(r, f"manifest:{catalog_split}")
                if not qualifies(smp):
                    continue
                smp.split, smp.position = release_split, pos
                pos += 1
                samples.append(smp)
                memberships.append((smp, release_split))
    else:
        candidates = [make(r) for r in rows if r["id"] not in references]
        candidates = [c for c in candidates if qualifies(c)]
        groups: dict[str, list[Sample]] = defaultdict(list)
        for c in candidates:
            groups[f"scene:{c.scene}" if c.scene is not None else f"image:{c.name}#{c.image_id}"].append(c)
        plan = assign_splits(
            [Group(k, len(v), tuple(_stratum_value(v, col) for col in stratify)) for k, v in groups.items()],
            ratios,
            seed=seed,
        )
        per_split: dict[str, list[Sample]] = defaultdict(list)
        for k, v in groups.items():
            per_split[plan[k]].extend(v)
        for split in normalize_ratios(ratios):
            ordered = sorted(per_split[split], key=lambda x: (x.scene or "", x.name, x.image_id))
            for pos, smp in enumerate(ordered):
                smp.split, smp.position = split, pos
                samples.append(smp)
                memberships.append((smp, split))
    # scene references
    scenes: dict[str, SceneRef] = {}
    for _sid, name, ref in scenes_rows:
        if ref is None:
            scenes[name] = SceneRef(name)
            continue
        r = by_id.get(ref)
        scenes[name] = SceneRef(
            name,
            r["name"] if r else s.scalar(select(Image.name).where(Image.id == ref)),
            r["sha256"] if r else None,
            paths.get(ref),
        )
    return Gathered(
        samples=samples,
        scenes=scenes,
        below_min_experts=below,
        stale=stale,
        memberships=memberships,
        revision=_revision(s),
        backend=s.get_bind().dialect.name,
    )
