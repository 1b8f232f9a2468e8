"""Matchers for one Sigma value against one scalar of a document (the field level is in :mod:`compile`).

Semantics (the Sigma specification, as pySigma resolves the modifiers into its types):

- strings compare case-insensitively (Unicode lower case) unless ``|cased``; ``*`` matches any run of
  characters, ``?`` exactly one, ``\\*`` / ``\\?`` / ``\\\\`` are literal; the whole value must match
  (``contains``/``startswith``/``endswith`` are wildcards pySigma adds);
- a string value also matches numbers and booleans by their text (``401`` matches ``"401"``, ``true``);
- numbers compare numerically (numeric strings in the document count, booleans never do);
- ``|re`` searches (unanchored) with the ``i``/``m``/``s`` flags; ``|cidr`` matches IPv4/IPv6 addresses;
- ``|gt``/``|gte``/``|lt``/``|lte`` compare numbers; ``|minute``..``|year`` compare a part of a timestamp
  (ISO 8601 text or epoch seconds, in UTC; ``week`` is the ISO week);
- ``base64``, ``base64offset``, ``wide``/``utf16*`` and ``windash`` are encodings pySigma expands into
  plain strings (an expansion matches when any of its values does).
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from detectors.errors import DetectorError

Matcher = Callable[[Any], bool]
_NUMBERS = (int, float)

_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


class UnsupportedSigma(DetectorError):
    """A construct this engine does not evaluate (reported at load time, never at match time)."""


def text(v: Any) -> str | None:
    """The text a string value is compared with: strings, numbers and booleans (``true``/``false``)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, _NUMBERS):
        return number_key(v)
    return None


def number(v: Any) -> float | None:
    """A numeric view of ``v``: numbers and numeric strings; booleans are not numbers."""
    kind = type(v)
    if kind is int or kind is float:  # the common case first (bool is a subclass of int, not int itself)
        return v  # type: ignore[no-any-return]
    if isinstance(v, bool):
        return None
    if isinstance(v, _NUMBERS):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def value_matcher(value: Any) -> Matcher:
    """A predicate over one scalar for a pySigma value type (field references and null are field-level)."""
    if isinstance(value, SigmaExpansion):
        parts = [value_matcher(v) for v in value.values]
        return lambda v: any(p(v) for p in parts)
    if isinstance(value, SigmaBool):
        wanted_bool = value.boolean
        return lambda v: v is wanted_bool
    if isinstance(value, SigmaTimestampPart):
        return _timestamp_part(value)
    if isinstance(value, SigmaNumber):
        wanted = value.number
        return lambda v: number(v) == wanted
    if isinstance(value, SigmaCompareExpression):
        return _compare(value)
    if isinstance(value, SigmaRegularExpression):
        return _regex(value)
    if isinstance(value, SigmaCIDRExpression):
        version = value.network.version
        lo, hi = int(value.network.network_address), int(value.network.broadcast_address)
        return lambda v: (
            isinstance(v, str) and (a := ip_of(v)) is not None and a.version == version and lo <= int(a) <= hi
        )
    if isinstance(value, SigmaString):
        return string_matcher(value, cased=isinstance(value, SigmaCasedString))
    raise UnsupportedSigma(f"unsupported value type {type(value).__name__}")


def _regex(value: SigmaRegularExpression) -> Matcher:
    flags = 0
    for flag in value.flags:
        flags |= _RE_FLAGS[flag]
    if value.regexp.contains_placeholder():
        raise UnsupportedSigma(f"unresolved placeholder in regular expression {value.regexp}")
    search = re.compile(value.regexp.to_plain(regex=True), flags).search
    return lambda v: isinstance(v, str) and search(v) is not None


def string_parts(value: SigmaString) -> list[str | SpecialChars]:
    """The parts of a Sigma string; placeholders must have been resolved by the pipeline."""
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise UnsupportedSigma(f"unresolved placeholder %{part.name}% (use |expand and define it)")
        parts.append(part)
    return parts


def number_key(x: float) -> str:
    """One text per number, whatever the producer wrote: ``number_key(100.0) == number_key(100) == '100'``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def equality_keys(s: str) -> frozenset[str]:
    """The texts a plain value equals: itself, and for a number the one text of that number.

    Numbers in documents read as :func:`number_key` (see :func:`text`), so ``'100'`` and ``'100.0'`` both
    equal the values 100 and 100.0, whatever the producer wrote, as Elasticsearch compares numbers.
    """
    number_value = plain_number(s)
    return frozenset({s} if number_value is None else {s, number_key(number_value)})


def plain_number(s: str) -> float | None:
    """The number a plain Sigma value spells (``'100'``, ``'-2.5'``), None for anything else."""
    try:
        value = float(s)
    except ValueError:
        return None
    return value if s.strip() == s and "_" not in s and value == value and abs(value) != float("inf") else None


def string_matcher(value: SigmaString, *, cased: bool) -> Matcher:
    """Match a Sigma string (wildcards, escapes, case) against the text of a scalar, with fast paths."""
    parts = string_parts(value)
    star = SpecialChars.WILDCARD_MULTI
    norm: Callable[[str], str] = (lambda s: s) if cased else str.lower
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    if not specials:
        wants = equality_keys(norm("".join(plain)))
        return lambda v: (t := text(v)) is not None and norm(t) in wants
    shape = tuple("*" if p is star else "s" if isinstance(p, str) else "?" for p in parts)
    needle = norm(plain[0]) if len(plain) == 1 else ""
    if shape == ("*",):
        return lambda v: text(v) is not None
    if shape == ("*", "s", "*"):
        return lambda v: (t := text(v)) is not None and needle in norm(t)
    if shape == ("s", "*"):
        return lambda v: (t := text(v)) is not None and norm(t).startswith(needle)
    if shape == ("*", "s"):
        return lambda v: (t := text(v)) is not None and norm(t).endswith(needle)
    fullmatch = re.compile(wildcard_regex(parts), re.DOTALL | (0 if cased else re.IGNORECASE)).fullmatch
    return lambda v: (t := text(v)) is not None and fullmatch(t) is not None


#: The string tests with a fast path: (operation, normalized needle); see :func:`string_shape`.
STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "eq": str.__eq__,
    "contains": str.__contains__,
    "startswith": str.startswith,
    "endswith": str.endswith,
}


def string_shape(value: Any) -> tuple[str, str, bool] | None:
    """``(operation, needle, cased)`` when a value is plain text or ``*text*``/``text*``/``*text``; the needle
    is lower case unless cased. None for other patterns (and for every non-string value)."""
    if not isinstance(value, SigmaString) or value.contains_placeholder():
        return None
    cased = isinstance(value, SigmaCasedString)
    star = SpecialChars.WILDCARD_MULTI
    parts = value.s
    shape = tuple("*" if p is star else "s" if isinstance(p, str) else "?" for p in parts)
    ops = {(): "eq", ("s",): "eq", ("*", "s", "*"): "contains", ("s", "*"): "startswith", ("*", "s"): "endswith"}
    op = ops.get(shape)
    if op is None:
        return None
    needle = next((p for p in parts if isinstance(p, str)), "")
    return op, needle if cased else needle.lower(), cased


def wildcard_regex(parts: list[str | SpecialChars]) -> str:
    """The regular expression of a wildcard pattern (``*`` -> ``.*``, ``?`` -> ``.``, the rest literal)."""
    out = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            out.append(re.escape(str(part)))
    return "".join(out)


def keyword_value(value: Any) -> Any:
    """A keyword (field-less) value searches inside text: plain strings get ``*`` around them, as pySigma
    does when it maps a keyword onto a field; numbers and booleans become such strings too."""
    if isinstance(value, SigmaBool):
        value = SigmaString(str(value.boolean).lower())
    elif isinstance(value, SigmaNumber):
        value = SigmaString(str(value.number))
    if isinstance(value, SigmaExpansion):
        return SigmaExpansion([keyword_value(v) for v in value.values])
    if not isinstance(value, SigmaString):
        return value
    star = SpecialChars.WILDCARD_MULTI
    parts = list(value.s)
    if not parts or parts[0] is not star:
        parts.insert(0, star)
    if parts[-1] is not star:
        parts.append(star)
    wrapped = type(value)()
    wrapped.s = parts
    wrapped.original = value.original
    return wrapped


_COMPARE: dict[Any, Callable[[float, float], bool]] = {  # builtins: cheaper to call than lambdas
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


def _compare(value: SigmaCompareExpression) -> Matcher:
    bound = value.number.number
    fn = _COMPARE[value.op]
    return lambda v: (n := number(v)) is not None and fn(n, bound)


@lru_cache(maxsize=65536)
def ip_of(v: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


_PARTS: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda d: d.minute,
    TimestampPart.HOUR: lambda d: d.hour,
    TimestampPart.DAY: lambda d: d.day,
    TimestampPart.WEEK: lambda d: d.isocalendar().week,
    TimestampPart.MONTH: lambda d: d.month,
    TimestampPart.YEAR: lambda d: d.year,
}


def as_datetime(v: Any) -> datetime | None:
    """A UTC datetime from ISO 8601 text (``Z`` allowed) or epoch seconds; None when it is neither."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        try:
            return datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(v, str):
        try:
            parsed = datetime.fromisoformat(v)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _timestamp_part(value: SigmaTimestampPart) -> Matcher:
    part = _PARTS[value.timestamp_part]
    wanted = value.number
    return lambda v: (d := as_datetime(v)) is not None and part(d) == wanted
