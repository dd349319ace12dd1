"""Annotation quality for many experts per image: rater bias and noise, estimated consensus, reliability.

Pure NumPy (SciPy for two distribution quantiles), no database: the workflows feed maps in
and store what comes out.

- :func:`estimate_raters` fits each rater's additive bias and noise variance jointly over a
  stream of images (continuous STAPLE, pooled across images, bounded memory), and
  :func:`consensus_map` turns one image's maps into the precision-weighted consensus.
- :func:`simple_consensus` (median / mean / trimmed) and the :data:`CONSENSUS_METHODS`
  registry (``staple``, ``median``, ``mean``, ``trimmed``) for the methods side by side.
- :func:`icc_2_1` and :func:`krippendorff_alpha_interval` with confidence intervals, over a
  deterministic :func:`pixel_sample`.
- :func:`gold_scores` for an annotator's map against a gold reference.
- Plots as PNG bytes: :func:`bias_plot_png`, :func:`noise_plot_png`,
  :func:`reliability_over_time_png`, :func:`expert_grid_png`.

Examples
--------
>>> import numpy as np
>>> from iea_data.core.quality import estimate_raters, consensus_map
>>> t = np.linspace(-0.5, 0.5, 64, dtype=np.float32).reshape(8, 8)
>>> maps = {"a": t + np.float32(0.1), "b": t, "c": t - np.float32(0.1)}
>>> params, info = estimate_raters([maps])
>>> [round(params[r].bias, 3) for r in "abc"]
[0.1, 0.0, -0.1]
>>> float(np.abs(consensus_map(maps, params).map - t).max()) < 1e-6
True
"""

from ._gold import GOLD_THRESHOLD, GoldScore, gold_scores
from ._methods import CONSENSUS_METHODS, SIMPLE_METHODS, TRIM_PROPORTION, get_consensus, simple_consensus
from ._plots import (
    SPREAD_COLORMAP,
    bias_plot_png,
    colorize_spread,
    expert_grid_png,
    noise_plot_png,
    reliability_over_time_png,
    spread_legend,
)
from ._reliability import Reliability, icc_2_1, krippendorff_alpha_interval
from ._sampling import pixel_sample, seed_from_key
from ._staple import (
    ANCHOR,
    ConsensusResult,
    FitInfo,
    RaterEstimate,
    RaterParams,
    check_maps,
    consensus_map,
    estimate_raters,
    stack_maps,
)
from ._units import image_reliability, ratings_matrix

__all__ = [
    "ANCHOR",
    "CONSENSUS_METHODS",
    "GOLD_THRESHOLD",
    "SIMPLE_METHODS",
    "SPREAD_COLORMAP",
    "TRIM_PROPORTION",
    "ConsensusResult",
    "FitInfo",
    "GoldScore",
    "RaterEstimate",
    "RaterParams",
    "Reliability",
    "bias_plot_png",
    "check_maps",
    "colorize_spread",
    "consensus_map",
    "estimate_raters",
    "expert_grid_png",
    "get_consensus",
    "gold_scores",
    "icc_2_1",
    "image_reliability",
    "krippendorff_alpha_interval",
    "noise_plot_png",
    "pixel_sample",
    "ratings_matrix",
    "reliability_over_time_png",
    "seed_from_key",
    "simple_consensus",
    "spread_legend",
    "stack_maps",
]
