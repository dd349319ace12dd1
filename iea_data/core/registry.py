"""A small registry of named factories (models, methods, metrics, rule bases).

Modelled on timm's ``register_model`` / ``list_models`` and pyiqa's registry with
"did you mean" hints.
"""

from __future__ import annotations

import builtins
import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import IeaError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry:
    """Name → object mapping with a decorator, fnmatch listing and difflib hints.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages (``"model"``, ``"metric"``).

    Examples
    --------
    >>> METRICS = Registry("metric")
    >>> @METRICS.register("mae")
    ... def mae(a, b):
    ...     return abs(a - b)
    >>> METRICS.get("mae")(3, 1)
    2
    >>> METRICS.list("m*")
    ['mae']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"{self.kind}: {obj!r} has no __name__; pass register(name=...)")
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; unknown names raise with a hint."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise IeaError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._items)) or 'none'}."
            ) from None

    def list(self, pattern: str = "*") -> builtins.list[str]:
        """Sorted names matching the fnmatch ``pattern``."""
        return sorted(k for k in self._items if fnmatch.fnmatch(k, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
