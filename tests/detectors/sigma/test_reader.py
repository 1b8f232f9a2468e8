"""The generated mask function reads exactly what the field getters read and ORs the same masks as a loop."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.fields import FieldView, field_getter
from detectors.sigma.reader import compile_mask, native_available

NAMES = ["a", "a.b", "a.c", "a.b.c", "a.b.d", "x.y.z", "x"]
scalars = st.one_of(st.sampled_from(["v", "w", "", "a"]), st.integers(0, 3), st.booleans(), st.none(), st.floats())
# Objects, lists of objects on the way, flat dotted keys and scalars where an object is expected.
nodes = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "d", "x", "y", "z", "a.b", "b.c", "a.b.c"]), inner, max_size=4),
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(["a", "x", "a.b", "a.c", "a.b.c", "x.y.z", "x.y"]), nodes, max_size=4)


def loop_mask(fields: list[tuple[str, dict[Any, int], Any, int]], view: FieldView, always: int) -> int:
    """The reference: each field's getter, then its remembered mask for one text or integer value."""
    found = always
    for name, memo, mask_of, _ in fields:
        values = view[name] = field_getter(name)(view.doc)
        single = len(values) == 1 and type(values[0]) in (str, int)
        found |= memo[values[0]] if single and values[0] in memo else mask_of(values)
    return found


def masks(name: str) -> tuple[str, dict[Any, int], Any, int]:
    bit = 1 << NAMES.index(name)
    memo = {"v": bit, 1: bit << 8}  # remembered values; anything else has its own mask
    return name, memo, lambda values: (bit << 16) if values else 0, 0


def versions() -> list[bool]:
    """The generated Python function, and the extension's (which the test suite expects to be built, unless
    ``LOGWARDEN_NATIVE=0``)."""
    if os.environ.get("LOGWARDEN_NATIVE") == "0":
        return [False]
    assert native_available(), "ingest._native lacks RuleMask: rebuild it (pip install -e .)"
    return [False, True]


@pytest.mark.parametrize("native", versions())
@settings(max_examples=300, deadline=None)
@given(doc=documents, chosen=st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
def test_reads_and_masks_agree_with_the_getters(native: bool, doc: dict[str, Any], chosen: list[str]) -> None:
    fields = [masks(name) for name in chosen]
    generated = compile_mask(fields, always=1 << 40, low=-1, shifts=[], native=native)
    view, expected_view = FieldView.of(doc), FieldView.of(doc)
    assert generated(view) == loop_mask(fields, expected_view, 1 << 40)
    assert dict(view) == dict(expected_view)


@pytest.mark.parametrize("native", versions())
def test_every_atom_set_of_a_rule_must_hold(native: bool) -> None:
    """Two rules, two atom sets each (bits p and p + 2): a rule is a candidate only with both bits on."""
    fields = [("f", {"both": 0b0101, "first": 0b0001, "second": 0b0100}, lambda values: 0, 0)]
    mask = compile_mask(fields, always=0b1000, low=0b11, shifts=[2], native=native)  # rule 1's set 2 always on
    assert mask(FieldView.of({"f": "both"})) == 0b01
    assert mask(FieldView.of({"f": "first"})) == 0b00
    assert mask(FieldView.of({"f": "second"})) == 0b00
    assert mask(FieldView.of({})) == 0b00
    with_second = compile_mask(
        [*fields, ("g", {"on": 0b0010}, lambda values: 0, 0)], always=0b1000, low=0b11, shifts=[2], native=native
    )
    assert with_second(FieldView.of({"f": "both", "g": "on"})) == 0b11


@pytest.mark.parametrize("native", versions())
def test_a_field_of_further_atom_sets_only_is_read_when_a_rule_needing_it_is_selected(native: bool) -> None:
    """Rule 0 is ``f: x and g: y`` (bits 0 and 2), rule 1 ``f: z`` (bit 1; its second set always on, bit 3)."""
    fields = [("g", {"y": 0b0100}, lambda values: 0, 0b01), ("f", {"x": 0b0001, "z": 0b0010}, lambda values: 0, 0)]
    mask = compile_mask(fields, always=0b1000, low=0b11, shifts=[2], native=native)
    view = FieldView.of({"f": "x", "g": "y"})
    assert mask(view) == 0b01
    assert "g" in view
    view = FieldView.of({"f": "z", "g": "y"})
    assert mask(view) == 0b10
    assert "g" not in view  # rule 0 is out already: g is not read
    assert view["g"] == ["y"]  # (a predicate still reads it on demand)
