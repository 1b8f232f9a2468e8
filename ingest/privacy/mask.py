"""Mask personal data in free-text fields: e-mail addresses, phone numbers, payment card numbers.

- e-mail addresses (also with a URL-encoded ``%40``) -> ``[MASKED:email]``;
- payment card numbers: 13-19 digits, single spaces or dashes between digit groups allowed, that pass the
  Luhn check -> ``[MASKED:card]`` (a longer run of digit groups is searched for a valid card inside it);
- phone numbers -> ``[MASKED:phone]``: international (``+`` or ``00`` then 7-15 digits, with spaces, dots,
  dashes or parentheses), North American ``(555) 123-4567`` / ``555-123-4567`` / ``555.123.4567``, and
  national numbers with a trunk ``0`` (``030 1234567``, ``020 7946 0958``, ``01 23 45 67 89``).

Only the configured free-text fields are masked (message, URLs, request bodies, user agents, audit
metadata...): identifier fields are pseudonymized instead, and masking ids or versions everywhere would
break grouping. Phone patterns avoid IP addresses, versions and dates, at the cost of missing numbers
written without any grouping and without a ``+``/``0`` prefix.

>>> text, kinds = mask_text("mail alice@example.com or +49 30 1234567, card 4111 1111 1111 1111")
>>> text, sorted(kinds)
('mail [MASKED:email] or [MASKED:phone], card [MASKED:card]', ['card', 'email', 'phone'])
>>> mask_text("Chrome/130.0.0.0 from 203.0.113.50 on 2026-11-02")[1]
frozenset()
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final

from ingest.privacy._doc import Tree, add_kinds, build_tree

_NO_KINDS: Final[frozenset[str]] = frozenset()

_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# local part: RFC 5322 atext without "/", "=", "?" and "&", which in logs are far more often URL and query syntax
# (a local part made of those keeps them: "=@example.com" -> "=[MASKED:email]")
_EMAIL: Final = re.compile(r"[\w.!#$%'*+^`{|}~-]*(?:@|%40)" + _LABEL + r"(?:\." + _LABEL + r")+")
# digit groups separated by one space or dash: candidates for card numbers
_DIGIT_GROUPS: Final = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATORS: Final = re.compile(r"[ -]")
_PHONE: Final = re.compile(
    # international: + or 00, then 7-15 digits with up to two separators between them
    r"(?<![\w+])(?:\+|\b00)\d(?:[ .\-()/]{0,2}\d){6,14}(?!\d)"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567
    r"|(?<![\w.+-])(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?![\w.-])"
    # national with a trunk 0: 030 1234567, 020 7946 0958, 01 23 45 67 89, 0301234567
    r"|(?<![\w.+-])0\d{1,4}(?:[ /-]?\d{2,4}){2,4}(?![\w.-])"
)
# a run of at least 8 digits with up to two separators between them: where phones (and cards) can be
_NUMBER_RUN: Final = re.compile(r"\d(?:[ .()/-]{0,2}\d){7,}")
_MIN_PHONE_DIGITS: Final = 8


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_spans(text: str, spans: list[tuple[int, int]]) -> None:
    for run in _DIGIT_GROUPS.finditer(text):
        if run.end() - run.start() < 13:
            continue
        # groups: (start, end, digits) of each digit group in the run
        groups: list[tuple[int, int, str]] = []
        pos = run.start()
        for sep in _SEPARATORS.finditer(text, run.start(), run.end()):
            groups.append((pos, sep.start(), text[pos : sep.start()]))
            pos = sep.end()
        groups.append((pos, run.end(), text[pos : run.end()]))
        i = 0
        while i < len(groups):
            digits = ""
            best = -1
            for j in range(i, len(groups)):
                digits += groups[j][2]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    best = j  # the longest valid card starting at group i
            if best >= 0:
                spans.append((groups[i][0], groups[best][1]))
                i = best + 1
            else:
                i += 1


def _replace(text: str, spans: list[tuple[int, int]], label: str) -> str:
    parts: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            start = pos
            if start >= end:
                continue
        parts += (text[pos:start], label)
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def mask_text(text: str) -> tuple[str, frozenset[str]]:
    """``text`` with e-mail addresses, card numbers and phone numbers masked, and the kinds found."""
    kinds: set[str] = set()
    if "@" in text or "%40" in text:
        masked = _EMAIL.sub("[MASKED:email]", text)
        if masked != text:
            kinds.add("email")
            text = masked
    if _NUMBER_RUN.search(text) is None:
        return text, frozenset(kinds) if kinds else _NO_KINDS
    cards: list[tuple[int, int]] = []
    _card_spans(text, cards)
    if cards:
        text = _replace(text, cards, "[MASKED:card]")
        kinds.add("card")
    phones: list[tuple[int, int]] = []
    for run in _NUMBER_RUN.finditer(text):
        # the phone patterns only run around number runs (one character before: "+" or "(")
        for m in _PHONE.finditer(text, max(0, run.start() - 1), run.end() + 1):
            if sum(ch.isdigit() for ch in m.group()) >= _MIN_PHONE_DIGITS:
                phones.append((m.start(), m.end()))
    if phones:
        text = _replace(text, phones, "[MASKED:phone]")
        kinds.add("phone")
    return text, frozenset(kinds) if kinds else _NO_KINDS


class Masker:
    """Mask personal data in the strings (and lists of strings) of ``fields``; kinds go to
    ``logwarden.privacy.masked``. A field holding an object is masked in every string inside it.

    Results are cached per string (LRU, ``cache_size``): user agents, paths and queries repeat.
    """

    def __init__(self, fields: Iterable[str], *, cache_size: int = 16_384) -> None:
        self.fields = tuple(fields)
        self._tree: Tree = build_tree(self.fields)
        self._mask = lru_cache(maxsize=cache_size)(mask_text)

    def __repr__(self) -> str:
        return f"Masker(fields={len(self.fields)})"

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        kinds: set[str] = set()
        self._mask_tree(doc, self._tree, kinds)
        if kinds:
            add_kinds(doc, "masked", kinds)
        return doc

    def _mask_tree(self, node: dict[str, Any], tree: Tree, kinds: set[str]) -> None:
        for key, sub in tree.items():
            value = node.get(key)
            if value is None:
                continue
            if sub is None:
                node[key] = self._mask_any(value, kinds)
            elif type(value) is dict:
                self._mask_tree(value, sub, kinds)

    def mask_value(self, value: Any, kinds: set[str]) -> Any:
        """``value`` masked as the value of a masked field (lists copied, objects changed in place)."""
        return self._mask_any(value, kinds)

    def _mask_any(self, value: Any, kinds: set[str]) -> Any:
        kind = type(value)
        if kind is str:
            new, found = self._mask(value)
            if found:
                kinds.update(found)
            return new
        if kind is list:
            return [self._mask_any(item, kinds) for item in value]
        if kind is dict:
            for key, item in value.items():
                value[key] = self._mask_any(item, kinds)
        return value
