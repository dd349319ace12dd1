"""The progress callback every long workflow accepts."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressFn"]

#: ``progress(done, total)``: called after each item of a long run (the CLI draws a bar from it).
ProgressFn = Callable[[int, int], None]
