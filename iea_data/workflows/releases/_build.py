"""``build_release``: cut an immutable, checksummed, versioned release from the catalog."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from sqlalchemy import select

from iea_data import __version__
from iea_data.core.progress import ProgressFn
from iea_data.core.residuals import label_stats
from iea_data.store import Release, UnitOfWork, Workspace
from iea_data.store.objects import SourceChangedError, sync_filesystem

from ._consensus import CONSENSUS_METHODS, SIGN_TOLERANCE, TRIM_PROPORTION, agreement_stats, consensus_map
from ._errors import LeakageError, ReleaseError, ReleaseExistsError
from ._files import MANIFEST_NAME, make_read_only, remove_release_tree
from ._formats import (
    DEFAULT_SHARD_BYTES,
    FORMATS,
    FileLog,
    FormatWriter,
    ReleaseItem,
    WriteOptions,
    list_formats,
    npy_bytes,
)
from ._gather import LABEL_POLICIES, Gathered, Sample, check_stratify, gather
from ._lock import release_lock
from ._schema import MANIFEST_SCHEMA_VERSION, RELEASE_ARROW_SCHEMA, validate_manifest
from ._splits import DEFAULT_SCORE_BINS, NEAR_DUPLICATE_BITS, dhash64, find_leaks, normalize_ratios

__all__ = [
    "BuildReport",
    "ReleasePlan",
    "build_release",
    "build_manifest",
    "plan_release",
    "release_path",
    "parse_version",
    "NAME_PATTERN",
]

log = logging.getLogger(__name__)

#: Release and split names; always used with ``fullmatch`` (``$`` would accept a trailing newline).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@dataclass
class BuildReport:
    """What :func:`build_release` did.

    Attributes
    ----------
    name, version : str
    path : str
        The release folder.
    formats : list of str
    counts : dict
        Images per split.
    n_scenes, n_labelled : int
        Scenes in the release; images with a released residual map.
    unlabelled : list of str
        Images released without a map (no label under the policy).
    below_min_experts : list of (str, int)
        Images left out of a consensus release: (name, number of accepted experts).
    without_files : list of str
        Images released by name only: the catalog has no file for them (e.g. a manifest
        imported without its images). Tables and CSVs list them; no bytes, no WebDataset/HF sample.
    official_skipped : list of (str, str)
        Images left out of the official layout, with the reason.
    errors : list of (str, str)
        Files that could not be used (changed since ingest, unreadable map); the rest was built.
    leaks : list of dict
        Leak pairs found (only when ``allow_leaks``; otherwise the build fails).
    link_modes : dict
        Image files placed by ``hardlink`` (to the workspace's stored copy, never to the
        user's photo), ``copy`` or kept as a ``reference``.
    n_images_stored, n_bytes_stored : int
        Images (and their bytes) this build added to the workspace's read-only image store
        (``objects/images/``); 0 when every image was stored by an earlier release.
    warnings : list of str
        Things that built but are probably not what was meant (a split that got no image),
        each with what to do.
    manifest_sha256 : str
    n_files, n_bytes_written : int
        Files in the manifest; bytes of the files written (not the hard links).
    seconds : float
    """

    name: str
    version: str
    path: str
    formats: list[str]
    counts: dict[str, int]
    n_scenes: int = 0
    n_labelled: int = 0
    unlabelled: list[str] = field(default_factory=list)
    below_min_experts: list[tuple[str, int]] = field(default_factory=list)
    without_files: list[str] = field(default_factory=list)
    official_skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    leaks: list[dict] = field(default_factory=list)
    link_modes: dict[str, int] = field(default_factory=dict)
    n_images_stored: int = 0
    n_bytes_stored: int = 0
    warnings: list[str] = field(default_factory=list)
    manifest_sha256: str = ""
    n_files: int = 0
    n_bytes_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; anything else raises :class:`ReleaseError`.

    >>> parse_version("1.10.0")
    (1, 10, 0)
    """
    m = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if not m:
        raise ReleaseError(f"version must be MAJOR.MINOR.PATCH such as 1.0.0, got {version!r}")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def release_path(ws: Workspace, name: str, version: str) -> Path:
    """``WORKSPACE/releases/NAME/X.Y.Z`` (name and version checked)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ReleaseError(
            f"release name must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
            f"got {name!r}"
        )
    parse_version(version)
    return ws.releases_dir / name / version


def _splits_from(splits_from) -> Optional[dict[str, str]]:
    if splits_from is None:
        return None
    if isinstance(splits_from, str):
        splits_from = [splits_from]
    out = dict(splits_from) if isinstance(splits_from, Mapping) else {s: s for s in splits_from}
    if not out or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in out.items()):
        raise ValueError(
            f"splits_from must name catalog splits (a list, or {{release split: catalog split}}), got {splits_from!r}"
        )
    for k in out:
        if not NAME_PATTERN.fullmatch(k):
            raise ValueError(f"split name {k!r} must be letters, digits, '.', '_' or '-' (it names files)")
    if len(set(out.values())) != len(out):
        raise ValueError(f"splits_from maps two release splits to one catalog split: {out!r}")
    return out


def _residual(store, smp: Sample, policy: str, consensus: str) -> tuple[Optional[np.ndarray], dict]:
    if not smp.labels:
        return None, {}
    maps = [store.get_array(lab.map_object).astype(np.float32) for lab in smp.labels]
    if policy == "consensus" and smp.consensus_row is not None:  # the catalog's consensus revision (issue 15)
        row, method = smp.consensus_row
        residual = store.get_array(row.map_object).astype(np.float32)
        info = {"method": f"consensus:catalog:{method}", "label_id": row.id, "agreement": agreement_stats(maps)}
        info["sample"] = _pixel_sample(smp, maps)
    elif policy == "consensus":
        residual = consensus_map(maps, method=consensus)
        info = {"method": f"consensus:{consensus}", "agreement": agreement_stats(maps)}
        info["sample"] = _pixel_sample(smp, maps)
    else:
        residual = maps[0]
        info = {"method": f"{policy}:{smp.labels[0].chain}"}
    info["stats"] = label_stats(residual)
    return residual, info


#: Pixels per image sampled for the card's reliability figures (ICC(2,1), Krippendorff's alpha).
CARD_SAMPLE_PIXELS = 64


def _pixel_sample(smp: Sample, maps: list[np.ndarray]) -> Optional[dict[str, np.ndarray]]:
    """chain -> the values of each expert's map at a deterministic pixel sample (None for one expert)."""
    if len(maps) < 2 or len({m.shape for m in maps}) != 1:
        return None
    from iea_data.core.quality import pixel_sample

    h, w = maps[0].shape
    idx = pixel_sample((h, w), min(CARD_SAMPLE_PIXELS, h * w), key=smp.key)
    return {lab.chain: m.reshape(-1)[idx].astype(np.float64) for lab, m in zip(smp.labels, maps)}


def _dhash_of(store, thumb: Optional[str]) -> Optional[int]:
    if not thumb:
        return None
    import cv2

    try:
        data = store.get_bytes(thumb)
    except Exception:  # a missing thumbnail only weakens the near-duplicate check
        return None
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if gray is None else dhash64(gray)


def _check_leaks(
    ws: Workspace, gathered: Gathered, plan: ReleasePlan, *, progress: Optional[ProgressFn] = None
) -> list[dict]:
    """Leak pairs across splits: identical bytes, near-duplicate thumbnails, and (imported splits) cut scenes."""
    near_duplicate_bits, total = plan.near_duplicate_bits, len(gathered.samples)
    items = []
    hashes: dict[str, Optional[int]] = {}
    store = ws.objects
    for i, (smp, split) in enumerate(gathered.memberships):
        if progress and i % 256 == 0:
            progress(min(i, total), 2 * total)
        thumb = smp.meta.get("thumbnail")
        if near_duplicate_bits < 0:
            hashes[thumb] = None
        elif thumb not in hashes:
            hashes[thumb] = _dhash_of(store, thumb)
        items.append((smp.name, split, smp.sha256 or f"image-id:{smp.image_id}", hashes[thumb]))
    pairs = find_leaks(items, max_distance=near_duplicate_bits)
    if plan.mode == "from_catalog":  # imported splits may cut a scene; planned ones never do
        seen: dict[str, tuple[str, str]] = {}
        for smp, split in gathered.memberships:
            if smp.scene is None:
                continue
            first = seen.setdefault(smp.scene, (smp.name, split))
            if first[1] != split:
                pairs.append(
                    {
                        "kind": "same-scene",
                        "a": first[0],
                        "split_a": first[1],
                        "b": smp.name,
                        "split_b": split,
                        "distance": 0,
                    }
                )
                seen[smp.scene] = (smp.name, split)  # report each scene crossing once per new split
    return pairs


def _leak_message(pairs: list[dict]) -> str:
    kinds = Counter(p["kind"] for p in pairs)
    shown = "; ".join(
        f"{p['kind']}: {p['a']} ({p['split_a']}) ~ {p['b']} ({p['split_b']})"
        + (f" [{p['distance']} bits]" if p["kind"] == "near-duplicate" else "")
        for p in pairs[:5]
    )
    more = f"; and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    return (
        f"leakage across splits: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))} pair(s): {shown}{more}. "
        f"Fix the splits (or the scenes), or pass --allow-leaks to build anyway (the pairs go into the manifest)"
    )


def build_release(
    ws: Workspace,
    name: str,
    version: str,
    *,
    labels: str = "consensus",
    splits_from=None,
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: Sequence[str] = ("score",),
    formats: Sequence[str] = ("native",),
    copy: bool = False,
    min_experts: int = 1,
    consensus: str = "median",
    allow_leaks: bool = False,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    card: bool = True,
    progress: Optional[ProgressFn] = None,
) -> BuildReport:
    """Build ``WORKSPACE/releases/NAME/X.Y.Z/`` from the catalog and record it in the catalog.

    Parameters
    ----------
    ws : Workspace
    name : str
        Release name (letters, digits, ``.``, ``_``, ``-``).
    version : str
        ``MAJOR.MINOR.PATCH``. A built version never changes: building it again is refused.
    labels : {"consensus", "accepted", "prelabel", "refdiff"}
        ``consensus``: per-pixel consensus of each expert's newest accepted annotation,
        with agreement statistics; images with fewer than ``min_experts`` experts are left
        out and listed. ``accepted``: the newest accepted label of any kind. ``prelabel``:
        the newest model pre-label. ``refdiff``: the newest reference difference. (Rejected
        labels are never used.) Under the last three, images without a label are released
        without a map and listed.
    splits_from : list of str, or mapping, optional
        Take the splits from catalog split memberships (e.g. imported manifests), in their
        file order: ``["train", "valid"]`` or ``{"train": "train_256", "valid": "valid_256_2ev"}``
        (release split: catalog split). Otherwise splits are planned:
    ratios : 2 or 3 floats, or mapping
        Shares of ``train``, (``val``,) ``test``; scene-aware (a scene never spans two splits).
    seed : int
        The same catalog and seed give the same splits.
    stratify : sequence of str
        ``score`` (bins of 2 on the 0-10 scale) and metadata: ``camera`` or image columns
        such as ``variant``, ``format``.
    formats : sequence of {"native", "official", "webdataset", "hf"}
    copy : bool
        Give the release its own copy of each image instead of a hard link to the
        workspace's stored copy (e.g. to move the release to another disk).
    min_experts : int
        Consensus needs at least this many experts (>= 1).
    consensus : {"median", "mean", "trimmed_mean"}
    allow_leaks : bool
        Build even if images are identical or near-duplicates (or, for imported splits,
        scenes are cut) across splits; the pairs are recorded in the manifest.
    shard_bytes : int
        Largest WebDataset shard (default 256 MiB).
    near_duplicate_bits : int
        Thumbnails whose 64-bit dHashes differ in at most this many bits are near-duplicates
        (default 4; -1 turns the perceptual check off).
    card : bool
        Write the dataset card (README.md and its PNG plots).
    progress : callable(done, total), optional
        Called during the long steps: ``total`` is twice the number of images, the first
        half for the leak check (perceptual hashes of the thumbnails), the second for
        writing the files.

    Returns
    -------
    BuildReport

    Raises
    ------
    ReleaseExistsError
        The version exists (folder or catalog row).
    LeakageError
        Leak pairs across splits and not ``allow_leaks`` (nothing is written).
    ReleaseError
        Bad arguments (the message names them), or nothing to release.

    Notes
    -----
    The release is written in a hidden temporary folder beside the final one, made
    read-only (files 0444, folders 0555), then the catalog row is inserted and the folder
    renamed in the same step, so an interrupted build (even ``kill -9``) leaves no half
    release and a release under its final name is always read-only; the next build of that
    version removes the leftovers and starts again. A lock file (``.X.Y.Z.lock`` beside the
    release; ``fcntl`` on POSIX, ``msvcrt`` on Windows) serialises builds of one version.
    The catalog is read in one unit of work and the row written in a second one after the
    files, so that no write lock on the catalog is held while the files are written.

    Images are never linked to the user's photos: the first release that needs a photo
    stores one read-only copy of it in ``objects/images/`` (its bytes checked against the
    catalog's sha256; a photo that changed is reported in ``errors`` and released by name
    only), and every release hard-links that copy. Editing a photo in place therefore
    changes no release, and the second release of the same photos adds no image bytes
    (``n_bytes_stored == 0``).

    Examples
    --------
    >>> report = build_release(ws, "iea-demo", "1.0.0", labels="refdiff",
    ...                        formats=("native", "official"))          # doctest: +SKIP
    >>> report.counts                                                   # doctest: +SKIP
    {'train': 8, 'val': 0, 'test': 2}
    """
    t0 = time.perf_counter()
    plan = plan_release(
        ws,
        name,
        version,
        labels=labels,
        splits_from=splits_from,
        ratios=ratios,
        seed=seed,
        stratify=stratify,
        formats=formats,
        copy=copy,
        min_experts=min_experts,
        consensus=consensus,
        allow_leaks=allow_leaks,
        shard_bytes=shard_bytes,
        near_duplicate_bits=near_duplicate_bits,
        card=card,
    )
    plan.final.parent.mkdir(parents=True, exist_ok=True)
    with release_lock(plan.final.parent / f".{version}.lock"):
        with ws.unit() as uow:  # one read of the catalog (the row is written by _record, after the files)
            _refuse_existing(uow, plan)
            _remove_leftovers(plan)
            gathered = _gather(uow, plan)
        warnings = _empty_split_warnings(gathered.samples, plan.split_names, plan.shares, ratios)
        for w in warnings:
            log.warning("%s", w)
        if progress:  # two halves: the leak check (perceptual hashes), then the files
            progress(0, 2 * len(gathered.samples))
        leaks = _check_leaks(ws, gathered, plan, progress=progress)
        if leaks and not allow_leaks:
            raise LeakageError(_leak_message(leaks), leaks)
        tmp = plan.final.parent / f".{version}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        tmp.mkdir()
        try:
            report, flog = _write(ws, tmp, plan, gathered, progress=progress)
            report.leaks, report.warnings = leaks, warnings
            manifest = build_manifest(plan, gathered, report, flog, license=ws.settings.release_license)
            report.manifest_sha256 = _write_manifest(tmp, manifest)
            make_read_only(tmp)  # before the rename: a release under its final name is never writable
            _record(ws, plan, report.manifest_sha256, tmp)  # the last step: nothing can fail after it
        except BaseException:
            _discard(ws, tmp, plan)  # the final folder too when the rename happened but the row did not commit
            raise
    report.seconds = time.perf_counter() - t0
    log.info("built release %s@%s: %d images, %d files in %.1f s", name, version, *_sizes(report), report.seconds)
    return report


@dataclass(frozen=True)
class ReleasePlan:
    """The checked arguments of one build (see :func:`build_release` for each).

    Attributes
    ----------
    final : Path
        The release folder to make.
    splits_from : dict or None
        Release split -> catalog split, or None for planned splits.
    ratios : sequence or mapping
        The ratios as given (see ``shares``).
    shares : dict or None
        Planned splits' normalised ratios, or None.
    split_names : list of str
        The release's splits, in order.
    formats : list of str
        Chosen formats, without repeats, in the order given.
    """

    name: str
    version: str
    final: Path
    labels: str
    consensus: str
    min_experts: int
    seed: int
    ratios: Sequence[float] | Mapping[str, float]
    splits_from: Optional[dict[str, str]]
    shares: Optional[dict[str, float]]
    split_names: list[str]
    stratify: tuple[str, ...]
    formats: list[str]
    copy: bool
    allow_leaks: bool
    shard_bytes: int
    near_duplicate_bits: int
    card: bool

    @property
    def mode(self) -> str:
        """``from_catalog`` (imported splits) or ``planned``."""
        return "from_catalog" if self.splits_from else "planned"


def plan_release(
    ws: Workspace,
    name: str,
    version: str,
    *,
    labels: str = "consensus",
    splits_from=None,
    ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: Sequence[str] = ("score",),
    formats: Sequence[str] = ("native",),
    copy: bool = False,
    min_experts: int = 1,
    consensus: str = "median",
    allow_leaks: bool = False,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    card: bool = True,
) -> ReleasePlan:
    """Check :func:`build_release`'s arguments (each error names the argument) and return them as a plan.

    Nothing is written and the catalog is not read.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> plan = plan_release(ws, "demo", "1.0.0", ratios=(0.8, 0.2), formats=["official", "native", "official"])
    >>> plan.split_names, plan.formats, plan.mode
    (['train', 'test'], ['official', 'native'], 'planned')
    """
    final = release_path(ws, name, version)
    if labels not in LABEL_POLICIES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_POLICIES)}, got {labels!r}")
    if consensus not in CONSENSUS_METHODS:
        raise ValueError(f"consensus must be one of {', '.join(CONSENSUS_METHODS)}, got {consensus!r}")
    if not isinstance(min_experts, int) or isinstance(min_experts, bool) or min_experts < 1:
        raise ValueError(f"min_experts must be an integer >= 1, got {min_experts!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    formats = list(dict.fromkeys([formats] if isinstance(formats, str) else formats))
    if not formats or any(not isinstance(f, str) or f not in FORMATS for f in formats):
        raise ValueError(f"formats must be one or more of {', '.join(list_formats())}, got {formats!r}")
    sf = _splits_from(splits_from)
    shares = None if sf else normalize_ratios(ratios)
    for k in shares or ():
        if not NAME_PATTERN.fullmatch(k):
            raise ValueError(f"split name {k!r} must be letters, digits, '.', '_' or '-' (it names files)")
    stratify = check_stratify(stratify)
    for f in formats:  # checked before any file is written
        FORMATS.get(f).check()
    return ReleasePlan(
        name=name,
        version=version,
        final=final,
        labels=labels,
        consensus=consensus,
        min_experts=min_experts,
        seed=seed,
        ratios=ratios,
        splits_from=sf,
        shares=shares,
        split_names=list(sf) if sf else list(shares),
        stratify=stratify,
        formats=formats,
        copy=copy,
        allow_leaks=allow_leaks,
        shard_bytes=shard_bytes,
        near_duplicate_bits=near_duplicate_bits,
        card=card,
    )


def _refuse_existing(uow: UnitOfWork, plan: ReleasePlan) -> None:
    """Raise :class:`ReleaseExistsError` when the version is in the catalog or on disk."""
    name, version, final = plan.name, plan.version, plan.final
    row = uow.session.scalar(select(Release.path).where(Release.name == name, Release.version == version))
    if row is None and not final.exists():
        return
    where = (
        f"recorded in the catalog ({row})"
        if row is not None
        else (
            f"on disk at {final} but not in the catalog (verify it with `iea release verify {final}`; "
            f"to build this version again remove the read-only folder: "
            f"`find {final} -type d -exec chmod u+w {{}} + && rm -r {final}`)"
        )
    )
    raise ReleaseExistsError(
        f"release {name}@{version} exists, {where}. A version never changes; build a new version "
        f"(e.g. {'.'.join(map(str, _bump(version)))})"
    )


def _remove_leftovers(plan: ReleasePlan) -> None:
    """Remove the temporary folders of interrupted builds of this version (the caller holds the lock)."""
    for stale in plan.final.parent.glob(f".{plan.version}.tmp-*"):
        log.info("removing %s left by an interrupted build", stale)
        try:
            remove_release_tree(stale)
        except OSError as exc:
            log.warning("could not remove %s left by an interrupted build: %s", stale, exc)


def _gather(uow: UnitOfWork, plan: ReleasePlan) -> Gathered:
    """:func:`gather` with the plan's arguments; refuses an empty release."""
    gathered = gather(
        uow,
        labels=plan.labels,
        splits_from=plan.splits_from,
        ratios=plan.ratios,
        seed=plan.seed,
        stratify=plan.stratify,
        min_experts=plan.min_experts,
    )
    if not gathered.samples:
        below = gathered.below_min_experts
        detail = f"; {len(below)} image(s) have fewer than {plan.min_experts} accepted expert label(s)" if below else ""
        raise ReleaseError(f"nothing to release: no image qualifies{detail}")
    return gathered


def _sizes(report: BuildReport) -> tuple[int, int]:
    return sum(report.counts.values()), report.n_files


def build_manifest(
    plan: ReleasePlan,
    gathered: Gathered,
    report: BuildReport,
    flog: FileLog,
    *,
    license: str,
    created_at: Optional[str] = None,
) -> dict:
    """The release's ``manifest.json`` as a dict, checked against ``schemas/release/manifest.v1.schema.json``.

    Parameters
    ----------
    plan : ReleasePlan
        The build's checked arguments.
    gathered : Gathered
        What was read from the catalog (samples, their labels, the catalog revision).
    report : BuildReport
        What the writers did (counts, leaks).
    flog : FileLog
        Every file and reference of the release but the manifest.
    license : str
        The release licence (``release_license`` of the workspace settings).
    created_at : str, optional
        ISO 8601 time; default now (UTC, seconds).

    Returns
    -------
    dict
        Valid under the manifest schema (:class:`ManifestSchemaError` otherwise).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from iea_data.store import init_workspace
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> plan = plan_release(ws, "demo", "1.0.0", labels="refdiff")
    >>> g = Gathered(samples=[], scenes={}, below_min_experts=[], stale=[], memberships=[], backend="sqlite")
    >>> rep = BuildReport(name="demo", version="1.0.0", path=str(plan.final), formats=["native"], counts={})
    >>> m = build_manifest(plan, g, rep, FileLog(pathlib.Path(tempfile.mkdtemp())), license="CC-BY-4.0")
    >>> m["name"], m["splits"]["mode"], m["files"]
    ('demo', 'planned', [])
    """
    samples = gathered.samples
    manifest = {
        "manifest_schema": MANIFEST_SCHEMA_VERSION,
        "name": plan.name,
        "version": plan.version,
        "created_at": created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": __version__,
        "catalog": {"revision": gathered.revision, "backend": gathered.backend},
        "arrow_schema": RELEASE_ARROW_SCHEMA,
        "license": license,
        "label_policy": {
            "labels": plan.labels,
            "consensus": plan.consensus,
            "min_experts": plan.min_experts,
            "trim_proportion": TRIM_PROPORTION,
            "sign_tolerance": SIGN_TOLERANCE,
        },
        "splits": {
            "mode": plan.mode,
            "counts": report.counts,
            "seed": plan.seed,
            "ratios": plan.shares or {},
            "stratify": list(plan.stratify),
            "score_bins": DEFAULT_SCORE_BINS,
            "splits_from": plan.splits_from or {},
            "allow_leaks": plan.allow_leaks,
            "near_duplicate_bits": plan.near_duplicate_bits,
            "leaks": report.leaks,
        },
        "formats": plan.formats,
        "counts": {
            "images": len(samples),
            "scenes": report.n_scenes,
            "labelled": report.n_labelled,
            "without_files": len(report.without_files),
            "unlabelled": len(report.unlabelled),
            "below_min_experts": len(report.below_min_experts),
        },
        "files": [flog.files[k] for k in sorted(flog.files)],
        "references": [flog.references[k] for k in sorted(flog.references)],
        "label_revisions": [
            {
                "image": smp.name,
                "image_sha256": smp.sha256,
                "label_id": lab.id,
                "kind": lab.kind,
                "chain": lab.chain,
                "revision": lab.revision,
                "status": lab.status,
                "map_sha256": lab.map_object,
            }
            for smp in samples
            for lab in smp.labels
        ],
    }
    validate_manifest(manifest)
    return manifest


def _write_manifest(tmp: Path, manifest: dict) -> str:
    """Write ``manifest.json`` (flushed to disk) into the release being built; return its sha256."""
    data = _manifest_bytes(manifest)
    with open(tmp / MANIFEST_NAME, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def _record(ws: Workspace, plan: ReleasePlan, manifest_sha256: str, tmp: Path) -> None:
    """The catalog row and the rename in one step: the row commits only after the rename."""
    with ws.unit() as uow:
        uow.session.add(
            Release(name=plan.name, version=plan.version, manifest_sha256=manifest_sha256, path=str(plan.final))
        )
        uow.session.flush()
        os.rename(tmp, plan.final)
        try:
            fd = os.open(plan.final.parent, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        except OSError:
            pass


def _discard(ws: Workspace, tmp: Path, plan: ReleasePlan) -> None:
    """Remove a failed build's folder, and the final one if it got there but its catalog row did not commit.

    The row is looked up again: an interrupt (Ctrl-C) can land just after the commit, and a
    recorded release is kept.
    """
    final = plan.final if plan.final.exists() and not _recorded(ws, plan) else None
    for leftover in (tmp, final):
        if leftover is not None:
            try:
                remove_release_tree(leftover)
            except OSError as exc:
                log.warning("could not remove %s: %s", leftover, exc)


def _recorded(ws: Workspace, plan: ReleasePlan) -> bool:
    """Whether the catalog holds the release's row (False when the catalog cannot be read)."""
    try:
        with ws.unit() as uow:
            q = select(Release.id).where(Release.name == plan.name, Release.version == plan.version)
            return uow.session.scalar(q) is not None
    except Exception:  # the build is failing already: an unreadable catalog keeps no folder
        return False


def _empty_split_warnings(samples: list[Sample], split_names: list[str], shares: Optional[dict], ratios) -> list[str]:
    """One line per split that got no image although its share is above 0, saying what to do."""
    counts = Counter(smp.split for smp in samples)
    empty = [s for s in split_names if not counts.get(s) and (shares is None or shares.get(s, 0) > 0)]
    if not empty:
        return []
    if shares is None:
        return [
            f"split {s!r} got no image (its catalog split has none that qualify under the label policy); "
            f"drop it from --splits-from, or label its images"
            for s in empty
        ]
    groups = len({f"scene:{smp.scene}" if smp.scene is not None else f"image:{smp.image_id}" for smp in samples})
    given = ",".join(f"{v:g}" for v in (ratios.values() if isinstance(ratios, Mapping) else ratios))
    return [
        f"split {s!r} got no scene: {groups} scene(s) (images without a scene count one each) cannot fill "
        f"{len(split_names)} splits at ratios {given}; use fewer splits (e.g. --ratios 0.8,0.2), other ratios, "
        f"or more scenes"
        for s in empty
    ]


def _manifest_bytes(manifest: dict) -> bytes:
    """Readable and fast: top-level fields indented, one compact line per file / reference / revision."""
    out = ["{"]
    items = list(manifest.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            rows = ",\n".join("  " + json.dumps(x, ensure_ascii=False) for x in v)
            out.append(f" {json.dumps(k)}: [\n{rows}\n ]{comma}")
        else:
            out.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{comma}")
    out.append("}\n")
    return "\n".join(out).encode("utf-8")


def _bump(version: str) -> tuple[int, int, int]:
    a, b, c = parse_version(version)
    return a, b, c + 1


def _write(
    ws: Workspace, tmp: Path, plan: ReleasePlan, gathered: Gathered, *, progress: Optional[ProgressFn]
) -> tuple[BuildReport, FileLog]:
    """Write every chosen format and the card into ``tmp``; return the report and the log of the files."""
    samples, split_names, labels, consensus = gathered.samples, plan.split_names, plan.labels, plan.consensus
    flog = FileLog(tmp)
    counts = {s: 0 for s in split_names}
    report = BuildReport(
        name=plan.name, version=plan.version, path=str(plan.final), formats=list(plan.formats), counts=counts
    )
    report.below_min_experts = list(gathered.below_min_experts)
    report.errors = list(gathered.stale)
    from ._card import CardStats

    stats = CardStats(split_names)
    total = len(samples)
    store = ws.objects
    stored: dict[str, Optional[str]] = {}

    def to_store(path: Optional[str], sha256: Optional[str], name: str) -> Optional[str]:
        """The workspace's read-only copy of ``path`` (stored now if new), or None (error recorded)."""
        if path is None or not sha256:
            return path
        if sha256 not in stored:
            try:
                # one syncfs below instead of an fsync per image (40,000 fsyncs take minutes on a disk)
                dest, n = store.put_image_file(path, sha256, os.path.splitext(path)[1], durable=False)
                stored[sha256] = str(dest)
                if n:
                    report.n_images_stored += 1
                    report.n_bytes_stored += n
            except (SourceChangedError, FileNotFoundError, PermissionError) as exc:
                report.errors.append(
                    (
                        name,
                        str(exc)
                        if isinstance(exc, SourceChangedError)
                        else f"could not read {path} ({exc.strerror}); released by name only",
                    )
                )
                stored[sha256] = None
        return stored[sha256]

    used_scenes = {smp.scene for smp in samples if smp.scene is not None}
    for scene_name, ref in gathered.scenes.items():
        if scene_name in used_scenes and ref.reference_path:
            ref.reference_path = to_store(ref.reference_path, ref.reference_sha256, ref.reference or scene_name)
    options = WriteOptions(
        copy=plan.copy,
        labels=labels,
        shard_bytes=plan.shard_bytes,
        scenes=gathered.scenes,
        split_names=list(split_names),
    )
    writers: dict[str, FormatWriter] = {}
    for fmt in list_formats():  # registration order, whatever order they were asked in
        if fmt in plan.formats:
            writers[fmt] = FORMATS.get(fmt)()
            writers[fmt].open(flog, options)
    if progress:
        progress(total, 2 * total)
    for i, smp in enumerate(samples):
        smp.path = to_store(smp.path, smp.sha256, smp.name)
        counts[smp.split] = counts.get(smp.split, 0) + 1
        try:
            residual, info = _residual(store, smp, labels, consensus)
        except Exception as exc:  # one unreadable map never stops the build
            report.errors.append((smp.name, f"label map unreadable: {exc}"))
            residual, info = None, {}
        if residual is None:
            report.unlabelled.append(smp.name)
        else:
            report.n_labelled += 1
        if smp.path is None:
            report.without_files.append(smp.name)
        item = ReleaseItem(smp, residual, npy_bytes(residual) if residual is not None else None, info)
        for writer in writers.values():
            writer.add(item)
        stats.add(smp, residual, info)
        if progress and (i + 1 == total or (i + 1) % 64 == 0):
            progress(total + i + 1, 2 * total)
    if report.n_images_stored:  # the stored copies are on disk before any release row names them
        sync_filesystem(store.root)
    for writer in writers.values():
        writer.close()
    report.official_skipped = list(writers["official"].left_out) if "official" in writers else []
    report.n_scenes = len({smp.scene for smp in samples if smp.scene is not None})
    if plan.card:
        from ._card import write_card

        write_card(ws, flog, stats, report, labels=labels, consensus=consensus)
    # every file on disk is in the log, and nothing else
    on_disk = {os.path.relpath(os.path.join(d, f), tmp).replace(os.sep, "/") for d, _, fs in os.walk(tmp) for f in fs}
    unknown = on_disk - set(flog.files)
    for rel in sorted(unknown):
        flog.add_existing(rel)
    report.link_modes = dict(flog.modes)
    report.n_files = len(flog.files)
    report.n_bytes_written = sum(f["size"] for f in flog.files.values() if f["mode"] == "written")
    return report, flog
