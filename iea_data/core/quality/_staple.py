"""Continuous STAPLE: each rater's additive bias and noise variance, and the consensus they imply.

The model (Warfield, Zou & Wells 2008, the continuous case): on every pixel ``p`` of image
``i`` rated by the set ``S_i`` of raters,

    map_r[p] = truth[p] + bias_r + e,    e ~ N(0, sigma2_r),   r in S_i,

with the truth a latent value under a flat prior. EM alternates

- **E-step**: the truth's posterior is ``N(t_hat, 1 / W)`` with ``t_hat`` the precision-weighted
  mean of the bias-corrected maps (weights ``w_r = 1 / sigma2_r``, ``W = sum w_r``);
- **M-step**: ``bias_r = mean(map_r - t_hat)`` and ``sigma2_r = mean((map_r - bias_r - t_hat)^2)
  + mean(1 / W)``, pooled over every sampled pixel of every image the rater labelled.

The ``1 / W`` term is the posterior variance of the truth; without it the plain joint maximum
collapses onto one rater (its variance goes to zero). Biases are defined only up to a common
shift (moving every bias by ``c`` moves the truth by ``-c``), so after each M-step the **plain
(unweighted) mean of the biases is set to 0** within each group of raters linked by shared
images: a bias is relative to the panel, not to an absolute truth.

Memory stays bounded however long the stream: an image enters the fit only through the
sufficient statistics of its sampled pixels (per rater sums and the Gram matrix of the maps
centred per pixel), added into its rater set's totals; EM then iterates on those totals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from iea_data.core.imaging import check_residual
from iea_data.core.progress import ProgressFn

from ._sampling import pixel_sample

__all__ = [
    "ANCHOR",
    "ConsensusResult",
    "FitInfo",
    "RaterEstimate",
    "RaterParams",
    "consensus_map",
    "estimate_raters",
    "check_maps",
    "stack_maps",
]

#: How the biases are pinned down (they are identifiable only up to a common shift).
ANCHOR = "plain mean of the rater biases = 0 (per group of raters linked by shared images)"
#: Smallest noise variance the fit allows (keeps the weights finite for identical raters).
SIGMA2_FLOOR = 1e-10
_Z = 1.959963984540054  # the standard normal's 97.5 % quantile

#: (rater indices (k,), Gram matrices (B, k, k), sums (B, k), pixels (B,)) of one rater set, B fits at once.
_Totals = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

ImageItem = Union[Mapping[str, np.ndarray], tuple[Any, Mapping[str, np.ndarray]]]


@dataclass(frozen=True)
class RaterEstimate:
    """One rater's fitted bias and noise.

    Attributes
    ----------
    rater : str
    bias : float
        Mean of ``map - truth`` (residual units, relative to the panel: see :data:`ANCHOR`).
    sigma2 : float
        Noise variance around ``truth + bias``.
    n_images, n_pixels : int
        Images and sampled pixels the estimate rests on.
    bias_ci, sigma2_ci : tuple of float
        95 % intervals. With two or more images: percentiles of a bootstrap over image
        blocks, each resample refitted (so the uncertainty of the other raters' weights is
        in it); with one image the pixel-level normal / chi-square interval, which is
        optimistic because neighbouring pixels are correlated.
    """

    rater: str
    bias: float
    sigma2: float
    n_images: int
    n_pixels: int
    bias_ci: tuple[float, float]
    sigma2_ci: tuple[float, float]

    @property
    def sigma(self) -> float:
        """The noise standard deviation."""
        return math.sqrt(self.sigma2)

    @property
    def sigma_ci(self) -> tuple[float, float]:
        """The 95 % interval of the noise standard deviation."""
        return (math.sqrt(self.sigma2_ci[0]), math.sqrt(self.sigma2_ci[1]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "rater": self.rater,
            "bias": self.bias,
            "sigma2": self.sigma2,
            "n_images": self.n_images,
            "n_pixels": self.n_pixels,
            "bias_ci": list(self.bias_ci),
            "sigma2_ci": list(self.sigma2_ci),
        }


@dataclass(frozen=True)
class RaterParams:
    """Fitted bias and noise of every rater (rater name -> :class:`RaterEstimate`).

    Examples
    --------
    >>> p = RaterParams.from_values({"ann": 0.05, "bob": -0.05}, {"ann": 0.01, "bob": 0.04})
    >>> p["bob"].sigma, p.names, len(p), "eve" in p
    (0.2, ('ann', 'bob'), 2, False)
    >>> round(p.median_sigma2, 3)
    0.025
    >>> RaterParams.from_dict(p.to_dict()) == p
    True
    """

    estimates: tuple[RaterEstimate, ...]
    anchor: str = ANCHOR
    _by_name: dict[str, RaterEstimate] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ests = tuple(sorted(self.estimates, key=lambda e: e.rater))
        names = [e.rater for e in ests]
        if len(set(names)) != len(names):
            raise ValueError(f"estimates must name each rater once, got {names}")
        object.__setattr__(self, "estimates", ests)
        object.__setattr__(self, "_by_name", {e.rater: e for e in ests})

    @classmethod
    def from_values(cls, bias: Mapping[str, float], sigma2: Mapping[str, float]) -> RaterParams:
        """Parameters given by hand (no intervals: they equal the value; counts 0)."""
        if set(bias) != set(sigma2):
            raise ValueError(f"bias and sigma2 must name the same raters, got {sorted(bias)} and {sorted(sigma2)}")
        ests = []
        for r in bias:
            b, s = float(bias[r]), float(sigma2[r])
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"sigma2[{r!r}] must be a positive finite variance, got {sigma2[r]!r}")
            ests.append(RaterEstimate(str(r), b, s, 0, 0, (b, b), (s, s)))
        return cls(tuple(ests))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RaterParams:
        """The inverse of :meth:`to_dict`."""
        ests = tuple(
            RaterEstimate(
                str(d["rater"]),
                float(d["bias"]),
                float(d["sigma2"]),
                int(d["n_images"]),
                int(d["n_pixels"]),
                (float(d["bias_ci"][0]), float(d["bias_ci"][1])),
                (float(d["sigma2_ci"][0]), float(d["sigma2_ci"][1])),
            )
            for d in data["raters"]
        )
        return cls(ests, anchor=str(data.get("anchor", ANCHOR)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"anchor": ..., "raters": [RaterEstimate.to_dict(), ...]}``."""
        return {"anchor": self.anchor, "raters": [e.to_dict() for e in self.estimates]}

    @property
    def names(self) -> tuple[str, ...]:
        """The raters, sorted."""
        return tuple(self._by_name)

    @property
    def bias(self) -> dict[str, float]:
        """rater -> bias."""
        return {e.rater: e.bias for e in self.estimates}

    @property
    def sigma2(self) -> dict[str, float]:
        """rater -> noise variance."""
        return {e.rater: e.sigma2 for e in self.estimates}

    @property
    def median_sigma2(self) -> float:
        """The median noise variance over raters (what an unknown rater is given); 1.0 when empty."""
        return float(np.median([e.sigma2 for e in self.estimates])) if self.estimates else 1.0

    def __getitem__(self, rater: str) -> RaterEstimate:
        try:
            return self._by_name[rater]
        except KeyError:
            raise KeyError(f"no estimate for rater {rater!r}; known: {', '.join(self.names) or 'none'}") from None

    def __contains__(self, rater: object) -> bool:
        return rater in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self.estimates)


@dataclass(frozen=True)
class FitInfo:
    """How a fit went.

    Attributes
    ----------
    iterations : int
        Accelerated EM cycles run (each is three EM steps; see ``estimate_raters``).
    converged : bool
        Whether the largest change of a bias or a noise sd fell below ``tol``.
    max_change : float
        That change at the last iteration.
    n_images : int
        Images used (with two raters or more).
    n_skipped : int
        Images skipped because fewer than two raters labelled them.
    n_pixels : int
        Sampled pixels over all used images.
    n_groups : int
        Distinct rater sets.
    anchor : str
        How the biases are pinned down.
    """

    iterations: int
    converged: bool
    max_change: float
    n_images: int
    n_skipped: int
    n_pixels: int
    n_groups: int
    anchor: str = ANCHOR


@dataclass(frozen=True)
class ConsensusResult:
    """The consensus of one image's maps.

    Attributes
    ----------
    map : ndarray, float32 (h, w) in [-1, 1]
        The consensus (clipped to [-1, 1]).
    spread : ndarray, float32 (h, w), >= 0
        Per pixel, the weighted standard deviation of the (bias-corrected) maps about the
        consensus, with the consensus weights.
    weights : dict
        rater -> weight (summing to 1).
    bias : dict
        rater -> the bias subtracted from its map (0 for the simple methods).
    method : str
        The registry name of the method.
    """

    map: np.ndarray
    spread: np.ndarray
    weights: dict[str, float]
    bias: dict[str, float]
    method: str


def stack_maps(maps: Mapping[str, np.ndarray], name: str = "maps") -> tuple[list[str], np.ndarray]:
    """Check one image's maps and stack them: (rater names, float32 (k, h, w)).

    Every map must be a residual map (float32 (h, w) in [-1, 1]) of one shape.

    Examples
    --------
    >>> names, st = stack_maps({"b": np.zeros((2, 2), np.float32), "a": np.ones((2, 2), np.float32)})
    >>> names, st.shape
    (['b', 'a'], (2, 2, 2))
    """
    names, arrays = check_maps(maps, name)
    return names, np.stack(arrays)


def check_maps(maps: Mapping[str, np.ndarray], name: str = "maps") -> tuple[list[str], list[np.ndarray]]:
    """Check one image's maps without copying them: (rater names, the arrays); see :func:`stack_maps`.

    Examples
    --------
    >>> check_maps({"a": np.zeros((2, 2), np.float32)})[0]
    ['a']
    """
    if not isinstance(maps, Mapping):
        raise TypeError(f"{name} must be a mapping rater name -> residual map, got {type(maps).__name__}")
    if not maps:
        raise ValueError(f"{name} must hold at least one rater's map; got none")
    names = [str(r) for r in maps]
    arrays = [check_residual(m, f"{name}[{r!r}]") for r, m in maps.items()]
    shape = arrays[0].shape
    for r, a in zip(names, arrays):
        if a.shape != shape:
            raise ValueError(
                f"{name}[{r!r}] has shape {a.shape} but {name}[{names[0]!r}] has {shape}; "
                "maps of one image must share one shape (resize them to the label resolution first)"
            )
    return names, arrays


class _Block:
    """Sufficient statistics of one rater set in one image block."""

    __slots__ = ("G", "M", "N", "images")

    def __init__(self, k: int):
        self.G = np.zeros((k, k))
        self.M = np.zeros(k)
        self.N = 0.0
        self.images = 0


def _split_item(item: Any, index: int, seed: int) -> tuple[Any, Mapping[str, np.ndarray]]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
        return item[0], item[1]
    if isinstance(item, Mapping):
        return f"{seed}:{index}", item
    raise TypeError(
        f"images[{index}] must be a mapping rater -> map, or a (key, mapping) pair, got {type(item).__name__}"
    )


def _group_terms(
    idx: np.ndarray, G: np.ndarray, M: np.ndarray, N: np.ndarray, bias: np.ndarray, sigma2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one rater set, per fit ``b``: sum(x - t_hat) (b, k), sum((x - t_hat)^2) (b, k) and N / W (b,).

    ``G`` (b, k, k), ``M`` (b, k), ``N`` (b,) are the set's statistics; ``bias`` and ``sigma2``
    (b, R) the current parameters of every rater.
    """
    w = 1.0 / sigma2[:, idx]
    W = w.sum(axis=1)
    a = w / W[:, None]
    c = (a * bias[:, idx]).sum(axis=1)[:, None]
    um = M - (a * M).sum(axis=1)[:, None]  # (I - 1 a^T) M: each rater's sum minus the weighted sum
    Ga = np.einsum("bij,bj->bi", G, a)
    n = N[:, None]
    r1 = um + n * c
    q = np.einsum("bii->bi", G) - 2.0 * Ga + (a * Ga).sum(axis=1)[:, None] + 2.0 * c * um + n * c * c
    return r1, np.maximum(q, 0.0), N / W


def _components(n: int, groups: Iterable[np.ndarray]) -> np.ndarray:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for idx in groups:
        root = find(int(idx[0]))
        for j in idx[1:]:
            parent[find(int(j))] = root
    return np.array([find(i) for i in range(n)])


def estimate_raters(
    images: Iterable[ImageItem],
    *,
    max_iter: int = 50,
    tol: float = 1e-6,
    sample: int | None = 4096,
    seed: int = 0,
    blocks: int = 64,
    n_boot: int = 200,
    progress: ProgressFn | None = None,
) -> tuple[RaterParams, FitInfo]:
    """Fit every rater's bias and noise variance jointly over a stream of images (continuous STAPLE).

    Parameters
    ----------
    images : iterable
        One item per image, read once (a generator is fine): a mapping rater name -> residual
        map (float32 (h, w) in [-1, 1], one shape per image), or a ``(key, mapping)`` pair
        whose key (the image's sha256 or id) fixes the pixel sample. Images with fewer than two
        raters are skipped and counted.
    max_iter : int
        Accelerated EM cycles at most (SQUAREM: two EM steps, an extrapolation and a
        stabilising EM step each, kept only when the marginal likelihood does not drop).
    tol : float
        Stop when no bias and no noise sd changes by more than this.
    sample : int or None
        Pixels per image entering the fit (:func:`pixel_sample`, keyed by the item's key or by
        ``seed`` and its position); None for all.
    seed : int
        Keys the pixel sample of items given without a key.
    blocks : int
        Images are dealt round-robin into this many blocks for the intervals.
    n_boot : int
        Bootstrap resamples of the blocks (each refits from the estimate; 0: pixel-level
        intervals only). Seeded by ``seed``.
    progress : callable, optional
        ``progress(done, total)`` after each image (``total`` 0 when the stream has no length).

    Returns
    -------
    params : RaterParams
    info : FitInfo

    Notes
    -----
    Statistics accumulate in float64. Memory: one ``k × k`` Gram matrix per (rater set,
    block), independent of the number of pixels and bounded by the number of images. See the
    module docstring for the model and :data:`ANCHOR` for the identifiability constraint.
    With only two raters on every image their individual variances are not identifiable (only
    their sum is); raters who share images with many others are.

    References
    ----------
    S. K. Warfield, K. H. Zou, W. M. Wells, "Validation of image segmentation by estimating
    rater bias and variance", Phil. Trans. R. Soc. A 366 (2008) 2361-2375.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.uniform(-0.5, 0.5, (20, 32, 32))
    >>> def stream():
    ...     for t in truth:
    ...         yield {"a": (t + 0.1 + rng.normal(0, 0.02, t.shape)).astype(np.float32),
    ...                "b": (t + rng.normal(0, 0.05, t.shape)).astype(np.float32),
    ...                "c": (t - 0.1 + rng.normal(0, 0.10, t.shape)).astype(np.float32)}
    >>> params, info = estimate_raters(stream(), sample=512)
    >>> [round(params[r].bias, 2) for r in "abc"], [round(params[r].sigma, 2) for r in "abc"]
    ([0.1, 0.0, -0.1], [0.02, 0.05, 0.1])
    >>> info.converged, info.n_images
    (True, 20)
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative int, got {n_boot!r}")
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be a positive int, got {blocks!r}")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 1):
        raise ValueError(f"sample must be a positive int (pixels per image) or None for all, got {sample!r}")
    total = len(images) if hasattr(images, "__len__") else 0  # type: ignore[arg-type]

    stats: dict[tuple[str, ...], dict[int, _Block]] = {}
    pix_per_rater: dict[str, int] = {}
    img_per_rater: dict[str, int] = {}
    used = skipped = n_pixels = 0
    for i, item in enumerate(images):
        key, maps = _split_item(item, i, seed)
        if len(maps) < 2:
            skipped += 1
        else:
            names, arrays = check_maps(maps, f"images[{i}]")
            order = np.argsort(names)
            names = [names[j] for j in order]
            if len(set(names)) != len(names):
                raise ValueError(f"images[{i}] names a rater twice: {names}")
            idx = pixel_sample(arrays[0].shape, sample, key=key)
            xs = np.empty((len(names), idx.size))
            for row, j in enumerate(order):
                flat = arrays[j].ravel()
                xs[row] = flat[idx] if idx.size < flat.size else flat
            xs -= xs.mean(axis=0)  # the update is invariant to a per-pixel common shift; this keeps G small
            blk = stats.setdefault(tuple(names), {}).setdefault(used % blocks, _Block(len(names)))
            blk.G += xs @ xs.T
            blk.M += xs.sum(axis=1)
            blk.N += xs.shape[1]
            blk.images += 1
            for r in names:
                pix_per_rater[r] = pix_per_rater.get(r, 0) + xs.shape[1]
                img_per_rater[r] = img_per_rater.get(r, 0) + 1
            used += 1
            n_pixels += xs.shape[1]
        if progress is not None:
            progress(i + 1, total)

    raters = sorted(pix_per_rater)
    pos = {r: j for j, r in enumerate(raters)}
    R = len(raters)
    groups: list[_GroupStats] = []
    for names_t, blks in stats.items():
        ids = sorted(blks)
        groups.append(
            _GroupStats(
                np.array([pos[r] for r in names_t]),
                np.array(ids),
                np.stack([blks[b].G for b in ids]),
                np.stack([blks[b].M for b in ids]),
                np.array([blks[b].N for b in ids]),
            )
        )
    comp = _components(R, [g.idx for g in groups]) if R else np.zeros(0, int)
    totals = [(g.idx, g.G.sum(axis=0)[None], g.M.sum(axis=0)[None], np.array([g.N.sum()])) for g in groups]
    b0, s0 = np.zeros((1, R)), np.ones((1, R))
    bias2, sigma22, its, conv, change = _fit(totals, R, comp, b0, s0, max_iter, tol)
    bias, sigma2 = bias2[0], sigma22[0]
    ests = _intervals(raters, groups, comp, bias, sigma2, img_per_rater, pix_per_rater, n_boot, seed, tol)
    info = FitInfo(
        its, bool(conv.all()) or R == 0, float(change.max()) if R else 0.0, used, skipped, n_pixels, len(groups)
    )
    return RaterParams(tuple(ests)), info


class _GroupStats:
    """One rater set's statistics, per block: Gram matrices (nb, k, k), sums (nb, k), pixels (nb,)."""

    __slots__ = ("idx", "blocks", "G", "M", "N")

    def __init__(self, idx: np.ndarray, blocks: np.ndarray, G: np.ndarray, M: np.ndarray, N: np.ndarray):
        self.idx, self.blocks, self.G, self.M, self.N = idx, blocks, G, M, N


def _em_step(
    totals: list[_Totals], R: int, comp: np.ndarray, b: np.ndarray, s2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One EM step of ``B`` fits at once from (bias, sigma2) (B, R); also each fit's marginal log-likelihood."""
    B = b.shape[0]
    s1, sq, nn, pv = np.zeros((B, R)), np.zeros((B, R)), np.zeros((B, R)), np.zeros((B, R))
    ll = np.zeros(B)
    for idx, G, M, N in totals:
        r1, q, nw = _group_terms(idx, G, M, N, b, s2)
        s1[:, idx] += r1
        sq[:, idx] += q
        nn[:, idx] += N[:, None]
        pv[:, idx] += nw[:, None]
        bi, si = b[:, idx], s2[:, idx]
        ss = q - 2.0 * bi * r1 + N[:, None] * bi**2  # sum of (x - bias - t_hat)^2
        with np.errstate(divide="ignore", invalid="ignore"):
            logw = np.where(N > 0, np.log(np.where(N > 0, N, 1.0) / np.where(nw > 0, nw, 1.0)), 0.0)
        ll -= 0.5 * (N * np.log(si).sum(axis=1) - N * logw + (ss / si).sum(axis=1))
    seen = nn > 0
    safe = np.where(seen, nn, 1.0)
    b_new = np.where(seen, s1 / safe, b)
    s2_new = np.where(seen, np.maximum((sq - 2.0 * b_new * s1 + nn * b_new**2 + pv) / safe, SIGMA2_FLOOR), s2)
    for c in np.unique(comp):
        sel = comp == c
        b_new[:, sel] -= b_new[:, sel].mean(axis=1, keepdims=True)
    return b_new, s2_new, ll


def _fit(
    totals: list[_Totals],
    R: int,
    comp: np.ndarray,
    bias: np.ndarray,
    sigma2: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """``B`` fits at once (rows of ``bias``, ``sigma2``): EM accelerated by SQUAREM on (bias, log sigma).

    Two EM steps give a direction, a step length extrapolates along it (Varadhan & Roland 2008)
    and a third EM step stabilises; where the marginal likelihood would drop, the plain second EM
    step is kept. A fit that has converged stops moving. Returns bias, sigma2, cycles, converged
    (B,), last change (B,).
    """
    B = bias.shape[0]
    converged = np.zeros(B, bool)
    change = np.full(B, np.inf)
    if R == 0:
        return bias, sigma2, 0, np.ones(B, bool), np.zeros(B)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        b1, s21, _ = _em_step(totals, R, comp, bias, sigma2)
        b2, s22, ll1 = _em_step(totals, R, comp, b1, s21)
        t0 = np.concatenate([bias, 0.5 * np.log(sigma2)], axis=1)
        t1 = np.concatenate([b1, 0.5 * np.log(s21)], axis=1)
        t2 = np.concatenate([b2, 0.5 * np.log(s22)], axis=1)
        r, v = t1 - t0, t2 - 2.0 * t1 + t0
        nr, nv = np.linalg.norm(r, axis=1), np.linalg.norm(v, axis=1)
        alpha = np.minimum(-1.0, -nr / np.where(nv > 0, nv, 1.0))[:, None]
        tx = t0 - 2.0 * alpha * r + alpha**2 * v
        bx, s2x = tx[:, :R], np.maximum(np.exp(2.0 * np.clip(tx[:, R:], -30, 30)), SIGMA2_FLOOR)
        b3, s23, llx = _em_step(totals, R, comp, bx, s2x)
        take = ((nv > 0) & np.isfinite(llx) & (llx >= ll1))[:, None]
        b_next, s2_next = np.where(take, b3, b2), np.where(take, s23, s22)
        step = np.maximum(np.abs(b_next - bias).max(axis=1), np.abs(np.sqrt(s2_next) - np.sqrt(sigma2)).max(axis=1))
        keep = converged[:, None]
        bias, sigma2 = np.where(keep, bias, b_next), np.where(keep, sigma2, s2_next)
        change = np.where(converged, change, step)
        converged |= step < tol
        if converged.all():
            break
    return bias, sigma2, it, converged, change


def _intervals(
    raters: list[str],
    groups: list[_GroupStats],
    comp: np.ndarray,
    bias: np.ndarray,
    sigma2: np.ndarray,
    img_per_rater: dict[str, int],
    pix_per_rater: dict[str, int],
    n_boot: int,
    seed: int,
    tol: float,
) -> list[RaterEstimate]:
    """95 % intervals: a bootstrap over image blocks (all resamples refitted at once), else pixel-level."""
    R = len(raters)
    all_blocks = np.unique(np.concatenate([g.blocks for g in groups])) if groups else np.zeros(0, int)
    boot_b: np.ndarray | None = None
    boot_s: np.ndarray | None = None
    if n_boot and all_blocks.size >= 2:
        rng = np.random.default_rng(seed)
        nb = all_blocks.size
        draw = rng.integers(0, nb, size=(n_boot, nb))
        counts = np.bincount((draw + (np.arange(n_boot) * nb)[:, None]).ravel(), minlength=n_boot * nb)
        counts = counts.reshape(n_boot, nb).astype(np.float64)
        pos = np.searchsorted(all_blocks, np.arange(all_blocks.max() + 1))
        totals: list[_Totals] = []
        for g in groups:
            c = counts[:, pos[g.blocks]]
            totals.append((g.idx, np.tensordot(c, g.G, axes=1), c @ g.M, c @ g.N))
        start_b, start_s = np.repeat(bias[None], n_boot, axis=0), np.repeat(sigma2[None], n_boot, axis=0)
        boot_b, boot_s, *_ = _fit(totals, R, comp, start_b, start_s, 20, max(tol, 1e-5))
    out = []
    for j, r in enumerate(raters):
        b, s2 = float(bias[j]), float(sigma2[j])
        n_pix = int(pix_per_rater[r])
        b_ci: tuple[float, float]
        s_ci: tuple[float, float]
        if boot_b is not None and boot_s is not None and img_per_rater[r] >= 2:
            lo_b, hi_b = np.percentile(boot_b[:, j], [2.5, 97.5])
            lo_s, hi_s = np.percentile(boot_s[:, j], [2.5, 97.5])
            b_ci, s_ci = (float(lo_b), float(hi_b)), (float(lo_s), float(hi_s))
        else:
            se_b = math.sqrt(s2 / max(n_pix, 1))
            b_ci = (b - _Z * se_b, b + _Z * se_b)
            dof = max(n_pix - 1, 1)
            from scipy.special import chdtri  # chdtri(v, q): the chi-square quantile with upper tail q

            s_ci = (dof * s2 / float(chdtri(dof, 0.025)), dof * s2 / float(chdtri(dof, 0.975)))
        out.append(RaterEstimate(r, b, s2, int(img_per_rater[r]), n_pix, b_ci, s_ci))
    return out


def consensus_map(maps: Mapping[str, np.ndarray], params: RaterParams | None = None) -> ConsensusResult:
    """The estimated consensus of one image: the precision-weighted mean of bias-corrected maps.

    Parameters
    ----------
    maps : mapping rater name -> ndarray, float32 (h, w) in [-1, 1]
        One map per rater (at least one), all of one shape.
    params : RaterParams, optional
        Pooled parameters from :func:`estimate_raters`. A rater it does not know gets the
        median noise variance and zero bias. When None, the parameters are fitted on this
        image alone (every pixel); with one rater the consensus is that rater's map.

    Returns
    -------
    ConsensusResult
        ``map`` = ``sum_r w_r (map_r - bias_r)`` clipped to [-1, 1] (float64 inside,
        float32 out), the per-pixel weighted spread, the weights and the biases used.

    Examples
    --------
    >>> p = RaterParams.from_values({"a": 0.1, "b": 0.0}, {"a": 0.01, "b": 0.03})
    >>> maps = {"a": np.full((1, 2), 0.5, np.float32), "b": np.full((1, 2), 0.0, np.float32)}
    >>> res = consensus_map(maps, p)
    >>> res.map.astype(float).round(3).tolist(), {r: round(w, 2) for r, w in res.weights.items()}
    ([[0.3, 0.3]], {'a': 0.75, 'b': 0.25})
    >>> round(consensus_map({"a": maps["a"], "zed": maps["b"]}, p).weights["zed"], 3)  # unknown: median variance
    0.333
    """
    names, arrays = check_maps(maps, "maps")
    if params is not None and not isinstance(params, RaterParams):
        raise TypeError(f"params must be RaterParams (from estimate_raters) or None, got {type(params).__name__}")
    if params is None:
        params = estimate_raters([maps], sample=None)[0] if len(names) >= 2 else RaterParams(())
    med = params.median_sigma2
    bias = np.array([params[r].bias if r in params else 0.0 for r in names])
    w = np.array([1.0 / params[r].sigma2 if r in params else 1.0 / med for r in names])
    a = w / w.sum()
    # one rater at a time into float64 accumulators: no (k, h, w) float64 copy
    t = np.zeros(arrays[0].shape)
    sq = np.zeros(arrays[0].shape)
    y = np.empty(arrays[0].shape)
    tmp = np.empty(arrays[0].shape)
    for j, x in enumerate(arrays):
        np.subtract(x, bias[j], out=y)
        np.multiply(y, a[j], out=tmp)
        t += tmp
        tmp *= y
        sq += tmp
    spread = np.sqrt(np.maximum(sq - t * t, 0.0))  # weighted mean of squares minus the squared mean
    return ConsensusResult(
        map=np.clip(t, -1.0, 1.0).astype(np.float32),
        spread=spread.astype(np.float32),
        weights={r: float(v) for r, v in zip(names, a)},
        bias={r: float(v) for r, v in zip(names, bias)},
        method="staple",
    )
