"""Which rules an event can match: by log source first, then by the fields the rules test.

A rule's index atoms (:attr:`DetectionRule.keys`, from :mod:`detectors.sigma.compile`) are conditions of
which one must hold for the rule to match: an equality (``event.action`` is ``user-login``: one hash
lookup per indexed field of the event) or the presence of a field. Rules without atoms (``not`` only,
keywords, null checks) are always candidates. Candidates keep the rule order, so results are identical
with and without the index.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from detectors.sigma.fields import FieldView, as_view
from detectors.sigma.rules import DetectionRule
from detectors.sigma.taxonomy import LogSource, event_logsources, logsource_matches
from detectors.sigma.values import ip_of, text


class FieldIndex:
    """The rules of one log source, indexed by their atoms."""

    def __init__(self, rules: Sequence[DetectionRule], *, enabled: bool = True) -> None:
        self.rules = list(rules)
        self._always: list[int] = []
        atoms: dict[tuple[str, str], dict[str, list[int]]] = {}
        for position, rule in enumerate(self.rules):
            if not enabled or not rule.keys:
                self._always.append(position)
                continue
            for kind, name, value in rule.keys:
                atoms.setdefault((kind, name), {}).setdefault(value, []).append(position)
        self._eq = [(n, table) for (k, n), table in atoms.items() if k == "eq"]
        self._has = [(n, table[""]) for (k, n), table in atoms.items() if k == "has"]
        kinds: dict[str, type[_Finder]] = {"sub": _Needles, "re": _Patterns, "net": _Networks}
        self._finders = [kinds[k](n, table) for (k, n), table in atoms.items() if k in kinds]

    def candidates(self, doc: FieldView) -> list[DetectionRule]:
        """The rules that may match ``doc``, in rule order."""
        found = set(self._always)
        for name, table in self._eq:
            for value in doc[name]:
                t = value if type(value) is str else text(value)
                if t is not None:
                    hits = table.get(t.lower())
                    if hits:
                        found.update(hits)
        for name, positions in self._has:
            if any(v is not None for v in doc[name]):
                found.update(positions)
        for finder in self._finders:
            finder.find(doc, found)
        rules = self.rules
        if len(found) == 1:
            return [rules[found.pop()]]
        return [rules[i] for i in sorted(found)]


class _Finder:
    """Atoms of one field that need work per value (substrings, patterns, networks): the positions a text
    value selects are remembered, since log fields repeat (bounded; forgotten all at once when full)."""

    MEMO = 50_000

    def __init__(self, name: str, table: dict[str, list[int]]) -> None:
        del table  # each kind builds its own structure from it
        self.name = name
        self.memo: dict[str, tuple[int, ...]] = {}

    def find(self, doc: FieldView, found: set[int]) -> None:
        memo = self.memo
        for value in doc[self.name]:
            if type(value) is str:
                hits = memo.get(value)
                if hits is None:
                    if len(memo) >= self.MEMO:
                        memo.clear()
                    hits = memo[value] = tuple(self.compute(value))
            else:
                hits = tuple(self.compute(value))
            if hits:
                found.update(hits)

    def compute(self, value: Any) -> list[int]:
        raise NotImplementedError


class _Needles(_Finder):
    """Substring atoms of one field: one combined scan rejects most values, then ``in`` per needle."""

    def __init__(self, name: str, table: dict[str, list[int]]) -> None:
        super().__init__(name, table)
        self.needles = list(table.items())
        self.any = re.compile("|".join(re.escape(n) for n in sorted(table, key=len, reverse=True))).search

    def compute(self, value: Any) -> list[int]:
        t = text(value)
        if t is None:
            return []
        t = t.lower()
        if self.any(t) is None:
            return []
        return [p for needle, positions in self.needles if needle in t for p in positions]


class _Patterns(_Finder):
    """Regular-expression atoms of one field, behind one combined search when they combine."""

    def __init__(self, name: str, table: dict[str, list[int]]) -> None:
        super().__init__(name, table)
        self.patterns = [(re.compile(p).search, positions) for p, positions in table.items()]
        try:
            self.any: Any = re.compile("|".join(table)).search if len(table) > 1 else None
        except re.error:  # back references or global flags do not survive the combination
            self.any = None

    def compute(self, value: Any) -> list[int]:
        if not isinstance(value, str) or (self.any is not None and self.any(value) is None):
            return []
        return [p for search, positions in self.patterns if search(value) is not None for p in positions]


class _Networks(_Finder):
    """CIDR atoms of one field as integer ranges."""

    def __init__(self, name: str, table: dict[str, list[int]]) -> None:
        super().__init__(name, table)
        self.ranges = []
        for cidr, positions in table.items():
            net = ipaddress.ip_network(cidr)
            self.ranges.append((net.version, int(net.network_address), int(net.broadcast_address), positions))

    def compute(self, value: Any) -> list[int]:
        address = ip_of(value) if isinstance(value, str) else None
        if address is None:
            return []
        version, number = address.version, int(address)
        return [p for v, lo, hi, positions in self.ranges if v == version and lo <= number <= hi for p in positions]


class RuleIndex:
    """Per log source (``logwarden.source``) field indexes, built on first use."""

    def __init__(self, rules: Sequence[DetectionRule], *, enabled: bool = True) -> None:
        self.rules = list(rules)
        self.enabled = enabled
        self._by_source: dict[Any, FieldIndex] = {}
        self._by_name: dict[Any, FieldIndex] = {}

    def for_logsources(self, logsources: tuple[LogSource, ...]) -> FieldIndex:
        key = tuple(tuple(sorted(ls.items())) for ls in logsources)
        index = self._by_source.get(key)
        if index is None:
            matching = [r for r in self.rules if logsource_matches(r.logsource, logsources)]
            index = self._by_source[key] = FieldIndex(matching, enabled=self.enabled)
        return index

    def for_doc(self, doc: dict[str, Any]) -> FieldIndex:
        """The index of the document's ``logwarden.source`` (cached by its value)."""
        meta = doc.get("logwarden")
        source = meta.get("source") if isinstance(meta, dict) else doc.get("logwarden.source")
        if source is not None and not isinstance(source, str):
            source = str(source)
        index = self._by_name.get(source)
        if index is None:
            index = self._by_name[source] = self.for_logsources(event_logsources(doc))
        return index

    def rules_for(self, doc: dict[str, Any]) -> list[DetectionRule]:
        """Every rule whose logsource the document satisfies."""
        return self.for_doc(doc).rules

    def candidates(self, doc: dict[str, Any]) -> list[DetectionRule]:
        """The rules of the document's logsource that may match it (``doc`` may be a FieldView)."""
        view = as_view(doc)
        return self.for_doc(view.doc).candidates(view)
