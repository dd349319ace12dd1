"""Reading built releases: verify, list, diff."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from sqlalchemy import select

from iea_data.core.progress import ProgressFn
from iea_data.store import Release

from ._errors import ReleaseError
from ._files import MANIFEST_NAME, sha256_file, writable_paths
from ._schema import validate_manifest

__all__ = [
    "VerifyReport",
    "DiffReport",
    "verify_release",
    "list_releases",
    "diff_releases",
    "open_release",
    "read_manifest",
]

log = logging.getLogger(__name__)


_BATCH = 256
_SMALL = 1 << 22  # files up to 4 MiB are read in one call


def _check_batch(root: Path, rels: list[str], expected: dict) -> tuple[list[str], int, int]:
    """(changed files, bytes hashed, files checked) for a batch: size first, then sha256."""
    bad, n_bytes = [], 0
    for rel in rels:
        want = expected[rel]
        fd = os.open(root / rel, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size != want["size"]:
                bad.append(rel)
                continue
            if size <= _SMALL:
                digest = hashlib.sha256(os.read(fd, size + 1)).hexdigest()
            else:
                with os.fdopen(os.dup(fd), "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
        finally:
            os.close(fd)
        n_bytes += size
        if digest != want["sha256"]:
            bad.append(rel)
    return bad, n_bytes, len(rels)


def read_manifest(path) -> dict:
    """The validated ``manifest.json`` of a release folder."""
    path = Path(path)
    mf = path / MANIFEST_NAME
    try:
        data = json.loads(mf.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(f"{path} is not a release (no {MANIFEST_NAME})") from None
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{mf} is not valid JSON ({exc}); the release is damaged") from None
    return validate_manifest(data, source=str(mf))


def open_release(ref: str | os.PathLike[str], workspace=None) -> Path:
    """A release folder from a path, or from ``NAME@X.Y.Z`` in the workspace's ``releases/``."""
    text = os.fspath(ref)
    p = Path(text)
    if (p / MANIFEST_NAME).is_file():
        return p
    if "@" in text and workspace is not None:
        name, _, version = text.partition("@")
        from ._build import release_path

        q = release_path(workspace, name, version)  # the whole name and version checked: no "../", no "\n"
        if (q / MANIFEST_NAME).is_file():
            return q
        known = [
            f"{d.parent.name}@{d.name}"
            for d in sorted(workspace.releases_dir.glob("*/*"))
            if (d / MANIFEST_NAME).is_file()
        ]
        raise ReleaseError(
            f"no release {text} in {workspace.releases_dir}; built releases: {', '.join(known) or 'none'}"
        )
    raise ReleaseError(f"{text} is neither a release folder (with {MANIFEST_NAME}) nor NAME@X.Y.Z of the workspace")


@dataclass
class VerifyReport:
    """What :func:`verify_release` found. ``ok`` is True only when nothing changed, went missing or appeared.

    ``writable`` lists paths that still have a write bit (releases built before releases were
    made read-only); it does not make ``ok`` False.
    """

    path: str
    ok: bool
    n_files: int
    n_bytes: int
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    references: int = 0
    manifest_sha256: str = ""
    catalog_manifest_match: Optional[bool] = None
    writable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.n_bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mb_per_s"] = self.mb_per_s
        return d


def verify_release(
    path, *, workspace=None, workers: Optional[int] = None, progress: Optional[ProgressFn] = None
) -> VerifyReport:
    """Recompute every checksum of a release and name each changed, missing or extra file.

    Parameters
    ----------
    path : path-like or "NAME@X.Y.Z"
        The release (a name needs ``workspace``).
    workspace : Workspace, optional
        Also compare ``manifest.json``'s sha256 with the one recorded in the catalog.
    workers : int, optional
        Hashing threads (default: CPU count, at most 8).
    progress : callable(done, total), optional

    Returns
    -------
    VerifyReport
        ``changed`` (size or sha256 differ), ``missing``, ``extra`` (on disk, not in the
        manifest), sorted. References (files kept outside the release) are counted, not read.

    Examples
    --------
    >>> r = verify_release("ws/releases/iea-demo/1.0.0")   # doctest: +SKIP
    >>> r.ok, r.changed, r.missing, r.extra                # doctest: +SKIP
    (True, [], [], [])
    """
    t0 = time.perf_counter()
    root = open_release(path, workspace)
    manifest = read_manifest(root)
    mf_size, mf_sha = os.path.getsize(root / MANIFEST_NAME), sha256_file(root / MANIFEST_NAME)
    expected = {f["path"]: f for f in manifest["files"]}
    on_disk: set[str] = set()
    prefix = len(os.path.join(str(root), ""))
    for dirpath, _dirs, files in os.walk(root):
        base = os.path.join(dirpath, "")[prefix:].replace(os.sep, "/")
        on_disk.update(base + fn for fn in files)
    on_disk.discard(MANIFEST_NAME)
    missing = sorted(set(expected) - on_disk)
    extra = sorted(on_disk - set(expected))
    present = sorted(set(expected) & on_disk)
    changed: list[str] = []
    total = len(present)
    n_bytes = 0
    done = 0
    workers = workers or min(8, os.cpu_count() or 1)
    # Files are checked in batches (per-file thread hand-offs would cost more than hashing a small file).
    batches = [present[i : i + _BATCH] for i in range(0, total, _BATCH)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for bad, nb, count in pool.map(lambda b: _check_batch(root, b, expected), batches):
            changed.extend(bad)
            n_bytes += nb
            done += count
            if progress:
                progress(done, total)
    match = None
    if workspace is not None:
        with workspace.session() as s:
            recorded = s.scalar(
                select(Release.manifest_sha256).where(
                    Release.name == manifest["name"], Release.version == manifest["version"]
                )
            )
            s.rollback()
        if recorded is not None:
            match = recorded == mf_sha
            if not match:
                changed.append(MANIFEST_NAME)
    changed.sort()
    report = VerifyReport(
        path=str(root),
        ok=not (changed or missing or extra),
        n_files=len(expected),
        n_bytes=n_bytes + mf_size,
        changed=changed,
        missing=missing,
        extra=extra,
        references=len(manifest.get("references", [])),
        manifest_sha256=mf_sha,
        catalog_manifest_match=match,
        writable=writable_paths(root),
        seconds=time.perf_counter() - t0,
    )
    return report


def list_releases(ws) -> list[dict]:
    """Releases recorded in the catalog and release folders on disk, newest first.

    Each row: ``name``, ``version``, ``created_at``, ``path``, ``recorded`` (in the
    catalog), ``on_disk``, ``images``, ``splits`` (counts from the manifest), ``license``.
    """
    rows: dict[tuple[str, str], dict] = {}
    with ws.session() as s:
        for r in s.scalars(select(Release).order_by(Release.created_at.desc(), Release.id.desc())):
            rows[(r.name, r.version)] = {
                "name": r.name,
                "version": r.version,
                "created_at": str(r.created_at),
                "path": r.path,
                "recorded": True,
                "manifest_sha256": r.manifest_sha256,
            }
        s.rollback()
    if ws.releases_dir.is_dir():
        for d in sorted(ws.releases_dir.glob("*/*")):
            if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST_NAME).is_file():
                rows.setdefault(
                    (d.parent.name, d.name),
                    {
                        "name": d.parent.name,
                        "version": d.name,
                        "created_at": None,
                        "path": str(d),
                        "recorded": False,
                        "manifest_sha256": None,
                    },
                )
    out = []
    for row in rows.values():
        p = Path(row["path"])
        row["on_disk"] = (p / MANIFEST_NAME).is_file()
        row["images"], row["splits"], row["license"] = None, {}, None
        if row["on_disk"]:
            try:
                m = json.loads((p / MANIFEST_NAME).read_text(encoding="utf-8"))
                row["images"] = m["counts"]["images"]
                row["splits"] = m["splits"]["counts"]
                row["license"] = m["license"]
                row["created_at"] = row["created_at"] or m["created_at"]
            except (OSError, ValueError, KeyError):
                pass
        out.append(row)
    return out


@dataclass
class DiffReport:
    """What changed from release ``a`` to ``b`` (images matched by content sha256, else by name)."""

    a: str
    b: str
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)
    labels_changed: list[dict] = field(default_factory=list)
    labels_added: list[str] = field(default_factory=list)
    labels_removed: list[str] = field(default_factory=list)
    n_a: int = 0
    n_b: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _native_images(root: Path) -> dict[str, dict]:
    import pyarrow.parquet as pq

    t = root / "native" / "images.parquet"
    if not t.is_file():
        raise ReleaseError(f"release {root} has no native format (native/images.parquet); diff needs it")
    rows = {r["image_key"]: r for r in pq.read_table(t, columns=["image_key", "name", "split", "map_file"]).to_pylist()}
    sha = {
        r["image_key"]: r["map_sha256"]
        for r in pq.read_table(root / "native" / "labels.parquet", columns=["image_key", "map_sha256"]).to_pylist()
    }
    for key, r in rows.items():
        r["map_sha256"] = sha.get(key)
    return rows


def diff_releases(a, b, *, workspace=None) -> DiffReport:
    """Compare two releases (paths or ``NAME@X.Y.Z``).

    Returns
    -------
    DiffReport
        ``added`` / ``removed`` images (name, split), ``moved`` between splits (name,
        from, to), ``labels_changed`` with the per-image mean |delta| of the residual maps
        (``b`` resized to ``a``'s map size when they differ), images whose map appeared
        or disappeared. Lists sorted by name.

    Examples
    --------
    >>> d = diff_releases("iea@1.0.0", "iea@1.1.0", workspace=ws)   # doctest: +SKIP
    >>> [(m["name"], m["from"], m["to"]) for m in d.moved]         # doctest: +SKIP
    [('a_N1.png', 'train', 'test')]
    """
    from iea_data.core.imaging import resize_map

    ra, rb = open_release(a, workspace), open_release(b, workspace)
    ia, ib = _native_images(ra), _native_images(rb)
    rep = DiffReport(a=str(ra), b=str(rb), n_a=len(ia), n_b=len(ib))
    for k in sorted(set(ib) - set(ia), key=lambda k: ib[k]["name"]):
        rep.added.append({"name": ib[k]["name"], "split": ib[k]["split"]})
    for k in sorted(set(ia) - set(ib), key=lambda k: ia[k]["name"]):
        rep.removed.append({"name": ia[k]["name"], "split": ia[k]["split"]})
    for k in sorted(set(ia) & set(ib), key=lambda k: ia[k]["name"]):
        x, y = ia[k], ib[k]
        if x["split"] != y["split"]:
            rep.moved.append({"name": y["name"], "from": x["split"], "to": y["split"]})
        if x["map_file"] and y["map_file"]:
            if x["map_sha256"] is not None and x["map_sha256"] == y["map_sha256"]:
                continue  # the same bytes: no change, nothing to load
            ma = np.load(ra / x["map_file"], allow_pickle=False).astype(np.float32)
            mb = np.load(rb / y["map_file"], allow_pickle=False).astype(np.float32)
            if mb.shape != ma.shape:
                mb = resize_map(mb, ma.shape)
            delta = float(np.abs(ma.astype(np.float64) - mb).mean())
            if delta > 0:
                rep.labels_changed.append({"name": y["name"], "mean_abs_delta": delta})
        elif y["map_file"]:
            rep.labels_added.append(y["name"])
        elif x["map_file"]:
            rep.labels_removed.append(x["name"])
    return rep
