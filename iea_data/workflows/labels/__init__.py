"""Residual-map labels: revisions, provenance, statistics, pre-labels, and the annotation workflow.

The workflow (annotation queue, painter state, drafts, saves, review) is described in
``docs/annotation.md``; every rule is enforced here, the app only calls these functions.
"""

from ._annotate import base_label, change_base, open_annotation, save_annotation, score_source
from ._drafts import BASES, AnnotationState, discard_draft, save_draft, strokes_bytes, strokes_from_bytes
from ._gold_mix import check_gold_rate, gold_rate, mix_gold
from ._prelabel import (
    LabelWriter,
    ModelRun,
    PrelabelItem,
    PrelabelPlan,
    PrelabelReport,
    PrelabelResult,
    commit_prelabels,
    model_result,
    model_run,
    plan_prelabel,
    prelabel_model,
    prelabel_refdiff,
    refdiff_result,
    select_images,
)
from ._queue import QUEUE_ORDERS, QueueItem, annotation_progress, annotation_queue
from ._review import (
    DECISIONS,
    REVIEW_ORDERS,
    ExpertLabel,
    ReviewItem,
    agreement,
    annotator_summary,
    expert_labels,
    expert_spread,
    review_label,
    review_queue,
)
from ._revisions import (
    StoredMap,
    chain_head,
    chain_key,
    load_label_map,
    save_label,
    save_label_batch,
    set_label_status,
    store_label_map,
)
from ._stale import CONSENSUS_INPUT_STATUSES, mark_consensus_stale
from ._view import LabelView, image_label, label_map

__all__ = [
    "BASES",
    "AnnotationState",
    "strokes_bytes",
    "strokes_from_bytes",
    "open_annotation",
    "change_base",
    "save_draft",
    "discard_draft",
    "save_annotation",
    "base_label",
    "score_source",
    "QUEUE_ORDERS",
    "QueueItem",
    "annotation_queue",
    "annotation_progress",
    "DECISIONS",
    "REVIEW_ORDERS",
    "ReviewItem",
    "review_queue",
    "expert_labels",
    "expert_spread",
    "review_label",
    "annotator_summary",
    "agreement",
    "chain_head",
    "chain_key",
    "load_label_map",
    "save_label",
    "save_label_batch",
    "set_label_status",
    "StoredMap",
    "store_label_map",
    "PrelabelReport",
    "prelabel_model",
    "prelabel_refdiff",
    "select_images",
    "ModelRun",
    "PrelabelItem",
    "PrelabelPlan",
    "PrelabelResult",
    "LabelWriter",
    "commit_prelabels",
    "model_result",
    "model_run",
    "plan_prelabel",
    "refdiff_result",
    "LabelView",
    "image_label",
    "label_map",
    "ExpertLabel",
    "CONSENSUS_INPUT_STATUSES",
    "mark_consensus_stale",
    "check_gold_rate",
    "gold_rate",
    "mix_gold",
]
