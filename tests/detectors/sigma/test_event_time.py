"""Event time: watermark, allowed lateness, late events, state expiry and bounds."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.corr_base import Limits
from detectors.sigma.engine import RuleEngine
from detectors.sigma.watermark import Watermark, event_time, iso


def counting(kit: Any, threshold: int = 3, span: str = "5m") -> Any:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {
        "type": "event_count",
        "rules": ["hits"],
        "group-by": ["user.id"],
        "timespan": span,
        "condition": {"gte": threshold},
    }
    return kit.load(base, kit.correlation(body, name="many_hits"))


def hit(kit: Any, t: float, user: str = "u1", **kw: Any) -> Any:
    return kit.event(t, event__action="hit", user__id=user, **kw)


def test_watermark_is_the_newest_time_minus_the_lateness() -> None:
    wm = Watermark(lateness_s=30)
    assert wm.observe(100.0) and wm.value == 70.0
    assert wm.observe(80.0) and wm.value == 70.0  # late but allowed: the watermark does not move back
    assert not wm.observe(69.9)
    wm.close_all()
    assert wm.value == float("inf")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-02T08:00:00.000Z", "2026-11-02T08:00:00.000Z"),
        ("2026-11-02T09:00:00+01:00", "2026-11-02T08:00:00.000Z"),
        ("2026-11-02T08:00:00", "2026-11-02T08:00:00.000Z"),
        ("2026-11-02T08:00:00.123456Z", "2026-11-02T08:00:00.123Z"),
    ],
)
def test_event_time_forms(stamp: str, expected: str) -> None:
    assert iso(event_time(stamp)) == expected


def test_each_partition_has_its_own_watermark_and_the_engine_takes_the_minimum() -> None:
    clock = [0.0]
    wm = Watermark(lateness_s=60, idle_s=30, clock=lambda: clock[0])
    assert wm.observe(10_000.0, lane=("t", 0)) and wm.value == 9_940.0
    assert wm.observe(100.0, lane=("t", 1))  # partition 1's backlog, read after partition 0's: not late
    assert wm.value == 40.0  # held back by the slower partition
    assert not wm.observe(10.0, lane=("t", 1))  # late for its own partition
    clock[0] = 100.0  # partition 1 stays silent longer than idle_s: it no longer holds the others back
    assert wm.observe(10_001.0, lane=("t", 0)) and wm.value == 9_941.0


class RecomputingWatermark:
    """The reference: the minimum over the active lanes recomputed at every advance of any lane."""

    def __init__(self, lateness_s: float, idle_s: float, clock: Any) -> None:
        self.lateness_s, self.idle_s, self.clock = lateness_s, idle_s, clock
        self.newest_by_lane: dict[object, float] = {}
        self.seen: dict[object, float] = {}
        self.newest = self.value = float("-inf")

    def observe(self, t: float, lane: object) -> bool:
        newest = self.newest_by_lane.get(lane)
        if newest is not None and t < newest - self.lateness_s:
            return False
        now = self.seen[lane] = self.clock()
        if newest is None or t > newest:
            self.newest_by_lane[lane] = t
            self.newest = max(self.newest, t)
            active = [n for k, n in self.newest_by_lane.items() if now - self.seen[k] <= self.idle_s]
            self.value = (min(active) if active else self.newest) - self.lateness_s
        return True


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_watermark_equals_a_recomputation_at_every_advance(seed: int) -> None:
    """Partitions advancing, stalling, going idle and coming back: the watermark recomputes only when the
    minimum can have changed, with the same values and the same late verdicts as recomputing every time."""
    rng = random.Random(seed)  # long random walks find the rare orders (an idle lane back while another advances)
    clock = [0.0]
    wm = Watermark(lateness_s=60, idle_s=30, clock=lambda: clock[0])
    ref = RecomputingWatermark(60, 30, lambda: clock[0])
    t_by_lane = [1000.0] * 4
    for _ in range(60):
        lane = rng.randrange(4)
        clock[0] += rng.choice([0, 0, 0, 1, 5, 40])
        t_by_lane[lane] += rng.randint(-50, 120)
        assert wm.observe(t_by_lane[lane], lane) == ref.observe(t_by_lane[lane], lane)
        assert wm.value == ref.value


def backfill_hit(kit: Any, t: float, partition: int) -> Any:
    event = hit(kit, t)
    return event.with_record(replace(event.record, topic="api-access", partition=partition))


def test_a_partition_read_late_in_a_backfill_still_correlates(kit: Any) -> None:
    """Two partitions replayed one after the other: the second one's burst is hours older, and must alert."""
    engine = RuleEngine(counting(kit), lateness_s=600)
    assert engine.process([backfill_hit(kit, 20_000 + i, partition=0) for i in range(2)]) == []
    (det,) = engine.process([backfill_hit(kit, 100 + i, partition=1) for i in range(3)])
    assert det.event_count == 3 and engine.stats.late_events == 0


def test_late_events_within_the_lateness_still_correlate(kit: Any) -> None:
    engine = RuleEngine(counting(kit), lateness_s=120)
    assert engine.process([hit(kit, 200), hit(kit, 210)]) == []
    (det,) = engine.process([hit(kit, 100)])  # 110 s late: within 120 s and within the 5-minute window
    assert det.event_count == 3 and det.first_seen == kit.stamp(100)
    assert engine.stats.late_events == 0


def test_events_later_than_the_lateness_are_counted_and_not_correlated(kit: Any) -> None:
    ruleset = counting(kit)
    single = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="every_hit")
    ruleset.rules.append(kit.load(single).rules[0])
    engine = RuleEngine(ruleset, lateness_s=60)
    engine.process([hit(kit, 1000), hit(kit, 1010)])
    detections = engine.process([hit(kit, 900)])  # 110 s late
    assert engine.stats.late_events == 1
    assert [d.rule_name for d in detections] == ["every_hit"]  # single-event rules still see it
    assert engine.counters()["late_events"] == 1


def test_events_without_a_timestamp_are_counted_and_not_correlated(kit: Any) -> None:
    engine = RuleEngine(counting(kit, threshold=1))
    event = hit(kit, 0)
    del event.doc["@timestamp"]
    assert engine.process([event]) == []
    assert engine.stats.bad_timestamps == 1


def test_state_expires_once_the_watermark_passed_it(kit: Any) -> None:
    engine = RuleEngine(counting(kit), lateness_s=60)
    engine.process([hit(kit, 0, "a"), hit(kit, 10, "b")])
    assert engine.group_count == 2
    engine.process([hit(kit, 300, "c")])  # watermark 240: a and b can still join windows
    assert engine.expire() == 0
    engine.process([hit(kit, 400, "c")])  # watermark 340 > 10 + 300
    assert engine.expire() == 2
    assert engine.group_count == 1


def test_groups_are_bounded_with_lru_eviction_counted(kit: Any) -> None:
    engine = RuleEngine(counting(kit), limits=Limits(max_groups=2))
    engine.process([hit(kit, 0, "a"), hit(kit, 1, "b"), hit(kit, 2, "a"), hit(kit, 3, "c")])  # b is evicted
    assert engine.group_count == 2
    assert engine.counters()["evicted_groups"] == 1
    (det,) = engine.process([hit(kit, 4, "a")])  # a survived: its three events are still there
    assert det.group == {"user.id": "a"} and det.event_count == 3


def test_events_per_group_are_bounded_and_truncation_is_counted(kit: Any) -> None:
    engine = RuleEngine(counting(kit, threshold=10), limits=Limits(max_items=4))
    assert engine.process([hit(kit, i) for i in range(6)]) == []
    assert engine.counters()["truncated_events"] == 2


def test_flush_closes_every_window(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {"type": "event_count", "rules": ["hits"], "group-by": ["user.id"], "timespan": "1h", "condition": {"lt": 3}}
    engine = RuleEngine(kit.load(base, kit.correlation(body)))
    assert engine.process([hit(kit, 0), hit(kit, 5)]) == []  # the hour is not over
    (det,) = engine.flush()
    assert det.event_count == 2


def test_tumbling_windows_close_when_the_watermark_passes_their_end(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {"type": "event_count", "rules": ["hits"], "group-by": ["user.id"], "timespan": "1m", "condition": {"eq": 1}}
    engine = RuleEngine(kit.load(base, kit.correlation(body)), lateness_s=10)
    assert engine.process([hit(kit, 5)]) == []
    assert engine.process([hit(kit, 69, "other")]) == []  # watermark 59: window [0, 60) still open
    (det,) = engine.process([hit(kit, 71, "other")])  # watermark 61
    assert det.group == {"user.id": "u1"}


def test_a_rule_that_raises_on_an_event_is_counted_and_the_stream_goes_on(kit: Any) -> None:
    from dataclasses import replace

    ruleset = counting(kit)

    def broken(doc: Any) -> bool:
        raise RuntimeError("bug")

    good = kit.load(kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="every_hit")).rules[0]
    ruleset.rules = [replace(r, predicate=broken) for r in ruleset.rules] + [good]
    engine = RuleEngine(ruleset)
    detections = engine.process([hit(kit, 0), hit(kit, 1)])
    assert [d.rule_name for d in detections] == ["every_hit", "every_hit"]
    assert engine.counters()["rule_errors"] == 2
