"""Every correlation type against a brute-force reference implementation written here."""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma.aggregates import satisfied
from detectors.sigma.corr_base import Limits
from detectors.sigma.corr_window import SlidingCorrelator
from detectors.sigma.watermark import event_time

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GROUPS = ("g0", "g1", "g2")
T0 = event_time("2026-11-02T08:00:00.000Z")

Event = tuple[int, str, Any]  # (seconds, group, value)

events_strategy = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from(GROUPS), st.integers(0, 5)), min_size=1, max_size=40
).map(lambda raw: _cumulative(raw))


def _cumulative(raw: list[tuple[int, str, int]]) -> list[Event]:
    out, t = [], 0
    for dt, group, value in raw:
        t += dt
        out.append((t, group, value))
    return out


def _offset(stamp: str) -> float:
    return round(event_time(stamp) - T0, 3)


# ---------------------------------------------------------------- references


def ref_sliding(events: list[Event], span: float, met: Callable[[list[Event]], bool]) -> list[tuple[str, float, int]]:
    """Fire when the events of some [t - span, t] satisfy the condition; the detection stays open until its
    first event + span and takes the group's events until then; those never count again."""
    out: list[dict[str, Any]] = []
    state: dict[str, dict[str, Any]] = defaultdict(lambda: {"history": [], "open": None})
    for event in events:
        t, group, _ = event
        s = state[group]
        if s["open"] is not None and t <= s["open"]["until"]:
            s["open"]["count"] += 1
            continue
        s["open"] = None
        s["history"].append(event)
        window = [e for e in s["history"] if e[0] >= t - span]
        if met(window):
            s["open"] = {"group": group, "start": window[0][0], "until": window[0][0] + span, "count": len(window)}
            out.append(s["open"])
            s["history"] = []
    return [(d["group"], float(d["start"]), d["count"]) for d in out]


def ref_tumbling(events: list[Event], span: float, met: Callable[[list[Event]], bool]) -> list[tuple[str, float, int]]:
    buckets: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for event in events:
        buckets[(event[1], math.floor(event[0] / span))].append(event)
    return sorted((g, float(items[0][0]), len(items)) for (g, _), items in buckets.items() if met(items))


def engine_result(kit: Any, ruleset: Any, docs: list[Any], **engine: Any) -> list[tuple[str, float, int]]:
    corr = ruleset.correlations[0]
    detections = [d for d in kit.run(ruleset, docs, **engine) if d.rule_id == corr.meta.id]
    return [(d.group["user.id"], _offset(d.first_seen), d.event_count) for d in detections]


def window_rules(kit: Any, body: dict[str, Any]) -> Any:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    return kit.load(base, kit.correlation({"rules": ["hits"], "group-by": ["user.id"], **body}))


def docs_of(kit: Any, events: list[Event], field: str | None = None) -> list[Any]:
    return [
        kit.event(t, event__action="hit", user__id=g, **({field.replace(".", "__"): v} if field else {}))
        for t, g, v in events
    ]


# ---------------------------------------------------------------- eager (sliding) types


@SETTINGS
@given(events=events_strategy, threshold=st.integers(1, 6), span=st.sampled_from([10, 30, 60]))
def test_event_count_gte_matches_the_reference(kit: Any, events: list[Event], threshold: int, span: int) -> None:
    ruleset = window_rules(kit, {"type": "event_count", "timespan": f"{span}s", "condition": {"gte": threshold}})
    expected = ref_sliding(events, span, lambda w: len(w) >= threshold)
    assert engine_result(kit, ruleset, docs_of(kit, events)) == expected


@SETTINGS
@given(events=events_strategy, threshold=st.integers(1, 4), span=st.sampled_from([20, 60]))
def test_value_count_gt_matches_the_reference(kit: Any, events: list[Event], threshold: int, span: int) -> None:
    body = {"type": "value_count", "timespan": f"{span}s", "condition": {"gt": threshold, "field": "source.ip"}}
    ruleset = window_rules(kit, body)
    expected = ref_sliding(events, span, lambda w: len({e[2] for e in w}) > threshold)
    assert engine_result(kit, ruleset, docs_of(kit, events, "source.ip")) == expected


@SETTINGS
@given(events=events_strategy, threshold=st.integers(0, 15), span=st.sampled_from([20, 60]))
def test_value_sum_gte_matches_the_reference(kit: Any, events: list[Event], threshold: int, span: int) -> None:
    body = {
        "type": "value_sum",
        "timespan": f"{span}s",
        "condition": {"gte": threshold, "field": "http.response.bytes"},
    }
    ruleset = window_rules(kit, body)
    expected = ref_sliding(events, span, lambda w: sum(e[2] for e in w) >= threshold)
    assert engine_result(kit, ruleset, docs_of(kit, events, "http.response.bytes")) == expected


# ---------------------------------------------------------------- decided at window close (tumbling)


def _percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return (
        statistics.quantiles(values, n=100, method="inclusive")[p - 1]
        if 0 < p < 100
        else (min(values) if p == 0 else max(values))
    )


TUMBLING = [
    ("event_count", {"lt": 3}, lambda w: len(w) < 3),
    ("event_count", {"eq": 2}, lambda w: len(w) == 2),
    ("event_count", {"neq": 1}, lambda w: len(w) != 1),
    ("value_count", {"lte": 1, "field": "source.ip"}, lambda w: len({e[2] for e in w}) <= 1),
    ("value_sum", {"lt": 6, "field": "source.ip"}, lambda w: sum(e[2] for e in w) < 6),
    ("value_avg", {"gte": 2.5, "field": "source.ip"}, lambda w: statistics.mean(e[2] for e in w) >= 2.5),
    ("value_median", {"gt": 2, "field": "source.ip"}, lambda w: statistics.median(e[2] for e in w) > 2),
    (
        "value_percentile",
        {"gte": 4, "field": "source.ip", "percentile": 90},
        lambda w: _percentile([float(e[2]) for e in w], 90) >= 4,
    ),
]


@pytest.mark.parametrize(("kind", "condition", "met"), TUMBLING, ids=[f"{t[0]}-{next(iter(t[1]))}" for t in TUMBLING])
@SETTINGS
@given(events=events_strategy, span=st.sampled_from([15, 60]))
def test_closing_window_types_match_the_reference(
    kit: Any, kind: str, condition: dict[str, Any], met: Callable[[list[Event]], bool], events: list[Event], span: int
) -> None:
    ruleset = window_rules(kit, {"type": kind, "timespan": f"{span}s", "condition": condition})
    expected = ref_tumbling(events, span, met)
    assert sorted(engine_result(kit, ruleset, docs_of(kit, events, "source.ip"))) == expected


@SETTINGS
@given(events=events_strategy, seed=st.integers(0, 1000))
def test_closing_windows_do_not_depend_on_arrival_order_within_the_lateness(
    kit: Any, events: list[Event], seed: int
) -> None:
    ruleset = window_rules(kit, {"type": "value_avg", "timespan": "30s", "condition": {"gt": 2, "field": "source.ip"}})
    rng = random.Random(seed)
    shuffled = sorted(events, key=lambda e: e[0] + rng.uniform(0, 50))  # at most 50 s late: within 600 s
    expected = ref_tumbling(events, 30, lambda w: statistics.mean(e[2] for e in w) > 2)
    assert sorted(engine_result(kit, ruleset, docs_of(kit, shuffled, "source.ip"))) == expected


@SETTINGS
@given(events=events_strategy, seed=st.integers(0, 1000), threshold=st.integers(2, 5))
def test_sliding_windows_fire_for_the_same_groups_when_events_arrive_late(
    kit: Any, events: list[Event], seed: int, threshold: int
) -> None:
    ruleset = window_rules(kit, {"type": "event_count", "timespan": "30s", "condition": {"gte": threshold}})
    rng = random.Random(seed)
    shuffled = sorted(events, key=lambda e: e[0] + rng.uniform(0, 100))
    expected = {g for g, _, _ in ref_sliding(events, 30, lambda w: len(w) >= threshold)}
    assert {g for g, _, _ in engine_result(kit, ruleset, docs_of(kit, shuffled))} == expected


def _recount_every_window(self: Any, g: Any, key: Any, at: int) -> Any:
    """The late-event check before the single pass: every window counted again from scratch."""
    items, span = g.items, self.rule.timespan_s
    for j in range(at, bisect.bisect_right(items, items[at][0] + span, key=lambda i: i[0])):
        lo = bisect.bisect_left(items, items[j][0] - span, key=lambda i: i[0])
        if satisfied(self.rule, items[lo : j + 1]):
            return self._fire(g, key, items[lo : j + 1])
    return []


LATE_BODIES = [
    {"type": "event_count", "condition": {"gte": 4}},
    {"type": "value_count", "condition": {"gte": 3, "field": "source.ip"}},
    {"type": "value_sum", "condition": {"gt": 9, "field": "http.response.bytes"}},
]


busy_events = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from(GROUPS), st.integers(0, 5)), min_size=10, max_size=80
).map(_cumulative)


@settings(SETTINGS, max_examples=80)
@given(events=busy_events, seed=st.integers(0, 1000), body=st.sampled_from(LATE_BODIES), lanes=st.integers(1, 3))
def test_late_events_give_the_detections_of_a_recount_of_every_window(
    kit: Any, events: list[Event], seed: int, body: dict[str, Any], lanes: int
) -> None:
    """Events read partition after partition arrive late; the one-pass check (with the bound on all the items)
    must fire exactly what recounting every window fires: same detections, events and ids."""
    field = body["condition"].get("field")
    ruleset = window_rules(kit, {**body, "timespan": "30s"})
    rng = random.Random(seed)
    arrival = sorted(events, key=lambda e: e[0] + rng.uniform(0, 100))
    if lanes > 1:  # partitions: each one in order, read one after the other, 5 events at a time
        parts = [[e for i, e in enumerate(events) if i % lanes == p] for p in range(lanes)]
        arrival = [e for k in range(0, len(events), 5) for part in parts for e in part[k : k + 5]]
    docs = docs_of(kit, arrival, field)

    def detections() -> list[Any]:
        return [(d.id, d.group, d.first_seen, d.last_seen, d.event_count, d.event_ids) for d in kit.run(ruleset, docs)]

    fast = detections()  # the native correlator when the extension is built
    with pytest.MonkeyPatch.context() as patch:  # undone after each example
        patch.setenv("LOGWARDEN_NATIVE", "0")  # the Python one, then the recount
        assert fast == detections()
        patch.setattr(SlidingCorrelator, "_check", _recount_every_window)
        assert fast == detections()


def _recount_newest_window(self: Any, g: Any, key: Any, item: Any) -> Any:
    """The newest window counted from scratch at every event (no running aggregate kept across events)."""
    items, span = g.items, self.rule.timespan_s
    lo = bisect.bisect_left(items, item[0] - span, key=lambda i: i[0])
    return self._fire(g, key, items[lo:]) if satisfied(self.rule, items[lo:]) else []


@settings(SETTINGS, max_examples=80)
@given(
    events=busy_events,
    seed=st.integers(0, 1000),
    body=st.sampled_from(LATE_BODIES),
    lanes=st.integers(1, 3),
    max_items=st.integers(2, 12),
)
def test_the_running_window_equals_a_recount_across_late_events_and_cuts(
    kit: Any, events: list[Event], seed: int, body: dict[str, Any], lanes: int, max_items: int
) -> None:
    """The newest window's running aggregate is kept across late inserts, expiry and the item limit of a group
    (which can cut into the window): it must decide as a recount of that window at every event does."""
    field = body["condition"].get("field")
    ruleset = window_rules(kit, {**body, "timespan": "30s"})
    rng = random.Random(seed)
    parts = [[e for i, e in enumerate(events) if i % lanes == p] for p in range(lanes)]
    arrival: list[Event] = []
    while any(parts):  # partitions read one after the other, a random number of events at a time
        for part in parts:
            take = rng.randint(1, 6)
            arrival += part[:take]
            del part[:take]
    docs = docs_of(kit, arrival, field)
    limits = Limits(max_items=max_items)

    def detections() -> list[Any]:
        return [
            (d.id, d.group, d.first_seen, d.last_seen, d.event_count, d.event_ids)
            for d in kit.run(ruleset, docs, limits=limits, lateness_s=20)
        ]

    fast = detections()  # the native correlator when the extension is built
    with pytest.MonkeyPatch.context() as patch:  # undone after each example
        patch.setenv("LOGWARDEN_NATIVE", "0")  # the Python one, then the recount
        assert fast == detections()
        patch.setattr(SlidingCorrelator, "_check_newest", _recount_newest_window)
        assert fast == detections()


# ---------------------------------------------------------------- temporal


def temporal_rules(kit: Any, body: dict[str, Any]) -> Any:
    bases = [kit.rule({"s": {"event.action": a}, "condition": "s"}, name=f"step_{a}") for a in "abc"]
    return kit.load(*bases, kit.correlation({"group-by": ["user.id"], **body}))


def longest_chain(positions: list[int]) -> int:
    """Longest strictly increasing subsequence (brute-force DP)."""
    best = [1] * len(positions)
    for i in range(len(positions)):
        for j in range(i):
            if positions[j] < positions[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


temporal_events = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(GROUPS[:2]), st.sampled_from("abc")), min_size=1, max_size=30
).map(lambda raw: _cumulative(raw))  # type: ignore[arg-type]


@SETTINGS
@given(events=temporal_events, span=st.sampled_from([20, 60]))
def test_temporal_matches_the_reference(kit: Any, events: list[Event], span: int) -> None:
    body = {"type": "temporal", "rules": ["step_a", "step_b", "step_c"], "timespan": f"{span}s"}
    ruleset = temporal_rules(kit, body)
    expected = ref_sliding(events, span, lambda w: len({e[2] for e in w}) == 3)
    docs = [kit.event(t, event__action=a, user__id=g) for t, g, a in events]
    assert engine_result(kit, ruleset, docs) == expected


@SETTINGS
@given(events=temporal_events, span=st.sampled_from([20, 60]), need=st.integers(2, 3))
def test_temporal_ordered_matches_the_reference(kit: Any, events: list[Event], span: int, need: int) -> None:
    body = {"type": "temporal_ordered", "rules": ["step_a", "step_b", "step_c"], "timespan": f"{span}s"}
    if need == 2:
        body["condition"] = {"gte": 2}
    ruleset = temporal_rules(kit, body)

    def met(window: list[Event]) -> bool:
        ordered = sorted(window, key=lambda e: (e[0], "abc".index(e[2])))
        return longest_chain(["abc".index(e[2]) for e in ordered]) >= need

    docs = [kit.event(t, event__action=a, user__id=g) for t, g, a in events]
    assert engine_result(kit, ruleset, docs) == ref_sliding(events, span, met)


def test_temporal_extended_condition_with_not_is_decided_at_window_close(kit: Any) -> None:
    body = {"type": "temporal", "rules": ["step_a", "step_b"], "timespan": "60s", "condition": "step_a and not step_b"}
    ruleset = temporal_rules(kit, body)
    docs = [
        kit.event(0, event__action="a", user__id="u1"),
        kit.event(10, event__action="a", user__id="u2"),
        kit.event(20, event__action="b", user__id="u2"),
        kit.event(30, event__action="b", user__id="u3"),
    ]
    result = engine_result(kit, ruleset, docs)
    assert [(g, n) for g, _, n in result] == [("u1", 1)]


def test_temporal_extended_condition_without_not_fires_early(kit: Any) -> None:
    body = {
        "type": "temporal",
        "rules": ["step_a", "step_b", "step_c"],
        "timespan": "60s",
        "condition": "step_a and (step_b or step_c)",
    }
    ruleset = temporal_rules(kit, body)
    from detectors.sigma.engine import RuleEngine

    engine = RuleEngine(ruleset)
    assert engine.process([kit.event(0, event__action="a", user__id="u1")]) == []
    (det,) = engine.process([kit.event(5, event__action="c", user__id="u1")])
    assert det.group == {"user.id": "u1"} and det.event_count == 2


# ---------------------------------------------------------------- absence


@SETTINGS
@given(events=temporal_events, span=st.sampled_from([10, 40]), seed=st.integers(0, 100))
def test_absence_matches_the_reference(kit: Any, events: list[Event], span: int, seed: int) -> None:
    body = {"type": "absence", "rules": ["step_a"], "followed-by": ["step_b"], "timespan": f"{span}s"}
    ruleset = temporal_rules(kit, body)
    expected = sorted(
        {
            (g, float(t))
            for t, g, a in events
            if a == "a" and not any(g2 == g and a2 == "b" and t <= t2 <= t + span for t2, g2, a2 in events)
        }
    )  # triggers of one group at the same instant make one detection
    rng = random.Random(seed)
    arrival = sorted(events, key=lambda e: e[0] + rng.uniform(0, 60))  # late, within the lateness
    docs = [kit.event(t, event__action=a, user__id=g) for t, g, a in arrival]
    corr = ruleset.correlations[0]
    found = sorted(
        (d.group["user.id"], _offset(d.first_seen)) for d in kit.run(ruleset, docs) if d.rule_id == corr.meta.id
    )
    assert found == expected


def test_absence_fires_when_the_watermark_passes_trigger_plus_timespan(kit: Any) -> None:
    from detectors.sigma.engine import RuleEngine

    body = {"type": "absence", "rules": ["step_a"], "followed-by": ["step_b"], "timespan": "5m"}
    engine = RuleEngine(temporal_rules(kit, body), lateness_s=60)
    assert engine.process([kit.event(0, event__action="a", user__id="u1")]) == []
    assert engine.process([kit.event(300, event__action="tick", user__id="u9")]) == []  # watermark 240 < 300
    assert engine.process([kit.event(360, event__action="tick", user__id="u9")]) == []  # watermark 300: not passed
    (det,) = engine.process([kit.event(361, event__action="tick", user__id="u9")])
    assert det.group == {"user.id": "u1"} and det.first_seen == kit.stamp(0) and det.event_count == 1


# ---------------------------------------------------------------- first_seen


@SETTINGS
@given(events=events_strategy, learning=st.sampled_from([0, 30, 100]))
def test_first_seen_matches_the_reference(kit: Any, events: list[Event], learning: int) -> None:
    body = (
        {"type": "first_seen", "field": "source.ip", "learning-period": f"{learning}s"}
        if learning
        else {"type": "first_seen", "field": "source.ip"}
    )
    ruleset = window_rules(kit, body)
    learn_until = events[0][0] + learning
    seen: dict[str, set[Any]] = defaultdict(set)
    expected = []
    for t, g, v in events:
        if v not in seen[g]:
            seen[g].add(v)
            if t >= learn_until:
                expected.append((g, str(v), float(t)))
    corr = ruleset.correlations[0]
    found = [
        (d.group["user.id"], d.group["source.ip"], _offset(d.first_seen))
        for d in kit.run(ruleset, docs_of(kit, events, "source.ip"))
        if d.rule_id == corr.meta.id
    ]
    assert found == expected


def test_first_seen_learning_per_group(kit: Any) -> None:
    body = {"type": "first_seen", "field": "source.ip", "learning-period": "1m", "learning-scope": "group"}
    ruleset = window_rules(kit, body)
    docs = [
        kit.event(0, event__action="hit", user__id="u1", source__ip="a"),
        kit.event(100, event__action="hit", user__id="u2", source__ip="a"),  # u2 starts learning now
        kit.event(120, event__action="hit", user__id="u2", source__ip="b"),
        kit.event(200, event__action="hit", user__id="u1", source__ip="c"),
    ]
    dets = [d for d in kit.run(ruleset, docs) if d.rule_name.startswith("corr")]
    assert [(d.group["user.id"], d.group["source.ip"]) for d in dets] == [("u1", "c")]


# ---------------------------------------------------------------- group-by, aliases, generate, chaining


def test_events_without_the_group_by_field_join_no_group(kit: Any) -> None:
    ruleset = window_rules(kit, {"type": "event_count", "timespan": "1m", "condition": {"gte": 2}})
    docs = [kit.event(i, event__action="hit") for i in range(5)]
    assert kit.run(ruleset, docs) == []


def test_no_group_by_means_one_global_group(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    corr = kit.correlation({"type": "event_count", "rules": ["hits"], "timespan": "1m", "condition": {"gte": 3}})
    ruleset = kit.load(base, corr)
    (det,) = kit.run(ruleset, [kit.event(i, event__action="hit", user__id=f"u{i}") for i in range(3)])
    assert det.group == {} and det.event_count == 3


def test_aliases_group_rules_that_name_the_field_differently(kit: Any) -> None:
    login = kit.rule({"s": {"event.action": "login"}, "condition": "s"}, name="login")
    grant = kit.rule({"s": {"event.action": "grant"}, "condition": "s"}, name="grant")
    body = {
        "type": "temporal",
        "rules": ["login", "grant"],
        "group-by": ["actor"],
        "aliases": {"actor": {"login": "user.name", "grant": "user.target.name"}},
        "timespan": "5m",
    }
    ruleset = kit.load(login, grant, kit.correlation(body))
    docs = [
        kit.event(0, event__action="login", user__name="eve"),
        kit.event(60, event__action="grant", user__target__name="eve"),
    ]
    (det,) = [d for d in kit.run(ruleset, docs) if d.rule_name.startswith("corr")]
    assert det.group == {"actor": "eve"}


def test_generate_true_keeps_the_base_rule_detections(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {
        "type": "event_count",
        "rules": ["hits"],
        "group-by": ["user.id"],
        "timespan": "1m",
        "condition": {"gte": 2},
        "generate": True,
    }
    ruleset = kit.load(base, kit.correlation(body, name="many"))
    dets = kit.run(ruleset, [kit.event(i, event__action="hit", user__id="u") for i in range(2)])
    assert sorted(d.rule_name for d in dets) == ["hits", "hits", "many"]


def test_correlations_of_correlations(kit: Any) -> None:
    fail = kit.rule({"s": {"event.outcome": "failure"}, "condition": "s"}, name="fail")
    ok = kit.rule({"s": {"event.outcome": "success"}, "condition": "s"}, name="ok")
    many = kit.correlation(
        {"type": "event_count", "rules": ["fail"], "group-by": ["user.id"], "timespan": "5m", "condition": {"gte": 3}},
        name="many_failures",
    )
    then = kit.correlation(
        {"type": "temporal_ordered", "rules": ["many_failures", "ok"], "group-by": ["user.id"], "timespan": "10m"},
        name="failures_then_success",
    )
    ruleset = kit.load(then, many, fail, ok)  # order of definition does not matter
    docs = [kit.event(i * 10, event__outcome="failure", user__id="u1") for i in range(3)]
    docs.append(kit.event(100, event__outcome="success", user__id="u1"))
    names = sorted(d.rule_name for d in kit.run(ruleset, docs))
    assert names == ["failures_then_success"]  # generate false: the inner correlation is silent too


def test_cyclic_and_unknown_references_are_load_errors(kit: Any) -> None:
    a = kit.correlation(
        {"type": "event_count", "rules": ["cyc_b"], "timespan": "1m", "condition": {"gte": 1}}, name="cyc_a"
    )
    b = kit.correlation(
        {"type": "event_count", "rules": ["cyc_a"], "timespan": "1m", "condition": {"gte": 1}}, name="cyc_b"
    )
    ruleset = kit.load(a, b, errors_ok=True)
    assert len(ruleset.errors) == 2 and ruleset.correlations == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "absence", "rules": ["x"], "timespan": "1m"}, "followed-by"),
        ({"type": "absence", "rules": ["x"], "followed-by": ["x"]}, "timespan"),
        ({"type": "first_seen", "rules": ["x"]}, "field"),
        ({"type": "first_seen", "rules": ["x"], "field": "a", "learning-scope": "planet"}, "learning-scope"),
        ({"type": "first_seen", "rules": ["x"], "field": "a", "bogus": 1}, "bogus"),
        ({"type": "temporal_ordered", "rules": ["x"], "timespan": "1m", "condition": "x"}, "extended"),
    ],
)
def test_bad_custom_correlations_are_load_errors(kit: Any, body: dict[str, Any], message: str) -> None:
    base = kit.rule({"s": {"event.action": "x"}, "condition": "s"}, name="x")
    ruleset = kit.load(base, kit.correlation(body), errors_ok=True)
    (error,) = ruleset.errors
    assert message in error.message.lower() or message in error.message
