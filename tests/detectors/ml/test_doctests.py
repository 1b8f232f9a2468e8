"""The examples in the ML modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["detectors.ml.scaling", "detectors.ml.base", "detectors.ml.registry", "detectors.ml.presets",
           "detectors.ml.engine", "detectors.ml.features.columns", "detectors.ml.frames", "detectors.ml.ecdf_index",
           "detectors"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and (result.attempted > 0 or name == "detectors")
