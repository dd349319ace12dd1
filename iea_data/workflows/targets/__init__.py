"""Ideal-exposure targets: EV maps painted on a scene's reference, stored as revisions.

Saving one recomputes the reference differences of the scene's variants and rebases the
expert annotations painted over them (see :mod:`iea_data.workflows.targets._targets` and
``docs/annotation.md``). Who may paint: reviewers and admins (action ``"paint_target"``).
"""

from ._paintable import PaintableScene, paintable_scenes
from ._targets import (
    TargetSaveReport,
    TargetState,
    apply_target,
    open_target,
    save_target,
    target_head,
)

__all__ = [
    "TargetState",
    "TargetSaveReport",
    "open_target",
    "save_target",
    "apply_target",
    "target_head",
    "PaintableScene",
    "paintable_scenes",
]
