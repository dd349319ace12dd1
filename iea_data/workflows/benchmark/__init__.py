"""Benchmark methods x metrics on a release split: registry, runner, report.

- Methods (:data:`METHODS`, :func:`list_methods`, :func:`create_method`): P-IEANet with the
  released weights or a trained checkpoint (``checkpoint:PATH``), and baselines -- ``zero``
  (all ideal), ``global_offset`` (mean luma minus mid-grey), ``local_offset`` (blurred luma
  minus mid-grey), ``histeq`` (luma minus its histogram-equalised version), ``clahe`` (luma
  minus its CLAHE version) and the ``refdiff`` oracle (needs the scene references).
  Every method maps a list of images to residual maps ``Y(photo) - Y(ideal)`` in [-1, 1].
- :func:`run_benchmark`: every method over a dataset of release items, through a
  DataLoader; every metric of :mod:`iea_data.core.metrics` per image; image-level scores through
  stated mappings (:func:`score_mappings`).
- :func:`write_report`: Markdown / CSV / JSON table, per-image Parquet, PNG plots and a
  self-contained HTML report. :func:`benchmark_release` does both for a release split.

Torch is imported only by the P-IEANet method and the DataLoader.

Examples
--------
>>> from iea_data.workflows.benchmark import list_methods
>>> "clahe" in list_methods()
True
"""

from ._methods import (
    METHODS,
    Method,
    MethodCfg,
    create_method,
    get_method_cfg,
    list_methods,
    parse_method_spec,
)
from ._release import benchmark_release, default_split, open_release_split
from ._report import REPORT_FILES, write_report
from ._runner import BenchmarkResult, collate_items, run_benchmark
from ._scoring import available_mappings, mean_abs_score, score_mappings

__all__ = [
    "METHODS",
    "Method",
    "MethodCfg",
    "create_method",
    "get_method_cfg",
    "list_methods",
    "parse_method_spec",
    "run_benchmark",
    "collate_items",
    "BenchmarkResult",
    "write_report",
    "REPORT_FILES",
    "benchmark_release",
    "open_release_split",
    "default_split",
    "score_mappings",
    "available_mappings",
    "mean_abs_score",
]
