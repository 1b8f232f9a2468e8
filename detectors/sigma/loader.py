"""Load Sigma rule files (``*.yml``, several documents per file allowed) into a :class:`RuleSet`.

A bad rule never stops the others: every problem becomes a :class:`RuleError` with ``path:line``
(``RuleSet.errors``; ``RuleSet.failed`` counts them). Steps: read every document; parse rules, Sigma
filters and correlations with pySigma; apply the filters to the rules they name; map fields and expand
placeholders with the pipeline of :mod:`detectors.sigma.taxonomy`; compile; resolve correlations (by
rule ``name`` or ``id``, across files, correlations of correlations included); load exceptions.

Besides rules, the paths may hold ``<rule>.tests.yml`` (test events, :mod:`detectors.sigma.testing`),
``exceptions.yml`` (:mod:`detectors.sigma.rule_exceptions`) and ``placeholders.yml`` (a mapping
``name -> value or list``, the values of ``|expand`` placeholders such as ``%admin_users%``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detectors.errors import DetectorError, RuleError
from detectors.sigma.build import build_correlation, build_rule, detection_fields
from detectors.sigma.compile import KEYWORD_FIELDS
from detectors.sigma.custom import CustomSpec, finish, is_custom, stand_in
from detectors.sigma.rule_exceptions import is_exception_file, load_exceptions
from detectors.sigma.rules import DetectionRule, RuleSet
from detectors.sigma.taxonomy import build_pipeline

RULE_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIX = ".tests.yml"  # test events beside a rule are not rules
PLACEHOLDER_FILE = "placeholders.yml"
_ERRORS = (SigmaError, DetectorError, ValueError, TypeError, KeyError, AttributeError)

Located = tuple[Any, str, int]  # (parsed object, path, line)


def _all_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.extend(p for p in candidates if p.is_file() and p.suffix in RULE_SUFFIXES)
    return found


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Every rule file under ``paths`` (files or directories), sorted; test, exception and placeholder files
    excluded."""
    return [
        p
        for p in _all_files(paths)
        if not p.name.endswith(TEST_SUFFIX) and not is_exception_file(p) and p.name != PLACEHOLDER_FILE
    ]


def load_rules(
    paths: Iterable[Path],
    *,
    placeholders: Mapping[str, Any] | None = None,
    keyword_fields: Sequence[str] = KEYWORD_FIELDS,
    today: date | None = None,
) -> RuleSet:
    """Load and compile every rule under ``paths``; problems are collected in ``RuleSet.errors``.

    ``placeholders`` add to (and override) the ``placeholders.yml`` files found; ``today`` decides which
    exceptions have expired (default: the current UTC date).
    """
    paths = list(paths)
    ruleset = RuleSet()
    values = _placeholder_files(paths, ruleset)
    values.update(placeholders or {})
    pipeline = build_pipeline(values)
    rules, filters, correlations = _parse(paths, ruleset)
    sigma_by_ref: dict[str, tuple[str, SigmaRule | SigmaCorrelationRule]] = {}
    for sigma, path, line in rules:
        try:
            compiled = _compile_rule(sigma, path, line, filters, pipeline, keyword_fields)
            _register(sigma_by_ref, compiled.meta.id, compiled.meta.name, sigma, path, line)
            ruleset.rules.append(compiled)
        except RuleError as exc:
            ruleset.errors.append(exc)
        except _ERRORS as exc:
            ruleset.errors.append(RuleError(path, line, f"{type(exc).__name__}: {exc}"))
    _resolve_correlations(ruleset, correlations, sigma_by_ref, pipeline)
    _apply_generate(ruleset)

    def resolve(ref: str) -> str:
        if ref not in sigma_by_ref:
            raise RuleError("", 0, f"unknown rule {ref!r}")
        return sigma_by_ref[ref][0]

    exc_files = [p for p in _all_files(paths) if is_exception_file(p)]
    loaded = load_exceptions(exc_files, resolve, pipeline, today or datetime.now(UTC).date())
    ruleset.exceptions, ruleset.warnings = loaded.active, ruleset.warnings + loaded.warnings
    ruleset.errors.extend(loaded.errors)
    return ruleset


def _register(
    by_ref: dict[str, tuple[str, SigmaRule | SigmaCorrelationRule]],
    rule_id: str,
    name: str,
    sigma: SigmaRule | SigmaCorrelationRule,
    path: str,
    line: int,
) -> None:
    if rule_id in by_ref:
        raise RuleError(path, line, f"duplicate rule id {rule_id}")
    if name != rule_id and name in by_ref:
        raise RuleError(path, line, f"duplicate rule name {name}")
    by_ref[rule_id] = by_ref[name] = (rule_id, sigma)


def _placeholder_files(paths: list[Path], ruleset: RuleSet) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in (p for p in _all_files(paths) if p.name == PLACEHOLDER_FILE):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            ruleset.errors.append(RuleError(str(path), 1, f"cannot read placeholders: {exc}"))
            continue
        if not isinstance(data, dict):
            ruleset.errors.append(RuleError(str(path), 1, "placeholders: a mapping of name to value(s) is expected"))
            continue
        values.update({str(k): v for k, v in data.items()})
    return values


def _parse(paths: list[Path], ruleset: RuleSet) -> tuple[list[Located], list[Located], list[Located]]:
    """Parse every document with pySigma: (rules, filters, correlations); correlations carry their custom spec."""
    rules: list[Located] = []
    filters: list[Located] = []
    correlations: list[Located] = []
    for file in rule_files(paths):
        ruleset.files += 1
        for doc, line in _documents(file, ruleset.errors):
            path = str(file)
            try:
                if "correlation" in doc:
                    spec: CustomSpec | None = None
                    if is_custom(doc):
                        doc, spec = stand_in(doc, path, line)
                    corr = SigmaCorrelationRule.from_dict(doc, collect_errors=True)
                    _raise_collected(corr.errors, path, line)
                    correlations.append(((corr, spec), path, line))
                elif "filter" in doc and "detection" not in doc:
                    sigma_filter = SigmaFilter.from_dict(doc, collect_errors=True)
                    _raise_collected(sigma_filter.errors, path, line)
                    filters.append((sigma_filter, path, line))
                else:
                    rule = SigmaRule.from_dict(doc, collect_errors=True)
                    _raise_collected(rule.errors, path, line)
                    rules.append((rule, path, line))
            except RuleError as exc:
                ruleset.errors.append(exc)
            except _ERRORS as exc:
                ruleset.errors.append(RuleError(path, line, f"{type(exc).__name__}: {exc}"))
    return rules, filters, correlations


def _raise_collected(errors: list[Any], path: str, line: int) -> None:
    if errors:
        raise RuleError(path, line, "; ".join(str(e) for e in errors))


def _compile_rule(
    sigma: SigmaRule,
    path: str,
    line: int,
    filters: list[Located],
    pipeline: ProcessingPipeline,
    keyword_fields: Sequence[str],
) -> DetectionRule:
    source_fields = detection_fields(sigma)
    for sigma_filter, _, _ in filters:
        sigma_filter.apply_on_rule(sigma)
    pipeline.apply(sigma)
    return build_rule(sigma, path, line, source_fields, keyword_fields)


def _resolve_correlations(
    ruleset: RuleSet,
    pending: list[Located],
    by_ref: dict[str, tuple[str, SigmaRule | SigmaCorrelationRule]],
    pipeline: ProcessingPipeline,
) -> None:
    """Build correlations whose references are loaded, repeatedly (correlations may use correlations)."""
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            (corr, spec), path, line = item
            refs = [r.reference for r in corr.rules or ()]
            if any(ref not in by_ref for ref in refs):
                continue
            pending.remove(item)
            progress = True
            try:
                corr.resolve_rule_references(SigmaCollection([by_ref[r][1] for r in refs], resolve_references=False))
                pipeline.apply(corr)
                resolve = functools.partial(_resolve, by_ref, path=path, line=line)
                built = build_correlation(corr, path, line, resolve)
                if spec is not None:
                    built = finish(built, spec)
                _register(by_ref, built.meta.id, built.meta.name, corr, path, line)
                ruleset.correlations.append(built)
            except RuleError as exc:
                ruleset.errors.append(exc)
            except _ERRORS as exc:
                ruleset.errors.append(RuleError(path, line, f"{type(exc).__name__}: {exc}"))
    for (corr, _), path, line in pending:
        missing = [r.reference for r in corr.rules or () if r.reference not in by_ref]
        ruleset.errors.append(
            RuleError(path, line, f"correlation references unknown (or failed, or cyclic) rules: {', '.join(missing)}")
        )


def _resolve(by_ref: dict[str, tuple[str, Any]], ref: str, *, path: str, line: int) -> str:
    if ref not in by_ref:
        raise RuleError(path, line, f"correlation references unknown rules: {ref}")
    return by_ref[ref][0]


def _apply_generate(ruleset: RuleSet) -> None:
    """Sigma ``generate: false`` (the default): rules a correlation uses raise no detections of their own."""
    silenced = {ref for corr in ruleset.correlations if not corr.generate for ref in corr.inputs}
    ruleset.rules = [replace(r, generate=False) if r.meta.id in silenced else r for r in ruleset.rules]
    ruleset.correlations = [replace(c, output=False) if c.meta.id in silenced else c for c in ruleset.correlations]


def _documents(path: Path, errors: list[RuleError]) -> list[tuple[dict[str, Any], int]]:
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
