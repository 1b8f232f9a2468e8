"""Load Sigma rule files (``*.yml``, several documents per file allowed) into a :class:`RuleSet`.

A bad rule never stops the others: every problem becomes a :class:`RuleError` with ``path:line``.
Correlations may reference base rules of other files by ``name`` or ``id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from detectors.errors import DetectorError, RuleError
from detectors.sigma.compile import compile_condition
from detectors.sigma.rules import CorrelationRule, DetectionRule, RuleMeta, RuleSet

RULE_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIX = ".tests.yml"  # test events beside a rule are not rules


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Every rule file under ``paths`` (files or directories), sorted, test files excluded."""
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.extend(
            p for p in candidates if p.is_file() and p.suffix in RULE_SUFFIXES and not p.name.endswith(TEST_SUFFIX)
        )
    return found


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load and compile every rule under ``paths``; problems are collected in ``RuleSet.errors``."""
    ruleset = RuleSet()
    pending: list[tuple[SigmaCorrelationRule, str, int]] = []
    for path in rule_files(paths):
        ruleset.files += 1
        for doc, line in _documents(path, ruleset.errors):
            where = str(path)
            try:
                if "correlation" in doc:
                    pending.append((SigmaCorrelationRule.from_dict(doc), where, line))
                else:
                    ruleset.rules.append(_compile_rule(doc, where, line))
            except RuleError as exc:
                ruleset.errors.append(exc)
            except (SigmaError, DetectorError, ValueError, TypeError, KeyError) as exc:
                ruleset.errors.append(RuleError(where, line, f"{type(exc).__name__}: {exc}"))
    _resolve_correlations(ruleset, pending)
    return ruleset


def _documents(path: Path, errors: list[Any]) -> list[tuple[dict[str, Any], int]]:
    """The YAML documents of a file with their 1-based starting lines."""
    try:
        text = path.read_text(encoding="utf-8")
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        docs = list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(RuleError(str(path), 1, f"cannot read rule file: {exc}"))
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        errors.append(RuleError(str(path), (mark.line + 1) if mark else 1, f"invalid YAML: {exc}"))
        return []
    out: list[tuple[dict[str, Any], int]] = []
    for node, doc in zip(nodes, docs, strict=True):
        line = node.start_mark.line + 1 if node is not None else 1
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errors.append(RuleError(str(path), line, "a rule must be a YAML mapping"))
            continue
        out.append((doc, line))
    return out


def _meta(rule: SigmaRule | SigmaCorrelationRule, path: str, line: int) -> RuleMeta:
    if rule.id is None:
        raise RuleError(path, line, "rule has no id (a UUID is required so alerts stay stable)")
    return RuleMeta(
        id=str(rule.id),
        name=rule.name or str(rule.id),
        title=rule.title,
        description=rule.description or "",
        level=rule.level.name.lower() if rule.level else "medium",
        tags=tuple(str(t) for t in rule.tags),
        path=path,
        line=line,
    )


def _compile_rule(doc: dict[str, Any], path: str, line: int) -> DetectionRule:
    rule = SigmaRule.from_dict(doc, collect_errors=True)
    if rule.errors:
        raise RuleError(path, line, "; ".join(str(e) for e in rule.errors))
    meta = _meta(rule, path, line)
    predicates = [compile_condition(c.parse()) for c in rule.detection.parsed_condition]
    predicate = predicates[0] if len(predicates) == 1 else (lambda d: any(p(d) for p in predicates))
    logsource = {
        k: v
        for k, v in (
            ("product", rule.logsource.product),
            ("service", rule.logsource.service),
            ("category", rule.logsource.category),
        )
        if v
    }
    return DetectionRule(meta=meta, logsource=logsource, predicate=predicate)


def _resolve_correlations(ruleset: RuleSet, pending: list[tuple[SigmaCorrelationRule, str, int]]) -> None:
    by_ref = {r.meta.name: i for i, r in enumerate(ruleset.rules)} | {r.meta.id: i for i, r in enumerate(ruleset.rules)}
    for corr, path, line in pending:
        try:
            meta = _meta(corr, path, line)
            if corr.type.name.lower() != "event_count":
                raise RuleError(path, line, f"correlation type {corr.type.name.lower()!r} is not supported yet")
            refs = [ref.reference for ref in corr.rules or ()]
            missing = [ref for ref in refs if ref not in by_ref]
            if missing:
                raise RuleError(path, line, f"correlation references unknown rules: {', '.join(missing)}")
            if corr.timespan is None or not isinstance(corr.condition, SigmaCorrelationCondition):
                raise RuleError(path, line, "correlation needs a timespan and a simple gte/gt/lt/lte/eq condition")
            base = [by_ref[ref] for ref in refs]
            if not corr.generate:
                for i in base:
                    ruleset.rules[i] = replace(ruleset.rules[i], generate=False)
            ruleset.correlations.append(
                CorrelationRule(
                    meta=meta,
                    type=corr.type.name.lower(),
                    rules=tuple(ruleset.rules[i].meta.id for i in base),
                    group_by=tuple(corr.group_by or ()),
                    timespan_s=float(corr.timespan.seconds),
                    op=corr.condition.op.name.lower(),
                    count=int(corr.condition.count),
                )
            )
        except RuleError as exc:
            ruleset.errors.append(exc)
