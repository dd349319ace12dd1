"""``iea assess``: score photos (files or folders) with P-IEANet and a rule base.

The rule bases themselves (pure scoring of a residual map) live in :mod:`iea_data.core.rules`.
"""

from ._assess import AssessReport, AssessResult, assess, expand_paths, find_mask, read_mask

__all__ = ["AssessReport", "AssessResult", "assess", "expand_paths", "find_mask", "read_mask"]
