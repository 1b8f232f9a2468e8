"""The rule test runner (``<rule>.tests.yml``) and lint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from detectors.sigma import testing
from detectors.sigma.lint import lint
from detectors.sigma.testing import run_rule_tests


def rule_file(kit: Any, tmp_path: Path) -> Path:
    base = kit.rule({"s": {"event.action": "hit"}, "condition": "s"}, name="hits")
    ips = kit.correlation(
        {
            "type": "value_count",
            "rules": ["hits"],
            "group-by": ["user.id"],
            "timespan": "5m",
            "condition": {"gte": 3, "field": "source.ip"},
        },
        name="many_ips",
    )
    gone = kit.correlation(
        {"type": "absence", "rules": ["hits"], "followed-by": ["hits"], "group-by": ["user.id"], "timespan": "1m"},
        name="never",
    )
    return kit.write(base, ips, gone, name="initial_access_many_ips.yml")


def write_tests(path: Path, tests: list[dict[str, Any]], **top: Any) -> Path:
    target = testing.rule_tests_path(path)
    target.write_text(yaml.safe_dump({"defaults": {"event.action": "hit"}, **top, "tests": tests}, sort_keys=False))
    return target


def test_positive_and_negative_cases_pass(kit: Any, tmp_path: Path) -> None:
    path = rule_file(kit, tmp_path)
    write_tests(
        path,
        [
            {
                "name": "three ips",
                "events": [{"event": {"user.id": "u", "source.ip": "10.0.0.{i}"}, "repeat": 3, "every": "30s"}],
                "expect": {
                    "many_ips": {"count": 1, "group": {"user.id": "u"}, "event_count": 3},
                    "never": 0,
                    "hits": 0,
                },
            },
            {
                "name": "same ip",
                "events": [{"event": {"user": {"id": "u"}, "source.ip": "10.0.0.1"}, "repeat": 5}],
                "expect": {"many_ips": 0},
            },
            {
                "name": "too slow",
                "events": [
                    {"event": {"user.id": "u", "source.ip": "10.0.0.1"}},
                    {"event": {"user.id": "u", "source.ip": "10.0.0.2"}, "after": "3m"},
                    {"event": {"user.id": "u", "source.ip": "10.0.0.3", "@timestamp": "2026-01-01T00:09:00Z"}},
                ],
                "expect": {"many_ips": 0},
            },
        ],
    )
    report = run_rule_tests([tmp_path])
    assert report.ok, [c.failures for c in report.cases]
    assert [c.name for c in report.cases] == ["three ips", "same ip", "too slow"]
    assert report.cases[0].actual == {"many_ips": 1, "never": 0, "hits": 0}
    assert report.untested == []


def test_failures_are_reported_with_the_case_line(kit: Any, tmp_path: Path) -> None:
    path = rule_file(kit, tmp_path)
    tests = write_tests(
        path,
        [
            {
                "name": "wrong",
                "events": [{"event": {"user.id": "u", "source.ip": "10.0.0.1"}}],
                "expect": {"many_ips": 1, "nope": 0},
            },
        ],
    )
    report = run_rule_tests([tmp_path])
    assert not report.ok
    (case,) = report.cases
    assert case.path == str(tests) and case.line > 1
    assert any("expected 1 detections, got 0" in f for f in case.failures)
    assert any("unknown rule 'nope'" in f for f in case.failures)


def test_untested_rule_files_and_broken_tests_files(kit: Any, tmp_path: Path) -> None:
    path = rule_file(kit, tmp_path)
    report = run_rule_tests([tmp_path])
    assert report.untested == [str(path)] and report.ok
    testing.rule_tests_path(path).write_text("tests: [unclosed\n")
    report = run_rule_tests([tmp_path])
    (error,) = report.errors
    assert error.path == str(testing.rule_tests_path(path)) and not report.ok


def test_lint_collects_every_problem(kit: Any, tmp_path: Path) -> None:
    rule_file(kit, tmp_path)
    kit.write(kit.rule({"s": {"a|badmod": "x"}, "condition": "s"}), name="impact_broken.yml")
    kit.write(
        kit.rule({"s": {"event.action": "x"}, "condition": "s"}, logsource={"product": "windows"}),
        name="execution_windows.yml",
    )
    report = lint([tmp_path])
    assert report.failed == 1 and report.loaded == 4
    messages = [(Path(p.path).name, p.severity, p.message) for p in report.problems]
    assert any(n == "impact_broken.yml" and s == "error" and "badmod" in m for n, s, m in messages)
    assert any(n == "execution_windows.yml" and "never runs" in m for n, s, m in messages)
    assert sum("no test events" in m for _, _, m in messages) == 3
    as_json = report.as_dict()
    assert set(as_json) == {"loaded", "failed", "errors"}
    assert all({"path", "line", "message"} <= set(e) for e in as_json["errors"])


def test_the_shipped_rules_pass_their_tests() -> None:
    rules = Path(__file__).resolve().parents[3] / "rules"
    report = run_rule_tests([rules])
    assert report.ok, [(c.name, c.failures) for c in report.cases if not c.ok] + [str(e) for e in report.errors]
    assert report.untested == []
    assert lint([rules]).problems == []
