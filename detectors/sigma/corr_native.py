"""Sliding correlations with their per-group state and steps in Rust (``ingest._native.SlidingWindows``).

:class:`~detectors.sigma.corr_window.SlidingCorrelator` is the reference. For the types with a running
aggregate (``event_count``, ``value_count``, ``temporal``, ``value_sum``: :data:`windows.RUNNING`) the
extension has the same algorithm step for step (``native/src/corr_window.rs``): the same items kept, the
same windows checked in the same order, the same float operations of a running sum in the same order, so
the detections are the same. It reads group keys and values from the hit's view as ``key_reader`` and
``value_reader`` do (and calls the Python reader for the other value types); detections are still built and
updated here (``make_detection``, ``absorb``), and the groups are a :class:`GroupStore` of
``ingest._native.SlideGroup`` (same eviction). :func:`sliding` picks it when the extension is built, unless
``LOGWARDEN_NATIVE=0``; ``temporal_ordered`` (a recount per window) stays in Python.
"""

from __future__ import annotations

import os
from typing import Any

from detectors.detection import Detection
from detectors.sigma.aggregates import SKIP, satisfied, value_reader
from detectors.sigma.corr_base import Correlator, GroupStore, Item, Limits, absorb, group_map, make_detection
from detectors.sigma.corr_window import SlidingCorrelator
from detectors.sigma.fields import field_getter
from detectors.sigma.rules import COMPARATORS, CorrelationRule
from detectors.sigma.values import number

try:
    from ingest import _native  # type: ignore[attr-defined]
except ImportError:  # built without cargo: pure Python
    _native = None

_SlidingWindows: Any = getattr(_native, "SlidingWindows", None)
_SlideGroup: Any = getattr(_native, "SlideGroup", None)
#: The running aggregate of each type the extension handles.
AGGREGATES = {"event_count": "count", "value_count": "distinct", "temporal": "distinct", "value_sum": "sum"}


def native_available() -> bool:
    """True when the extension has the native correlator and it is not switched off (``LOGWARDEN_NATIVE=0``)."""
    return _SlidingWindows is not None and os.environ.get("LOGWARDEN_NATIVE", "1") != "0"


def sliding(rule: CorrelationRule, limits: Limits, *, native: bool | None = None) -> Correlator:
    """The sliding correlator of an eager ``rule``: the native one when available (``native``: force the choice;
    True fails without the extension) and the type has a running aggregate, else the Python one."""
    use = native if native is not None else native_available()
    if use and rule.type in AGGREGATES and rule.op in COMPARATORS:
        return NativeSlidingCorrelator(rule, limits)
    return SlidingCorrelator(rule, limits)


class NativeSlidingCorrelator(Correlator):
    """:class:`SlidingCorrelator` with ``add`` and ``expire`` in Rust (see the module documentation)."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        self._core: Any = None
        super().__init__(rule, limits)
        self.groups: GroupStore[Any] = GroupStore(_SlideGroup, limits.max_groups)
        self._core = _SlidingWindows(
            AGGREGATES[rule.type],
            rule.op,
            rule.count,
            COMPARATORS[rule.op],
            rule.expression,
            _value_spec(rule),
            rule.timespan_s,
            limits.max_items,
            self.groups,
            (value_reader(rule), number, SKIP, self._detection, absorb, self._satisfied, self._key_fields),
        )
        self.add = self._core.add  # type: ignore[method-assign]  # the extension's method, called directly

    @property
    def truncated(self) -> int:
        """Items dropped because a group held too many."""
        return 0 if self._core is None else int(self._core.truncated)

    @truncated.setter
    def truncated(self, value: int) -> None:  # Correlator.__init__ sets 0: the count starts at 0 natively
        pass

    def expire(self, watermark: float) -> int:
        dropped: int = self._core.expire(watermark)
        return dropped

    def _detection(self, key: tuple[str, ...], items: list[Item]) -> Detection:
        return make_detection(self.rule, group_map(self.rule, key), items)

    def _satisfied(self, items: list[Item]) -> bool:
        return satisfied(self.rule, items)

    def _key_fields(self, rule_id: str) -> list[tuple[str, Any]]:
        return [(name, field_getter(name)) for name in self.rule.group_fields(rule_id)]


def _value_spec(rule: CorrelationRule) -> tuple[str, str, Any]:
    """How the extension reads a hit's value: as ``value_reader`` does, or by calling it (``python``)."""
    if rule.type == "event_count":
        return ("none", "", None)
    if rule.type == "temporal":
        return ("rule", "", None)
    names = rule.value_fields
    if rule.type == "value_sum":
        return ("number", names[0], field_getter(names[0]))
    if len(names) == 1:
        return ("text", names[0], field_getter(names[0]))
    return ("python", "", None)
