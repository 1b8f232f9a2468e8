"""Turn parsed pySigma rules into the engine's compiled rules (:mod:`detectors.sigma.rules`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationTimespan,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaFieldReference

from detectors.errors import RuleError
from detectors.sigma.compile import KEYWORD_FIELDS, compile_tree
from detectors.sigma.rules import CorrelationRule, DetectionRule, RuleMeta, RuleOptions

Resolver = Callable[[str], str]  # rule reference (name or id) -> rule id; raises RuleError
OPTION_KEYS = frozenset({"suppress", "suppress_by", "risk_score", "risk_score_field"})


def timespan_seconds(spec: Any, path: str, line: int, what: str) -> float:
    """Seconds of a Sigma timespan (``30s``, ``5m``, ``1h``, ``7d``...)."""
    try:
        return float(SigmaCorrelationTimespan(str(spec)).seconds)
    except SigmaError as exc:
        raise RuleError(path, line, f"{what}: {exc}") from None


def rule_options(raw: Any, path: str, line: int) -> RuleOptions:
    """Parse the ``logwarden:`` custom attribute (see :class:`RuleOptions`)."""
    if raw is None:
        return RuleOptions()
    if not isinstance(raw, dict):
        raise RuleError(path, line, "the logwarden attribute must be a mapping")
    unknown = sorted(set(raw) - OPTION_KEYS)
    if unknown:
        raise RuleError(path, line, f"unknown logwarden options {unknown} (known: {sorted(OPTION_KEYS)})")
    suppress = timespan_seconds(raw["suppress"], path, line, "logwarden.suppress") if "suppress" in raw else 0.0
    by = raw.get("suppress_by") or ()
    score = raw.get("risk_score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100):
        raise RuleError(path, line, f"logwarden.risk_score must be a number from 0 to 100, not {score!r}")
    field = raw.get("risk_score_field")
    return RuleOptions(
        suppress_s=suppress,
        suppress_by=(by,) if isinstance(by, str) else tuple(str(f) for f in by),
        risk_score=float(score) if score is not None else None,
        risk_score_field=str(field) if field else None,
    )


def rule_meta(rule: SigmaRule | SigmaCorrelationRule, path: str, line: int) -> RuleMeta:
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
        options=rule_options(rule.custom_attributes.get("logwarden"), path, line),
    )


def detection_fields(rule: SigmaRule) -> frozenset[str]:
    """Field names a rule's detections use as written (before any mapping), field references included."""
    found: set[str] = set()

    def walk(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for child in item.detection_items:
                walk(child)
            return
        if item.field:
            found.add(item.field)
        found.update(v.field for v in item.value if isinstance(v, SigmaFieldReference))

    for detection in rule.detection.detections.values():
        walk(detection)
    return frozenset(found)


def build_rule(
    rule: SigmaRule, path: str, line: int, source_fields: frozenset[str], keyword_fields: Sequence[str] = KEYWORD_FIELDS
) -> DetectionRule:
    """Compile a (filtered and mapped) Sigma rule."""
    meta = rule_meta(rule, path, line)
    parts = [compile_tree(c.parse(), keyword_fields) for c in rule.detection.parsed_condition]
    if len(parts) == 1:
        predicate = parts[0].predicate
    else:
        preds = [p.predicate for p in parts]
        predicate = lambda doc: any(p(doc) for p in preds)  # noqa: E731  several conditions are ORed
    keys = None if any(p.keys is None for p in parts) else frozenset().union(*(p.keys or () for p in parts))
    logsource = {
        k: v
        for k, v in (
            ("product", rule.logsource.product),
            ("service", rule.logsource.service),
            ("category", rule.logsource.category),
        )
        if v
    }
    return DetectionRule(
        meta=meta,
        logsource=logsource,
        predicate=predicate,
        keys=keys,
        also=parts[0].also if len(parts) == 1 else (),  # several conditions are ORed: only the common keys
        fields=frozenset().union(*(p.fields for p in parts)),
        source_fields=source_fields,
        exact=predicate if len(parts) == 1 and parts[0].exact else None,
    )


def build_correlation(corr: SigmaCorrelationRule, path: str, line: int, resolve: Resolver) -> CorrelationRule:
    """Compile a (mapped) Sigma correlation; ``resolve`` turns its references into rule ids."""
    meta = rule_meta(corr, path, line)
    kind = corr.type.name.lower()
    refs = [resolve(r.reference) for r in corr.rules or ()]
    condition = corr.condition
    expression = None
    negated = False
    op, count, percentile = "gte", float(len(refs)), None
    fields: tuple[str, ...] = ()
    if isinstance(condition, SigmaExtendedCorrelationCondition):
        if kind != "temporal":
            raise RuleError(path, line, f"an extended (boolean) condition is only supported for temporal, not {kind}")
        names = condition.get_referenced_rules()
        refs = refs or [resolve(n) for n in names]
        expression, negated = _expression(condition.parsed, resolve)
    elif isinstance(condition, SigmaCorrelationCondition):
        op, count, percentile = condition.op.name.lower(), condition.count, condition.percentile
        ref = condition.fieldref
        fields = (ref,) if isinstance(ref, str) else tuple(ref or ())
    if kind == "value_percentile" and (percentile is None or not 0 <= percentile <= 100):
        raise RuleError(path, line, "value_percentile needs a condition percentile from 0 to 100")
    aliases = {alias.alias: {resolve(r.reference): name for r, name in alias.mapping.items()} for alias in corr.aliases}
    return CorrelationRule(
        meta=meta,
        type=kind,
        rules=tuple(refs),
        group_by=tuple(corr.group_by or ()),
        timespan_s=float(corr.timespan.seconds),
        op=op,
        count=count,
        value_fields=fields,
        percentile=percentile,
        aliases=aliases,
        expression=expression,
        negated=negated,
        generate=corr.generate,
    )


def _expression(node: Any, resolve: Resolver) -> tuple[Callable[[frozenset[str]], bool], bool]:
    """Compile an extended temporal condition into a predicate over the set of rule ids seen."""
    if isinstance(node, SigmaRuleReference):
        rule_id = resolve(node.reference)
        return (lambda seen: rule_id in seen), False
    parts = [_expression(a, resolve) for a in node.args]
    fns = [p[0] for p in parts]
    negated = any(p[1] for p in parts)
    if isinstance(node, CorrelationConditionNOT):
        inner = fns[0]
        return (lambda seen: not inner(seen)), True
    if isinstance(node, CorrelationConditionAND):
        return (lambda seen: all(f(seen) for f in fns)), negated
    if isinstance(node, CorrelationConditionOR):
        return (lambda seen: any(f(seen) for f in fns)), negated
    raise RuleError("", 0, f"unsupported correlation condition element {type(node).__name__}")
