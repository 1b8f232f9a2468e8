"""Shared data: small labelled ECS document sets from the seeded traffic generator (memoized)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sources.synthetic import generate_api_access, to_json_line

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@cache
def events(minutes: int, scenarios: tuple[str, ...] = (), offset_min: int = 0, rate: float = 5.0
           ) -> tuple[NormalizedEvent, ...]:  # fmt: skip
    """Normalized events of seed 1 (one platform), each with ``labels.scenario`` when injected."""
    normalizer = Normalizer()
    out = []
    start = START + timedelta(minutes=offset_min)
    generated = generate_api_access(
        seed=1, start=start, duration=timedelta(minutes=minutes), rate_per_s=rate, scenarios=scenarios
    )
    for e in generated:
        result = normalizer.normalize(Record("api_access", to_json_line(e)[:-1]))
        assert isinstance(result, NormalizedEvent)
        if e.scenario:
            result.doc["labels"] = {"scenario": e.scenario}
        out.append(result)
    return tuple(out)


def docs(minutes: int, scenarios: tuple[str, ...] = (), offset_min: int = 0) -> list[dict[str, Any]]:
    return [e.doc for e in events(minutes, scenarios, offset_min)]
