"""Residual-map labels: revisions, provenance, statistics, and pre-labels."""

from ._prelabel import PrelabelReport, prelabel_model, prelabel_refdiff, refdiff_map, select_images
from ._revisions import (
    IDEAL_TOLERANCE,
    chain_head,
    chain_key,
    label_stats,
    load_label_map,
    save_label,
    set_label_status,
)

__all__ = [
    "IDEAL_TOLERANCE", "chain_head", "chain_key", "label_stats", "load_label_map", "save_label", "set_label_status",
    "PrelabelReport", "prelabel_model", "prelabel_refdiff", "refdiff_map", "select_images",
]
