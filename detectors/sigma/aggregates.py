"""What a correlation computes over the events of a window, and whether it can decide early.

Values per event (:func:`hit_value`): ``value_count`` the value of the condition field(s) (events without
it are skipped), ``value_sum``/``_avg``/``_median``/``_percentile`` its number (non-numeric events are
skipped), ``temporal`` the rule id, ``temporal_ordered`` the rule's position in ``rules``.

Eager or at close (:func:`is_eager`): a condition that can only become true as events are added
(``event_count``/``value_count``/``value_sum`` with ``gt``/``gte``, ``temporal``/``temporal_ordered``
without ``not``) fires as soon as a sliding window of ``timespan`` holds it; every other condition
(``lt``/``lte``/``eq``/``neq``, averages, medians, percentiles, ``not``) can only be decided when its window
is complete: those use tumbling windows aligned on multiples of the timespan, decided when the watermark
passes their end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from detectors.sigma.corr_base import Hit, Item
from detectors.sigma.fields import first_value, read
from detectors.sigma.rules import CorrelationRule
from detectors.sigma.values import number

SKIP: Any = object()  # hit_value for events a correlation ignores
_NUMERIC = frozenset({"value_sum", "value_avg", "value_median", "value_percentile"})


def is_eager(rule: CorrelationRule) -> bool:
    """Whether the condition is monotone in the events added (so it may fire before the window closes)."""
    if rule.type in ("temporal", "temporal_ordered"):
        return not rule.negated and (rule.expression is not None or rule.op in ("gt", "gte"))
    return rule.type in ("event_count", "value_count", "value_sum") and rule.op in ("gt", "gte")


def value_reader(rule: CorrelationRule) -> Callable[[Hit], Any]:
    """A function giving the value a hit contributes (``SKIP`` when the event does not count)."""
    kind = rule.type
    if kind == "event_count":
        return lambda hit: None
    if kind == "temporal":
        return lambda hit: hit.rule_id
    if kind == "temporal_ordered":
        positions = {rule_id: i for i, rule_id in reversed(list(enumerate(rule.rules)))}
        return lambda hit: positions[hit.rule_id]
    names = rule.value_fields
    if kind in _NUMERIC:
        name = names[0]

        def numeric(hit: Hit) -> Any:
            for v in read(hit.doc, name):  # the first non-null value
                if v is not None:
                    n = number(v)
                    return SKIP if n is None or n != n else n  # n != n: NaN
            return SKIP

        return numeric
    if len(names) == 1:
        only = names[0]

        def single(hit: Hit) -> Any:
            for v in read(hit.doc, only):
                if v is not None:
                    return v if type(v) is str else str(v)
            return SKIP

        return single

    def several(hit: Hit) -> Any:
        values = [first_value(hit.doc, name) for name in names]
        return SKIP if any(v is None for v in values) else tuple(str(v) for v in values)

    return several


def aggregate(rule: CorrelationRule, items: Sequence[Item]) -> float:
    """The number the condition compares (the count of distinct rules for temporal)."""
    kind = rule.type
    if kind == "event_count":
        return len(items)
    if kind in ("value_count", "temporal"):
        return len({i[3] for i in items})
    if kind == "temporal_ordered":
        return ordered_chain(items, len(rule.rules))
    values = [float(i[3]) for i in items]
    if kind == "value_sum":
        return sum(values)
    if kind == "value_avg":
        return sum(values) / len(values) if values else math.nan
    return percentile(values, 50 if kind == "value_median" else rule.percentile or 0)


def satisfied(rule: CorrelationRule, items: Sequence[Item]) -> bool:
    """Whether the correlation's condition holds over ``items``."""
    if not items:
        return False
    if rule.expression is not None:
        return rule.expression(frozenset(i[3] for i in items))
    value = aggregate(rule, items)
    return not math.isnan(value) and rule.condition_met(value)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default).

    >>> percentile([1, 2, 3, 4], 50), percentile([5], 90), percentile([0, 10], 95)
    (2.5, 5.0, 9.5)
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo))


def ordered_chain(items: Sequence[Item], n_rules: int) -> int:
    """The most rules matched in their listed order (non-decreasing event time) among ``items``.

    Items are sorted by time; at equal times lower positions come first (one event may match several).
    """
    best = [0] * n_rules
    for item in sorted(items, key=lambda i: (i[0], i[3])):
        position = item[3]
        before = max(best[:position], default=0)
        best[position] = max(best[position], before + 1)
    return max(best, default=0)
