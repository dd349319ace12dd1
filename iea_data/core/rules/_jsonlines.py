"""JSON parsing that remembers on which line each object and each key's value starts.

Rule-base files are JSON; their errors name the line to fix. The standard library's
pure-Python scanner is reused with an object parser that records positions.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from collections.abc import Callable
from typing import Any

__all__ = ["LinedDict", "LinedList", "loads_with_lines", "line_of"]


class LinedDict(dict):
    """A dict from :func:`loads_with_lines`: ``line`` of its ``{`` and ``key_lines[key]``."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LinedList(list):
    """A list from :func:`loads_with_lines`: ``line`` of its ``[`` and ``item_lines[i]``."""

    line: int = 0
    item_lines: list


def _line(s: str, pos: int) -> int:
    return s.count("\n", 0, pos) + 1


def loads_with_lines(text: str, *, source: str = "<string>") -> Any:
    """Parse JSON text; objects become :class:`LinedDict`, arrays :class:`LinedList`.

    Parameters
    ----------
    text : str
        JSON document.
    source : str, optional
        Name used in error messages (a file path).

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    ValueError
        Invalid JSON or a key repeated in one object, with the line and column.

    Examples
    --------
    >>> d = loads_with_lines('{"a": 1,\\n "b": {"c": 2}}')
    >>> d.line_of("b"), d["b"].line
    (2, 2)
    """
    decoder = json.JSONDecoder()

    def parse_object(
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: Callable[[str, int], tuple[Any, int]],
        object_hook: Any,
        object_pairs_hook: Any,
        memo: dict | None = None,
    ) -> tuple[LinedDict, int]:
        s, end = s_and_end
        starts: list[int] = []

        def recording_scan(string: str, idx: int) -> tuple[Any, int]:
            starts.append(idx)
            return scan_once(string, idx)

        pairs, new_end = json.decoder.JSONObject((s, end), strict, recording_scan, None, list, memo)  # type: ignore[attr-defined]
        out = LinedDict()
        out.line = _line(s, end - 1)
        out.key_lines = {}
        for (key, value), pos in zip(pairs, starts):
            if key in out:
                raise ValueError(f"{source}, line {_line(s, pos)}: key {key!r} appears twice in one object")
            out[key] = value
            out.key_lines[key] = _line(s, pos)
        return out, new_end

    def parse_array(
        s_and_end: tuple[str, int], scan_once: Callable[[str, int], tuple[Any, int]]
    ) -> tuple[LinedList, int]:
        s, end = s_and_end
        starts: list[int] = []

        def recording_scan(string: str, idx: int) -> tuple[Any, int]:
            starts.append(idx)
            return scan_once(string, idx)

        values, new_end = json.decoder.JSONArray((s, end), recording_scan)  # type: ignore[attr-defined]
        out = LinedList(values)
        out.line = _line(s, end - 1)
        out.item_lines = [_line(s, p) for p in starts[: len(values)]]
        return out, new_end

    # The pure-Python scanner reads these hooks off the decoder (typeshed does not declare them).
    hooks: Any = decoder
    hooks.parse_object = parse_object
    hooks.parse_array = parse_array
    hooks.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}, line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None


def line_of(container: Any, key: Any) -> int:
    """Line of ``container[key]`` where known, else of the container, else 0."""
    if isinstance(container, LinedDict):
        return container.line_of(key)
    if isinstance(container, LinedList) and isinstance(key, int) and 0 <= key < len(container.item_lines):
        return container.item_lines[key]
    return getattr(container, "line", 0)
