"""Annotation quality in the catalog: imported labels, gold images, consensus revisions, the quality report.

- :func:`import_released_maps` (the released IEA40K maps, kind ``imported``) and
  :func:`import_expert_labels` (another tool's expert maps as revisions of their chain);
- gold images: :func:`add_gold`, :func:`list_gold`, :func:`remove_gold`, the rate
  (:func:`get_gold_rate`, :func:`set_gold_rate`) and each annotator's scores (:func:`gold_results`);
- consensus revisions: :func:`compute_consensus` (pooled rater fit, resumable) and
  :func:`update_consensus` (the images marked stale by a submit or accept);
- :func:`quality_report` (everything the Quality page shows), :func:`image_quality`,
  :func:`reliability` and :func:`write_quality_report` (HTML, CSV, Parquet, PNG).

The maths is :mod:`iea_data.core.quality`; see ``docs/quality.md``.
"""

from ._consensus import (
    CONSENSUS_RUN_METHODS,
    FIT_IMAGES,
    RATER_PARAMS_KEY,
    ConsensusReport,
    ExpertHead,
    compute_consensus,
    expert_heads,
    fit_sample,
    stored_rater_params,
    update_consensus,
)
from ._gold import (
    GOLD_THRESHOLD,
    GoldInfo,
    GoldResult,
    add_gold,
    get_gold_rate,
    gold_results,
    list_gold,
    remove_gold,
    set_gold_rate,
)
from ._imports import (
    IMPORT_SIGNS,
    IMPORT_STATUSES,
    ImportRefused,
    ImportReport,
    check_expert_map,
    check_released_map,
    check_released_maps_dir,
    import_expert_labels,
    import_released_maps,
)
from ._report import (
    ANNOTATOR_COLUMNS,
    IMAGE_COLUMNS,
    ImageQuality,
    QualityReport,
    image_quality,
    quality_report,
    rebuild_summary,
    reliability,
    write_quality_report,
)
from ._synthetic import build_synthetic_quality_catalog

__all__ = [
    "CONSENSUS_RUN_METHODS",
    "FIT_IMAGES",
    "RATER_PARAMS_KEY",
    "ConsensusReport",
    "ExpertHead",
    "compute_consensus",
    "fit_sample",
    "update_consensus",
    "expert_heads",
    "stored_rater_params",
    "GOLD_THRESHOLD",
    "GoldInfo",
    "GoldResult",
    "add_gold",
    "list_gold",
    "remove_gold",
    "get_gold_rate",
    "set_gold_rate",
    "gold_results",
    "IMPORT_SIGNS",
    "IMPORT_STATUSES",
    "ImportRefused",
    "ImportReport",
    "check_expert_map",
    "check_released_map",
    "check_released_maps_dir",
    "import_expert_labels",
    "import_released_maps",
    "ANNOTATOR_COLUMNS",
    "IMAGE_COLUMNS",
    "ImageQuality",
    "QualityReport",
    "image_quality",
    "quality_report",
    "rebuild_summary",
    "reliability",
    "write_quality_report",
    "build_synthetic_quality_catalog",
]
