"""Residual maths: reference differences, ideal images from EV maps, statistics and unit conversions.

The project's sign everywhere: ``residual = Y(photo) − Y(ideal)`` in [−1, 1], negative where the
photo is darker than ideal. Pure functions on float32 arrays (no database, no workspace); the
workflows (pre-labels, targets, releases) call them.

Examples
--------
>>> import numpy as np
>>> ref = np.full((4, 4, 3), 0.5, np.float32)
>>> float(refdiff_map(ref * 0.5, ref, (2, 2))[0, 0])
-0.25
"""

from ._ideal import EV_LIMIT, check_ev_map, ideal_from_ev
from ._official import OFFICIAL_MAP_SCALE, OFFICIAL_MAP_SIZE, official_map_to_residual, residual_to_official_map
from ._refdiff import refdiff_map, variant_refdiff
from ._stats import IDEAL_TOLERANCE, label_stats

__all__ = [
    "refdiff_map",
    "variant_refdiff",
    "EV_LIMIT",
    "ideal_from_ev",
    "check_ev_map",
    "IDEAL_TOLERANCE",
    "label_stats",
    "OFFICIAL_MAP_SIZE",
    "OFFICIAL_MAP_SCALE",
    "residual_to_official_map",
    "official_map_to_residual",
]
