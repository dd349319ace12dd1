"""``benchmark_release``: the one call behind ``iea benchmark`` (a release split in, a report out)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from iea_data.core.errors import IeaError

from ._report import write_report
from ._runner import BenchmarkResult, Progress, run_benchmark

__all__ = ["benchmark_release", "open_release_split", "default_split"]


def default_split(release: str | os.PathLike, wanted: Optional[str], candidates: Sequence[str]) -> str:
    """``wanted``, or the first of ``candidates`` the release has (``val`` / ``valid``).

    Raises
    ------
    IeaError
        No candidate exists; the message lists the release's splits.
    """
    if wanted:
        return wanted
    from iea_data.workflows.releases import read_manifest

    have = list(read_manifest(release)["splits"]["counts"])
    for c in candidates:
        if c in have:
            return c
    raise IeaError(
        f"release {release} has none of the splits {', '.join(candidates)}; it has {', '.join(have) or 'none'}: "
        "name one with --split / --val-split"
    )


class _WithReferences:
    """A release split whose items also carry their scene's reference image (``reference``, (3, H, W)).

    References come from the release's ``native/scenes.parquet`` (``reference_file``),
    resized to each item's image size; items of scenes without one get none.
    """

    def __init__(self, dataset, release: Path):
        import pyarrow.parquet as pq

        self.dataset = dataset
        self.release = Path(release)
        table = self.release / "native" / "scenes.parquet"
        rows = pq.read_table(table, columns=["scene", "reference_file"]).to_pylist() if table.is_file() else []
        self.refs = {r["scene"]: r["reference_file"] for r in rows if r.get("reference_file")}

    def __len__(self) -> int:
        return len(self.dataset)

    def _reference(self, rel: str, h: int, w: int):
        """The reference at (h, w), (3, h, w); the last one is kept (a scene's variants are adjacent)."""
        key = (rel, h, w)
        if getattr(self, "_last", (None, None))[0] != key:
            from iea_data.core.imaging import read_image, resize_image
            from iea_data.workflows.releases import resolve_file

            ref = read_image(resolve_file(self.release, rel, workspace=getattr(self.dataset, "workspace", None))).rgb
            if ref.shape[:2] != (h, w):
                ref = resize_image(ref, (h, w))
            self._last = (key, ref.transpose(2, 0, 1).copy())
        return self._last[1]

    def __getitem__(self, index: int) -> dict:
        import torch

        item = dict(self.dataset[index])
        rel = self.refs.get(item.get("scene"))
        if rel:
            h, w = item["image"].shape[-2:]
            item["reference"] = torch.from_numpy(self._reference(rel, int(h), int(w)).copy())
        return item


def open_release_split(
    release: str | os.PathLike,
    split: str,
    *,
    resize: Optional[int] = 256,
    format: Optional[str] = None,
    references: bool = False,
):
    """The items of one split of a built release, as :class:`iea_data.workflows.releases.ReleaseDataset`.

    Parameters
    ----------
    release : path-like
        The release folder.
    split : str
        Split name.
    resize : int or None, optional
        Passed to ``ReleaseDataset``.
    format : {"native", "official"}, optional
        Passed to ``ReleaseDataset``; default ``native`` when the release has it, else ``official``.
    references : bool, optional
        Add each scene's reference image as ``reference`` (for the ``refdiff`` oracle).

    Raises
    ------
    IeaError
        The release / split does not exist.
    """
    from iea_data.workflows.releases import ReleaseDataset

    if not Path(release).exists():
        raise IeaError(f"release {str(release)!r} does not exist; build one with `iea release build`")
    if format is None:
        format = "native" if (Path(release) / "native" / "images.parquet").is_file() else "official"
    ds = ReleaseDataset(release, split, resize=resize, format=format)
    return _WithReferences(ds, Path(release)) if references else ds


def benchmark_release(
    release: str | os.PathLike,
    split: Optional[str],
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
) -> tuple[BenchmarkResult, dict[str, Path]]:
    """Benchmark methods on a release split and write the report.

    Parameters
    ----------
    release : path-like
        A built release folder.
    split : str or None
        Split name; ``None``: ``val``, else ``valid``, else ``test``.
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

    Examples
    --------
    >>> result, files = benchmark_release("ws/releases/demo/1.0.0", "val", methods=["zero", "refdiff"],
    ...                                   out="bench/")  # doctest: +SKIP
    >>> files["html"]                                    # doctest: +SKIP
    PosixPath('bench/report.html')
    """
    split = default_split(release, split, ("val", "valid", "test"))
    needs_refs = any("refdiff" == (m if isinstance(m, str) else m.name) for m in methods)
    data = open_release_split(release, split, resize=resize, references=needs_refs)
    result = run_benchmark(
        data,
        methods,
        metrics=metrics,
        mappings=mappings,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )
    return result, write_report(result, out)
