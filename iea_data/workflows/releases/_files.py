"""Files of a release: hashing, placing image bytes without copying them twice, resolving references,
making a built release read-only and removing one.

A release never shares an inode with the user's photos. The first release that needs a
photo stores one read-only copy in the workspace (``objects/images/ab/<sha256>.<ext>``,
see :meth:`iea_data.store.objects.ObjectStore.put_image_file`); every release holds a hard link
to that copy (no extra disk space after the first), or a copy of it when asked. Where the
file system refuses a hard link, the release records a *reference* (relative path, size,
sha256) and :func:`resolve_file` finds the bytes in the store, else through the catalog.
A built release is read-only: files 0444, folders 0555 (:func:`make_read_only`);
:func:`remove_release_tree` removes one without touching the stored copies' modes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

from iea_data.core.files import sha256_file

from ._errors import ReleaseError

__all__ = [
    "sha256_file",
    "place_file",
    "resolve_file",
    "release_workspace",
    "make_read_only",
    "writable_paths",
    "remove_release_tree",
    "MANIFEST_NAME",
]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def place_file(src: str | os.PathLike[str], dst: Path, *, copy: bool = False) -> str:
    """Put ``src``'s bytes at ``dst``: a hard link, or a copy when asked.

    ``src`` is the workspace's stored copy of an image, never the user's photo (a hard link
    would let an edit of either change the other).

    Returns
    -------
    str
        ``"hardlink"`` or ``"copy"``, or ``"reference"`` when the file system refuses a hard
        link (nothing is written then; the caller records a reference).
    """
    if copy:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o444)
        return "copy"
    try:
        try:
            os.link(src, dst)
        except FileNotFoundError:
            if not os.path.exists(src):
                raise
            dst.parent.mkdir(parents=True, exist_ok=True)  # made only when a link lands in it
            os.link(src, dst)
    except OSError as exc:
        if exc.errno in _NO_LINK:
            log.debug("no hard link %s -> %s (%s): recorded as a reference", src, dst, exc)
            return "reference"
        raise
    return "hardlink"


_DIR_MODE = 0o555
_FILE_MODE = 0o444
_WRITE_BITS = 0o222


def make_read_only(root: Path) -> None:
    """Take the write bits off every file (0444) and folder (0555) under ``root``, ``root`` included.

    Hard links to the image store are 0444 already (their inode is the store's).
    """
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for fn in files:
            p = os.path.join(dirpath, fn)
            if os.lstat(p).st_mode & _WRITE_BITS:
                os.chmod(p, _FILE_MODE)
        os.chmod(dirpath, _DIR_MODE)


def writable_paths(root: Path) -> list[str]:
    """Paths under ``root`` (relative, ``.`` for ``root``) that still have a write bit, sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if os.lstat(dirpath).st_mode & _WRITE_BITS:
            out.append(rel)
        for fn in files:
            if os.lstat(os.path.join(dirpath, fn)).st_mode & _WRITE_BITS:
                out.append(fn if rel == "." else f"{rel}/{fn}")
    return sorted(out)


def remove_release_tree(path: str | os.PathLike[str]) -> None:
    """Remove a (read-only) release folder, or a build's leftovers, as a non-root user can.

    Folders get their owner's write bit back first (removing an entry needs it); file modes
    are left alone, since a release file may be a hard link to a stored image that other
    releases share. A missing ``path`` is not an error.
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, _dirs, _files in os.walk(path):
            try:
                mode = os.lstat(dirpath).st_mode
                if not mode & 0o200:
                    os.chmod(dirpath, (mode & 0o7777) | 0o700)
            except OSError:
                pass
        shutil.rmtree(path)
    else:
        os.unlink(path)


def release_workspace(release: Path):
    """The workspace holding ``release`` (``WORKSPACE/releases/NAME/X.Y.Z``), or None."""
    from iea_data.store.workspace import CONFIG_NAME, Workspace

    root = Path(release).resolve()
    if len(root.parents) >= 3 and (root.parents[2] / CONFIG_NAME).is_file():
        return Workspace.open(root.parents[2])
    return None


def resolve_file(release: str | os.PathLike[str], relpath: str, *, workspace=None) -> Path:
    """Where the bytes of a release file are: in the release, or (a reference) in the catalog.

    Parameters
    ----------
    release : path-like
        The release folder (holding ``manifest.json``).
    relpath : str
        A path inside the release, as the tables and the manifest name it.
    workspace : Workspace, optional
        Catalog to resolve references with; default: the workspace the release lives in.

    Returns
    -------
    Path
        An existing file with the recorded size (references: the workspace's stored copy,
        else the first catalog path of the image with that sha256 whose size matches).

    Raises
    ------
    ReleaseError
        When the file is neither in the release nor resolvable.
    """
    release = Path(release)
    direct = release / relpath
    if direct.is_file():
        return direct
    manifest = _manifest_cached(str(release.resolve()))
    ref = manifest.get(relpath)
    if ref is None:
        raise ReleaseError(f"{relpath} is not in release {release} (neither a file nor a reference in its manifest)")
    ws = workspace or release_workspace(release)
    if ws is None:
        raise ReleaseError(
            f"{relpath} of release {release} is a reference to sha256 {ref['sha256']}; pass the workspace "
            f"whose catalog holds it to resolve it"
        )
    stored = ws.objects.image_path(ref["sha256"], os.path.splitext(relpath)[1])
    try:
        if ref.get("size") is None or stored.stat().st_size == ref["size"]:
            return stored
    except OSError:
        pass
    from sqlalchemy import select

    from iea_data.store import Image, ImagePath

    with ws.session() as s:
        paths = s.scalars(
            select(ImagePath.path)
            .join(Image, Image.id == ImagePath.image_id)
            .where(Image.sha256 == ref["sha256"])
            .order_by(ImagePath.id)
        ).all()
    for p in paths:
        try:
            if ref.get("size") is None or os.stat(p).st_size == ref["size"]:
                return Path(p)
        except OSError:
            continue
    raise ReleaseError(f"{relpath} of release {release}: no file with sha256 {ref['sha256']} is left in the catalog")


_MANIFESTS: dict[str, dict] = {}


def _manifest_cached(release: str) -> dict[str, dict]:
    refs = _MANIFESTS.get(release)
    if refs is None:
        path = Path(release) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReleaseError(f"{release} is not a release (no {MANIFEST_NAME})") from None
        refs = {r["path"]: r for r in data.get("references", [])}
        _MANIFESTS[release] = refs
    return refs
