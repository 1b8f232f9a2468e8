"""Properties every registered parser keeps, whatever it is fed: a document or a ParseError, nothing else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.parsers import PARSERS
from ingest.pipeline import Normalizer
from ingest.records import DeadLetter, NormalizedEvent, Record

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


def _parse_or_refuse(source: str, raw: bytes) -> dict[str, Any] | None:
    try:
        return PARSERS[source](raw)
    except ParseError as exc:
        assert exc.reason and exc.reason.replace("_", "").isalnum(), "reasons are short codes (metric labels)"
        return None


@pytest.mark.parametrize("source", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_parsed_or_refused(source: str, raw: bytes) -> None:
    doc = _parse_or_refuse(source, raw)
    assert doc is None or "@timestamp" in doc


@pytest.mark.parametrize("source", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_arbitrary_json_is_parsed_or_refused(source: str, value: Any) -> None:
    doc = _parse_or_refuse(source, orjson.dumps(value))
    assert doc is None or "@timestamp" in doc


@pytest.mark.parametrize("source", sorted(PARSERS))
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300))
def test_the_normalizer_never_loses_a_record(source: str, raw: bytes) -> None:
    result = Normalizer().normalize(Record(source, raw, "t", 0, 1))
    assert isinstance(result, NormalizedEvent | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.record.value == raw and result.reason
