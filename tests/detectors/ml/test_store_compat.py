"""Saved models whose behaviour features no longer match the code are refused with a clear message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from detectors.ml import store
from detectors.ml.presets import load_preset
from detectors.ml.training import train

from .conftest import docs


def test_models_of_an_older_feature_set_ask_to_be_retrained(tmp_path: Path) -> None:
    model = train(load_preset("entity-behaviour"), docs(20))
    old = dataclasses.replace(model, feature_names=model.feature_names[:-3])  # as before the context features
    with pytest.raises(store.ModelStoreError, match="retrain"):
        store.load(store.save(old, tmp_path))
    assert store.load(store.save(model, tmp_path)).feature_names == model.feature_names
