"""The release's data contracts: the manifest's JSON schema and the native tables' Arrow schemas.

Both live in ``schemas/`` (``release/manifest.v1.schema.json`` and
``arrow/release_v1/<table>.json``). The manifest is checked with a small validator of the
JSON Schema subset the file uses, so no new dependency is needed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pyarrow as pa

from schemas import SCHEMAS_DIR

from ._errors import ManifestSchemaError, ReleaseError

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "MANIFEST_SCHEMA_PATH",
    "RELEASE_ARROW_SCHEMA",
    "RELEASE_TABLES",
    "load_manifest_schema",
    "schema_errors",
    "validate_manifest",
    "release_arrow_schema",
]

_SCHEMAS = SCHEMAS_DIR
MANIFEST_SCHEMA_VERSION = 1
MANIFEST_SCHEMA_PATH = _SCHEMAS / "release" / f"manifest.v{MANIFEST_SCHEMA_VERSION}.schema.json"
#: Name of the frozen Arrow schema set of the native tables (``schemas/arrow/release_v1``).
RELEASE_ARROW_SCHEMA = "release_v1"
RELEASE_TABLES = ("images", "scenes", "labels", "splits", "agreement")

_TYPES = {"int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _python_pattern(pattern: str) -> str:
    """A JSON Schema (ECMA-262) ``pattern`` for Python's ``re``: a bare ``$`` becomes ``\\Z``.

    In ECMA-262 ``$`` matches only at the end of the string; in Python it also matches
    before a trailing newline, so ``"1.0.0\\n"`` would pass ``^[0-9.]+$``.

    >>> _python_pattern(r"^[a-z$]+(x|y)$")
    '^[a-z$]+(x|y)\\\\Z'
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


@cache
def _regex(pattern: str) -> re.Pattern:
    return re.compile(_python_pattern(pattern))


_COMPILED: dict[int, tuple[dict, Any]] = {}


def _compile(s: dict):
    """A fast yes/no checker of ``s`` (the same rules as :func:`schema_errors`, without messages)."""
    hit = _COMPILED.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    checks = []
    if "const" in s:
        const = s["const"]
        checks.append(lambda v: v == const)
    if "enum" in s:
        enum = s["enum"]
        checks.append(lambda v: v in enum)
    if "type" in s:
        tests = [_JSON_TYPES[t] for t in (s["type"] if isinstance(s["type"], list) else [s["type"]])]
        checks.append(tests[0] if len(tests) == 1 else (lambda v: any(t(v) for t in tests)))
    if "pattern" in s:
        rx = _regex(s["pattern"])
        checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    if "minimum" in s:
        lo = s["minimum"]
        checks.append(lambda v: isinstance(v, bool) or not isinstance(v, (int, float)) or v >= lo)
    if any(k in s for k in ("required", "properties", "additionalProperties")):
        required = tuple(s.get("required", ()))
        props = {k: _compile(sub) for k, sub in s.get("properties", {}).items()}
        closed = s.get("additionalProperties") is False

        def obj(v):
            if not isinstance(v, dict):
                return True
            if any(k not in v for k in required):
                return False
            for k, x in v.items():
                c = props.get(k)
                if c is None:
                    if closed:
                        return False
                elif not c(x):
                    return False
            return True

        checks.append(obj)
    if "items" in s:
        item = _compile(s["items"])
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))

    def check(v):
        for c in checks:
            if not c(v):
                return False
        return True

    _COMPILED[id(s)] = (s, check)
    return check


@cache
def load_manifest_schema() -> dict:
    """The manifest's JSON schema (``schemas/release/manifest.v1.schema.json``)."""
    return json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(value: Any, schema: dict, where: str = "$", *, limit: int = 20) -> list[str]:
    """Every way ``value`` breaks ``schema`` (a JSON Schema subset), as ``path: problem`` lines.

    Supports ``type`` (one or a list), ``const``, ``enum``, ``required``, ``properties``,
    ``additionalProperties: false``, ``items``, ``pattern`` and ``minimum``.

    Examples
    --------
    >>> s = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 1}}}
    >>> schema_errors({"n": 0}, s)
    ['$.n: 0 is below the minimum 1']
    >>> schema_errors({}, s)
    ["$: missing required field 'n'"]
    """
    errors: list[str] = []
    parts: list = []  # the path, formatted only when an error is reported

    def here() -> str:
        return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)

    def walk(v, s):
        if len(errors) >= limit or _compile(s)(v):  # the fast check passes: nothing to report below
            return
        if "const" in s and v != s["const"]:
            errors.append(f"{here()}: must be {s['const']!r}, got {v!r}")
            return
        if "enum" in s and v not in s["enum"]:
            errors.append(f"{here()}: must be one of {', '.join(map(repr, s['enum']))}, got {v!r}")
            return
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(_JSON_TYPES[t](v) for t in types):
                errors.append(f"{here()}: must be {' or '.join(types)}, got {type(v).__name__} {v!r:.60}")
                return
        if isinstance(v, str) and "pattern" in s and not _regex(s["pattern"]).search(v):
            errors.append(f"{here()}: {v!r:.80} does not match {s['pattern']}")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and "minimum" in s and v < s["minimum"]:
            errors.append(f"{here()}: {v} is below the minimum {s['minimum']}")
        if isinstance(v, dict):
            for key in s.get("required", ()):
                if key not in v:
                    errors.append(f"{here()}: missing required field {key!r}")
            props = s.get("properties", {})
            closed = s.get("additionalProperties") is False
            for key, sub in v.items():
                if key in props:
                    parts.append(key)
                    walk(sub, props[key])
                    parts.pop()
                elif closed:
                    errors.append(f"{here()}: unexpected field {key!r}")
        if isinstance(v, list) and "items" in s:
            item_schema = s["items"]
            for i, item in enumerate(v):
                parts.append(i)
                walk(item, item_schema)
                parts.pop()

    walk(value, schema)
    return errors[:limit]


def validate_manifest(manifest: dict, *, source: str = "manifest.json") -> dict:
    """Raise :class:`ManifestSchemaError` listing the problems if ``manifest`` breaks the schema."""
    errors = schema_errors(manifest, load_manifest_schema())
    if errors:
        raise ManifestSchemaError(
            f"{source} does not follow {MANIFEST_SCHEMA_PATH.name}: "
            + "; ".join(errors[:5])
            + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        )
    return manifest


@cache
def release_arrow_schema(table: str) -> pa.Schema:
    """The frozen Arrow schema of a native release table.

    Tables: ``images``, ``scenes``, ``labels``, ``splits``, ``agreement``.

    >>> release_arrow_schema("splits").names
    ['split', 'image_key', 'position']
    """
    if table not in RELEASE_TABLES:
        raise ValueError(f"table must be one of {', '.join(RELEASE_TABLES)}, got {table!r}")
    path = _SCHEMAS / "arrow" / RELEASE_ARROW_SCHEMA / f"{table}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(f"no Arrow schema for release table {table!r} at {path}") from None
    fields = [pa.field(f["name"], _TYPES[f["type"]], nullable=f["nullable"]) for f in data["fields"]]
    return pa.schema(
        fields, metadata={b"iea.table": table.encode(), b"iea.schema_version": RELEASE_ARROW_SCHEMA.encode()}
    )
