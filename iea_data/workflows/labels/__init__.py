"""Residual-map labels: revisions, provenance, statistics, pre-labels, and the annotation workflow.

The workflow (annotation queue, painter state, drafts, saves, review) is described in
``docs/annotation.md``; every rule is enforced here, the app only calls these functions.
"""

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

from ._drafts import BASES, AnnotationState, discard_draft, save_draft
from ._annotate import base_label, change_base, open_annotation, save_annotation, score_source
from ._queue import QUEUE_ORDERS, QueueItem, annotation_progress, annotation_queue
from ._review import (
    DECISIONS,
    ReviewItem,
    agreement,
    annotator_summary,
    expert_labels,
    expert_spread,
    review_label,
    review_queue,
)

__all__ = [
    "BASES", "AnnotationState", "open_annotation", "change_base", "save_draft", "discard_draft", "save_annotation", "base_label",
    "score_source", "QUEUE_ORDERS", "QueueItem", "annotation_queue", "annotation_progress",
    "DECISIONS", "ReviewItem", "review_queue", "expert_labels", "expert_spread", "review_label", "annotator_summary",
    "agreement",
    "IDEAL_TOLERANCE", "chain_head", "chain_key", "label_stats", "load_label_map", "save_label", "set_label_status",
    "PrelabelReport", "prelabel_model", "prelabel_refdiff", "refdiff_map", "select_images",
]
