"""``benchmark_release``: the one call behind ``iea benchmark`` (a release split in, a report out)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from ..errors import IeaError
from ._report import write_report
from ._runner import BenchmarkResult, Progress, run_benchmark

__all__ = ["benchmark_release", "open_release_split"]


def open_release_split(release: str | os.PathLike, split: str, *, resize: Optional[int] = 256, format: str = "native"):
    """The items of one split of a built release, as :class:`iea_data.releases.ReleaseDataset`.

    Raises
    ------
    IeaError
        The release package is not available, or the release / split does not exist.
    """
    try:
        from ..releases import ReleaseDataset
    except ImportError as exc:
        raise IeaError(f"reading releases needs iea_data.releases.ReleaseDataset, which is not available here ({exc})") from None
    if not Path(release).exists():
        raise IeaError(f"release {str(release)!r} does not exist; build one with `iea release build`")
    return ReleaseDataset(release, split, resize=resize, format=format)


def benchmark_release(
    release: str | os.PathLike,
    split: str,
    *,
    methods: Sequence[str],
    out: str | os.PathLike,
    metrics: Optional[Sequence[str]] = None,
    mappings: Optional[Sequence[str]] = None,
    resize: Optional[int] = 256,
    batch_size: int = 8,
    num_workers: int = 0,
    device: Optional[str] = None,
    progress: Progress = None,
) -> Tuple[BenchmarkResult, Dict[str, Path]]:
    """Benchmark methods on a release split and write the report.

    Parameters
    ----------
    release : path-like
        A built release folder.
    split : str
        Split name (``"valid"``).
    methods : sequence of str
        Method names or ``checkpoint:PATH`` (see :func:`list_methods`).
    out : path-like
        Report folder.
    metrics, mappings : sequence of str, optional
        See :func:`run_benchmark`.
    resize : int or None, optional
        Items resized to ``resize`` x ``resize`` by the dataset (256: the network's size);
        ``None`` keeps the stored size.
    batch_size, num_workers, device, progress
        See :func:`run_benchmark`.

    Returns
    -------
    (BenchmarkResult, dict)
        The result and the written files (see :data:`REPORT_FILES`).
    """
    data = open_release_split(release, split, resize=resize)
    result = run_benchmark(
        data, methods, metrics=metrics, mappings=mappings, batch_size=batch_size,
        num_workers=num_workers, device=device, progress=progress,
    )
    return result, write_report(result, out)
