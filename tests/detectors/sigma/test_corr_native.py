"""The native sliding correlator (``ingest._native.SlidingWindows``) against the Python one, step by step.

Both receive the same hits (in order, late, very late, from several input rules, with odd values and
documents) and expiry sweeps; after every step their detections, the state of every group (items, in LRU
order), the truncation and eviction counters must be the same.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.detection import Detection
from detectors.sigma.corr_base import Correlator, Hit, Limits
from detectors.sigma.corr_native import NativeSlidingCorrelator, native_available, sliding
from detectors.sigma.corr_window import SlidingCorrelator, _Slide
from detectors.sigma.fields import FieldView, nest
from detectors.sigma.rules import CorrelationRule, RuleMeta
from detectors.sigma.watermark import iso
from detectors.sigma.windows import Distinct, Sum, Window

pytestmark = pytest.mark.skipif(os.environ.get("LOGWARDEN_NATIVE") == "0", reason="native code switched off")

T0 = 1_793_606_400.0  # 2026-11-02T08:00:00Z
META = RuleMeta("c", "corr", "corr", "", "high", (), "", 0)
RULES = ("a", "b", "c")


def both(rule: CorrelationRule, limits: Limits) -> tuple[Correlator, Correlator]:
    assert native_available(), "ingest._native lacks SlidingWindows: rebuild it (pip install -e .)"
    python, native = sliding(rule, limits, native=False), sliding(rule, limits, native=True)
    assert type(python) is SlidingCorrelator and type(native) is NativeSlidingCorrelator
    return python, native


def snapshot(detections: list[Detection]) -> list[tuple[Any, ...]]:
    return [
        (d.id, d.group, d.first_seen, d.last_seen, d.event_count, list(d.event_ids), d.risk_score) for d in detections
    ]


def state(correlator: Any) -> tuple[Any, ...]:
    """Every group's items, running aggregates and open window (in LRU order), and the counters."""
    groups = [(key, [tuple(i) for i in g.items], repr(group_state(g))) for key, g in correlator.groups.items()]
    return groups, correlator.truncated, correlator.group_count, correlator.evicted


def group_state(g: Any) -> tuple[Any, ...]:
    if isinstance(g, _Slide):
        return (g.lo, aggregate(g.window), aggregate(g.everything), g.open_start, g.open_until, g.claimed)
    return tuple(g.state)


def aggregate(window: Window | None) -> Any:
    """An aggregate as the extension's ``SlideGroup.state`` gives it."""
    if isinstance(window, Sum):
        return (window.total, window.negative)
    return window.counts if isinstance(window, Distinct) else None if window is None else window.n


def outcome(call: Any) -> Any:
    """What a call returns, or the type of what it raises."""
    try:
        return ("ok", snapshot(call()))
    except Exception as exc:  # compared between the two implementations
        return ("raised", type(exc))


NUMBERS = st.one_of(
    st.integers(-5, 40),
    st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 1)),
    st.sampled_from([0.1, 0.2, 0.3, 1e16, -1e16, 1.5, math.inf, -math.inf, math.nan, 2**53 + 1]),
    st.sampled_from(["12", "3.5", "x", "nan", "inf", True, None]),
)
TEXTS = st.one_of(st.sampled_from(["v1", "v2", "v3", "", "V1"]), st.integers(0, 3), st.none(), st.booleans())
KINDS = ["event_count", "value_count", "value_count2", "temporal", "temporal_expr", "value_sum"]
THRESHOLDS = st.one_of(st.integers(-2, 12), st.floats(-5, 60, allow_nan=False), st.just(2**60), st.just(math.nan))


def make_rule(kind: str, op: str, threshold: Any, span: float) -> CorrelationRule:
    fields: tuple[str, ...] = ()
    expression = None
    if kind == "value_count":
        fields = ("v",)
    elif kind == "value_count2":
        kind, fields = "value_count", ("v", "w")
    elif kind == "value_sum":
        fields = ("n.x",)
    elif kind == "temporal_expr":
        kind = "temporal"
        expression = lambda seen: "a" in seen and ("b" in seen or "c" in seen)  # noqa: E731
    aliases = {"grp": {"b": "alt.id"}}  # the events of rule b carry the group in another field
    return CorrelationRule(
        META, kind, RULES, ("grp",), span, op=op, count=threshold, value_fields=fields, aliases=aliases,
        expression=expression,
    )  # fmt: skip


step = st.one_of(
    st.tuples(
        st.just("hit"),
        st.one_of(st.floats(0, 20), st.floats(-8, 0), st.floats(-40, 0)).map(lambda x: round(x, 1)),  # time step
        st.sampled_from(RULES),
        st.one_of(st.sampled_from(["g1", "g2", "g3"]), st.integers(1, 2), st.none()),
        TEXTS,
        NUMBERS,
        st.sampled_from(["nested", "flat", "list", "missing"]),
        st.one_of(st.none(), st.floats(0, 100).map(lambda x: round(x))),
    ),
    st.tuples(st.just("expire")),
    st.tuples(st.just("watermark"), st.floats(-20, 30).map(lambda x: round(x, 1))),
)


def document(rule_id: str, group: Any, text: Any, number: Any, shape: str) -> dict[str, Any]:
    group_field = "alt.id" if rule_id == "b" else "grp"
    flat: dict[str, Any] = {group_field: group, "v": text, "w": "w", "n.x": number}
    if shape == "flat":  # dotted keys as they are
        return flat
    if shape == "list":
        flat = {k: [None, v] for k, v in flat.items()}
    elif shape == "missing":
        flat = {k: v for k, v in flat.items() if v is not None and k != "n.x"}
    return nest(flat)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None)
@given(
    op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq"]),
    threshold=THRESHOLDS,
    span=st.sampled_from([1.0, 5.0, 10.0, 30.0]),
    max_items=st.integers(1, 12),
    max_groups=st.integers(1, 4),
    steps=st.lists(step, min_size=5, max_size=60),
)
def test_the_native_correlator_is_the_python_one(
    kind: str, op: str, threshold: Any, span: float, max_items: int, max_groups: int, steps: list[tuple[Any, ...]]
) -> None:
    rule = make_rule(kind, op, threshold, span)
    python, native = both(rule, Limits(max_groups=max_groups, max_items=max_items))
    t, newest, lateness = 0.0, -math.inf, 10.0
    for n, s in enumerate(steps):
        if s[0] == "hit":
            _, dt, rule_id, group, text, number, shape, risk = s
            t = round(t + dt, 1)
            newest = max(newest, t)
            doc = document(rule_id, group, text, number, shape)
            hits = [Hit(rule_id, T0 + t, iso(T0 + t), f"e{n}", FieldView.of(doc), risk) for _ in range(2)]
            watermark = T0 + newest - lateness
            got = [
                outcome(lambda c=c, h=h, w=watermark: c.add(h, w)) for c, h in zip((python, native), hits, strict=True)
            ]
            assert got[0] == got[1]
            assert hits[0].doc == hits[1].doc  # the same fields read into the view
        elif s[0] == "expire":
            watermark = T0 + newest - lateness
            assert python.expire(watermark) == native.expire(watermark)
        else:
            lateness = s[1]
        assert state(python) == state(native)


def test_the_python_one_is_chosen_without_the_extension_or_a_running_aggregate() -> None:
    rule = make_rule("event_count", "gte", 2, 10.0)
    assert type(sliding(rule, Limits(), native=False)) is SlidingCorrelator
    ordered = CorrelationRule(META, "temporal_ordered", RULES, ("grp",), 10.0, op="gte", count=2)
    assert type(sliding(ordered, Limits(), native=True)) is SlidingCorrelator
    assert type(sliding(rule, Limits())) is (NativeSlidingCorrelator if native_available() else SlidingCorrelator)


def test_an_integer_beyond_the_float_range_is_refused_before_the_state_changes() -> None:
    """``total + value`` raises OverflowError: the native correlator raises it before adding the item (the
    engine counts a rule error either way)."""
    rule = make_rule("value_sum", "gt", 5, 10.0)
    native = sliding(rule, Limits(), native=True)
    hit = Hit("a", T0, iso(T0), "e1", FieldView.of(nest({"grp": "g", "n.x": 10**400})))
    with pytest.raises(OverflowError):
        native.add(hit, -math.inf)
    assert state(native) == ([], 0, 0, 0)


def test_heap_bytes_count_the_items_and_the_distinct_values() -> None:
    """``SlideGroup.heap_bytes`` (what the rules benchmark adds to tracemalloc's figure) grows with the items a
    group holds and, for value_count, with its dicts of distinct values."""
    sizes: dict[str, list[int]] = {}
    for kind in ("event_count", "value_count"):
        native = sliding(make_rule(kind, "gte", 1000, 3600.0), Limits(), native=True)
        sizes[kind] = []
        for i in range(40):
            doc = document("a", "g", f"v{i}", 1, "nested")
            native.add(Hit("a", T0 + i, iso(T0 + i), f"e{i}", FieldView.of(doc)), -math.inf)
            sizes[kind].append(sum(group.heap_bytes for _, group in native.groups.items()))  # type: ignore[attr-defined]
    for kind, grown in sizes.items():
        assert grown == sorted(grown) and grown[-1] >= 40 * 48, kind  # 48 bytes an item, at least
    assert sizes["value_count"][-1] > sizes["event_count"][-1]  # 40 distinct values
