"""Compiled rules: what the engine evaluates. Built by :mod:`detectors.sigma.loader`."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from detectors.errors import RuleError
from detectors.sigma.compile import Key, Predicate
from detectors.sigma.fields import as_view

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "eq": operator.eq,
    "neq": operator.ne,
}

#: Sigma level -> default risk score (0-100), as Elastic Security scores severities.
LEVEL_RISK: dict[str, float] = {"informational": 10.0, "low": 21.0, "medium": 47.0, "high": 73.0, "critical": 99.0}


@dataclass(frozen=True)
class RuleOptions:
    """The ``logwarden:`` custom attribute of a rule (ECS field names, after any mapping).

    ``suppress``: a timespan; further detections of the rule for the same group key within it become
    ``suppressed_count`` of the first. ``suppress_by``: group-key fields for single-event rules
    (correlations use their group-by). ``risk_score``: 0-100 (default from the level);
    ``risk_score_field``: an event field holding the score (wins when present and numeric).
    """

    suppress_s: float = 0.0
    suppress_by: tuple[str, ...] = ()
    risk_score: float | None = None
    risk_score_field: str | None = None


@dataclass(frozen=True)
class RuleMeta:
    """What every rule carries into its detections."""

    id: str
    name: str
    title: str
    description: str
    level: str
    tags: tuple[str, ...]
    path: str
    line: int
    options: RuleOptions = RuleOptions()

    @property
    def default_risk(self) -> float:
        if self.options.risk_score is not None:
            return self.options.risk_score
        return LEVEL_RISK.get(self.level, LEVEL_RISK["medium"])


@dataclass(frozen=True)
class DetectionRule:
    """A single-event Sigma rule compiled to a predicate."""

    meta: RuleMeta
    logsource: dict[str, str]
    predicate: Predicate
    generate: bool = True  # False when only correlations use it (Sigma's ``generate`` semantics)
    keys: frozenset[Key] | None = None  # index atoms (see detectors.sigma.compile)
    also: tuple[frozenset[Key], ...] = ()  # further index atom sets, one atom of each holds too
    fields: frozenset[str] = frozenset()  # fields tested, after mapping
    source_fields: frozenset[str] = frozenset()  # fields as written in the rule
    # The predicate when it holds exactly when one of ``keys`` (all equalities) does: the index alone decides
    # it. Compared by identity, so a rule whose predicate is replaced is evaluated again.
    exact: Predicate | None = None

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.predicate(as_view(doc))


@dataclass(frozen=True)
class CorrelationRule:
    """A correlation over base rules (or other correlations), grouped and windowed on event time.

    ``type``: a Sigma type (event_count, value_count, temporal, temporal_ordered, value_sum, value_avg,
    value_percentile, value_median) or one of ours (absence, first_seen). ``rules``: ids of the rules it
    reads (for ``absence``, the triggers; ``followed_by`` are the expected follow-ups).
    """

    meta: RuleMeta
    type: str
    rules: tuple[str, ...]
    group_by: tuple[str, ...]
    timespan_s: float
    op: str = "gte"
    count: float = 1
    value_fields: tuple[str, ...] = ()  # condition ``field`` (value_* types), first_seen ``field``
    percentile: int | None = None
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # alias -> rule id -> field
    expression: Callable[[frozenset[str]], bool] | None = None  # extended temporal condition
    negated: bool = False  # the extended condition uses ``not`` (decided when the window closes)
    generate: bool = False  # Sigma: the rules it uses raise their own detections too
    output: bool = True  # False when only other correlations use it (their ``generate`` is false)
    followed_by: tuple[str, ...] = ()
    learning_s: float = 0.0
    learning_scope: str = "rule"  # first_seen: learning period per rule or per group

    def condition_met(self, n: float) -> bool:
        return COMPARATORS[self.op](n, self.count)

    def group_fields(self, rule_id: str) -> tuple[str, ...]:
        """The group-by fields as named in the events of ``rule_id`` (aliases resolved)."""
        return tuple(self.aliases.get(name, {}).get(rule_id, name) for name in self.group_by)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.rules + self.followed_by


@dataclass
class RuleSet:
    """Everything loaded from the rule files, plus the problems found (the other rules still run)."""

    rules: list[DetectionRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[RuleError] = field(default_factory=list)
    exceptions: list[Any] = field(default_factory=list)  # list[RuleException]
    files: int = 0

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.correlations)

    @property
    def failed(self) -> int:
        """Rules (and exception entries) that could not be loaded: the load-error counter."""
        return len(self.errors)
