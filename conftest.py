"""Repository-wide pytest plumbing: the namespace the library's doctests run in.

``pytest`` collects every docstring example under ``iea_data`` (``--doctest-modules`` in
``pyproject.toml``); this file is the one conftest that sees both ``iea_data/`` and ``tests/``.
Test fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    """Every doctest may use ``np`` without importing it."""
    doctest_namespace["np"] = np
