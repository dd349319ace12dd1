"""Content-addressed object store for arrays and small blobs (label maps, thumbnails, stroke logs),
and the read-only copies of released images.

An object lives at ``objects/ab/cdef…`` where ``abcdef…`` is the sha256 of its bytes.
Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half an object and identical content is stored once.

Released images live at ``objects/images/ab/<sha256>.<ext>`` (mode 0444): the workspace's
own copy of a photo, made the first time a release needs it (a reflink where the file
system has them, else a copy; either way the stored bytes are checked against the sha256),
and hard-linked into every release, the first included. A release therefore never shares an inode with the user's
photos: editing a photo in place does not change a release, and writing into a release
cannot reach the photo.

Examples
--------
>>> import tempfile, numpy as np
>>> store = ObjectStore(tempfile.mkdtemp())
>>> key = store.put_array(np.zeros((2, 3), np.float16))
>>> store.get_array(key).shape
(2, 3)
>>> store.put_array(np.zeros((2, 3), np.float16)) == key
True
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from iea_data.core.errors import IeaError, NotFoundError
from iea_data.core.files import atomic_write

if TYPE_CHECKING:  # NumPy is imported on first use of an array: the CLI's start-up does not pay for it
    import numpy as np

__all__ = ["ObjectStore", "sha256_bytes", "sync_filesystem", "SourceChangedError", "IMAGE_MODE"]

#: Mode of a stored image (and of every release file): read-only for everyone.
IMAGE_MODE = 0o444
_EXT = re.compile(r"\.[a-z0-9]{1,10}")
_KEY = re.compile(r"[0-9a-f]{64}")
#: Parsed ``.npy`` headers (header bytes -> (dtype, shape, fortran order)): label maps share a few
#: shapes, and parsing the header with ``ast.literal_eval`` was most of the cost of reading a small map.
_NPY_HEADERS: dict[bytes, tuple] = {}
_NPY_HEADERS_MAX = 256
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_CHUNK = 1 << 20


class SourceChangedError(IeaError):
    """A photo's bytes no longer match the sha256 the catalog holds for it."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    """A folder of immutable objects named by the sha256 of their bytes.

    Parameters
    ----------
    root : path-like
        The ``objects/`` folder of a workspace (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where the object ``key`` lives (it may not exist)."""
        if not isinstance(key, str) or _KEY.fullmatch(key) is None:
            raise ValueError(f"key must be a 64-character lowercase hex sha256, got {key!r}")
        return self.root / key[:2] / key[2:]

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put_bytes(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data``; return its sha256. Existing objects are not rewritten.

        ``durable=False`` skips the ``fsync`` (for objects that can be recomputed, such as
        thumbnails): a killed process still leaves whole files, only a power cut may not.
        """
        key = sha256_bytes(data)
        dest = self.path(key)
        if dest.is_file():
            return key
        atomic_write(dest, data, fsync=durable, make_dirs=True)
        return key

    def image_path(self, sha256: str, ext: str) -> Path:
        """Where the stored copy of the image with content ``sha256`` lives (it may not exist).

        ``ext`` (e.g. ``".png"``) is lower-cased; one that is not ``.`` and 1-10 letters or
        digits becomes ``.img``.

        >>> ObjectStore("objects").image_path("ab" + "0" * 62, ".PNG").as_posix()
        'objects/images/ab/ab00000000000000000000000000000000000000000000000000000000000000.png'
        """
        self.path(sha256)  # validates the key
        ext = ext.lower() if isinstance(ext, str) and _EXT.fullmatch(ext.lower()) else ".img"
        return self.root / "images" / sha256[:2] / f"{sha256}{ext}"

    def put_image_file(
        self, src: str | os.PathLike[str], sha256: str, ext: str, *, durable: bool = True
    ) -> tuple[Path, int]:
        """Store a read-only copy of the photo ``src`` whose content is ``sha256``, once.

        Parameters
        ----------
        src : path-like
            The user's photo (never modified, never linked).
        sha256 : str
            Its content hash as the catalog holds it; the bytes stored are checked against it.
        ext : str
            File extension for the stored name (see :meth:`image_path`).
        durable : bool
            ``fsync`` the new copy before it gets its name.

        Returns
        -------
        (Path, int)
            The stored file (mode 0444) and the bytes this call added (0 when the copy was
            already there).

        Raises
        ------
        SourceChangedError
            ``src``'s bytes do not hash to ``sha256`` (the photo changed since ingest); nothing
            is stored.
        """
        dest = self.image_path(sha256, ext)
        try:
            if dest.stat().st_size == os.stat(src).st_size:
                return dest, 0
        except FileNotFoundError:
            pass
        added = 0

        def copy_checked(out: BinaryIO) -> None:
            nonlocal added
            with open(src, "rb", buffering=0) as inp:
                added, digest = _clone_or_copy(inp, out)
            if digest != sha256:
                raise SourceChangedError(
                    f"{os.fsdecode(src)} changed since it was ingested (its sha256 is {digest}, the catalog holds "
                    f"{sha256}); run `iea ingest` on it again"
                )
            os.fchmod(out.fileno(), IMAGE_MODE)

        atomic_write(dest, copy_checked, fsync=durable, make_dirs=True)
        return dest, added

    def get_bytes(self, key: str) -> bytes:
        if not isinstance(key, str) or _KEY.fullmatch(key) is None:
            self.path(key)  # raises the ValueError naming the key
        try:  # plain strings: pathlib's joins cost more than reading a small map
            with open(os.path.join(self.root, key[:2], key[2:]), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError(f"object {key} is missing from {self.root}; the workspace is incomplete") from None

    def put_array(self, arr: np.ndarray) -> str:
        """Store ``arr`` as ``.npy`` bytes (no pickles); return the key."""
        import numpy as np

        arr = np.ascontiguousarray(arr)
        if arr.dtype == object:
            raise TypeError("arr must be a numeric array, got dtype=object")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return self.put_bytes(buf.getvalue())

    def get_array(self, key: str) -> np.ndarray:
        data = self.get_bytes(key)
        if sha256_bytes(data) != key:
            raise IeaError(f"object {key} is corrupt (its bytes no longer match its hash); restore it from a backup")
        return _npy_from_bytes(data)


def _npy_from_bytes(data: bytes) -> np.ndarray:
    """The array in ``.npy`` bytes (a writable copy), as ``numpy.load`` reads it, without pickles.

    The header is parsed once per distinct header (:data:`_NPY_HEADERS`); anything unusual
    (an unknown format version, object dtype) goes through ``numpy.load``, which refuses pickles.
    """
    import numpy as np

    version = data[6] if len(data) > 10 and data[:6] == b"\x93NUMPY" else None
    if version == 1:
        start = 10 + int.from_bytes(data[8:10], "little")
        header = data[10:start]
    elif version in (2, 3):
        start = 12 + int.from_bytes(data[8:12], "little")
        header = data[12:start]
    else:
        return np.load(io.BytesIO(data), allow_pickle=False)
    parsed = _NPY_HEADERS.get(header)
    if parsed is None:
        from numpy.lib import format as npformat

        buf = io.BytesIO(data)
        npformat.read_magic(buf)
        read = npformat.read_array_header_1_0 if version == 1 else npformat.read_array_header_2_0
        shape, fortran, dtype = read(buf)
        if dtype.hasobject or buf.tell() != start:
            return np.load(io.BytesIO(data), allow_pickle=False)
        parsed = (dtype, shape, fortran)
        if len(_NPY_HEADERS) < _NPY_HEADERS_MAX:
            _NPY_HEADERS[header] = parsed
    dtype, shape, fortran = parsed
    count = 1
    for n in shape:
        count *= n
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return arr.reshape(shape[::-1]).T.copy(order="F") if fortran else arr.reshape(shape).copy()


def sync_filesystem(path: str | os.PathLike[str]) -> None:
    """Flush every written file of the file system holding ``path`` to disk (``syncfs``; ``os.sync`` elsewhere).

    One call instead of an ``fsync`` per file: for many small files written with
    ``durable=False`` (e.g. a release's first batch of stored images), then made durable at once.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def _clone_or_copy(inp: BinaryIO, out: BinaryIO) -> tuple[int, str]:
    """Copy ``inp`` into the empty ``out`` (a reflink where the file system has one); (size, sha256) of the copy.

    After a reflink the hash is computed on ``out``'s bytes, so what is stored is what is checked.
    """
    h = hashlib.sha256()
    n = 0
    try:
        fcntl.ioctl(out.fileno(), _FICLONE, inp.fileno())
        src = open(out.fileno(), "rb", buffering=0, closefd=False)
    except OSError as exc:
        if exc.errno not in (
            errno.EOPNOTSUPP,
            errno.ENOTTY,
            errno.EXDEV,
            errno.EINVAL,
            errno.ENOSYS,
            errno.EPERM,
            errno.EBADF,
        ):
            raise
        src = None
    if src is not None:
        with src:
            while block := src.read(_CHUNK):
                n += len(block)
                h.update(block)
        return n, h.hexdigest()
    while block := inp.read(_CHUNK):
        n += len(block)
        h.update(block)
        out.write(block)
    return n, h.hexdigest()
