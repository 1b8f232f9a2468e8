"""Compile a pySigma condition tree into a plain predicate ``doc -> bool``.

Sigma semantics: string matches are case-insensitive unless ``|cased``; ``*`` and ``?`` are
wildcards; a list field matches when any element matches; ``null`` matches an absent field.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from detectors.errors import DetectorError
from detectors.sigma.fields import field_getter

Predicate = Callable[[dict[str, Any]], bool]


class UnsupportedSigma(DetectorError):
    """A construct this engine does not evaluate yet (reported at load time, never at match time)."""


def compile_condition(node: Any) -> Predicate:
    """Compile a parsed condition (``rule.detection.parsed_condition[i].parse()``)."""
    if isinstance(node, ConditionAND):
        parts = [compile_condition(a) for a in node.args]
        return lambda doc: all(p(doc) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [compile_condition(a) for a in node.args]
        return lambda doc: any(p(doc) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda doc: not inner(doc)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_predicate(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        raise UnsupportedSigma("keyword (field-less) search is not supported yet")
    raise UnsupportedSigma(f"unsupported condition element {type(node).__name__}")


def _field_predicate(field: str, value: Any) -> Predicate:
    get = field_getter(field)
    if isinstance(value, SigmaNull):
        return lambda doc: not any(v is not None for v in get(doc))
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return lambda doc: bool(get(doc)) is wanted
    match = _value_matcher(value)
    return lambda doc: any(match(v) for v in get(doc))


def _value_matcher(value: Any) -> Callable[[Any], bool]:
    if isinstance(value, SigmaBool):
        wanted_bool = value.boolean
        return lambda v: v is wanted_bool
    if isinstance(value, SigmaNumber):
        wanted_number = value.number
        return lambda v: _number(v) == wanted_number
    if isinstance(value, SigmaCompareExpression):
        return _compare(value)
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
            flags |= re.IGNORECASE
        if SigmaRegularExpressionFlag.MULTILINE in value.flags:
            flags |= re.MULTILINE
        if SigmaRegularExpressionFlag.DOTALL in value.flags:
            flags |= re.DOTALL
        pattern = re.compile(str(value.regexp), flags)
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if isinstance(value, SigmaCIDRExpression):
        network = ipaddress.ip_network(value.cidr, strict=False)
        return lambda v: _in_network(v, network)
    if isinstance(value, SigmaString):
        return _string(value, cased=isinstance(value, SigmaCasedString))
    raise UnsupportedSigma(f"unsupported value type {type(value).__name__}")


def _string(value: SigmaString, *, cased: bool) -> Callable[[Any], bool]:
    if not value.contains_special():
        plain = str(value.s[0]) if value.s else ""
        if cased:
            return lambda v: _text(v) == plain
        folded = plain.casefold()
        return lambda v: (t := _text(v)) is not None and t.casefold() == folded
    pieces = []
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            pieces.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        elif isinstance(part, str):
            pieces.append(re.escape(part))
        else:
            raise UnsupportedSigma(f"unsupported string part {part!r} (placeholders need |expand)")
    pattern = re.compile("".join(pieces), re.DOTALL | (0 if cased else re.IGNORECASE))
    return lambda v: (t := _text(v)) is not None and pattern.fullmatch(t) is not None


def _compare(value: SigmaCompareExpression) -> Callable[[Any], bool]:
    bound = value.number.number
    op = value.op
    ops: dict[Any, Callable[[float, float], bool]] = {
        SigmaCompareExpression.CompareOperators.LT: lambda a, b: a < b,
        SigmaCompareExpression.CompareOperators.LTE: lambda a, b: a <= b,
        SigmaCompareExpression.CompareOperators.GT: lambda a, b: a > b,
        SigmaCompareExpression.CompareOperators.GTE: lambda a, b: a >= b,
    }
    fn = ops[op]
    return lambda v: (n := _number(v)) is not None and fn(n, bound)


def _text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _in_network(v: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return ipaddress.ip_address(v) in network
    except ValueError:
        return False
