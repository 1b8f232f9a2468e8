"""Compiled rules: what the engine evaluates. Built by :mod:`detectors.sigma.loader`."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from detectors.sigma.compile import Predicate

COMPARATORS: dict[str, Callable[[int, int], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "eq": operator.eq,
    "neq": operator.ne,
}


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


@dataclass(frozen=True)
class DetectionRule:
    """A single-event Sigma rule compiled to a predicate."""

    meta: RuleMeta
    logsource: dict[str, str]
    predicate: Predicate
    generate: bool = True  # False when only correlations use it (Sigma's ``generate`` semantics)

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.predicate(doc)


@dataclass(frozen=True)
class CorrelationRule:
    """A Sigma correlation (``event_count`` for now) over base rules, grouped and windowed on event time."""

    meta: RuleMeta
    type: str
    rules: tuple[str, ...]  # ids of the base rules
    group_by: tuple[str, ...]
    timespan_s: float
    op: str
    count: int

    def condition_met(self, n: int) -> bool:
        return COMPARATORS[self.op](n, self.count)


@dataclass
class RuleSet:
    """Everything loaded from the rule files, plus the problems found (the other rules still run)."""

    rules: list[DetectionRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)  # list[RuleError]
    files: int = 0

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.correlations)
