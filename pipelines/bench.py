"""`make bench`: run every benchmark and print its figures (JSON copies under .bench/).

Run one with ``python -m pipelines.bench catalog`` (or ``model``, ``prelabel``).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = (
    "catalog",
    "ingest_memory",
    "model",
    "prelabel",
    "assess",
    "release",
    "painting",
    "train",
    "login",
    "raw",
    "startup",
    "quality_page",
    "consensus",
    "ray_engine",
    "core_calls",
    "team",  # a short run (K=2, 0.5 min); skips with a message without PostgreSQL, Chromium or haproxy
)


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        try:
            mod = importlib.import_module(f"pipelines.benchmarks.{name}")
        except ImportError as exc:
            print(f"benchmark {name} unavailable: {exc}", file=sys.stderr)
            continue
        mod.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
