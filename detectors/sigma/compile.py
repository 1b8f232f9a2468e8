"""Compile a pySigma condition tree into a plain predicate ``doc -> bool``, plus what the index needs.

Field level (value matching is in :mod:`detectors.sigma.values`): a field with several values (an array)
matches when any element matches; ``null`` (or an empty value list) matches an absent or null field;
``|exists`` tests presence of a non-null value; ``|fieldref`` compares with the values of another field
(case-insensitive, ``contains``/``startswith``/``endswith`` allowed); ``|neq`` and ``not`` negate.

Keyword (field-less) search matches the text of :data:`KEYWORD_FIELDS` (the free-text fields of our
events, not every string of the document): plain keywords are substrings (pySigma's own mapping of
keywords onto fields adds the same ``*`` around them), so ``- 'union select'`` finds the phrase anywhere
in ``url.original`` or ``message``.

Index keys: :attr:`Compiled.keys` is a set of atoms of which at least one must hold whenever the
predicate holds: ``("eq", field, lower-case text)``, ``("sub", field, lower-case substring)``,
``("re", field, pattern)``, ``("net", field, cidr)``, ``("cmp", field, "GT 500")`` (a numeric comparison:
``LT``, ``LTE``, ``GT``, ``GTE`` or ``EQ`` and the number) or ``("has", field, "")``; ``None`` when no such set is known
(``not``, null). :attr:`Compiled.also` holds the sets of the other parts of an AND, each of which must hold
too. :mod:`detectors.sigma.index` only evaluates a rule for events that satisfy one atom of each set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
)

from detectors.sigma.fields import FieldView
from detectors.sigma.values import (
    STRING_TESTS,
    UnsupportedSigma,
    equality_keys,
    keyword_value,
    string_parts,
    string_shape,
    text,
    value_matcher,
)

Predicate = Callable[[FieldView], bool]  # over a FieldView of the document
Key = tuple[str, str, str]
_FLAG_LETTERS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
#: How selective an atom kind usually is (lower first) when an AND can be indexed by several.
_RANK = {"eq": 0, "net": 1, "sub": 2, "re": 3, "cmp": 4, "has": 5}
MAX_ALSO = 1  # further atom sets of an AND the index tests (the most selective ones)
_RANGES = ("LT", "LTE", "GT", "GTE")  # comparisons with an index atom

#: Fields a keyword (field-less) search looks into.
KEYWORD_FIELDS: tuple[str, ...] = ("message", "event.original", "url.original", "user_agent.original")

__all__ = ["KEYWORD_FIELDS", "Compiled", "Key", "Predicate", "UnsupportedSigma", "compile_condition", "compile_tree"]


@dataclass(frozen=True)
class Compiled:
    """A compiled condition: the predicate, its index keys and the fields it reads.

    ``exact``: the predicate holds exactly when one of the keys (all ``eq`` atoms of one field) does, so the
    index alone decides it (``field: value`` or ``field: [a, b]``, case-insensitive). ``also``: further atom
    sets (of the other parts of an AND), each with an atom that holds whenever the predicate does.
    """

    predicate: Predicate
    keys: frozenset[Key] | None
    fields: frozenset[str]
    exact: bool = False
    also: tuple[frozenset[Key], ...] = ()


def compile_condition(node: Any, keyword_fields: Sequence[str] = KEYWORD_FIELDS) -> Predicate:
    """Compile a parsed condition (``rule.detection.parsed_condition[i].parse()``) into a predicate."""
    return compile_tree(node, keyword_fields).predicate


def compile_tree(node: Any, keyword_fields: Sequence[str] = KEYWORD_FIELDS) -> Compiled:
    """Compile a parsed condition into a :class:`Compiled`."""
    if isinstance(node, ConditionOR) and (merged := _same_field_strings(node.args)) is not None:
        return merged
    if isinstance(node, ConditionAND | ConditionOR):
        parts = [compile_tree(a, keyword_fields) for a in node.args]
        preds = [p.predicate for p in parts]
        fields = frozenset().union(*(p.fields for p in parts))
        if len(parts) == 1:
            return parts[0]
        if isinstance(node, ConditionAND):
            sets = [s for p in parts for s in (p.keys, *p.also) if s]
            keys = _and_keys(sets)
            also = tuple(sorted((s for s in sets if s is not keys), key=_selectivity)[:MAX_ALSO])
            # The index selects by the chosen part: it usually holds for a candidate, so test it last.
            order = [p.predicate for p in parts if p.keys is not keys] + [p.predicate for p in parts if p.keys is keys]
            return Compiled(_all(order), keys, fields, also=also)
        keys = None if any(p.keys is None for p in parts) else frozenset().union(*(p.keys or () for p in parts))
        return Compiled(_any(preds), keys, fields)
    if isinstance(node, ConditionNOT):
        inner = compile_tree(node.args[0], keyword_fields)
        inner_pred = inner.predicate
        return Compiled(lambda doc: not inner_pred(doc), None, inner.fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword(node.value, keyword_fields)
    if node is None:
        raise UnsupportedSigma("empty condition (every detection was dropped)")
    raise UnsupportedSigma(f"unsupported condition element {type(node).__name__}")


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        a, b = preds
        return lambda doc: a(doc) and b(doc)
    return lambda doc: all(p(doc) for p in preds)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        a, b = preds
        return lambda doc: a(doc) or b(doc)
    return lambda doc: any(p(doc) for p in preds)


#: Fields with few distinct values: an equality on them narrows little, so the index prefers others.
LOW_CARDINALITY = frozenset(
    {"event.kind", "event.category", "event.type", "event.outcome", "event.module", "event.dataset"}
    | {"logwarden.source", "http.request.method", "http.response.status_code", "ecs.version", "tls.version"}
    | {"tls.version_protocol", "logwarden.api.auth_method", "logwarden.api.mfa"}
)


def _and_keys(options: Iterable[frozenset[Key] | None]) -> frozenset[Key] | None:
    """The most selective key set of an AND: specific fields before low-cardinality ones, then equality before
    substrings, regular expressions and presence, then fewer atoms."""
    known = [k for k in options if k]
    if not known:
        return None
    return min(known, key=_selectivity)


def _selectivity(keys: frozenset[Key]) -> tuple[bool, int, int]:
    """How selective an atom set usually is (lower first)."""
    return (any(k[1] in LOW_CARDINALITY for k in keys), max(_RANK[k[0]] for k in keys), len(keys))


def _field(name: str, value: Any) -> Compiled:
    has: frozenset[Key] = frozenset({("has", name, "")})
    if isinstance(value, SigmaNull):
        return Compiled(lambda doc: all(v is None for v in doc[name]), None, frozenset({name}))
    if isinstance(value, SigmaExists):
        if value.exists:
            return Compiled(lambda doc: any(v is not None for v in doc[name]), has, frozenset({name}))
        return Compiled(lambda doc: all(v is None for v in doc[name]), None, frozenset({name}))
    if isinstance(value, SigmaFieldReference):
        return Compiled(_fieldref(name, value), has, frozenset({name, value.field}))
    shape = string_shape(value)
    if shape is not None:
        keys = _atoms(name, value) or has
        return Compiled(_string_field(name, [shape]), keys, frozenset({name}), _exact(name, [shape], keys))
    match = value_matcher(value)

    def pred(doc: FieldView) -> bool:
        for v in doc[name]:  # noqa: SIM110  a plain loop is faster than any() over a generator here
            if match(v):
                return True
        return False

    return Compiled(pred, _atoms(name, value) or has, frozenset({name}))


def _same_field_strings(args: list[Any]) -> Compiled | None:
    """``field: [a, b*, *c*]`` (an OR of plain or simply wildcarded strings on one field) as one predicate."""
    if not all(isinstance(a, ConditionFieldEqualsValueExpression) for a in args):
        return None
    names = {a.field for a in args}
    shapes = [string_shape(a.value) for a in args]
    if len(names) != 1 or any(s is None for s in shapes):
        return None
    (name,) = names
    keys = [_atoms(name, a.value) for a in args]
    if any(k is None for k in keys):
        return None
    found = [s for s in shapes if s]
    atoms: frozenset[Key] = frozenset().union(*(k or () for k in keys))
    return Compiled(_string_field(name, found), atoms, frozenset({name}), _exact(name, found, atoms))


def _exact(name: str, shapes: list[tuple[str, str, bool]], keys: frozenset[Key] | None) -> bool:
    """Whether the string tests are case-insensitive equalities whose index atoms are exactly ``keys``."""
    if any(op != "eq" or cased for op, _, cased in shapes):
        return False
    return keys == frozenset(("eq", name, key) for _, needle, _ in shapes for key in equality_keys(needle))


def _string_field(name: str, shapes: list[tuple[str, str, bool]]) -> Predicate:
    """Any value of ``name`` passes any of the string tests (equalities become one set lookup)."""
    equal = {key for op, needle, cased in shapes if op == "eq" and not cased for key in equality_keys(needle)}
    equal_cased = {needle for op, needle, cased in shapes if op == "eq" and cased}
    others = [(STRING_TESTS[op], needle, cased) for op, needle, cased in shapes if op != "eq"]
    if not equal_cased and not others:

        def equals(doc: FieldView) -> bool:
            for v in doc[name]:
                t = v if type(v) is str else text(v)
                if t is not None and t.lower() in equal:
                    return True
            return False

        return equals
    if not equal and not equal_cased and len(others) == 1 and not others[0][2]:
        test, needle, _ = others[0]

        def one(doc: FieldView) -> bool:
            for v in doc[name]:
                t = v if type(v) is str else text(v)
                if t is not None and test(t.lower(), needle):
                    return True
            return False

        return one

    def general(doc: FieldView) -> bool:
        for v in doc[name]:
            t = v if type(v) is str else text(v)
            if t is None:
                continue
            if t in equal_cased:
                return True
            low = t.lower()
            if low in equal:
                return True
            for test, needle, cased in others:
                if test(t if cased else low, needle):
                    return True
        return False

    return general


def _atoms(name: str, value: Any) -> frozenset[Key] | None:
    """Index atoms implied by one value: equality for plain text, a substring every match must contain
    (the longest literal piece of a wildcard pattern), the regular expression, the network."""
    if isinstance(value, SigmaExpansion):
        sets = [_atoms(name, v) for v in value.values]
        if any(s is None for s in sets):
            return None
        return frozenset().union(*(s or () for s in sets))
    if isinstance(value, SigmaString):
        parts = string_parts(value)
        pieces = [p for p in parts if isinstance(p, str)]
        if len(pieces) == len(parts):
            return frozenset(("eq", name, key) for key in equality_keys("".join(pieces).lower()))
        longest = max(pieces, key=len, default="")
        return frozenset({("sub", name, longest.lower())}) if len(longest) >= 2 else None
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(sorted(_FLAG_LETTERS[f] for f in value.flags))
        return frozenset({("re", name, f"(?{flags}:{value.regexp.to_plain(regex=True)})")})
    if isinstance(value, SigmaCIDRExpression):
        return frozenset({("net", name, str(value.network))})
    if isinstance(value, SigmaCompareExpression) and value.op.name in _RANGES:
        return frozenset({("cmp", name, f"{value.op.name} {value.number.number!r}")})
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):  # numeric equality
        # (a timestamp part, ``|hour: 3`` and co., is a SigmaNumber too, but it tests a part of the value)
        return frozenset({("cmp", name, f"EQ {value.number!r}")})
    return None


def _fieldref(name: str, ref: SigmaFieldReference) -> Predicate:
    other = ref.field
    starts, ends = ref.starts_with, ref.ends_with

    def same(a: str, b: str) -> bool:
        if starts and ends:
            return b in a
        if starts:
            return a.startswith(b)
        if ends:
            return a.endswith(b)
        return a == b

    def pred(doc: FieldView) -> bool:
        mine = [t.lower() for v in doc[name] if (t := text(v)) is not None]
        theirs = [t.lower() for v in doc[other] if (t := text(v)) is not None]
        return any(same(a, b) for a in mine for b in theirs)

    return pred


def _keyword(value: Any, keyword_fields: Sequence[str]) -> Compiled:
    match = value_matcher(keyword_value(value))
    names = tuple(keyword_fields)

    def pred(doc: FieldView) -> bool:
        for name in names:
            for v in doc[name]:
                if match(v):
                    return True
        return False

    sets = [_atoms(f, keyword_value(value)) for f in keyword_fields]
    keys = None if any(k is None for k in sets) else frozenset().union(*(k or () for k in sets))
    return Compiled(pred, keys, frozenset())
