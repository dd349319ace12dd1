"""Lazy attributes for packages whose public names need heavy imports (torch).

A package lists which private module defines each lazy name; the module is imported on first
access, so ``import iea_data.core.model`` stays cheap for code that only needs configs.

Examples
--------
>>> import types
>>> pkg = types.ModuleType("demo_pkg")
>>> getattr_, dir_ = lazy_attributes("json", {"dumps": "json"}, ["dumps"], namespace=vars(pkg))
>>> getattr_("dumps")([1])
'[1]'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, lazy: Mapping[str, str], public: Iterable[str], *, namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (relative module names resolve against it).
    lazy : mapping of str to str
        Public name → module that defines it (e.g. ``"._factory"``).
    public : iterable of str
        The package's ``__all__``.
    namespace : mapping
        The package's ``globals()``; a loaded value is cached there.
    """
    public = list(public)

    def __getattr__(name: str) -> Any:
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
