"""The Examples in the training docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "iea_data.workflows.training",
        "iea_data.workflows.training._config",
        "iea_data.workflows.training._checkpoint",
        "iea_data.workflows.training._trainer",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
