"""Lint rules: every problem at once, each with ``path:line`` (``logwarden rules lint``).

Errors: rules that do not load (YAML, Sigma syntax, unknown modifiers, bad references...), fields that
are not in the ECS catalogue (``ingest.ecs.EVENT_FIELDS``) after mapping. Warnings: fields of a foreign
taxonomy without a mapping, rules no event source can satisfy, rule files without tests, expired
exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from detectors.sigma.loader import load_rules, rule_files
from detectors.sigma.rules import CorrelationRule, DetectionRule, RuleSet
from detectors.sigma.taxonomy import EVENT_LOGSOURCES, logsource_matches, taxonomy_of
from detectors.sigma.testing import rule_tests_path
from ingest.ecs import EVENT_FIELDS


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str
    severity: str = "error"  # error | warning

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message, "severity": self.severity}

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass
class LintReport:
    loaded: int
    failed: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "failed": self.failed, "errors": [p.as_dict() for p in self.problems]}


def lint(paths: Iterable[Path], *, today: date | None = None, ruleset: RuleSet | None = None) -> LintReport:
    """Load the rules under ``paths`` and report every problem found."""
    paths = list(paths)
    ruleset = ruleset if ruleset is not None else load_rules(paths, today=today)
    report = LintReport(ruleset.loaded, ruleset.failed)
    report.problems += [Problem(e.path, e.line, e.message) for e in ruleset.errors]
    report.problems += [Problem(w.path, w.line, w.message, "warning") for w in ruleset.warnings]
    by_id = {r.meta.id: r for r in ruleset.rules}
    for rule in ruleset.rules:
        report.problems += _rule_fields(rule)
        if not any(logsource_matches(rule.logsource, sources) for sources in EVENT_LOGSOURCES.values()):
            message = f"no event source provides logsource {rule.logsource}: the rule never runs"
            report.problems.append(Problem(rule.meta.path, rule.meta.line, message, "warning"))
    for corr in ruleset.correlations:
        report.problems += _correlation_fields(corr, by_id)
    for rule_file in rule_files(paths):
        if not rule_tests_path(rule_file).exists():
            message = f"no test events ({rule_tests_path(rule_file).name}) beside the rule file"
            report.problems.append(Problem(str(rule_file), 1, message, "warning"))
    report.problems.sort(key=lambda p: (p.path, p.line, p.message))
    return report


def _field_problem(name: str, rule: DetectionRule | None, path: str, line: int) -> Problem | None:
    if name in EVENT_FIELDS:
        return None
    taxonomy = taxonomy_of(rule.logsource) if rule is not None else None
    if taxonomy is not None and name not in taxonomy.fields and name not in taxonomy.targets:
        return Problem(path, line, f"field {name!r} has no mapping in the {taxonomy.name} taxonomy", "warning")
    return Problem(path, line, f"field {name!r} is not in the ECS catalogue (ingest.ecs.EVENT_FIELDS)")


def _rule_fields(rule: DetectionRule) -> list[Problem]:
    m = rule.meta
    names = set(rule.fields) | set(m.options.suppress_by) | ({m.options.risk_score_field} - {None})
    found = [_field_problem(str(n), rule, m.path, m.line) for n in sorted(names, key=str)]
    return [p for p in found if p is not None]


def _correlation_fields(corr: CorrelationRule, by_id: dict[str, DetectionRule]) -> list[Problem]:
    m = corr.meta
    out: list[Problem] = []
    for rule_id in corr.inputs:
        base = by_id.get(rule_id)
        names = [*corr.group_fields(rule_id), *corr.value_fields, *m.options.suppress_by]
        for name in dict.fromkeys(names):
            problem = _field_problem(name, base, m.path, m.line)
            if problem is not None and problem not in out:
                out.append(problem)
    return out
