"""Typed metric configurations: the one table of defaults (direction, range, reference)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from iea_data.core.errors import IeaError

__all__ = ["MetricCfg", "MetricInputError"]


class MetricInputError(IeaError, ValueError):
    """Inputs a metric cannot be computed on: shape mismatch, NaN, constant scores, too few."""


@dataclass(frozen=True)
class MetricCfg:
    """Facts about one metric.

    Parameters
    ----------
    name : str
        Registry name (``"ssim"``).
    kind : {"map", "score"}
        ``"map"``: compares residual maps, one value per image. ``"score"``: compares
        image-level scores over a set of images, one value per set.
    lower_better : bool
        True for errors (``mae``), False for similarities and correlations.
    value_range : tuple of float
        The values the metric can take (``inf`` allowed, e.g. PSNR of identical maps).
    reference : str
        The implementation the values agree with to 1e-3 (tested).
    params : mapping
        Keyword parameters with their defaults (``tau`` for the classification metrics,
        ``cut`` for the good/bad accuracy); :func:`iea_data.core.metrics.create` overrides them.
    description : str
        One line for listings and reports.
    """

    name: str
    kind: str
    lower_better: bool
    value_range: tuple[float, float]
    reference: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def with_params(self, **overrides: Any) -> MetricCfg:
        """A copy with some ``params`` replaced; unknown names raise with the known ones.

        Examples
        --------
        >>> cfg = MetricCfg("acc", "map", False, (0.0, 1.0), "NumPy", {"tau": 0.1})
        >>> cfg.with_params(tau=0.2).params["tau"]
        0.2
        """
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise IeaError(f"metric {self.name!r} has no parameter {unknown[0]!r}; its parameters: {known}")
        return replace(self, params={**self.params, **overrides})
