"""Image-level scores from residual maps: the stated mappings used for SRCC / PLCC / KRCC.

``mean_abs``: ``10 * (1 - mean |r|)`` -- a 0-10 score (higher is better, the released
manifests' scale), monotone in the mean absolute residual. ``rule:<name>``: the rule base's
0-100 score (:func:`iea_data.core.rules.score_map`) divided by 10, when :mod:`iea_data.core.rules`
provides it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from iea_data.core.errors import IeaError

__all__ = ["score_mappings", "available_mappings", "mean_abs_score", "SCORE_SCALE"]

log = logging.getLogger(__name__)

#: Image-level scores are on 0..SCORE_SCALE, as the released manifests.
SCORE_SCALE = 10.0


def mean_abs_score(residual: np.ndarray) -> float:
    """``10 * (1 - mean |residual|)``, accumulated in float64.

    Parameters
    ----------
    residual : ndarray
        float (H, W) in [-1, 1].

    Returns
    -------
    float
        In [0, 10]; 10 for an all-ideal map.

    Examples
    --------
    >>> mean_abs_score(np.array([[0.5, -0.5], [0.0, 0.0]], np.float32))
    7.5
    """
    return float(SCORE_SCALE * (1.0 - np.abs(np.asarray(residual, dtype=np.float64)).mean()))


def _rules_api():
    try:
        from iea_data.core import rules
    except ImportError:  # pragma: no cover - rules are part of the package
        return None
    if not all(hasattr(rules, n) for n in ("list_rule_bases", "get_rule_base", "score_map")):
        return None
    return rules


def score_mappings(names: Optional[Sequence[str]] = None) -> dict[str, Callable[[np.ndarray], float]]:
    """The map -> score functions by name: ``mean_abs`` and ``rule:<rule base>`` for each rule base.

    Rule bases that need a semantic region (subject, product) are scored on the whole image
    (``mask=None``), as :func:`iea_data.core.rules.score_map` does without a mask.

    Parameters
    ----------
    names : sequence of str, optional
        Only these (default: all available).

    Returns
    -------
    dict
        name -> ``fn(residual) -> float`` on the 0-10 scale.

    Raises
    ------
    IeaError
        A requested name that is not available.

    Examples
    --------
    >>> f = score_mappings(["mean_abs"])["mean_abs"]
    >>> f(np.zeros((2, 2), np.float32))
    10.0
    """
    out: dict[str, Callable[[np.ndarray], float]] = {"mean_abs": mean_abs_score}
    rules = _rules_api()
    if rules is not None:
        for rb_name in rules.list_rule_bases():
            rb = rules.get_rule_base(rb_name)

            def fn(residual, _rb=rb):
                r = np.clip(np.asarray(residual, dtype=np.float32), -1.0, 1.0)
                return float(rules.score_map(r, _rb).score) / 100.0 * SCORE_SCALE

            out[f"rule:{rb_name}"] = fn
    if names is None:
        return out
    missing = [n for n in names if n not in out]
    if missing:
        raise IeaError(f"unknown score mapping {missing[0]!r}; available: {', '.join(out)}")
    return {n: out[n] for n in names}


def available_mappings() -> list[str]:
    """Names :func:`score_mappings` provides here."""
    return list(score_mappings())
