"""The chunked columns step and the array timestamp parser equal their plain per-document references."""

from __future__ import annotations

import random
from collections import UserDict
from typing import Any

import numpy as np
import pytest

from detectors.ml.features.columns import columns_from_docs, columns_from_docs_reference, epoch_minute, epoch_minutes

from .conftest import docs


def _same(fast: Any, ref: Any) -> None:
    for name in ("minute", "status", "bytes_out", "input_tokens", "output_tokens", "latency_ms"):
        assert np.array_equal(getattr(fast, name), getattr(ref, name)), name
        assert getattr(fast, name).dtype == getattr(ref, name).dtype, name
    for name in ("route", "path", "country", "asn", "user_agent"):
        assert getattr(fast, name).tolist() == getattr(ref, name).tolist(), name
    assert {k: v.tolist() for k, v in fast.entities.items()} == {k: v.tolist() for k, v in ref.entities.items()}
    assert fast.event_ids == ref.event_ids


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 129, 1000])
def test_chunked_columns_equal_the_reference(size: int) -> None:
    data = docs(10, ("key_leak",))[:size]
    if size > 3:  # a document of another Mapping type, one without most fields
        data[1] = UserDict(data[1])
        data[2] = {"@timestamp": data[2]["@timestamp"]}
    _same(columns_from_docs(data), columns_from_docs_reference(data))
    _same(columns_from_docs(data, [f"e{i}" for i in range(size)]),
          columns_from_docs_reference(data, [f"e{i}" for i in range(size)]))  # fmt: skip


def test_array_timestamps_equal_one_by_one_parsing() -> None:
    rng = random.Random(0)
    stamps = []
    for _ in range(5000):
        date = f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        time = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}"
        stamp = f"{date}T{time}Z"
        if rng.random() < 0.2:  # a character changed: another valid form, or none
            at = rng.randrange(len(stamp))
            stamp = stamp[:at] + rng.choice("0:/-TZ x+9") + stamp[at + 1 :]
        try:
            epoch_minute(stamp)
        except ValueError:
            continue
        stamps.append(stamp)
    assert epoch_minutes(stamps).tolist() == [epoch_minute(t) for t in stamps]
