"""Running aggregates of sliding windows: the values of a window's events as they enter and leave it.

``event_count`` counts (:class:`Window`), ``value_count`` and ``temporal`` count distinct values
(:class:`Distinct`), ``value_sum`` adds (:class:`Sum`); the other types recount each window
(:func:`detectors.sigma.aggregates.satisfied`). :meth:`Window.slide` is the step of every in-order event of a
busy group (the window's oldest events leave, the new one enters, the condition is tested) in one call.

>>> from detectors.sigma.rules import CorrelationRule, RuleMeta
>>> meta = RuleMeta("r", "r", "r", "", "low", (), "", 0)
>>> rule = CorrelationRule(meta, "event_count", ("a",), ("user.id",), 60.0, op="gte", count=2)
>>> class Group:
...     items = [(0.0, "", "e0", None, None), (50.0, "", "e1", None, None), (70.0, "", "e2", None, None)]
...     lo = 0
>>> window, group = running(rule, Group.items[:2]), Group()
>>> window.slide(group, 70.0 - 60, None), group.lo, window.n  # e0 leaves [10, 70], e2 enters
(True, 1, 2)
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from detectors.sigma.aggregates import satisfied
from detectors.sigma.corr_base import Item
from detectors.sigma.rules import COMPARATORS, CorrelationRule


class Suffix(Protocol):
    """A group's items (sorted by time) whose suffix ``items[lo:]`` a running aggregate holds."""

    items: list[Item]
    lo: int


class Window:
    """The aggregate of a set of items: ``event_count`` (the base class), ``value_count`` and ``temporal``
    (:class:`Distinct`), ``value_sum`` (:class:`Sum`); see :func:`running`."""

    __slots__ = ("cmp", "n", "threshold")

    def __init__(self, rule: CorrelationRule) -> None:
        self.cmp = COMPARATORS[rule.op]
        self.threshold = rule.count
        self.n = 0

    def add(self, value: Any) -> None:
        self.n += 1

    def remove(self, value: Any) -> None:
        self.n -= 1

    def met(self, items: list[Item], lo: int, hi: int) -> bool:
        """Whether the condition holds (the same values are ``items[lo:hi]``, for an exact recount when needed)."""
        return self.cmp(self.n, self.threshold)

    def slide(self, g: Suffix, start: float, value: Any) -> bool:
        """The window ending at the group's newest item (just appended, ``value``): the items before ``start``
        leave (``g.lo`` moves past them), then ``value`` enters; whether the condition holds. The same steps,
        in the same order, as :meth:`remove` per item, :meth:`add` and :meth:`met`."""
        items, lo, n = g.items, g.lo, self.n
        while items[lo][0] < start:
            lo += 1
            n -= 1
        g.lo = lo
        self.n = n = n + 1
        return self.cmp(n, self.threshold)

    def bounds_subsets(self) -> bool:
        """Whether no subset of these values aggregates to more (a monotone condition then holds for a window
        of them only if it holds for all of them)."""
        return True

    def rules_out(self, items: list[Item]) -> bool:
        """Whether no window of ``items`` (the values of this aggregate) can meet the condition: the bound of a
        late event. The same as ``bounds_subsets() and not met(items, 0, len(items))``, in one call."""
        return not self.cmp(self.n, self.threshold)


class Distinct(Window):
    __slots__ = ("counts", "expression")

    def __init__(self, rule: CorrelationRule) -> None:
        super().__init__(rule)
        self.counts: dict[Any, int] = {}
        self.expression = rule.expression  # an extended temporal condition over the rules seen

    def add(self, value: Any) -> None:
        self.counts[value] = self.counts.get(value, 0) + 1

    def remove(self, value: Any) -> None:
        left = self.counts[value] - 1
        if left:
            self.counts[value] = left
        else:
            del self.counts[value]

    def met(self, items: list[Item], lo: int, hi: int) -> bool:
        if self.expression is not None:
            return bool(self.expression(frozenset(self.counts)))
        return self.cmp(len(self.counts), self.threshold)

    def slide(self, g: Suffix, start: float, value: Any) -> bool:
        items, lo, counts = g.items, g.lo, self.counts
        while items[lo][0] < start:
            gone = items[lo][3]
            left = counts[gone] - 1
            if left:
                counts[gone] = left
            else:
                del counts[gone]
            lo += 1
        g.lo = lo
        counts[value] = counts.get(value, 0) + 1
        if self.expression is not None:
            return bool(self.expression(frozenset(counts)))
        return self.cmp(len(counts), self.threshold)

    def rules_out(self, items: list[Item]) -> bool:
        if self.expression is not None:
            return not self.expression(frozenset(self.counts))
        return not self.cmp(len(self.counts), self.threshold)


class Sum(Window):
    __slots__ = ("negative", "rule", "total")

    def __init__(self, rule: CorrelationRule) -> None:
        super().__init__(rule)
        self.rule = rule
        self.total = 0.0
        self.negative = 0  # negative values in the sum (a sum over fewer of them may then be larger)

    def add(self, value: Any) -> None:
        self.total += value
        self.negative += value < 0

    def remove(self, value: Any) -> None:
        self.total -= value
        self.negative -= value < 0

    def met(self, items: list[Item], lo: int, hi: int) -> bool:
        if not math.isfinite(self.total):  # inf - inf on the way: add them up again
            return satisfied(self.rule, items[lo:hi])
        return self.cmp(self.total, self.threshold)

    def slide(self, g: Suffix, start: float, value: Any) -> bool:
        items, lo, total, negative = g.items, g.lo, self.total, self.negative
        while items[lo][0] < start:  # the same float operations in the same order as remove() and add()
            gone = items[lo][3]
            total -= gone
            negative -= gone < 0
            lo += 1
        g.lo = lo
        self.total = total = total + value
        self.negative = negative + (value < 0)
        if not math.isfinite(total):
            return satisfied(self.rule, items[lo:])
        return self.cmp(total, self.threshold)

    def bounds_subsets(self) -> bool:
        return self.negative == 0

    def rules_out(self, items: list[Item]) -> bool:
        return self.negative == 0 and not self.met(items, 0, len(items))


#: The types with a running aggregate (the others recount each window).
RUNNING: dict[str, type[Window]] = {"event_count": Window, "value_count": Distinct, "temporal": Distinct,
                                    "value_sum": Sum}  # fmt: skip


def running(rule: CorrelationRule, items: list[Item]) -> Window:
    """The running aggregate of ``items`` for a type of :data:`RUNNING`."""
    window = RUNNING[rule.type](rule)
    for item in items:
        window.add(item[3])
    return window
