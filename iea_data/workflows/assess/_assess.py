"""Assessment of any photos: residual map by the model, then every rule base's 0–100 score.

This is the no-reference evaluator the paper names (judging exposure-correction and
low-light-enhancement results without a reference). Photos need not be in a catalog.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from iea_data.core.errors import IeaError, ImageDecodeError
from iea_data.core.files import atomic_write
from iea_data.core.imaging import check_residual, luma, read_image, resize_image, resize_map
from iea_data.core.progress import ProgressFn
from iea_data.core.rules import RuleBase, RuleScore, score_maps

__all__ = [
    "AssessResult",
    "AssessReport",
    "assess",
    "expand_paths",
    "find_mask",
    "read_mask",
    "MAP_SUFFIX",
    "load_residual",
    "score_residual",
    "result_row",
    "resolve_rule_bases",
    "write_heatmap",
]

log = logging.getLogger(__name__)

MAP_SUFFIX = ".npy"
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".npy")


@dataclass
class AssessResult:
    """The assessment of one file.

    Attributes
    ----------
    path : str
    height, width : int
        Size of the residual map (the label resolution of the photo).
    mean, mean_abs : float
        Mean residual and mean |residual| over the image (float64 accumulation).
    scores : list of RuleScore
        One per rule base, in the order asked.
    mask : str or None
        The region mask file used, if any.
    heatmap : str or None
        The heatmap PNG written, if asked.
    """

    path: str
    height: int
    width: int
    mean: float
    mean_abs: float
    scores: list
    mask: Optional[str] = None
    heatmap: Optional[str] = None

    def to_row(self) -> dict:
        """A flat row for CSV: one column group per rule base (``NAME.score`` …)."""
        row = {
            "path": self.path,
            "height": self.height,
            "width": self.width,
            "mean": self.mean,
            "mean_abs": self.mean_abs,
            "mask": self.mask or "",
        }
        for s in self.scores:
            row[f"{s.rule_base}.score"] = s.score
            row[f"{s.rule_base}.level"] = s.level
            row[f"{s.rule_base}.condition"] = s.condition
            row[f"{s.rule_base}.frac_under"] = s.frac_under
            row[f"{s.rule_base}.frac_over"] = s.frac_over
            row[f"{s.rule_base}.region"] = s.region
        row["heatmap"] = self.heatmap or ""
        return row

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "height": self.height,
            "width": self.width,
            "mean": self.mean,
            "mean_abs": self.mean_abs,
            "mask": self.mask,
            "heatmap": self.heatmap,
            "rules": {s.rule_base: s.to_dict() for s in self.scores},
        }


@dataclass
class AssessReport:
    """Results in input order, files that failed (path, reason), and timing."""

    rule_bases: list
    results: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    model: Optional[str] = None

    @property
    def images_per_second(self) -> float:
        n = len(self.results) + len(self.errors)
        return n / self.seconds if self.seconds > 0 else float("nan")

    def notes(self) -> list[str]:
        """Things the reader must know, e.g. region rule bases scored on the whole image."""
        out = []
        for rb in self.rule_bases:
            if rb.region is None:
                continue
            whole = sum(
                1 for r in self.results for s in r.scores if s.rule_base == rb.name and s.region == "whole image"
            )
            if whole:
                out.append(
                    f"{rb.name} judges the {rb.region.replace('_', ' ')} region; {whole} image(s) had no mask, "
                    f"so their score used the whole image (give masks with --masks DIR)"
                )
        return out

    def write(self, path: Union[str, os.PathLike]) -> None:
        """Write the results to a ``.csv`` (one row per file, :meth:`AssessResult.to_row`) or ``.json`` file.

        The file is written under a temporary name and renamed (:func:`iea_data.core.files.atomic_write`).
        """
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            data = (json.dumps(self.to_json(), indent=2) + "\n").encode()
        elif suffix == ".csv":
            rows = [r.to_row() for r in self.results]
            buf = io.StringIO(newline="")
            w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["path"])
            w.writeheader()
            w.writerows(rows)
            data = buf.getvalue().encode()
        else:
            raise IeaError(f"the results file must end in .csv or .json, got {Path(path).name!r}")
        atomic_write(path, data, make_dirs=True)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "rule_bases": [rb.name for rb in self.rule_bases],
            "thresholds": {rb.name: vars(rb.thresholds) for rb in self.rule_bases},
            "results": [r.to_dict() for r in self.results],
            "errors": [{"path": p, "error": e} for p, e in self.errors],
            "notes": self.notes(),
        }


def expand_paths(paths: Sequence[Union[str, os.PathLike]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to assess: files as given, folders walked for images (sorted); plus (path, error) pairs.

    Examples
    --------
    >>> files, errors = expand_paths(["/no/such/file.jpg"])
    >>> files, errors[0][1]
    ([], 'file not found')
    """
    from iea_data.workflows.catalog import walk_images

    files: list[str] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for path, err in walk_images([p]):
                if err is None:
                    files.append(path)
                else:
                    errors.append((path, err.message))
        elif os.path.isfile(p):
            files.append(os.path.abspath(p))
        else:
            errors.append((p, "file not found"))
    return files, errors


def find_mask(masks_dir: Union[str, os.PathLike], image_path: str) -> Optional[str]:
    """The mask file for ``image_path`` in ``masks_dir``: same stem, an image or ``.npy``; else None."""
    stem = Path(image_path).stem
    for suffix in MASK_SUFFIXES:
        cand = Path(masks_dir) / f"{stem}{suffix}"
        if cand.is_file():
            return str(cand)
    return None


def read_mask(path: Union[str, os.PathLike], shape: tuple[int, int]) -> np.ndarray:
    """A region mask (True = region) at ``shape``: white/non-zero pixels of an image, or a ``.npy`` array.

    Image masks are thresholded at mid-grey after resizing (area average) to ``shape``;
    ``.npy`` masks must be 2-D (bool, or numbers where non-zero is the region).
    """
    path = os.fspath(path)
    if path.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IeaError(f"mask {path}: cannot read the .npy file ({exc})") from None
        if arr.ndim != 2:
            raise IeaError(f"mask {path}: expected a 2-D array, got shape {arr.shape}")
        m = (arr != 0).astype(np.float32)
    else:
        try:
            m = luma(read_image(path).rgb)
        except ImageDecodeError as exc:
            raise IeaError(f"mask {path}: {exc}") from None
    if m.shape != tuple(shape):
        m = resize_map(m.astype(np.float32), tuple(shape))
    mask = m >= 0.5
    if not mask.any():
        raise IeaError(f"mask {path} is empty (no pixel above mid-grey): paint the region white")
    return mask


def _unique_png(directory: Path, stem: str, used: set) -> Path:
    name, k = f"{stem}.png", 2
    while name in used:
        name, k = f"{stem}-{k}.png", k + 1
    used.add(name)
    return directory / name


def assess(
    paths: Sequence[Union[str, os.PathLike]],
    *,
    rule_bases: Optional[Sequence[Union[str, RuleBase]]] = None,
    masks: Union[None, str, os.PathLike, Mapping[str, Union[str, np.ndarray]]] = None,
    heatmaps_dir: Optional[Union[str, os.PathLike]] = None,
    model: str = "pieanet",
    weights="official",
    device: str = "auto",
    batch_size: int = 8,
    num_workers: int = 2,
    max_side: int = 1024,
    progress: Optional[ProgressFn] = None,
    precision: str = "fp32",
) -> AssessReport:
    """Assess photos: residual map, mean |residual|, and each rule base's score and level.

    Parameters
    ----------
    paths : sequence of path
        Image files or folders (walked for images). A ``.npy`` file is taken as a residual map
        (float32 (H, W) in [-1, 1], ``Y(photo) - Y(ideal)``) and scored without the model.
    rule_bases : sequence of str or RuleBase, optional
        Registered names, rule-base files, or :class:`RuleBase` objects; default all registered.
    masks : folder or mapping, optional
        Region masks for rule bases that judge a region: a folder holding ``<image stem>.png``
        (white = region) or ``.npy``, or a mapping path → mask file or bool array. Images without
        one are scored on the whole image, and :meth:`AssessReport.notes` says so.
    heatmaps_dir : folder, optional
        Write ``<stem>.png``: the blue-white-red overlay with a legend and the scores.
    model, weights, device, batch_size, num_workers
        The residual-map model (:func:`iea_data.core.model.create_model`) and its DataLoader.
    max_side : int, optional
        Long side of the residual maps (the label resolution), default 1024.
    progress : callable, optional
        ``progress(done, total)``.
    precision : {"fp32", "auto", "bf16"}, optional
        The model's precision (:func:`iea_data.core.model.resolve_precision`). Default fp32: scores
        are the deliverable and must not depend on the CPU; ``auto`` takes bf16 where the
        device computes it natively and its recorded effect on the scores is within bound.

    Returns
    -------
    AssessReport
        One result per readable file, in input order; unreadable files in ``errors`` (one bad
        file never stops the rest).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp(); r = np.zeros((8, 8), np.float32); r[:4] = -0.5
    >>> np.save(os.path.join(d, "half_dark.npy"), r)
    >>> rep = assess([os.path.join(d, "half_dark.npy")], rule_bases=["strict_landscape"])
    >>> res = rep.results[0]; res.mean_abs, res.scores[0].score
    (0.25, 0)
    """
    from iea_data.core.model import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    t0 = time.perf_counter()
    rbs = resolve_rule_bases(rule_bases)
    files, errors = expand_paths(paths)
    report = AssessReport(rule_bases=rbs)
    if isinstance(masks, (str, os.PathLike)) and not os.path.isdir(masks):
        raise IeaError(f"masks folder {os.fspath(masks)!r} does not exist")
    out_dir = None
    if heatmaps_dir is not None:
        out_dir = Path(heatmaps_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    used_names: set = set()
    total = len(files)
    results: dict[int, AssessResult] = {}
    failed: dict[int, str] = {}

    def finish(i: int, residual: Optional[np.ndarray], error: str) -> None:
        path = files[i]
        if error:
            failed[i] = error
        else:
            try:
                results[i] = _score_one(path, residual, rbs, masks, out_dir, used_names)
            except IeaError as exc:
                failed[i] = str(exc)
        if progress:
            progress(len(results) + len(failed), total)

    map_idx = [i for i, f in enumerate(files) if f.endswith(MAP_SUFFIX)]
    photo_idx = [i for i, f in enumerate(files) if not f.endswith(MAP_SUFFIX)]
    for i in map_idx:
        try:
            finish(i, load_residual(files[i]), "")
        except IeaError as exc:
            finish(i, None, str(exc))
    if photo_idx:
        import torch

        from iea_data.core.model import create_model, get_model_cfg, predict_files, resolve_precision

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        prec = resolve_precision(precision, device)
        cfg = get_model_cfg(model)
        net = create_model(model, weights=weights, device=device).eval()
        report.model = f"{model} ({'released weights' if weights == 'official' else weights}, {device}, {prec.name})"
        for fm in predict_files(
            net,
            [files[i] for i in photo_idx],
            max_side=max_side,
            input_size=tuple(cfg.input_size),
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
            dtype=prec.dtype,
        ):
            finish(photo_idx[fm.index], fm.residual, fm.error)
    report.results = [results[i] for i in sorted(results)]
    report.errors = errors + [(files[i], failed[i]) for i in sorted(failed)]
    report.seconds = time.perf_counter() - t0
    return report


def resolve_rule_bases(rule_bases: Optional[Sequence[Union[str, RuleBase]]] = None) -> list[RuleBase]:
    """Rule bases by name, file or object (default: every registered one), as :func:`assess` takes them.

    Examples
    --------
    >>> [rb.name for rb in resolve_rule_bases(["strict_landscape"])]
    ['strict_landscape']
    """
    from iea_data.core.rules import get_rule_base

    rbs = [rb if isinstance(rb, RuleBase) else get_rule_base(rb) for rb in (rule_bases or _all_names())]
    if not rbs:
        raise IeaError("no rule base given; see `iea rules ls`")
    return rbs


def load_residual(path: Union[str, os.PathLike]) -> np.ndarray:
    """A residual map given as a ``.npy`` file (float32 (H, W) in [-1, 1]); :class:`IeaError` if it is not one."""
    try:
        residual = np.load(os.fspath(path), allow_pickle=False)
        return check_residual(residual, "residual map")
    except (OSError, ValueError, TypeError) as exc:
        raise IeaError(f"not a residual map: {exc}") from None


def score_residual(
    path: str,
    residual: np.ndarray,
    rule_bases: Sequence[RuleBase],
    *,
    masks: Union[None, str, os.PathLike, Mapping[str, Union[str, np.ndarray]]] = None,
) -> AssessResult:
    """Score one photo's residual map with each rule base (what :func:`assess` does per file, no heatmap).

    Pure and picklable in and out, so any process can run it (the Ray engine's model actors do).

    Examples
    --------
    >>> r = np.zeros((8, 8), np.float32); r[:4] = -0.5
    >>> res = score_residual("x.png", r, resolve_rule_bases(["strict_landscape"]))
    >>> res.mean_abs, res.scores[0].score
    (0.25, 0)
    """
    return _score_one(path, residual, rule_bases, masks, None, set())


#: Per-rule-base columns of :func:`result_row`.
RULE_COLUMNS = ("score", "level", "condition", "frac_under", "frac_over", "region")


def result_row(
    path: str,
    rule_bases: Sequence[RuleBase],
    result: Optional[AssessResult] = None,
    *,
    sha256: Optional[str] = None,
    error: str = "",
) -> dict:
    """One flat row per photo for a results table (Parquet): the result, or the error with empty columns.

    Columns: ``path``, ``sha256``, ``error`` (empty when scored), ``height``, ``width``,
    ``mean``, ``mean_abs``, ``mask``, then ``<rule base>.<score|level|condition|frac_under|
    frac_over|region>`` for each rule base; an error row has the same columns, None-valued.

    Examples
    --------
    >>> rbs = resolve_rule_bases(["strict_landscape"])
    >>> row = result_row("bad.png", rbs, error="cannot decode")
    >>> row["error"], row["strict_landscape.score"]
    ('cannot decode', None)
    """
    row: dict = {"path": path, "sha256": sha256, "error": error}
    if result is None:
        row.update(height=None, width=None, mean=None, mean_abs=None, mask=None)
        for rb in rule_bases:
            row.update({f"{rb.name}.{c}": None for c in RULE_COLUMNS})
        return row
    row.update(height=result.height, width=result.width, mean=result.mean, mean_abs=result.mean_abs, mask=result.mask)
    for s in result.scores:
        row.update({f"{s.rule_base}.{c}": getattr(s, c) for c in RULE_COLUMNS})
    return row


def _all_names() -> list[str]:
    from iea_data.core.rules import list_rule_bases

    return list_rule_bases()


def _score_one(
    path: str, residual: np.ndarray, rbs: Sequence[RuleBase], masks, out_dir: Optional[Path], used_names: set
) -> AssessResult:
    mask_arr, mask_path = None, None
    if any(rb.region is not None for rb in rbs) and masks is not None:
        if isinstance(masks, Mapping):
            given = masks.get(path)
            if isinstance(given, np.ndarray):
                if given.dtype != bool or given.ndim != 2:
                    raise IeaError(f"mask for {path} must be a 2-D bool array, got {given.dtype} {given.shape}")
                mask_arr = (
                    given
                    if given.shape == residual.shape
                    else resize_map(given.astype(np.float32), residual.shape) >= 0.5
                )
                mask_path = "<array>"
            elif given is not None:
                mask_path = os.fspath(given)
        else:
            mask_path = find_mask(masks, path)
        if mask_path is not None and mask_arr is None:
            mask_arr = read_mask(mask_path, residual.shape)
    # one pass of shared statistics for every rule base (bit-identical to score_map per rule base)
    scores: list[RuleScore] = score_maps(residual, rbs, mask=mask_arr)
    r64 = residual.astype(np.float64)
    result = AssessResult(
        path, residual.shape[0], residual.shape[1], float(r64.mean()), float(np.abs(r64).mean()), scores, mask_path
    )
    if out_dir is not None:
        result.heatmap = str(_write_heatmap(path, residual, scores, out_dir, used_names))
    return result


def _write_heatmap(path: str, residual: np.ndarray, scores: Sequence[RuleScore], out_dir: Path, used: set) -> Path:
    return write_heatmap(path, residual, scores, _unique_png(out_dir, Path(path).stem, used))


def write_heatmap(path: str, residual: np.ndarray, scores: Sequence[RuleScore], out: Union[str, os.PathLike]) -> Path:
    """Write the heatmap PNG of one assessed photo to ``out``: the overlay, its legend and the scores.

    ``path`` is the photo (drawn under the map where it can be read) or a ``.npy`` map (the map alone).
    """
    from iea_data.core.heatmaps import render_heatmap
    from iea_data.core.imaging import write_image

    photo = None
    if not path.endswith(MAP_SUFFIX):
        try:
            photo = resize_image(read_image(path, max_side=max(residual.shape)).rgb, residual.shape)
        except (ImageDecodeError, OSError, TypeError):
            photo = None
    title = f"{Path(path).name}\n" + "  ·  ".join(f"{s.rule_base.split('_')[0]} {s.score}" for s in scores)
    pic = render_heatmap(residual, photo, opacity=0.7 if photo is not None else 1.0, title=title)
    out = Path(out)
    write_image(out, pic.astype(np.float32) / 255.0)
    return out
