"""Content-addressed object store for arrays and small blobs (label maps, thumbnails, stroke logs).

An object lives at ``objects/ab/cdef…`` where ``abcdef…`` is the sha256 of its bytes.
Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half an object and identical content is stored once.

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

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import IeaError, NotFoundError

__all__ = ["ObjectStore", "sha256_bytes"]


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
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
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
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return key

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"object {key} is missing from {self.root}; the workspace is incomplete") from None

    def put_array(self, arr: np.ndarray) -> str:
        """Store ``arr`` as ``.npy`` bytes (no pickles); return the key."""
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
        return np.load(io.BytesIO(data), allow_pickle=False)
