"""The rule engine on event time: event_count correlations, windows, late events, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import orjson
import pytest

from detectors.detection import Detection, detection_id
from detectors.sigma.engine import RuleEngine, event_logsource
from detectors.sigma.loader import load_rules
from detectors.sigma.rules import RuleSet
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record

RULES = """\
title: Failed login
id: 11111111-1111-4111-8111-111111111111
name: failed_login
description: a failed login
logsource:
  product: logwarden
  service: api_access
detection:
  selection:
    event.category: authentication
    event.action: user-login
    event.outcome: failure
  condition: selection
level: low
---
title: Many failed logins
id: 22222222-2222-4222-8222-222222222222
name: many_failed_logins
description: brute force
correlation:
  type: event_count
  rules:
    - failed_login
  group-by:
    - user.id
  timespan: 5m
  condition:
    gte: 10
level: high
tags:
  - attack.credential-access
  - attack.t1110.001
---
title: Model deleted
id: 33333333-3333-4333-8333-333333333333
name: model_deleted
description: a DELETE on a model
logsource:
  product: logwarden
  service: api_access
detection:
  selection:
    http.request.method: DELETE
    url.path|startswith: /v1/models/
  condition: selection
level: medium
tags:
  - attack.impact
  - attack.t1485
---
title: Audit only
id: 44444444-4444-4444-8444-444444444444
name: audit_only
description: another log source
logsource:
  product: logwarden
  service: audit
detection:
  selection:
    http.request.method: DELETE
  condition: selection
level: low
"""

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_offsets = count()


def iso(seconds: float) -> str:
    """The parser's form of ``T0 + seconds``."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture
def engine(tmp_path: Path) -> RuleEngine:
    path = tmp_path / "rules.yml"
    path.write_text(RULES, encoding="utf-8")
    ruleset = load_rules([path])
    assert ruleset.errors == []
    return RuleEngine(ruleset)


def event(
    seconds: float, *, user: str = "user_1", status: int = 401, path: str = "/v1/auth/login", method: str = "POST"
) -> NormalizedEvent:
    stamp = (T0 + timedelta(seconds=seconds)).isoformat()
    raw = orjson.dumps(
        {
            "timestamp": stamp,
            "method": method,
            "path": path,
            "status": status,
            "user_id": user,
            "request_id": f"r{next(_offsets)}",
        }
    )
    result = Normalizer().normalize(Record("api_access", raw, "api-access", 0, next(_offsets)))
    assert isinstance(result, NormalizedEvent)
    return result


def test_an_engine_without_rules_counts_events_and_leaves_their_documents_unread() -> None:
    batch = [NormalizedEvent(f"e{i}", None, Record("api_access", b"", "t", 0, i), json=b"not read") for i in range(3)]
    empty = RuleEngine(RuleSet())
    assert empty.process(batch) == []
    assert empty.counters()["events"] == 3  # a dict would have been decoded from the JSON text (and failed)


def failures(start: float, n: int, step: float = 10.0, **kw: object) -> list[NormalizedEvent]:
    return [event(start + i * step, **kw) for i in range(n)]  # type: ignore[arg-type]


def by_rule(detections: list[Detection], name: str) -> list[Detection]:
    return [d for d in detections if d.rule_name == name]


def test_event_count_fires_at_exactly_the_threshold(engine: RuleEngine) -> None:
    batch = failures(0, 10)
    assert engine.process(batch[:9]) == []
    (det,) = engine.process(batch[9:])
    assert det.rule_name == "many_failed_logins"
    assert det.event_count == 10
    assert det.group == {"user.id": "user_1"}
    assert det.group_key == "user.id=user_1"
    assert det.level == "high"
    assert det.tags == ["attack.credential-access", "attack.t1110.001"]
    assert det.first_seen == batch[0].timestamp
    assert det.last_seen == batch[9].timestamp
    assert det.event_ids == [e.doc_id for e in batch]
    assert det.id == detection_id("22222222-2222-4222-8222-222222222222", "user.id=user_1", batch[0].timestamp)


def test_threshold_counts_across_batches_one_event_at_a_time(engine: RuleEngine) -> None:
    results = [engine.process([e]) for e in failures(0, 10)]
    assert [len(r) for r in results] == [0] * 9 + [1]


def test_base_rule_referenced_by_correlation_raises_no_single_detections(engine: RuleEngine) -> None:
    detections = engine.process(failures(0, 5))
    assert detections == []
    assert engine.matches == 5  # the base rule did match


def test_standalone_rule_raises_one_detection_per_event(engine: RuleEngine) -> None:
    deletes = [event(i, method="DELETE", path=f"/v1/models/m{i}", status=200) for i in range(2)]
    detections = engine.process(deletes)
    assert [d.rule_name for d in detections] == ["model_deleted", "model_deleted"]
    assert [d.event_ids for d in detections] == [[deletes[0].doc_id], [deletes[1].doc_id]]
    assert all(d.event_count == 1 and d.group == {} for d in detections)
    assert engine.process(deletes[:1])[0].id == detections[0].id  # a replay gives the same id


def test_rules_of_another_logsource_do_not_run(engine: RuleEngine) -> None:
    doc = event(0, method="DELETE", path="/v1/models/x", status=200).doc
    # api-access events are web-server logs too: community `category: webserver` rules run on them
    assert event_logsource(doc) == {"product": "logwarden", "service": "api_access", "category": "webserver"}
    assert [r.meta.name for r in engine.rules_for(doc)] == ["failed_login", "model_deleted"]
    assert engine.rules_for({"message": "no source"}) == []


def test_open_detection_is_updated_with_the_same_id(engine: RuleEngine) -> None:
    (first,) = engine.process(failures(0, 10))
    (second,) = engine.process(failures(100, 3))
    assert second.id == first.id
    assert second.event_count == 13
    assert second.last_seen == iso(120)
    assert len(second.event_ids) == 13


def test_one_batch_reports_each_detection_once_in_its_latest_state(engine: RuleEngine) -> None:
    detections = engine.process(failures(0, 25, step=5))
    (det,) = detections
    assert det.event_count == 25


def test_new_window_after_the_timespan_gets_a_new_id(engine: RuleEngine) -> None:
    (first,) = engine.process(failures(0, 10))
    assert engine.process(failures(600, 9)) == []  # the old events left the 5-minute window
    (second,) = engine.process(failures(690, 1))
    assert second.id != first.id
    assert second.event_count == 10
    assert second.first_seen == iso(600)


def test_events_beyond_the_timespan_do_not_add_up(engine: RuleEngine) -> None:
    assert engine.process(failures(0, 9, step=40)) == []  # 9 events over 320 s
    assert engine.process(failures(400, 1)) == []  # only 10 in total, never 10 within 5 minutes


def test_late_events_within_the_timespan_still_count(engine: RuleEngine) -> None:
    batch = failures(0, 10, step=25)
    newest_first = sorted(batch, key=lambda e: e.timestamp, reverse=True)
    assert engine.process(newest_first[:9]) == []
    (det,) = engine.process(newest_first[9:])
    assert det.event_count == 10
    assert det.first_seen == batch[0].timestamp  # the window starts at the earliest event, not the first seen
    assert det.last_seen == batch[-1].timestamp


def test_late_event_updates_an_open_detection(engine: RuleEngine) -> None:
    (det,) = engine.process(failures(100, 10))
    (updated,) = engine.process([event(50)])  # arrives late but within the window
    assert updated.id == det.id
    assert updated.event_count == 11
    assert updated.first_seen == iso(50)


def test_users_are_separate_groups(engine: RuleEngine) -> None:
    mixed = [e for i in range(9) for e in (event(i * 10, user="alice"), event(i * 10 + 1, user="bob"))]
    assert engine.process(mixed) == []
    assert engine.group_count == 2
    (det,) = engine.process([event(95, user="bob")])
    assert det.group == {"user.id": "bob"}
    assert det.event_count == 10


def test_events_without_the_group_by_field_are_not_grouped(engine: RuleEngine) -> None:
    no_user = []
    for i in range(12):
        raw = orjson.dumps(
            {
                "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                "method": "POST",
                "path": "/v1/auth/login",
                "status": 401,
            }
        )
        result = Normalizer().normalize(Record("api_access", raw))
        assert isinstance(result, NormalizedEvent)
        no_user.append(result)
    assert engine.process(no_user) == []
    assert engine.group_count == 0


def test_expire_drops_stale_groups_only(engine: RuleEngine) -> None:
    engine.process(failures(0, 3, user="old"))
    engine.process(failures(0, 10, user="attacked"))
    assert engine.group_count == 2
    assert engine.expire() == 0  # nothing is stale yet
    engine.process(failures(2000, 1, user="new"))  # the watermark moves past both windows
    assert engine.expire() == 2
    assert engine.group_count == 1
    # after expiry, "old" starts from scratch
    assert engine.process(failures(2000, 9, user="old")) == []


def test_successful_logins_do_not_count(engine: RuleEngine) -> None:
    assert engine.process(failures(0, 20, status=200)) == []
    assert engine.group_count == 0


def test_a_straggler_far_older_than_the_open_window_does_not_join_it(engine: RuleEngine) -> None:
    (det,) = engine.process(failures(3600, 10))
    assert engine.process([event(0)]) == []  # an hour before the burst: its own group history, no update
    (updated,) = engine.process(failures(3700, 1))
    assert updated.id == det.id and updated.event_count == 11
