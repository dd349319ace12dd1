"""Deterministic pixel samples: the same pixels of an image every time, from a key."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["pixel_sample", "seed_from_key"]


def seed_from_key(key: str | bytes | int) -> int:
    """A 64-bit seed from a key (an image's sha256, its id, or any string).

    Examples
    --------
    >>> seed_from_key("abc") == seed_from_key(b"abc")
    True
    >>> seed_from_key(7) == seed_from_key("7")
    True
    """
    if isinstance(key, bool) or not isinstance(key, (str, bytes, int, np.integer)):
        raise TypeError(f"key must be a str, bytes or int (e.g. the image's sha256), got {type(key).__name__}")
    raw = key if isinstance(key, bytes) else str(int(key) if isinstance(key, np.integer) else key).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "little")


def pixel_sample(shape: tuple[int, ...], n: int | None, *, key: str | bytes | int) -> np.ndarray:
    """Flat indices of ``n`` pixels of an array of ``shape``, the same for the same ``key``.

    Drawn without replacement and returned sorted (so ``arr.ravel()[idx]`` reads memory in
    order). When ``n`` is None or at least the number of pixels, every pixel is returned.

    Parameters
    ----------
    shape : tuple of int
        The map's shape, e.g. ``(256, 256)``.
    n : int or None
        How many pixels (>= 1); None for all.
    key : str, bytes or int
        What makes the sample repeatable: the image's sha256 or id.

    Returns
    -------
    ndarray, int64, shape (min(n, size),)
        Sorted, distinct flat indices into ``shape``.

    Examples
    --------
    >>> idx = pixel_sample((4, 4), 5, key="img-1")
    >>> idx.tolist() == pixel_sample((4, 4), 5, key="img-1").tolist(), len(set(idx.tolist())), bool(idx.max() < 16)
    (True, 5, True)
    >>> pixel_sample((2, 3), None, key=0).tolist()
    [0, 1, 2, 3, 4, 5]
    """
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"shape must be a tuple of positive sizes, got {shape!r}")
    size = int(np.prod(shape))
    if n is None or n >= size:
        return np.arange(size, dtype=np.int64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (pixels to sample) or None for all, got {n!r}")
    rng = np.random.default_rng(seed_from_key(key))
    return np.sort(rng.choice(size, size=int(n), replace=False)).astype(np.int64)
