"""What the Quality page needs of an image's maps, computed once when its consensus is written.

The report's agreement with the consensus (``1 − mean|map − consensus| / 2`` per expert) and
its reliability coefficients (ICC, alpha over a deterministic pixel sample of each expert's
map) read whole maps: at 40,000 images × 12 experts and 256 × 256 that was ≈ 8,000 map reads
(128 KiB each, sha256 checked) per cold first paint. A consensus run already holds an image's
expert maps and its consensus, so it stores both figures with the consensus revision
(:func:`stored_figures`):

- ``params["agreement"]``: chain -> agreement of that expert's map with the consensus as stored
  (float16), computed exactly as the report computes it from the maps (same values, same
  float64 sums);
- ``params["sample"]``: ``{"object", "pixels", "key"}`` — one small object (float32, one row per
  expert in the order of ``params["experts"]``) with the values of every expert's map at the
  pixels :func:`~iea_data.core.quality.pixel_sample` picks for the reliability figures
  (``pixels`` of them, keyed by ``key``, the image's sha256 or its id).

They belong to the consensus revision, so they are invalidated with it: the report uses them
only while the image's expert heads are exactly the revisions the consensus lists
(``expert_revisions``) — a newer expert revision (saved, accepted, rejected) makes the report
read that image's maps again until the consensus is recomputed, which stores new figures.
A missing or damaged sample object is read around the same way (it is recomputable, so it is
written without ``fsync``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Protocol

import numpy as np

from iea_data.core.errors import IeaError

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import ObjectStore

__all__ = [
    "SAMPLE_PIXELS",
    "expert_agreements",
    "sample_key",
    "sample_maps",
    "stored_agreements",
    "stored_figures",
    "stored_sample",
]

log = logging.getLogger(__name__)

#: Pixels per image the reliability figures sample (and a consensus revision stores).
SAMPLE_PIXELS = 64


class _Head(Protocol):
    """What these functions read of an expert's chain head (:class:`~iea_data.workflows.quality.ExpertHead`)."""

    @property
    def label_id(self) -> int: ...
    @property
    def chain(self) -> str: ...
    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...


def sample_key(sha256: Optional[str], image_id: int) -> str:
    """What keys an image's pixel sample: its content hash, else its id (as text).

    Examples
    --------
    >>> sample_key("ab" * 32, 7)[:4], sample_key(None, 7)
    ('abab', '7')
    """
    return sha256 or str(int(image_id))


def _head_shape(heads: Sequence[_Head]) -> tuple[int, int]:
    """The shape :func:`~iea_data.workflows.quality._consensus._load_maps` brings every map to."""
    return Counter((h.height, h.width) for h in heads).most_common(1)[0][0]


def _n_sampled(shape: tuple[int, ...], pixels: int) -> int:
    return min(int(pixels), int(np.prod(shape)))


def sample_maps(maps: dict[str, np.ndarray], key: str, pixels: int = SAMPLE_PIXELS) -> dict[str, np.ndarray]:
    """chain -> the values of each map (all of one shape) at ``pixels`` pixels sampled by ``key``.

    :func:`~iea_data.core.quality.pixel_sample` of ``min(pixels, size)`` pixels, the same for
    every map of the image.

    Examples
    --------
    >>> maps = {"a": np.arange(16, dtype=np.float32).reshape(4, 4), "b": np.zeros((4, 4), np.float32)}
    >>> s = sample_maps(maps, "img", pixels=3)
    >>> len(s["a"]), s["b"].tolist(), s["a"].tolist() == sample_maps(maps, "img", pixels=3)["a"].tolist()
    (3, [0.0, 0.0, 0.0], True)
    """
    from iea_data.core.quality import pixel_sample

    shape = next(iter(maps.values())).shape
    idx = pixel_sample(shape, _n_sampled(shape, pixels), key=key)
    return {c: m.reshape(-1)[idx] for c, m in maps.items()}


def expert_agreements(maps: dict[str, np.ndarray], consensus: np.ndarray) -> dict[str, float]:
    """chain -> ``1 − mean|map − consensus| / 2`` (float64) for the maps of the consensus's shape.

    ``consensus`` as stored (the float16 values). Each expert's mean is the float64 pairwise sum
    of its own row, so the value is the same whether the maps are stacked or taken one by one.

    Examples
    --------
    >>> c = np.zeros((2, 2), np.float16)
    >>> expert_agreements({"a": np.full((2, 2), 0.5, np.float32), "b": np.zeros((3, 3), np.float32)}, c)
    {'a': 0.75}
    """
    c = np.asarray(consensus).astype(np.float64)
    out = {}
    d = np.empty(c.shape, np.float64)  # one buffer: a fresh 512 KiB temporary per expert costs page faults
    for chain, m in maps.items():
        if m.shape == c.shape:
            np.subtract(m, c, out=d)  # m in float64, as m.astype(np.float64) - c
            np.abs(d, out=d)
            out[chain] = float(1.0 - d.mean() / 2.0)
    return out


def stored_figures(
    objects: ObjectStore, maps: dict[str, np.ndarray], consensus: np.ndarray, experts: Sequence[str], key: str
) -> dict[str, Any]:
    """The ``agreement`` and ``sample`` entries of a consensus revision's params (see the module's notes).

    ``maps``: chain -> the image's expert maps (one shape); ``consensus``: the consensus map as
    stored (float16); ``experts``: the chains in params order; ``key``: :func:`sample_key`.
    The sample object is written without ``fsync`` (recomputable; the report reads around it).
    """
    import io

    sampled = sample_maps(maps, key)
    rows = np.stack([sampled[c].astype(np.float32) for c in experts])
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(rows), allow_pickle=False)
    obj = objects.put_bytes(buf.getvalue(), durable=False)
    return {
        "agreement": expert_agreements(maps, consensus),
        "sample": {"object": obj, "pixels": int(rows.shape[1]), "key": key},
    }


def _current(cons: Optional[dict], heads: Sequence[_Head]) -> bool:
    """The consensus was built from exactly these expert revisions."""
    return cons is not None and cons.get("expert_revisions") == sorted(h.label_id for h in heads)


def stored_agreements(cons: Optional[dict], heads: Sequence[_Head]) -> Optional[dict[str, float]]:
    """chain -> agreement from a consensus revision's params (``cons``), or None when not usable.

    Usable when the consensus lists exactly ``heads`` (the image's current expert heads) and
    holds a value for each of them.

    Examples
    --------
    >>> from iea_data.workflows.quality import ExpertHead
    >>> hs = [ExpertHead(5, 1, "user:1", 1, "accepted", "", 2, 2), ExpertHead(6, 1, "user:2", 2, "accepted", "", 2, 2)]
    >>> cons = {"expert_revisions": [5, 6], "agreement": {"user:1": 0.9, "user:2": 0.8}}
    >>> stored_agreements(cons, hs), stored_agreements({**cons, "expert_revisions": [5, 7]}, hs)
    ({'user:1': 0.9, 'user:2': 0.8}, None)
    """
    if not _current(cons, heads):
        return None
    values = (cons or {}).get("agreement")
    if not isinstance(values, dict) or any(h.chain not in values for h in heads):
        return None
    return {h.chain: float(values[h.chain]) for h in heads}


def stored_sample(
    objects: ObjectStore, cons: Optional[dict], heads: Sequence[_Head], key: str, pixels: int
) -> Optional[dict[str, np.ndarray]]:
    """chain -> sampled values (float32) from a consensus revision's sample object, or None when not usable.

    Usable when the consensus lists exactly ``heads``, sampled ``min(pixels, size)`` pixels
    keyed by ``key``, and its object reads back with one row per expert; a missing or damaged
    object is logged and passed over (the caller reads the maps).
    """
    if not _current(cons, heads):
        return None
    meta = (cons or {}).get("sample")
    experts = (cons or {}).get("experts")
    if not isinstance(meta, dict) or not isinstance(experts, list) or meta.get("key") != key:
        return None
    n = _n_sampled(_head_shape(heads), pixels)
    if meta.get("pixels") != n or sorted(experts) != sorted(h.chain for h in heads):
        return None
    try:
        rows = objects.get_array(str(meta.get("object")))
    except (IeaError, ValueError, OSError) as exc:
        log.warning("the reliability sample of a consensus revision is unreadable (%s); reading the maps", exc)
        return None
    if rows.dtype != np.float32 or rows.shape != (len(experts), n):
        return None
    return {c: rows[k] for k, c in enumerate(experts)}
