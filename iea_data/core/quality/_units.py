"""From maps to the (raters x units) ratings the reliability coefficients take, over pixel samples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ._reliability import Reliability, icc_2_1, krippendorff_alpha_interval
from ._sampling import pixel_sample
from ._staple import check_maps

__all__ = ["image_reliability", "ratings_matrix"]


def image_reliability(
    maps: Mapping[str, np.ndarray], *, key: str | bytes | int, sample: int | None = 4096, n_boot: int = 200
) -> dict[str, Reliability]:
    """ICC(2,1) and Krippendorff's alpha (interval) of one image's experts over a pixel sample.

    Parameters
    ----------
    maps : mapping rater -> ndarray, float32 (h, w) in [-1, 1]
        At least two raters, one shape.
    key : str, bytes or int
        Fixes the pixel sample (the image's sha256 or id).
    sample : int or None
        Pixels (units); None for all.
    n_boot : int
        Bootstrap resamples for alpha's interval.

    Returns
    -------
    dict
        ``{"icc_2_1": Reliability, "alpha": Reliability}`` (units = sampled pixels).

    Examples
    --------
    >>> t = np.linspace(-0.5, 0.5, 400, dtype=np.float32).reshape(20, 20)
    >>> rng = np.random.default_rng(0)
    >>> maps = {r: np.clip(t + rng.normal(0, 0.2, t.shape), -1, 1).astype(np.float32) for r in "abc"}
    >>> rel = image_reliability(maps, key="img", sample=100, n_boot=50)
    >>> round(rel["icc_2_1"].value, 2), round(rel["alpha"].value, 2), rel["alpha"].n
    (0.72, 0.71, 100)
    """
    names, arrays = check_maps(maps, "maps")
    if len(names) < 2:
        raise ValueError(f"maps must hold at least two raters' maps for a reliability, got {len(names)}")
    idx = pixel_sample(arrays[0].shape, sample, key=key)
    units = np.stack([a.ravel()[idx] for a in arrays]).astype(np.float64)
    return {"icc_2_1": icc_2_1(units.T), "alpha": krippendorff_alpha_interval(units, n_boot=n_boot)}


def ratings_matrix(
    images: Iterable[Mapping[str, np.ndarray] | tuple[Any, Mapping[str, np.ndarray]]],
    *,
    sample: int = 64,
    seed: int = 0,
) -> tuple[list[str], np.ndarray]:
    """Stream images into one (raters x units) matrix for an overall alpha; NaN where a rater is absent.

    Each image contributes ``sample`` pixels (its :func:`pixel_sample`, keyed like
    :func:`estimate_raters`: the item's key, or ``seed`` and its position). Memory is
    ``raters x images x sample`` float64, so keep ``sample`` small for big catalogues
    (64 pixels x 40,000 images x 12 raters = 250 MB).

    Returns
    -------
    raters : list of str
        Sorted; the rows.
    ratings : ndarray, float64 (raters, units)

    Examples
    --------
    >>> z = np.zeros((4, 4), np.float32)
    >>> names, r = ratings_matrix([{"a": z, "b": z}, {"b": z, "c": z + np.float32(0.5)}], sample=3)
    >>> names, r.shape, int(np.isnan(r).sum())
    (['a', 'b', 'c'], (3, 6), 6)
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise ValueError(f"sample must be a positive int (pixels per image), got {sample!r}")
    columns: list[dict[str, np.ndarray]] = []
    raters: set[str] = set()
    for i, item in enumerate(images):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
            key, maps = item
        else:
            key, maps = f"{seed}:{i}", item
        names, arrays = check_maps(maps, f"images[{i}]")
        idx = pixel_sample(arrays[0].shape, sample, key=key)
        columns.append({r: a.ravel()[idx].astype(np.float64) for r, a in zip(names, arrays)})
        raters.update(names)
    order = sorted(raters)
    width = sum(len(next(iter(c.values()))) for c in columns)
    out = np.full((len(order), width), np.nan)
    row = {r: j for j, r in enumerate(order)}
    col = 0
    for c in columns:
        n = len(next(iter(c.values())))
        for r, v in c.items():
            out[row[r], col : col + n] = v
        col += n
    return order, out
