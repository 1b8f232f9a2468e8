"""The worker's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from logwarden.collector import DEFAULT_GEN0_THRESHOLD, OLDER_THRESHOLDS, tune_collector
from logwarden.settings import Settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_freezes_what_is_loaded_and_sets_the_thresholds() -> None:
    gc.unfreeze()
    assert tune_collector(12_345) == (12_345, *OLDER_THRESHOLDS)
    assert gc.get_threshold() == (12_345, *OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 1000  # the modules of this test run, at least
    assert gc.isenabled()  # raised thresholds, never switched off: reference cycles are still collected


def test_the_setting_defaults_to_the_measured_threshold_and_refuses_less_than_cpythons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().gc_gen0_threshold == DEFAULT_GEN0_THRESHOLD
    monkeypatch.setenv("LOGWARDEN_GC_GEN0_THRESHOLD", "100")
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        Settings()
