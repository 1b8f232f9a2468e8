"""Loading rule files: errors carry path:line, a bad rule never stops the good ones."""

from __future__ import annotations

from pathlib import Path

from detectors.errors import DetectorError, RuleError
from detectors.sigma.loader import load_rules, rule_files

BASE = """\
title: Failed login
id: 11111111-1111-4111-8111-111111111111
name: failed_login
description: a failed login
logsource:
  product: logwarden
  service: api_access
detection:
  selection:
    event.outcome: failure
  condition: selection
level: low
"""

CORRELATION = """\
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
"""

BAD_MODIFIER = """\
title: Bad modifier
id: 33333333-3333-4333-8333-333333333333
logsource:
  product: logwarden
detection:
  selection:
    user.id|nosuchmodifier: x
  condition: selection
level: low
"""

NO_ID = """\
title: No id
logsource:
  product: logwarden
detection:
  selection:
    user.id: x
  condition: selection
level: low
"""

UNKNOWN_REF = """\
title: Dangling correlation
id: 44444444-4444-4444-8444-444444444444
correlation:
  type: event_count
  rules:
    - no_such_rule
  group-by:
    - user.id
  timespan: 5m
  condition:
    gte: 3
level: high
"""

NO_PERCENTILE = """\
title: Percentile without a percentile
id: 55555555-5555-4555-8555-555555555555
correlation:
  type: value_percentile
  rules:
    - failed_login
  group-by:
    - user.id
  timespan: 5m
  condition:
    gte: 3
    field: source.ip
level: high
"""


def write(tmp_path: Path, name: str, *documents: str) -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    """1-based line where ``text`` first occurs."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def test_rule_and_correlation_load(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.yml", BASE, CORRELATION)
    ruleset = load_rules([path])
    assert ruleset.errors == []
    assert ruleset.files == 1
    assert ruleset.loaded == 2
    (rule,) = ruleset.rules
    (corr,) = ruleset.correlations
    assert rule.meta.id == "11111111-1111-4111-8111-111111111111"
    assert rule.meta.name == "failed_login"
    assert rule.meta.level == "low"
    assert rule.meta.path == str(path)
    assert rule.meta.line == 1
    assert rule.logsource == {"product": "logwarden", "service": "api_access"}
    assert rule.generate is False  # only the correlation uses it
    assert corr.rules == (rule.meta.id,)
    assert corr.group_by == ("user.id",)
    assert corr.timespan_s == 300.0
    assert (corr.op, corr.count) == ("gte", 10)
    assert corr.meta.tags == ("attack.credential-access", "attack.t1110.001")
    assert corr.meta.line == line_of(path, "title: Many failed logins")
    assert not corr.condition_met(9)
    assert corr.condition_met(10)


def test_correlation_may_reference_a_rule_of_another_file_by_id(tmp_path: Path) -> None:
    write(tmp_path, "b_corr.yml", CORRELATION.replace("- failed_login", "- 11111111-1111-4111-8111-111111111111"))
    write(tmp_path, "a_base.yml", BASE)
    ruleset = load_rules([tmp_path])
    assert ruleset.errors == []
    assert ruleset.files == 2
    assert ruleset.correlations[0].rules == ("11111111-1111-4111-8111-111111111111",)


def test_bad_second_document_reports_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.yml", BASE, BAD_MODIFIER)
    ruleset = load_rules([path])
    (error,) = ruleset.errors
    assert isinstance(error, RuleError)
    assert isinstance(error, DetectorError)
    assert error.path == str(path)
    assert error.line == line_of(path, "title: Bad modifier") > 1
    assert str(error).startswith(f"{path}:{error.line}: ")
    assert "nosuchmodifier" in str(error)
    assert [r.meta.name for r in ruleset.rules] == ["failed_login"]  # the good rule still loads


def test_every_problem_of_a_file_is_reported_and_the_good_rules_load(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.yml", BASE, BAD_MODIFIER, NO_ID, UNKNOWN_REF, NO_PERCENTILE, CORRELATION)
    ruleset = load_rules([path])
    assert len(ruleset.errors) == 4, [str(e) for e in ruleset.errors]
    by_line = {e.line: e.message for e in ruleset.errors}
    assert "nosuchmodifier" in by_line[line_of(path, "title: Bad modifier")]
    assert "no id" in by_line[line_of(path, "title: No id")]
    assert "no_such_rule" in by_line[line_of(path, "title: Dangling correlation")]
    assert "percentile" in by_line[line_of(path, "title: Percentile without a percentile")]
    assert all(e.path == str(path) for e in ruleset.errors)
    assert [r.meta.name for r in ruleset.rules] == ["failed_login"]
    assert [c.meta.name for c in ruleset.correlations] == ["many_failed_logins"]


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BASE + "---\ntitle: broken\ndetection:\n  selection: [unclosed\n  condition: selection\n")
    ruleset = load_rules([path, write(tmp_path, "other.yml", CORRELATION.replace("failed_login", "nope"))])
    yaml_errors = [e for e in ruleset.errors if "invalid YAML" in e.message]
    (error,) = yaml_errors
    assert error.path == str(path)
    assert error.line in {line_of(path, "selection: [unclosed"), line_of(path, "selection: [unclosed") + 1}
    assert ruleset.files == 2


def test_non_mapping_document_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "list.yml", BASE, "- just\n- a list\n")
    ruleset = load_rules([path])
    (error,) = ruleset.errors
    assert "mapping" in error.message
    assert error.line == line_of(path, "- just")
    assert len(ruleset.rules) == 1


def test_undecodable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yml"
    path.write_bytes(b"\xff\xfe\x00title")
    (error,) = load_rules([path]).errors
    assert (error.path, error.line) == (str(path), 1)


def test_rule_files_skips_tests_and_other_suffixes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    keep = [tmp_path / "src" / "a.yml", tmp_path / "src" / "b.yaml"]
    skip = [tmp_path / "src" / "a.tests.yml", tmp_path / "src" / "notes.md"]
    for path in keep + skip:
        path.write_text(BASE)
    assert rule_files([tmp_path]) == keep
    assert load_rules([tmp_path]).files == 2


def test_empty_documents_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.yml", "", BASE, "")
    ruleset = load_rules([path])
    assert ruleset.errors == []
    assert ruleset.loaded == 1
