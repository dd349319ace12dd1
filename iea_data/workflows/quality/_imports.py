"""Labels made elsewhere come in: the released IEA40K maps (kind ``imported``) and another tool's expert maps.

Both imports check every file before writing anything and write in one unit of work, so a
bad file (named in the error, with what was expected) imports nothing. Re-running an
import with the same files adds nothing: a revision whose provenance records the same file
sha256 is already the chain head.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import select

from iea_data.core.errors import IeaError, NotFoundError
from iea_data.core.imaging import label_shape, resize_map
from iea_data.core.residuals import OFFICIAL_MAP_SCALE, OFFICIAL_MAP_SIZE, official_map_to_residual
from iea_data.store import Image, SplitMember, User
from iea_data.workflows.labels import chain_head, chain_key, save_label
from iea_data.workflows.users import NAME_PATTERN

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UnitOfWork, Workspace

__all__ = [
    "IMPORT_SIGNS",
    "IMPORT_STATUSES",
    "ImportRefused",
    "ImportReport",
    "check_expert_map",
    "check_released_map",
    "check_released_maps_dir",
    "import_released_maps",
    "import_expert_labels",
]

IMPORT_STATUSES = ("submitted", "accepted")
#: ``project``: the file holds ``Y(photo) − Y(ideal)``; ``released``: ``ideal − test`` (negated on import).
IMPORT_SIGNS = ("project", "released")
RELEASED_CONVERSION = (
    "official_map_to_residual: residual = -map / 255 (released ideal - test x 255 -> Y(photo) - Y(ideal))"
)
_MAX_MAP_BYTES = 256 * 1024 * 1024


class ImportRefused(IeaError):
    """A map file was refused; nothing was imported."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes
    ----------
    n_files : int
        Map files considered.
    n_saved : int
        New label revisions written.
    n_unchanged : int
        Files already imported (the chain head records the same sha256).
    n_without_map : int
        Released import: split rows without a ``<img_id stem>.npy`` file.
    unmatched : list of str
        Files that name no image of the split / catalog (left out, named here).
    """

    n_files: int = 0
    n_saved: int = 0
    n_unchanged: int = 0
    n_without_map: int = 0
    unmatched: list[str] = field(default_factory=list)


def _read_npy(path: Path) -> tuple[np.ndarray, str]:
    """The array in ``path`` (no pickles) and the sha256 of its bytes."""
    try:
        size = path.stat().st_size
        if size > _MAX_MAP_BYTES:
            raise ImportRefused(f"{path}: {size} bytes is more than a label map can be ({_MAX_MAP_BYTES} at most)")
        data = path.read_bytes()
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ImportRefused:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ImportRefused(f"{path}: not a readable .npy array ({exc}); nothing was imported") from None
    if not isinstance(arr, np.ndarray):
        raise ImportRefused(f"{path}: holds an archive, not one array; nothing was imported")
    return arr, hashlib.sha256(data).hexdigest()


def check_released_map(arr: np.ndarray, path: os.PathLike[str] | str) -> np.ndarray:
    """A released IEA40K map as a project residual, or :class:`ImportRefused` naming ``path``.

    Expected: float (16/32/64-bit), shape (256, 256), finite, in [-255, 255] (``(ideal - test) * 255``).

    Examples
    --------
    >>> r = check_released_map(np.full((256, 256), 63.75, np.float32), "a.npy")
    >>> float(r[0, 0]), r.dtype
    (-0.25, dtype('float32'))
    >>> try:
    ...     check_released_map(np.zeros((128, 128), np.float32), "b.npy")
    ... except ImportRefused as exc:
    ...     print(str(exc)[:47])
    b.npy: shape (128, 128), expected (256, 256) (t
    """
    if not np.issubdtype(arr.dtype, np.floating):
        raise ImportRefused(
            f"{path}: dtype {arr.dtype}, expected a float map (released maps are float32); nothing was imported"
        )
    if arr.shape != OFFICIAL_MAP_SIZE:
        raise ImportRefused(
            f"{path}: shape {arr.shape}, expected {OFFICIAL_MAP_SIZE} (the released maps' size); nothing was imported"
        )
    a64 = arr.astype(np.float64)
    if not np.isfinite(a64).all():
        raise ImportRefused(f"{path}: holds NaN or infinite values; nothing was imported")
    lo, hi = float(a64.min()), float(a64.max())
    if lo < -OFFICIAL_MAP_SCALE or hi > OFFICIAL_MAP_SCALE:
        raise ImportRefused(
            f"{path}: values in [{lo:g}, {hi:g}], expected [-255, 255] ((ideal - test) x 255); nothing was imported"
        )
    return official_map_to_residual(arr.astype(np.float32))


def check_expert_map(arr: np.ndarray, path: os.PathLike[str] | str, *, sign: str) -> np.ndarray:
    """An expert map from another tool as a project residual (float32, [-1, 1]), or :class:`ImportRefused`.

    Examples
    --------
    >>> check_expert_map(np.array([[0.5, -1.0]], np.float64), "x.npy", sign="released").tolist()
    [[-0.5, 1.0]]
    >>> check_expert_map(np.array([[2.0]], np.float32), "y.npy", sign="project")
    Traceback (most recent call last):
    ...
    iea_data.workflows.quality._imports.ImportRefused: y.npy: values in [2, 2], expected [-1, 1]; nothing was imported
    """
    if sign not in IMPORT_SIGNS:
        raise ValueError(f"sign must be one of {', '.join(IMPORT_SIGNS)}, got {sign!r}")
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating) or min(arr.shape) < 1:
        raise ImportRefused(
            f"{path}: dtype {arr.dtype}, shape {arr.shape}; expected a float (h, w) map; nothing was imported"
        )
    a64 = arr.astype(np.float64)
    if not np.isfinite(a64).all():
        raise ImportRefused(f"{path}: holds NaN or infinite values; nothing was imported")
    lo, hi = float(a64.min()), float(a64.max())
    if lo < -1.0 or hi > 1.0:
        raise ImportRefused(f"{path}: values in [{lo:g}, {hi:g}], expected [-1, 1]; nothing was imported")
    out = (-a64 if sign == "released" else a64).astype(np.float32) + np.float32(0.0)
    return out


def check_released_maps_dir(maps_dir: str | os.PathLike[str]) -> int:
    """Check every ``*.npy`` in ``maps_dir`` as a released map before anything is imported; the number of files.

    ``iea import-manifest --maps`` calls it before importing the manifest, so that a bad map
    leaves the catalog as it was (no split without its maps).

    Raises
    ------
    ImportRefused
        The first bad file, named.
    """
    folder = Path(maps_dir)
    if not folder.is_dir():
        raise NotFoundError(f"maps folder {folder} does not exist or is not a folder")
    files = sorted(folder.glob("*.npy"))
    for path in files:
        check_released_map(_read_npy(path)[0], path)
    return len(files)


def _same_file(head, sha: str) -> bool:
    if head is None or not head.params:
        return False
    return json.loads(head.params).get("sha256") == sha


def import_released_maps(ws: Workspace, maps_dir: str | os.PathLike[str], *, split: str) -> ImportReport:
    """Import the released IEA40K maps of a split as label revisions of kind ``imported``; commits.

    Parameters
    ----------
    ws : Workspace
    maps_dir : path-like
        Folder with ``<img_id stem>.npy`` per manifest row (float32 (256, 256), ``(ideal - test) * 255``).
    split : str
        A split already imported (``iea import-manifest``).

    Returns
    -------
    ImportReport

    Raises
    ------
    ImportRefused
        A map of the wrong dtype, shape or range (the file named); nothing is imported.

    Notes
    -----
    The one sign/units conversion is :func:`iea_data.core.residuals.official_map_to_residual`;
    the maps keep the released 256 x 256 resolution (resized where compared). Provenance
    (``params``): ``file``, ``sha256``, ``conversion``, ``split``. Status ``accepted``: these
    are published labels.
    """
    folder = Path(maps_dir)
    if not folder.is_dir():
        raise NotFoundError(f"maps folder {folder} does not exist or is not a folder")
    report = ImportReport()
    with ws.unit() as uow:
        rows = uow.session.execute(
            select(Image.id, Image.name)
            .join(SplitMember, SplitMember.image_id == Image.id)
            .where(SplitMember.split == split)
            .order_by(SplitMember.position)
        ).all()
        if not rows:
            raise NotFoundError(f"split {split!r} has no images; import its manifest first")
        by_stem = {Path(name).stem: image_id for image_id, name in rows}
        files = sorted(folder.glob("*.npy"))
        report.n_files = len(files)
        checked = []
        for path in files:
            image_id = by_stem.get(path.stem)
            if image_id is None:
                report.unmatched.append(path.name)
                continue
            arr, sha = _read_npy(path)
            checked.append((image_id, path, sha, check_released_map(arr, path)))
        report.n_without_map = len(by_stem) - len(checked)
        _save_all(
            uow,
            checked,
            kind="imported",
            author_id=None,
            status="accepted",
            report=report,
            extra={"split": split, "conversion": RELEASED_CONVERSION},
        )
    return report


def _save_all(uow: UnitOfWork, checked, *, kind, author_id, status, report, extra) -> None:
    chain = chain_key("annotation", author_id=author_id) if kind == "annotation" else chain_key(kind)
    for image_id, path, sha, residual in checked:
        head = chain_head(uow, image_id, chain)
        if _same_file(head, sha):
            report.n_unchanged += 1
            continue
        params = {"file": path.name, "sha256": sha, **extra}
        save_label(
            uow,
            residual,
            image_id=image_id,
            kind=kind,
            parent_id=head.id if head is not None else None,
            author_id=author_id,
            params=params,
            status=status,
        )
        report.n_saved += 1


def _expert(uow: UnitOfWork, author: str) -> int:
    """The id of user ``author``, created as an annotator without a password (cannot sign in) if missing."""
    if not isinstance(author, str) or not NAME_PATTERN.fullmatch(author):
        raise IeaError(
            "author must be a user name of letters, digits and _ . @ - (starting with a letter or digit), "
            f"got {author!r}"
        )
    row = uow.session.scalar(select(User).where(User.name == author))
    if row is None:
        row = User(name=author, role="annotator", password_hash=None, enabled=True)
        uow.session.add(row)
        uow.session.flush()
    elif not row.enabled:
        raise IeaError(f"user {author!r} is disabled; enable them (`iea users enable`) before importing their maps")
    return int(row.id)


def import_expert_labels(
    ws: Workspace,
    folder: str | os.PathLike[str],
    *,
    author: str,
    status: str = "submitted",
    sign: str = "project",
) -> ImportReport:
    """Import an expert's maps from another tool as revisions of their chain ``user:<id>``; commits.

    Parameters
    ----------
    ws : Workspace
    folder : path-like
        ``<image name>.npy`` per image (``photo.png.npy`` or ``photo.npy``): float (h, w) in
        [-1, 1] at any resolution, resized to the image's label resolution.
    author : str
        The expert; created as an annotator without a password if missing (an account that
        cannot sign in until an admin sets one with ``iea users passwd``).
    status : {"submitted", "accepted"}
    sign : {"project", "released"}
        ``released``: the files hold ``ideal − test`` and are negated.

    Returns
    -------
    ImportReport

    Raises
    ------
    ImportRefused
        A map of the wrong dtype, shape or range (the file named); nothing is imported.
    """
    if status not in IMPORT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(IMPORT_STATUSES)}, got {status!r}")
    if sign not in IMPORT_SIGNS:
        raise ValueError(f"sign must be one of {', '.join(IMPORT_SIGNS)}, got {sign!r}")
    src = Path(folder)
    if not src.is_dir():
        raise NotFoundError(f"folder {src} does not exist or is not a folder")
    report = ImportReport()
    max_side = ws.settings.label_max_side
    with ws.unit() as uow:
        files = sorted(src.glob("*.npy"))
        report.n_files = len(files)
        names = [p.name[: -len(".npy")] for p in files]
        images: dict[str, tuple[int, Optional[int], Optional[int]]] = {}
        for image_id, name, h, w in uow.session.execute(
            select(Image.id, Image.name, Image.height, Image.width).where(Image.status == "ok").order_by(Image.id)
        ):
            images.setdefault(name, (image_id, h, w))
            images.setdefault(Path(name).stem, (image_id, h, w))
        checked = []
        for path, name in zip(files, names):
            hit = images.get(name)
            if hit is None:
                report.unmatched.append(path.name)
                continue
            image_id, h, w = hit
            arr, sha = _read_npy(path)
            residual = check_expert_map(arr, path, sign=sign)
            shape = label_shape(h, w, max_side) if h and w else residual.shape
            if residual.shape != shape:
                residual = np.clip(resize_map(residual, shape), -1.0, 1.0).astype(np.float32)
            checked.append((image_id, path, sha, residual))
        author_id = _expert(uow, author)
        _save_all(
            uow,
            checked,
            kind="annotation",
            author_id=author_id,
            status=status,
            report=report,
            extra={"imported_from": "labels import", "sign": sign, "n_strokes": 0},
        )
    return report
