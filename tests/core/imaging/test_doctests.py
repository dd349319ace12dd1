"""The Examples in the imaging docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["_validate", "_color", "_exif", "_decode", "_stats", "_resize", "_encode"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"iea_data.core.imaging.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
