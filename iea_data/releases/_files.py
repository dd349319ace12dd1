"""Files of a release: hashing, placing image bytes without copying them, resolving references.

Image bytes are never copied unless asked: a release holds a hard link to the catalog's
file (same inode, no extra disk space). Where the file system refuses a hard link (another
device, a file system without links), the release records a *reference* (relative path,
size, sha256) and :func:`resolve_file` finds the bytes through the catalog.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from ._errors import ReleaseError

__all__ = ["sha256_file", "place_file", "resolve_file", "release_workspace", "MANIFEST_NAME"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def sha256_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size in bytes and hex sha256 of a file, read in 1 MiB chunks.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> sha256_file(p)
    (3, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    """
    h = hashlib.sha256()
    n = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            block = fh.read(_CHUNK)
            if not block:
                break
            n += len(block)
            h.update(block)
    return n, h.hexdigest()


def place_file(src: str | os.PathLike[str], dst: Path, *, copy: bool = False) -> str:
    """Put ``src``'s bytes at ``dst``: a hard link, or a copy when asked.

    Returns
    -------
    str
        ``"hardlink"`` or ``"copy"``, or ``"reference"`` when the file system refuses a hard
        link (nothing is written then; the caller records a reference).
    """
    if copy:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
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


def release_workspace(release: Path):
    """The workspace holding ``release`` (``WORKSPACE/releases/NAME/X.Y.Z``), or None."""
    from ..workspace import CONFIG_NAME, Workspace

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
        An existing file with the recorded size (references: the first catalog path of the
        image with that sha256 whose size matches).

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
            f"{relpath} of release {release} is a reference to sha256 {ref['sha256']}; pass the workspace whose catalog "
            f"holds it to resolve it"
        )
    from sqlalchemy import select

    from ..catalog import Image, ImagePath

    with ws.session() as s:
        paths = s.scalars(
            select(ImagePath.path).join(Image, Image.id == ImagePath.image_id).where(Image.sha256 == ref["sha256"]).order_by(ImagePath.id)
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
