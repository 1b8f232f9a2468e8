"""The KQL subset the dashboards use, translated to Elasticsearch query DSL (as Kibana would), with its fields.

Supported: ``field : value``, ``field : "quoted value"``, ``field : (a or b or "c")``, ``field : *`` (exists),
``field : prefix*`` (wildcard), ``field >= 10`` (``>``, ``<``, ``<=`` too), ``and``, ``or``, ``not`` and
parentheses; the empty query matches everything. Anything else raises :class:`KqlError`, so a dashboard cannot
use a query this test translates wrongly.

>>> to_dsl('event.action : ("a" or b) and not x : *')
{'bool': {'filter': [{'bool': {'should': [{'match_phrase': {'event.action': 'a'}}, \
{'match': {'event.action': 'b'}}], 'minimum_should_match': 1}}, {'bool': {'must_not': [{'exists': {'field': 'x'}}]}}]}}
>>> sorted(fields('rule.id : ml.* or tags : "ml"'))
['rule.id', 'tags']
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\s*(?:(?P<q>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|[():<>])|(?P<w>[^\s()":<>]+))')
_RANGE = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}
_PUNCTUATION = frozenset({"(", ")", ":", *_RANGE})


class KqlError(ValueError):
    """A query outside the supported subset."""


def _tokens(query: str) -> list[str]:
    out, pos = [], 0
    while pos < len(query.rstrip()):
        match = _TOKEN.match(query, pos)
        if match is None or match.end() == pos:
            raise KqlError(f"cannot read {query[pos:]!r}")
        out.append(match.group(match.lastgroup or "w"))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokens(query)
        self.pos = 0
        self.fields: list[str] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            raise KqlError(f"expected {expected or 'a token'} at token {self.pos}, got {token!r}")
        self.pos += 1
        return token

    def parse(self) -> dict[str, Any]:
        if self.peek() is None:
            return {"match_all": {}}
        dsl = self.or_expr()
        if self.peek() is not None:
            raise KqlError(f"unexpected {self.peek()!r}")
        return dsl

    def or_expr(self) -> dict[str, Any]:
        parts = [self.and_expr()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}

    def and_expr(self) -> dict[str, Any]:
        parts = [self.not_expr()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def not_expr(self) -> dict[str, Any]:
        token = self.peek()
        if token is not None and token.lower() == "not":
            self.take()
            return {"bool": {"must_not": [self.not_expr()]}}
        if token == "(":
            self.take()
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.clause()

    def clause(self) -> dict[str, Any]:
        name = self.take()
        if name in _PUNCTUATION or name.startswith('"'):
            raise KqlError(f"expected a field name, got {name!r}")
        self.fields.append(name)
        op = self.take()
        if op in _RANGE:
            return {"range": {name: {_RANGE[op]: _literal(self.take())}}}
        if op != ":":
            raise KqlError(f"expected ':' after {name}, got {op!r}")
        if self.peek() != "(":
            return _value(name, self.take())
        self.take("(")
        values = [_value(name, self.take())]
        while (self.peek() or "").lower() == "or":
            self.take()
            values.append(_value(name, self.take()))
        self.take(")")
        return values[0] if len(values) == 1 else {"bool": {"should": values, "minimum_should_match": 1}}


def _literal(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return token


def _value(name: str, token: str) -> dict[str, Any]:
    if token in _PUNCTUATION or token.lower() in {"and", "or", "not"}:
        raise KqlError(f"expected a value for {name}, got {token!r}")
    if token.startswith('"'):
        return {"match_phrase": {name: _literal(token)}}
    if token == "*":
        return {"exists": {"field": name}}
    if "*" in token:
        return {"wildcard": {name: {"value": token}}}
    return {"match": {name: token}}


def to_dsl(query: str) -> dict[str, Any]:
    """The Elasticsearch query of a KQL ``query`` (the subset above)."""
    return _Parser(query).parse()


def fields(query: str) -> list[str]:
    """The fields a KQL ``query`` names."""
    parser = _Parser(query)
    parser.parse()
    return parser.fields
