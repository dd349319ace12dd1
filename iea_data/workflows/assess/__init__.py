"""``iea assess``: score photos (files or folders) with P-IEANet and a rule base.

The rule bases themselves (pure scoring of a residual map) live in :mod:`iea_data.core.rules`.
"""

from ._assess import (
    RULE_COLUMNS,
    AssessReport,
    AssessResult,
    assess,
    expand_paths,
    find_mask,
    load_residual,
    read_mask,
    resolve_rule_bases,
    result_row,
    score_residual,
    write_heatmap,
)

__all__ = [
    "AssessReport",
    "AssessResult",
    "assess",
    "expand_paths",
    "find_mask",
    "read_mask",
    "RULE_COLUMNS",
    "load_residual",
    "resolve_rule_bases",
    "result_row",
    "score_residual",
    "write_heatmap",
]
