"""Golden files: every ``golden/<source>/<case>.raw`` parses to its ``.ecs.json`` (or fails with its ``.error.json``).

Regenerate with ``tests/ingest/parsers/regen_golden.py`` and review the diff; never edit by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, get_parser

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.raw"))
MIN_CASES_PER_SOURCE = 3


def leaves(doc: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and EVENT_FIELDS.get(name) != "geo_point":  # a geo_point is one {lat, lon} value
            out.extend(leaves(value, f"{name}."))
        else:
            out.append(name)
    return out


@pytest.mark.parametrize("raw_path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_case(raw_path: Path) -> None:
    source = raw_path.parent.name
    ecs_path, error_path = raw_path.with_suffix(".ecs.json"), raw_path.with_suffix(".error.json")
    assert ecs_path.exists() != error_path.exists(), f"{raw_path}: expected exactly one of .ecs.json / .error.json"
    raw = raw_path.read_bytes()
    if error_path.exists():
        with pytest.raises(ParseError) as info:
            get_parser(source)(raw)
        assert info.value.reason == json.loads(error_path.read_text(encoding="utf-8"))["reason"]
        return
    doc = get_parser(source)(raw)
    assert doc == json.loads(ecs_path.read_text(encoding="utf-8"))
    uncatalogued = sorted(set(leaves(doc)) - set(EVENT_FIELDS))
    assert not uncatalogued, f"fields missing from ingest/ecs.py EVENT_FIELDS: {uncatalogued}"


def test_every_source_has_golden_cases() -> None:
    counts = {source: len(list((GOLDEN / source).glob("*.raw"))) for source in PARSERS}
    thin = {s: n for s, n in counts.items() if n < MIN_CASES_PER_SOURCE}
    assert not thin, f"sources with fewer than {MIN_CASES_PER_SOURCE} golden cases: {thin}"
