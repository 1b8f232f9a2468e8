"""Alert quality: suppression, exceptions (owner, reason, expiry), severity and risk score, ATT&CK tags."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.sigma.engine import RuleEngine
from detectors.sigma.lint import lint
from detectors.sigma.loader import load_rules, rule_files


def deletes(kit: Any, **options: Any) -> dict[str, Any]:
    extra = {"logwarden": options} if options else {}
    return kit.rule(
        {"s": {"http.request.method": "DELETE"}, "condition": "s"},
        name="deletes",
        level="medium",
        tags=["attack.impact", "attack.t1485"],
        **extra,
    )


def delete(kit: Any, t: float, user: str = "u1", **kw: Any) -> Any:
    return kit.event(t, http__request__method="DELETE", user__id=user, **kw)


def test_suppression_folds_detections_of_a_rule_and_group_within_the_window(kit: Any) -> None:
    ruleset = kit.load(deletes(kit, suppress="10m", suppress_by=["user.id"]))
    engine = RuleEngine(ruleset)
    first = engine.process([delete(kit, 0)])
    assert len(first) == 1 and first[0].group == {"user.id": "u1"}
    (again,) = engine.process([delete(kit, 60), delete(kit, 120)])
    assert again.id == first[0].id and again.suppressed_count == 2 and again.last_seen == kit.stamp(120)
    (other,) = engine.process([delete(kit, 130, "u2")])  # another group key: its own detection
    assert other.id != first[0].id and other.suppressed_count == 0
    (later,) = engine.process([delete(kit, 700)])  # beyond the window: a new detection
    assert later.id != first[0].id and later.suppressed_count == 0
    assert engine.counters()["suppressed"] == 2


def test_engine_default_suppression_applies_to_every_rule(kit: Any) -> None:
    engine = RuleEngine(kit.load(deletes(kit)), suppress_s=300)
    dets = engine.process([delete(kit, 0), delete(kit, 10, "u2"), delete(kit, 20)])
    (det,) = dets  # single-event rules without suppress_by share one group key: {}
    assert det.suppressed_count == 2


def test_suppressed_correlation_updates_are_swallowed(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {
        "type": "event_count",
        "rules": ["hits"],
        "group-by": ["user.id"],
        "timespan": "1m",
        "condition": {"gte": 2},
    }
    corr = kit.correlation(body, name="bursts", logwarden={"suppress": "1h"})
    engine = RuleEngine(kit.load(base, corr))
    events = [kit.event(t, event__action="hit", user__id="u1") for t in (0, 1, 100, 101, 102)]
    (first,) = engine.process(events[:2])
    (folded,) = engine.process(events[2:4])  # a second burst: folded into the first
    assert folded.id == first.id and folded.suppressed_count == 1
    (still,) = engine.process(events[4:])  # an update of the folded detection: the first moves on
    assert still.id == first.id and still.suppressed_count == 1 and still.last_seen == kit.stamp(102)


def test_risk_score_defaults_to_the_level_and_can_be_set_or_read_from_events(kit: Any) -> None:
    plain = kit.rule({"s": {"event.action": "a"}, "condition": "s"}, name="plain", level="high")
    fixed = kit.rule({"s": {"event.action": "b"}, "condition": "s"}, name="fixed", logwarden={"risk_score": 88})
    from_field = kit.rule(
        {"s": {"event.action": "c"}, "condition": "s"},
        name="from_field",
        logwarden={"risk_score": 50, "risk_score_field": "event.risk_score"},
    )
    ruleset = kit.load(plain, fixed, from_field)
    dets = kit.run(
        ruleset,
        [
            kit.event(0, event__action="a"),
            kit.event(1, event__action="b"),
            kit.event(2, event__action="c", event__risk_score=140),
            kit.event(3, event__action="c"),
        ],
    )
    assert [(d.rule_name, d.risk_score) for d in dets] == [
        ("plain", 73.0),
        ("fixed", 88.0),
        ("from_field", 100.0),
        ("from_field", 50.0),
    ]


def test_correlation_risk_is_the_highest_of_its_events(kit: Any) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {
        "type": "event_count",
        "rules": ["hits"],
        "group-by": ["user.id"],
        "timespan": "1m",
        "condition": {"gte": 2},
    }
    corr = kit.correlation(body, logwarden={"risk_score_field": "event.risk_score"})
    ruleset = kit.load(base, corr)
    (det,) = kit.run(ruleset, [kit.event(0, event__action="hit", user__id="u", event__risk_score=s) for s in (30, 60)])
    assert det.risk_score == 60.0


def test_tags_and_level_are_carried_into_detections(kit: Any) -> None:
    (det,) = kit.run(kit.load(deletes(kit)), [delete(kit, 0)])
    assert det.level == "medium" and det.tags == ["attack.impact", "attack.t1485"]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"risk_score": 101}, "risk_score"), ({"suppress": "soon"}, "suppress"), ({"unknown": 1}, "unknown")],
)
def test_bad_logwarden_options_are_load_errors(kit: Any, options: dict[str, Any], message: str) -> None:
    ruleset = kit.load(deletes(kit, **options), errors_ok=True)
    (error,) = ruleset.errors
    assert message in error.message


# ---------------------------------------------------------------- exceptions


def write_exceptions(directory: Path, entries: list[dict[str, Any]], name: str = "exceptions.yml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"exceptions": entries}, sort_keys=False), encoding="utf-8")
    return path


def exception(rule: str, match: dict[str, Any], expires: str = "2099-01-01", **extra: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "match": match,
        "owner": "secops@example.com",
        "reason": "known good",
        "expires": expires,
        **extra,
    }


def test_exceptions_drop_matching_events_of_their_rule(kit: Any, tmp_path: Path) -> None:
    kit.write(deletes(kit), name="rules.yml")
    write_exceptions(tmp_path, [exception("deletes", {"user.id": "ci_bot", "source.ip|cidr": "10.0.0.0/8"}, id="ci")])
    ruleset = load_rules([tmp_path])
    assert ruleset.errors == [] and len(ruleset.exceptions) == 1
    assert rule_files([tmp_path]) == [tmp_path / "rules.yml"]  # an exceptions file is not a rule file
    engine = RuleEngine(ruleset)
    dets = engine.process(
        [
            delete(kit, 0, "ci_bot", source__ip="10.1.2.3"),  # excepted
            delete(kit, 1, "ci_bot", source__ip="203.0.113.9"),  # not from the CI network
            delete(kit, 2, "u2", source__ip="10.1.2.3"),
        ]
    )
    assert len(dets) == 2
    assert engine.stats.excepted == 1 and engine.stats.exception_hits == {"ci": 1}


def test_exceptions_on_a_correlation_keep_events_out_of_it(kit: Any, tmp_path: Path) -> None:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    body = {
        "type": "event_count",
        "rules": ["hits"],
        "group-by": ["user.id"],
        "timespan": "1m",
        "condition": {"gte": 2},
    }
    kit.write(base, kit.correlation(body, name="bursts"), name="rules.yml")
    write_exceptions(tmp_path, [exception("bursts", {"user.id": "svc"})])
    ruleset = load_rules([tmp_path])
    dets = kit.run(ruleset, [kit.event(t, event__action="hit", user__id=u) for t in (0, 1) for u in ("svc", "bob")])
    assert [d.group for d in dets] == [{"user.id": "bob"}]


def test_expired_exceptions_are_ignored_and_reported(kit: Any, tmp_path: Path) -> None:
    kit.write(deletes(kit), name="rules.yml")
    write_exceptions(tmp_path, [exception("deletes", {"user.id": "old"}, expires="2026-01-31")])
    ruleset = load_rules([tmp_path], today=date(2026, 2, 1))
    assert ruleset.exceptions == [] and ruleset.errors == []
    (warning,) = ruleset.warnings
    assert "expired" in warning.message and warning.line == 2
    assert len(kit.run(ruleset, [delete(kit, 0, "old")])) == 1
    assert load_rules([tmp_path], today=date(2026, 1, 30)).exceptions  # the day before: still active
    report = lint([tmp_path], today=date(2026, 2, 1))
    assert any("expired" in p.message and p.severity == "warning" for p in report.problems)


def test_bad_exception_entries_are_errors_with_their_line(kit: Any, tmp_path: Path) -> None:
    kit.write(deletes(kit), name="rules.yml")
    path = write_exceptions(
        tmp_path,
        [
            exception("deletes", {"user.id": "ok"}),
            {"rule": "deletes", "match": {"user.id": "x"}},  # no owner, reason, expiry
            exception("no_such_rule", {"user.id": "x"}),
            exception("deletes", {"user.id|nosuchmod": "x"}),
        ],
        name="team.exceptions.yml",
    )
    ruleset = load_rules([tmp_path])
    assert len(ruleset.exceptions) == 1
    messages = {e.line: e.message for e in ruleset.errors}
    assert len(messages) == 3 and all(e.path == str(path) for e in ruleset.errors)
    assert any("missing" in m and "owner" in m for m in messages.values())
    assert any("no_such_rule" in m for m in messages.values())
    assert any("nosuchmod" in m for m in messages.values())
