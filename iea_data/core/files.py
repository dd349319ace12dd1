"""Writing files so that readers never see a part: a temporary name in the same folder, then a rename.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "out" / "a.txt"
>>> atomic_write(p, b"hello", make_dirs=True)
>>> p.read_bytes()
b'hello'
>>> atomic_write(p, lambda fh: fh.write(b"bye"), fsync=True)
>>> p.read_bytes(), sorted(x.name for x in p.parent.iterdir())
(b'bye', ['a.txt'])
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from typing import BinaryIO, Union

__all__ = ["atomic_write", "sha256_file"]


def atomic_write(
    path: Union[str, os.PathLike],
    data: Union[bytes, Callable[[BinaryIO], object]],
    *,
    fsync: bool = False,
    make_dirs: bool = False,
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Parameters
    ----------
    path : path
        The file to write; an existing file is replaced.
    data : bytes or callable
        The bytes, or a function that writes them to the binary file object it is given.
    fsync : bool, optional
        Flush the file to disk before the rename (protects against power loss, not only
        against a killed process); default False.
    make_dirs : bool, optional
        Create the missing folders of ``path``; default False (a missing folder raises
        ``FileNotFoundError``).

    Notes
    -----
    A reader sees the old file or the new one, never a part. On any exception the temporary
    file is removed. The file's permissions follow the umask (as ``open`` would).
    """
    path = os.fspath(path)
    folder, base = os.path.split(path)
    if folder and make_dirs:
        os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    # read-write, so a writer may read back what it wrote (e.g. to hash a reflinked copy)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sha256_file(path: Union[str, os.PathLike], *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes as 64 lowercase hex digits, read in chunks (1 MiB by default).

    Parameters
    ----------
    path : path
        The file.
    chunk_size : int, optional
        Bytes read at a time (> 0).

    Returns
    -------
    str
        The hex digest.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be an integer > 0, got {chunk_size!r}")
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
