"""Which rules an event can match: by log source first, then by the fields the rules test.

A rule's index atoms (:attr:`DetectionRule.keys`, from :mod:`detectors.sigma.compile`) are conditions of
which one must hold for the rule to match: an equality (``event.action`` is ``user-login``: one hash
lookup per indexed field of the event) or the presence of a field. Rules without atoms (``not`` only,
keywords, null checks) are always candidates. Candidates keep the rule order, so results are identical
with and without the index.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from detectors.sigma.compile import Predicate
from detectors.sigma.fields import FieldView, as_view
from detectors.sigma.reader import compile_mask
from detectors.sigma.rules import DetectionRule
from detectors.sigma.taxonomy import LogSource, event_logsources, logsource_matches
from detectors.sigma.values import ip_of, number, text

#: A candidate and the predicate to run for it (``_matched`` when the index already decided the match).
Plan = list[tuple[DetectionRule, Predicate]]


def _matched(doc: FieldView) -> bool:
    """The predicate of a rule the index has proved matching (see :attr:`DetectionRule.exact`)."""
    return True


class FieldIndex:
    """The rules of one log source, indexed by their atoms.

    Rule positions are bits of an integer: each indexed field maps its values to the mask of the rules
    their atoms select (remembered per text value, since log fields repeat), the event's mask is the OR
    over its fields, and the candidate list of a mask is built once (masks repeat too).

    A rule with several atom sets (:attr:`DetectionRule.also`, the parts of an AND) has a bit per set: set
    ``j`` of the rule at position ``p`` is bit ``p + j * len(rules)`` (rules with fewer sets have the missing
    ones always on), and a rule is a candidate when all its bits are on.
    """

    MASKS = 4096  # candidate lists remembered (forgotten all at once when full)

    def __init__(self, rules: Sequence[DetectionRule], *, enabled: bool = True) -> None:
        self.rules = list(rules)
        self._always = 0
        atoms: dict[str, dict[str, dict[str, int]]] = {}  # field -> kind -> value -> mask
        n = len(self.rules)
        sets_per_rule = max((1 + len(r.also) for r in self.rules if enabled and r.keys), default=1)
        self._low = (1 << n) - 1
        self._shifts = [j * n for j in range(1, sets_per_rule)]
        need: dict[str, int] = {}  # field -> the rules with atoms on it in further sets only (0: in a first set)
        for position, rule in enumerate(self.rules):
            sets = (rule.keys, *rule.also) if enabled and rule.keys else ()
            for j in range(sets_per_rule):
                bit = 1 << (position + j * n)
                if j >= len(sets):
                    self._always |= bit
                    continue
                for kind, name, value in sets[j]:
                    table = atoms.setdefault(name, {}).setdefault(kind, {})
                    table[value] = table.get(value, 0) | bit
                    if j == 0:
                        need[name] = 0
                    elif need.get(name) != 0:
                        need[name] = need.get(name, 0) | 1 << position
        self._fields = [_FieldAtoms(name, kinds) for name, kinds in atoms.items()]
        reads = [(f.name, f.memo, f.mask, need[f.name]) for f in self._fields]
        # the bits of the rules that may match a view, reading the indexed fields into it (one generated function)
        self.mask: Callable[[FieldView], int] = compile_mask(
            reads, always=self._always, low=self._low, shifts=self._shifts
        )
        self._exact = [enabled and bool(rule.keys) and rule.exact is rule.predicate for rule in self.rules]
        self._plans: dict[int, Plan] = {}

    def plan(self, doc: FieldView) -> Plan:
        """The rules that may match ``doc`` in rule order, each with the predicate still to run (shared: do not
        modify)."""
        found = self.mask(doc)  # reads the indexed fields into the view (see detectors.sigma.reader)
        plan = self._plans.get(found)
        if plan is None:
            if len(self._plans) >= self.MASKS:
                self._plans.clear()
            plan = self._plans[found] = self._build(found)
        return plan

    def candidates(self, doc: FieldView) -> list[DetectionRule]:
        """The rules that may match ``doc``, in rule order."""
        return [rule for rule, _ in self.plan(doc)]

    def _build(self, found: int) -> Plan:
        plan: Plan = []
        position = 0
        while found:
            if found & 1:
                rule = self.rules[position]
                plan.append((rule, _matched if self._exact[position] else rule.predicate))
            found >>= 1
            position += 1
        return plan


class _FieldAtoms:
    """Every atom on one field: equalities, presence, substrings, patterns and networks, as rule masks."""

    MEMO = 50_000  # text and integer values remembered (forgotten all at once when full)

    def __init__(self, name: str, kinds: dict[str, dict[str, int]]) -> None:
        self.name = name
        self.eq = kinds.get("eq", {})
        self.has = kinds.get("has", {}).get("", 0)
        finders: dict[str, type[_Finder]] = {"sub": _Needles, "re": _Patterns, "net": _Networks, "cmp": _Ranges}
        self.finders = [finders[k](table) for k, table in kinds.items() if k in finders]
        self.memo: dict[str | int, int] = {}

    def mask(self, values: list[Any]) -> int:
        found = 0
        memo = self.memo
        for value in values:
            if type(value) is str or type(value) is int:  # not bool: True would find the entry of 1
                hits = memo.get(value)
                if hits is None:
                    if len(memo) >= self.MEMO:
                        memo.clear()
                    hits = memo[value] = self.compute(value)
                found |= hits
            elif value is not None:
                found |= self.compute(value)
        return found

    def compute(self, value: Any) -> int:
        """The mask a non-null value selects."""
        found = self.has
        if self.eq:
            t = text(value)
            if t is not None:
                found |= self.eq.get(t.lower(), 0)
        for finder in self.finders:
            found |= finder.compute(value)
        return found


class _Finder:
    """Atoms of one kind on one field that need work per value (substrings, patterns, networks)."""

    def __init__(self, table: dict[str, int]) -> None:
        self.table = table

    def compute(self, value: Any) -> int:
        raise NotImplementedError


class _Needles(_Finder):
    """Substring atoms: one combined scan rejects most values, then ``in`` per needle."""

    def __init__(self, table: dict[str, int]) -> None:
        super().__init__(table)
        self.needles = list(table.items())
        self.any = re.compile("|".join(re.escape(n) for n in sorted(table, key=len, reverse=True))).search

    def compute(self, value: Any) -> int:
        t = text(value)
        if t is None:
            return 0
        t = t.lower()
        if self.any(t) is None:
            return 0
        found = 0
        for needle, mask in self.needles:
            if needle in t:
                found |= mask
        return found


class _Patterns(_Finder):
    """Regular-expression atoms, behind one combined search when they combine."""

    def __init__(self, table: dict[str, int]) -> None:
        super().__init__(table)
        self.patterns = [(re.compile(p).search, mask) for p, mask in table.items()]
        try:
            self.any: Any = re.compile("|".join(table)).search if len(table) > 1 else None
        except re.error:  # back references or global flags do not survive the combination
            self.any = None

    def compute(self, value: Any) -> int:
        if not isinstance(value, str) or (self.any is not None and self.any(value) is None):
            return 0
        found = 0
        for search, mask in self.patterns:
            if search(value) is not None:
                found |= mask
        return found


class _Networks(_Finder):
    """CIDR atoms as integer ranges."""

    def __init__(self, table: dict[str, int]) -> None:
        super().__init__(table)
        self.ranges = []
        for cidr, mask in table.items():
            net = ipaddress.ip_network(cidr)
            self.ranges.append((net.version, int(net.network_address), int(net.broadcast_address), mask))

    def compute(self, value: Any) -> int:
        address = ip_of(value) if isinstance(value, str) else None
        if address is None:
            return 0
        version, number = address.version, int(address)
        found = 0
        for v, lo, hi, mask in self.ranges:
            if v == version and lo <= number <= hi:
                found |= mask
        return found


class _Ranges(_Finder):
    """Numeric comparison atoms (``GT 500``, ``EQ 401``), the same comparisons as the rules' own matchers:
    equalities in a table (``401`` and ``401.0`` are one key, as they are equal), otherwise per operator the
    bounds sorted with the OR of the masks of each prefix (``>``, ``>=``) or suffix (``<``, ``<=``), so a
    value costs one bisection per operator."""

    def __init__(self, table: dict[str, int]) -> None:
        super().__init__(table)
        by_op: dict[str, list[tuple[int | float, int]]] = {}
        for atom, mask in table.items():
            op, text = atom.split(" ", 1)
            by_op.setdefault(op, []).append((_bound(text), mask))
        self.equal: dict[int | float, int] = {}
        for value, mask in by_op.pop("EQ", []):
            self.equal[value] = self.equal.get(value, 0) | mask
        self.ops = []
        for op, atoms in by_op.items():
            atoms.sort(key=lambda atom: atom[0])
            bounds = [bound for bound, _ in atoms]
            masks = [0]  # masks[i]: the atoms of the i smallest bounds (">"), or all but them ("<")
            for _, mask in atoms if op in ("GT", "GTE") else reversed(atoms):
                masks.append(masks[-1] | mask)
            if op in ("LT", "LTE"):
                masks.reverse()
            # a value passes "> b" for the bounds before bisect_left(bounds, n), ">= b" before bisect_right,
            # "< b" from bisect_right on, "<= b" from bisect_left on
            search = bisect.bisect_left if op in ("GT", "LTE") else bisect.bisect_right
            self.ops.append((search, bounds, masks))

    def compute(self, value: Any) -> int:
        n = number(value)
        if n is None or n != n:  # not a number, or NaN (no comparison holds)
            return 0
        found = self.equal.get(n, 0)
        for search, bounds, masks in self.ops:
            found |= masks[search(bounds, n)]
        return found


def _bound(text: str) -> int | float:
    """The bound of a comparison atom, as the rule holds it (an int or a float, ``repr`` round-trips)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


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
