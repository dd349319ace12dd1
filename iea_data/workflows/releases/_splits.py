"""Scene-aware, stratified, reproducible splits, and leakage checks across splits.

A *group* is the unit a split never cuts: the images of one scene (they share a reference,
the IEA40K ``ref_id``); an image without a scene is a group of its own. Groups are put
into strata (score bin of the group's mean score, plus optional metadata such as the
camera) and each stratum is dealt out to the splits so that both the stratum and the whole
release follow the ratios. Everything is ordered by stable keys (scene and image names)
before the seeded shuffle, so the same catalog and seed give the same splits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SPLIT_NAMES",
    "DEFAULT_SCORE_BINS",
    "NEAR_DUPLICATE_BITS",
    "Group",
    "normalize_ratios",
    "score_bin",
    "assign_splits",
    "dhash64",
    "hamming64",
    "find_leaks",
]

#: Split names given to 2 or 3 ratios.
SPLIT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}
#: Score bins used for stratification: [0, 2), [2, 4), [4, 6), [6, 8), [8, 10].
DEFAULT_SCORE_BINS = 5
#: Two perceptual hashes at most this many bits apart are near-duplicates.
NEAR_DUPLICATE_BITS = 4


@dataclass(frozen=True)
class Group:
    """A set of images that must share a split.

    Attributes
    ----------
    key : str
        Stable identity (``scene:<name>`` or ``image:<name>#<id>``); orders the shuffle.
    size : int
        Number of images.
    stratum : tuple
        Strata are dealt out separately (score bin, metadata values).
    """

    key: str
    size: int
    stratum: tuple = ()


def normalize_ratios(ratios) -> dict[str, float]:
    """Split names and fractions from 2 or 3 ratios, or from a ``{name: ratio}`` mapping.

    >>> normalize_ratios((0.8, 0.1, 0.1))
    {'train': 0.8, 'val': 0.1, 'test': 0.1}
    >>> normalize_ratios({"train": 3, "test": 1})
    {'train': 0.75, 'test': 0.25}
    """
    if isinstance(ratios, Mapping):
        items = [(str(k), v) for k, v in ratios.items()]
    else:
        ratios = tuple(ratios)
        if len(ratios) not in SPLIT_NAMES:
            raise ValueError(
                f"ratios must hold 2 or 3 numbers (train, [val,] test) or a {{name: ratio}} mapping; got {ratios!r}"
            )
        items = list(zip(SPLIT_NAMES[len(ratios)], ratios))
    if not items:
        raise ValueError("ratios must name at least one split")
    for name, v in items:
        if not name or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ValueError(f"ratio of split {name!r} must be a finite number >= 0, got {v!r}")
    total = float(sum(v for _, v in items))
    if total <= 0:
        raise ValueError(f"ratios must sum to more than 0, got {ratios!r}")
    return {name: float(v) / total for name, v in items}


def score_bin(score: float | None, n_bins: int = DEFAULT_SCORE_BINS) -> int:
    """The stratification bin of a 0-10 score (``-1`` for no score).

    >>> [score_bin(s) for s in (0.0, 1.99, 2.0, 9.5, 10.0, None, float("nan"))]
    [0, 0, 1, 4, 4, -1, -1]
    """
    if score is None or not math.isfinite(score):
        return -1
    return int(min(n_bins - 1, max(0, math.floor(score / 10.0 * n_bins))))


def assign_splits(groups: Sequence[Group], ratios, *, seed: int = 0) -> dict[str, str]:
    """Deal groups out to splits: every image of a group lands in one split.

    Within each stratum (in sorted order), groups are sorted by key, shuffled with
    ``numpy.random.default_rng(seed)``, then each goes to the split furthest below its
    share, counting both the stratum and the whole release (ties: the first split).

    Parameters
    ----------
    groups : sequence of Group
    ratios : tuple of 2 or 3 floats, or mapping
        See :func:`normalize_ratios`.
    seed : int
        Same groups and seed, same result.

    Returns
    -------
    dict
        ``{group key: split name}``.

    Examples
    --------
    >>> gs = [Group(f"scene:{i}", 5, ()) for i in range(10)]
    >>> out = assign_splits(gs, (0.8, 0.2), seed=1)
    >>> sorted(list(out.values()).count(s) for s in ("train", "test"))
    [2, 8]
    """
    shares = normalize_ratios(ratios)
    names = list(shares)
    frac = np.array([shares[n] for n in names])
    keys = [g.key for g in groups]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"group keys must be unique; {dup!r} appears twice")
    by_stratum: dict[tuple, list[Group]] = defaultdict(list)
    for g in groups:
        by_stratum[tuple(g.stratum)].append(g)
    rng = np.random.default_rng(seed)
    total = np.zeros(len(names))
    out: dict[str, str] = {}
    for stratum in sorted(by_stratum, key=lambda s: tuple((x is None, str(x)) for x in s)):
        members = sorted(by_stratum[stratum], key=lambda g: g.key)
        order = rng.permutation(len(members))
        local = np.zeros(len(names))
        for i in order:
            g = members[int(i)]
            deficit = (frac * (local.sum() + g.size) - local) + (frac * (total.sum() + g.size) - total)
            best = int(np.argmax(deficit))  # first of the ties
            local[best] += g.size
            total[best] += g.size
            out[g.key] = names[best]
    return out


def dhash64(gray: np.ndarray) -> int:
    """A 64-bit difference hash of a picture (exposure-robust near-duplicate detection).

    The picture is area-resized to 9 x 8 grey values; each bit says whether a pixel is
    brighter than its right neighbour. Uniform brightness changes keep most bits.

    Parameters
    ----------
    gray : ndarray, (h, w) or (h, w, 3), any numeric dtype

    Returns
    -------
    int
        In ``[0, 2**64)``.

    Examples
    --------
    >>> ramp = np.tile(np.arange(16, dtype=np.uint8)[::-1], (8, 1))
    >>> hex(dhash64(ramp))
    '0xffffffffffffffff'
    >>> dhash64(ramp) == dhash64(ramp // 2 + 3)   # darker copy, same hash
    True
    """
    import cv2

    arr = np.asarray(gray)
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"gray must be an (h, w) or (h, w, 3) picture; got shape {arr.shape}")
    small = cv2.resize(arr.astype(np.float32), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, :-1] > small[:, 1:]).ravel()
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def hamming64(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes.

    >>> hamming64(0b1011, 0b0001)
    2
    """
    return (a ^ b).bit_count()


def find_leaks(
    items: Iterable[tuple[str, str, str | None, int | None]],
    *,
    max_distance: int = NEAR_DUPLICATE_BITS,
    limit: int = 1000,
) -> list[dict]:
    """Pairs of images in different splits that are the same or look the same.

    Parameters
    ----------
    items : iterable of (name, split, identity or None, dhash or None)
        One entry per (image, split) membership. ``identity`` is the content's sha256
        (or any id naming one catalog image): the same identity in two splits is a leak.
    max_distance : int
        Near-duplicates are at most this many bits apart (``-1`` turns the perceptual check off).
    limit : int
        At most this many pairs are returned.

    Returns
    -------
    list of dict
        ``kind`` (``"identical"`` or ``"near-duplicate"``), ``a``, ``split_a``, ``b``,
        ``split_b``, ``distance``; sorted.

    Notes
    -----
    Near-duplicates are searched with banded hashing: with ``max_distance + 1`` bands, two
    hashes within ``max_distance`` bits agree exactly on at least one band, so only images
    sharing a band value are compared (no quadratic scan over the release).

    Examples
    --------
    >>> find_leaks([("a.png", "train", "s1", 0), ("b.png", "test", "s2", 1), ("c.png", "test", "s3", 2**64 - 1)])
    [{'kind': 'near-duplicate', 'a': 'b.png', 'split_a': 'test', 'b': 'a.png', 'split_b': 'train', 'distance': 1}]
    """
    items = list(items)
    pairs: dict[tuple, dict] = {}

    def add(kind, x, y, dist):
        if x[1] == y[1] or len(pairs) >= limit:
            return
        x, y = sorted((x, y), key=lambda t: (t[1], t[0]))
        key = (x[0], x[1], y[0], y[1])
        if key not in pairs:
            pairs[key] = {"kind": kind, "a": x[0], "split_a": x[1], "b": y[0], "split_b": y[1], "distance": dist}

    by_sha: dict[str, list] = defaultdict(list)
    for it in items:
        if it[2]:
            by_sha[it[2]].append(it)
    for group in by_sha.values():
        splits = {it[1] for it in group}
        if len(splits) > 1:
            for i in range(len(group)):
                for j in range(i + 1, len(group)):
                    add("identical", group[i], group[j], 0)
    if max_distance >= 0:
        by_hash: dict[int, list] = defaultdict(list)
        for it in items:
            if it[3] is not None:
                by_hash[int(it[3])].append(it)

        def cross(xs, ys, dist):
            for x in xs:
                for y in ys:
                    if len(pairs) >= limit:
                        return
                    if x is not y and (x[2] is None or x[2] != y[2]):  # same identity: reported above
                        add("near-duplicate", x, y, dist)

        for group in by_hash.values():  # identical hashes
            if len({it[1] for it in group}) > 1:
                cross(group, group, 0)
        if max_distance > 0:
            hashes = sorted(by_hash)
            n_bands = max_distance + 1
            width = math.ceil(64 / n_bands)
            for b in range(n_bands):
                shift, mask = b * width, (1 << width) - 1
                buckets: dict[int, list[int]] = defaultdict(list)
                for h in hashes:
                    buckets[(h >> shift) & mask].append(h)
                for bucket in buckets.values():
                    for i in range(len(bucket)):
                        for j in range(i + 1, len(bucket)):
                            d = hamming64(bucket[i], bucket[j])
                            if 0 < d <= max_distance:
                                cross(by_hash[bucket[i]], by_hash[bucket[j]], d)
    return sorted(pairs.values(), key=lambda p: (p["distance"], p["kind"], p["split_a"], p["a"], p["split_b"], p["b"]))
