"""Rule bases: from a pixel-level residual map to manufacturers' 0–100 image scores; assessment.

The five published example rule bases (``../shared/reference/exposure-rules.md``) ship as
data files in ``schemas/rules/`` (schema ``rule-base.v1.schema.json``) and are registered in
:data:`RULE_BASES` at import. A custom rule base is a JSON file with the same schema:
:func:`load_rule_base` validates it and names the line of each error; :func:`get_rule_base`
accepts a registered name or a file path.

Examples
--------
>>> import numpy as np
>>> from iea_data.core.rules import list_rule_bases, get_rule_base, score_map
>>> list_rule_bases()
['ecommerce_product', 'night_low_light', 'portrait_first', 'street_documentary', 'strict_landscape']
>>> r = np.zeros((100, 100), np.float32); r[:, :3] = 0.5          # 3 % blown highlights
>>> s = score_map(r, get_rule_base("strict_landscape"))
>>> s.score, s.condition
(80, 'global bad area < 5 %')
"""

from __future__ import annotations

import os
from typing import Union

from iea_data.core.errors import IeaError
from iea_data.core.registry import Registry
from schemas import SCHEMAS_DIR

from ._rulebase import (
    QUANTITIES,
    REGIONS,
    SCHEMA_ID,
    SCOPES,
    Condition,
    Level,
    RuleBase,
    RuleBaseError,
    RuleScore,
    Thresholds,
    dumps,
    exposure_statistics,
    load_rule_base,
    parse_rule_base,
    rule_base_summary,
    score_map,
    score_maps,
)

__all__ = [
    "RULE_BASES",
    "RULES_DIR",
    "SCHEMA_PATH",
    "list_rule_bases",
    "get_rule_base",
    "register_rule_base",
    "SCHEMA_ID",
    "SCOPES",
    "QUANTITIES",
    "REGIONS",
    "Condition",
    "Level",
    "RuleBase",
    "RuleBaseError",
    "RuleScore",
    "Thresholds",
    "dumps",
    "exposure_statistics",
    "load_rule_base",
    "parse_rule_base",
    "rule_base_summary",
    "score_map",
    "score_maps",
]

#: Folder of the rule-base files shipped with the package.
RULES_DIR = SCHEMAS_DIR / "rules"
#: JSON schema of rule-base files.
SCHEMA_PATH = RULES_DIR / "rule-base.v1.schema.json"

#: Registered rule bases by name.
RULE_BASES = Registry("rule base")


def register_rule_base(rule_base: RuleBase) -> RuleBase:
    """Register a :class:`RuleBase` under its name (names are unique)."""
    if not isinstance(rule_base, RuleBase):
        raise TypeError(f"rule_base must be a RuleBase, got {type(rule_base).__name__}")
    RULE_BASES.register(rule_base.name)(rule_base)
    return rule_base


def list_rule_bases(pattern: str = "*") -> list[str]:
    """Registered rule-base names matching the fnmatch ``pattern``, sorted."""
    return RULE_BASES.list(pattern)


def get_rule_base(name_or_path: Union[str, os.PathLike, RuleBase]) -> RuleBase:
    """A registered rule base by name, or one loaded (and validated) from a JSON file.

    Raises
    ------
    IeaError
        Unknown name (with close matches), or :class:`RuleBaseError` for an invalid file.
    """
    if isinstance(name_or_path, RuleBase):
        return name_or_path
    text = os.fspath(name_or_path)
    if text in RULE_BASES:
        return RULE_BASES.get(text)
    if text.endswith(".json") or os.sep in text or os.path.exists(text):
        return load_rule_base(text)
    try:
        return RULE_BASES.get(text)
    except IeaError as exc:
        raise IeaError(f"{exc} A custom rule base is given as a path to its .json file.") from None


def _register_builtins() -> None:
    for path in sorted(RULES_DIR.glob("*.json")):
        if path.name.endswith(".schema.json"):
            continue
        rb = load_rule_base(path)
        if rb.name != path.stem:
            raise RuleBaseError(f"{path}: the file name must be the rule base's name ({rb.name}.json)")
        register_rule_base(rb)


_register_builtins()
