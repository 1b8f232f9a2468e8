"""Rule tests: events beside each rule file, run through the production engine.

``<rule file stem>.tests.yml`` beside ``<rule file stem>.yml``::

    defaults:                         # merged into every event (dotted or nested keys)
      logwarden.source: api_access
    start: 2026-11-02T08:00:00Z       # time of the first event (default 2026-01-01T00:00:00Z)
    tests:
      - name: ten failed sign-ins within five minutes fire once
        events:
          - event: {event.action: user-login, event.outcome: failure, user.id: u1}
            repeat: 10                # this event 10 times (default 1)
            every: 20s                # between the repeats (default 1s)
          - event: {event.action: user-login, event.outcome: success, user.id: u1, source.ip: "10.0.0.{i}"}
            after: 1m                 # gap before this item (default 1s); {i} is the repeat index
        expect:
          api_login_brute_force: 1    # detections per rule (name or id); unlisted rules are not checked
          api_failed_login: {count: 0}
      - name: nine do not
        events: [...]
        expect: {api_login_brute_force: 0}

An event may also set ``@timestamp`` itself (the clock then continues from it). ``logwarden.source``
defaults to the first event source that satisfies the logsource of the file's first rule. Each case runs in a fresh
engine over every rule loaded from the same paths, ends with ``flush`` (windows close, absences fire) and
counts the distinct detections per rule. ``expect`` values: a count, or ``{count, group, event_count}``
(``group`` and ``event_count`` are checked on every detection of the rule). A case expecting more than 0
for a rule is a positive test of it, 0 a negative one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detectors.detection import Detection
from detectors.errors import RuleError
from detectors.sigma.build import timespan_seconds
from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import nest
from detectors.sigma.loader import TEST_SUFFIX, load_rules, rule_files
from detectors.sigma.rules import RuleSet
from detectors.sigma.taxonomy import EVENT_LOGSOURCES, logsource_matches
from detectors.sigma.watermark import event_time, iso
from ingest.records import NormalizedEvent, Record

DEFAULT_START = "2026-01-01T00:00:00Z"


@dataclass
class CaseResult:
    """One test case of one tests file, and every expectation that failed."""

    path: str
    line: int
    name: str
    expected: dict[str, int]  # rule name -> detections expected
    actual: dict[str, int]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class RuleTestReport:
    """Every case run, the load problems, and rule files without tests."""

    cases: list[CaseResult] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.cases)


def rule_tests_path(rule_file: Path) -> Path:
    return rule_file.with_name(rule_file.name.rsplit(".", 1)[0] + TEST_SUFFIX)


def run_rule_tests(paths: Iterable[Path], ruleset: RuleSet | None = None) -> RuleTestReport:
    """Run the tests files of every rule file under ``paths`` against the rules of ``paths``."""
    paths = list(paths)
    ruleset = ruleset if ruleset is not None else load_rules(paths)
    report = RuleTestReport(errors=list(ruleset.errors))
    names = {r.meta.name: r.meta.id for r in ruleset.rules} | {c.meta.name: c.meta.id for c in ruleset.correlations}
    names |= {v: v for v in names.values()}
    for rule_file in rule_files(paths):
        path = rule_tests_path(rule_file)
        if not path.exists():
            report.untested.append(str(rule_file))
            continue
        try:
            report.cases.extend(_run_file(path, ruleset, names, _default_source(ruleset, rule_file)))
        except RuleError as exc:
            report.errors.append(exc)
    return report


def _default_source(ruleset: RuleSet, rule_file: Path) -> str | None:
    """The first event source (``logwarden.source``) that satisfies the logsource of the file's first rule."""
    for rule in ruleset.rules:
        if rule.meta.path == str(rule_file):
            for source, logsources in EVENT_LOGSOURCES.items():
                if logsource_matches(rule.logsource, logsources):
                    return source
    return None


def _run_file(path: Path, ruleset: RuleSet, names: dict[str, str], source: str | None) -> list[CaseResult]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleError(where, (mark.line + 1) if mark else 1, f"cannot read tests: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list) or root is None:
        raise RuleError(where, 1, "a tests file holds a mapping with a 'tests' list")
    tests_node = next(v for k, v in root.value if k.value == "tests")
    defaults = {**({"logwarden.source": source} if source else {}), **(data.get("defaults") or {})}
    start = str(data.get("start") or DEFAULT_START)
    results = []
    for case, node in zip(data["tests"], tests_node.value, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(case, dict) or not isinstance(case.get("expect"), dict):
            raise RuleError(where, line, "a test case needs events and an expect mapping")
        events = _events(case.get("events") or [], defaults, start, where, line)
        results.append(_run_case(case, events, ruleset, names, where, line))
    return results


def _run_case(
    case: dict[str, Any], events: list[NormalizedEvent], ruleset: RuleSet, names: dict[str, str], path: str, line: int
) -> CaseResult:
    engine = RuleEngine(ruleset)
    final: dict[str, Detection] = {}
    for det in [*engine.process(events), *engine.flush()]:
        final[det.id] = det
    by_rule: dict[str, list[Detection]] = {}
    for det in final.values():
        by_rule.setdefault(det.rule_id, []).append(det)
    result = CaseResult(path, line, str(case.get("name") or f"case at line {line}"), {}, {})
    for ref, want in case["expect"].items():
        rule_id = names.get(str(ref))
        if rule_id is None:
            result.failures.append(f"unknown rule {ref!r}")
            continue
        spec = want if isinstance(want, dict) else {"count": want}
        dets = by_rule.get(rule_id, [])
        result.expected[str(ref)] = int(spec.get("count", 1))
        result.actual[str(ref)] = len(dets)
        if len(dets) != result.expected[str(ref)]:
            result.failures.append(f"{ref}: expected {result.expected[str(ref)]} detections, got {len(dets)}")
        for det in dets:
            if "group" in spec and det.group != {k: str(v) for k, v in spec["group"].items()}:
                result.failures.append(f"{ref}: group {det.group} != {spec['group']}")
            if "event_count" in spec and det.event_count != spec["event_count"]:
                result.failures.append(f"{ref}: event_count {det.event_count} != {spec['event_count']}")
    return result


def _events(items: list[Any], defaults: dict[str, Any], start: str, path: str, line: int) -> list[NormalizedEvent]:
    """Expand the event items of a case (``repeat``, ``every``, ``after``, ``{i}``) into normalized events."""
    clock = event_time(start)
    out: list[NormalizedEvent] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("event"), dict):
            raise RuleError(path, line, "each event item needs an 'event' mapping")
        every = timespan_seconds(item.get("every", "1s"), path, line, "every")
        if out:
            clock += timespan_seconds(item.get("after", "1s"), path, line, "after")
        for i in range(int(item.get("repeat", 1))):
            doc = nest({**_flat(nest(defaults)), **_flat(nest(_fill(item["event"], i)))})
            if "@timestamp" in doc:
                clock = event_time(str(doc["@timestamp"]))
            doc["@timestamp"] = iso(clock)
            n = len(out)
            record = Record("rule-test", f"{path}:{line}:{n}".encode(), "rule-test", 0, n)
            out.append(NormalizedEvent(f"{Path(path).stem}-{line}-{n}", doc, record))
            if i + 1 < int(item.get("repeat", 1)):
                clock += every
    return out


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _fill(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(i))
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    return value
