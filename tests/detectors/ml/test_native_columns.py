"""The native columns step (``ingest._native.ml_columns``) gives the reference columns, or the same failure.

Documents come from the generator with fields replaced by odd values (missing, ``None``, wrong types, non-dict
levels, huge numbers, NaN, NUL and surrogate strings, timestamps in other forms or invalid): the native path, the
Python path and the plain reference either agree or all fail, and the factorizations the native path hands to the
windows step are pandas' own. ``LOGWARDEN_NATIVE=0`` (a deliberate pure-Python run) skips the native-only tests;
a missing extension fails them.
"""

from __future__ import annotations

import math
import os
from collections import UserDict
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from detectors.ml.features import native_columns
from detectors.ml.features.columns import (
    EventColumns,
    columns_from_docs,
    columns_from_docs_reference,
    epoch_minute,
    epoch_minutes,
)
from detectors.ml.features.sketch import bits_of, factorize, subset_factorized

from .conftest import docs

OFF = os.environ.get("LOGWARDEN_NATIVE", "1") == "0"
needs_native = pytest.mark.skipif(OFF, reason="native columns off (LOGWARDEN_NATIVE=0)")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: the paths the columns step reads, with each intermediate level
PATHS = [
    ("@timestamp",), ("http", "response", "status_code"), ("http", "response", "bytes"),
    ("gen_ai", "usage", "input_tokens"), ("gen_ai", "usage", "output_tokens"), ("logwarden", "api", "latency_ms"),
    ("logwarden", "api", "route"), ("url", "path"), ("source", "geo", "country_iso_code"), ("source", "as", "number"),
    ("user_agent", "original"), ("logwarden", "api", "key_id"), ("user", "id"), ("source", "ip"),
    ("organization", "id"),
]  # fmt: skip
_MISSING = object()

stamps = st.one_of(
    st.just("2026-11-02T08:00:00.123Z"),
    st.builds(lambda y, m, d, h, mi: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:59.999Z",
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61)),
    st.sampled_from(["2026-11-02T09:00:00+01:00", "2026-11-02T08:00:00", "2026-11-02 08:00:00.000Z",
                     "2026-11-02T08:00xx.yyyZ", "2026-11-02T08:00:00.é0Z", "20261102T0800", "", "Z"]),
)  # fmt: skip
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.sampled_from(["a\0b", "a\0c", "\ud800"]),
    st.builds(lambda: {}), st.builds(list), st.builds(lambda: UserDict({"x": 1})),
)  # fmt: skip
edits = st.lists(
    st.tuples(st.integers(0, 9), st.sampled_from(PATHS), st.integers(0, 2),
              st.one_of(st.just(_MISSING), odd_values, stamps)),
    max_size=6,
)  # fmt: skip


def _set(doc: dict[str, Any], path: tuple[str, ...], depth: int, value: Any) -> dict[str, Any]:
    """``doc`` with the value at ``path[: depth + 1]`` (at most the leaf) replaced or removed (copied levels)."""
    depth = min(depth, len(path) - 1)
    out = dict(doc)
    level = out
    for key in path[:depth]:
        inner = level.get(key)
        level[key] = dict(inner) if isinstance(inner, dict) else {}
        level = level[key]
    if value is _MISSING:
        level.pop(path[depth], None)
    else:
        level[path[depth]] = value
    return out


def _outcome(fn: Any, data: list[Any]) -> EventColumns | type[BaseException]:
    try:
        return fn(data)  # type: ignore[no-any-return]
    except Exception as exc:  # the kind of failure is what is compared
        return type(exc)


def _same(got: EventColumns, want: EventColumns) -> None:
    for name in ("minute", "status", "bytes_out", "input_tokens", "output_tokens", "latency_ms"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name  # bit for bit (NaN, -0.0)
    for name in ("route", "path", "country", "asn", "user_agent"):
        assert _identical(getattr(got, name).tolist(), getattr(want, name).tolist()), name
    for etype, values in want.entities.items():
        assert _identical(got.entities[etype].tolist(), values.tolist()), etype
    assert got.event_ids == want.event_ids


def _identical(a: list[Any], b: list[Any]) -> bool:
    """The same objects (NaN is itself; ``==`` would say no)."""
    return len(a) == len(b) and all(x is y or (x == y and type(x) is type(y)) for x, y in zip(a, b, strict=True))


def _python(data: list[Any]) -> EventColumns:
    with native_columns.python_only():
        return columns_from_docs(data)


def _check_factorized(cols: EventColumns) -> None:
    """The known factorizations are pandas', the known sketch bits those of ``bits_of``."""
    for name, (codes, uniques) in cols.factorized.items():
        want_codes, want_uniques = factorize(cols.entities[name] if name in cols.entities else getattr(cols, name))
        np.testing.assert_array_equal(codes, want_codes, err_msg=name)
        assert codes.dtype == want_codes.dtype
        assert _identical(uniques, want_uniques), name
    for name, bits in cols.bits.items():
        want = bits_of(cols.entities[name] if name in cols.entities else getattr(cols, name))
        assert bits.dtype == want.dtype and bits.tolist() == want.tolist(), name


@needs_native
def test_extension_has_the_native_columns_step() -> None:
    assert native_columns.available()
    cols = columns_from_docs(docs(10)[:500])
    assert set(cols.factorized) == set(cols.bits) == set(native_columns.TEXT_COLUMNS)
    _same(cols, columns_from_docs_reference(docs(10)[:500]))
    _check_factorized(cols)


@needs_native
@SETTINGS
@given(edits=edits, size=st.integers(0, 10))
def test_native_columns_equal_the_reference_or_fail_alike(edits: list[Any], size: int) -> None:
    data = docs(10, ("key_leak",))[:size]
    for at, path, depth, value in edits:
        if at < len(data):
            data[at] = _set(data[at], path, depth, value)
    want = _outcome(columns_from_docs_reference, data)
    got, python = _outcome(columns_from_docs, data), _outcome(_python, data)
    native = native_columns.read(data, lambda t: 0) if data else None
    read = "declines" if native is None else "reads, skips some" if len(native[4]) else "reads"
    event(f"reference {'ok' if isinstance(want, EventColumns) else 'fails'}, native {read}")
    if isinstance(want, EventColumns):
        assert isinstance(got, EventColumns) and isinstance(python, EventColumns), (got, python)
        _same(got, want)
        _same(python, want)
        _check_factorized(got)
    else:  # the reference failed: so do both (the order of the checks may differ: any exception)
        assert not isinstance(got, EventColumns) and not isinstance(python, EventColumns)


@needs_native
def test_odd_documents_are_read_in_python_the_rest_natively() -> None:
    """Documents of another Mapping type, non-int statuses, huge numbers: skipped by the extension and read by the
    Python path; the columns are the reference's, and the text columns keep their codes."""
    base = docs(10)[:70]
    odd_docs = [UserDict(base[3]), _set(base[3], PATHS[1], 2, 200.0), _set(base[3], PATHS[2], 2, 2**64),
                _set(base[3], PATHS[5], 2, None), _set(base[3], PATHS[1], 1, UserDict({"status_code": 1})),
                UserDict({**base[3], "user": {"id": "a new user"}})]  # fmt: skip
    for odd in odd_docs:
        data = [*base[:3], odd, *base[4:]]
        native = native_columns.read(data, epoch_minute)
        assert native is not None and native[4].tolist() == [3]
        cols = columns_from_docs(data)
        _same(cols, columns_from_docs_reference(data))
        assert set(cols.factorized) == set(native_columns.TEXT_COLUMNS)
        _check_factorized(cols)


#: values the reference reads but the extension skips the document for: (path, depth, value)
benign_skips = st.one_of(
    st.tuples(st.sampled_from(PATHS[1:2]), st.just(2), st.one_of(st.booleans(), st.floats(-1e6, 1e6))),
    st.tuples(st.sampled_from(PATHS[2:6]), st.just(2), st.one_of(st.none(), st.booleans(), st.integers(2**63, 2**70))),
    st.tuples(st.sampled_from(PATHS[1:]), st.just(0), st.builds(lambda: UserDict())),
)  # fmt: skip
text_values = st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["a\0b", "\ud800", "/v1/models"]),
                        st.integers(-2, 2), st.floats(allow_nan=True))  # fmt: skip


@needs_native
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 19), st.one_of(st.none(), benign_skips),
                          st.one_of(st.none(), st.tuples(st.sampled_from(PATHS[6:]), text_values))), max_size=8),
       st.booleans())  # fmt: skip
def test_skipped_documents_read_in_python_give_the_reference_columns(edits: list[Any], mapping: bool) -> None:
    """Batches where some documents are skipped by the extension (values it does not convert, other Mapping types)
    and their text values are anything: the reference columns, and pandas' codes where the columns keep them."""
    data: list[Any] = docs(10, ("key_leak",))[:20]
    for at, skip, text in edits:
        if text is not None:
            data[at] = _set(data[at], text[0], len(text[0]) - 1, text[1])
        if skip is not None:
            data[at] = _set(data[at], *skip)
        if mapping and skip is not None:
            data[at] = UserDict(data[at])
    want = _outcome(columns_from_docs_reference, data)
    got = _outcome(columns_from_docs, data)
    event(f"reference {'ok' if isinstance(want, EventColumns) else 'fails'}")
    if isinstance(want, EventColumns):
        assert isinstance(got, EventColumns)
        _same(got, want)
        _check_factorized(got)
    else:
        assert not isinstance(got, EventColumns)


class _Key(str):
    """A str subclass key: ``dict.get`` finds it by the str's hash and ``==``; the extension leaves it to Python."""


def _fresh(text: str) -> str:
    """An equal str that is not the same object (nor the interned one)."""
    return "".join(list(text))


def _copied_levels(doc: dict[str, Any], names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A copy of ``doc`` with the levels ``names`` copied, and the last of them (None when one is not a dict)."""
    out = dict(doc)
    level = out
    for name in names:
        inner = level.get(name)
        if not isinstance(inner, dict):
            return out, None
        level[name] = dict(inner)
        level = level[name]
    return out, level


def _rekey(doc: dict[str, Any], path: tuple[str, ...], depth: int, form: str) -> dict[str, Any]:
    """``doc`` with the key ``path[depth]`` (at most the leaf's) written in another ``form`` (copied levels)."""
    depth = min(depth, len(path) - 1)
    out, level = _copied_levels(doc, path[:depth])
    if level is not None and path[depth] in level:
        value = level.pop(path[depth])
        level[_fresh(path[depth]) if form == "equal" else _Key(path[depth])] = value
    return out


def _extra(doc: dict[str, Any], path: tuple[str, ...], depth: int, key: Any) -> dict[str, Any]:
    """``doc`` with one more member of key ``key`` (value 1) in the level above ``path[depth]`` (copied levels)."""
    out, level = _copied_levels(doc, path[: min(depth, len(path) - 1)])
    if level is not None:
        level[key] = 1
    return out


def _fresh_texts(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every str value a new object (the normalizer's caches share them)."""
    return {k: _fresh_texts(v) if type(v) is dict else _fresh(v) if type(v) is str else v for k, v in doc.items()}


@needs_native
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 19), st.sampled_from(PATHS), st.integers(0, 2),
                          st.sampled_from(["equal", "subclass"])), max_size=6),
       st.lists(st.tuples(st.integers(0, 19), st.sampled_from(PATHS), st.integers(0, 2),
                          st.sampled_from([7, None, ("http",), 2.5, "extra", "@timestamp "])), max_size=4),
       st.lists(st.integers(0, 19), max_size=20))  # fmt: skip
def test_keys_match_as_dict_get_matches_them(renames: list[Any], extras: list[Any], fresh: list[int]) -> None:
    """The extension finds members by one walk over each level: keys equal to the wanted ones but not the same
    object, keys of a str subclass (left to Python), keys of other types, text values equal but not shared: the
    reference columns and pandas' codes."""
    data: list[Any] = docs(10, ("key_leak",))[:20]
    for at, path, depth, form in renames:
        data[at] = _rekey(data[at], path, depth, form)
    for at, path, depth, key in extras:
        data[at] = _extra(data[at], path, depth, key)
    for at in fresh:
        data[at] = _fresh_texts(data[at])
    cols = columns_from_docs(data)
    _same(cols, columns_from_docs_reference(data))
    _check_factorized(cols)
    native = native_columns.read(data, epoch_minute)
    subclassed = {at for at, _, _, form in renames if form == "subclass"}
    other_keys = {at for at, _, _, key in extras if not isinstance(key, str)}
    assert native is not None
    assert set(native[4].tolist()) <= subclassed | other_keys  # equal keys and extra str keys are read natively


@needs_native
def test_a_batch_the_extension_cannot_read_at_all_runs_in_python() -> None:
    base = docs(10)[:5]
    data = [UserDict(d) for d in base]
    assert native_columns.read(data, epoch_minute) is None
    _same(columns_from_docs(data), columns_from_docs_reference(data))


@needs_native
def test_text_columns_are_factorized_only_when_pandas_codes_them_alike() -> None:
    """NaN is missing for pandas, strings with NUL compare as C strings: those columns are left to pandas."""
    base = docs(10)[:10]
    data = [_set(d, PATHS[13], 1, v) for d, v in zip(base, ["a", math.nan, "a", None, *["b"] * 6], strict=True)]
    data = [_set(d, PATHS[7], 1, v) for d, v in zip(data, ["p\0x", "p\0y", *["q"] * 8], strict=True)]
    cols = columns_from_docs(data)
    assert "source_ip" not in cols.factorized and "path" not in cols.factorized and "route" in cols.factorized
    _check_factorized(cols)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "c", None, "d"]), max_size=40), st.data())
def test_a_part_of_a_factorization_is_the_part_factorized(values: list[Any], data: st.DataObject) -> None:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    start = data.draw(st.integers(0, len(values)))
    stop = data.draw(st.integers(start, len(values)))
    index = np.array(data.draw(st.lists(st.integers(0, max(0, len(values) - 1)), max_size=40 if values else 0)),
                     dtype=np.intp)  # fmt: skip
    for part in (slice(start, stop), index):
        codes, uniques = subset_factorized(factorize(column), part)
        want_codes, want_uniques = factorize(column[part])
        np.testing.assert_array_equal(codes, want_codes)
        assert uniques == want_uniques


@SETTINGS
@given(st.lists(stamps, max_size=8))
def test_array_timestamps_fail_where_one_by_one_parsing_fails(values: list[str]) -> None:
    want = _outcome(lambda v: [epoch_minute(t) for t in v], values)
    got = _outcome(epoch_minutes, values)
    if isinstance(want, list):
        assert not isinstance(got, type) and got.tolist() == want
    else:
        assert isinstance(got, type) and issubclass(got, Exception)


@needs_native
def test_coded_text_columns_are_decoded_when_read_and_sliced_coded() -> None:
    """The windows step reads only the factorizations: the text columns stay coded until read, and parts of the
    batch (as the windows step cuts it) are the reference's parts, coded too."""
    data = docs(10)[:300]
    cols, ref = columns_from_docs(data), columns_from_docs_reference(data)
    parts = [
        (cols.part(10, 200), ref.part(10, 200)),
        (cols.take(np.arange(299, -1, -7)), ref.take(np.arange(299, -1, -7))),
    ]
    assert all(cols._text[name] is None for name in native_columns.TEXT_COLUMNS)  # nothing decoded yet
    for got, want in parts:
        assert all(got._text[name] is None for name in native_columns.TEXT_COLUMNS)
        _same(got, want)
        _check_factorized(got)
    _same(cols, ref)


def test_a_text_column_needs_values_or_a_factorization() -> None:
    cols = columns_from_docs_reference(docs(10)[:5])
    numbers = (cols.minute, cols.status, cols.bytes_out, cols.input_tokens, cols.output_tokens, cols.latency_ms)
    with pytest.raises(ValueError, match="route"):
        EventColumns(*numbers, None, cols.path, cols.country, cols.asn, cols.user_agent, cols.entities, cols.event_ids)
