"""Property tests: compiled rules agree with a tiny reference evaluator of Sigma semantics."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIELDS = ("a", "b.c", "d")
WORDS = ("x", "xy", "Yz", "zz", "10")
MODIFIERS = ("", "contains", "startswith", "endswith", "cased")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- reference evaluator


@dataclass(frozen=True)
class Item:
    field: str
    modifier: str
    values: tuple[str, ...]
    all_: bool

    def key(self) -> str:
        mods = [m for m in (self.modifier, "all" if self.all_ else "") if m]
        return "|".join([self.field, *mods])


def ref_values(doc: dict[str, Any], field: str) -> list[Any]:
    node: Any = doc
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    return node if isinstance(node, list) else [node]


def ref_match_one(modifier: str, wanted: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    text = str(value)
    if modifier == "cased":
        return text == wanted
    text, wanted = text.lower(), wanted.lower()
    return {
        "": text == wanted,
        "contains": wanted in text,
        "startswith": text.startswith(wanted),
        "endswith": text.endswith(wanted),
    }[modifier]


def ref_item(item: Item, doc: dict[str, Any]) -> bool:
    values = ref_values(doc, item.field)
    hits = [any(ref_match_one(item.modifier, w, v) for v in values) for w in item.values]
    return all(hits) if item.all_ else any(hits)


def ref_condition(node: Any, selections: dict[str, list[Item]], doc: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "sel":
        return all(ref_item(i, doc) for i in selections[node[1]])
    if kind == "not":
        return not ref_condition(node[1], selections, doc)
    if kind == "1of":
        return any(all(ref_item(i, doc) for i in items) for items in selections.values())
    if kind == "allof":
        return all(all(ref_item(i, doc) for i in items) for items in selections.values())
    parts = [ref_condition(n, selections, doc) for n in node[1:]]
    return all(parts) if kind == "and" else any(parts)


def render(node: Any) -> str:
    kind = node[0]
    if kind == "sel":
        return str(node[1])
    if kind == "not":
        return f"not ({render(node[1])})"
    if kind == "1of":
        return "1 of them"
    if kind == "allof":
        return "all of them"
    return "(" + f" {kind} ".join(render(n) for n in node[1:]) + ")"


# ---------------------------------------------------------------- strategies

items = st.builds(
    Item,
    field=st.sampled_from(FIELDS),
    modifier=st.sampled_from(MODIFIERS),
    values=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(tuple),
    all_=st.booleans(),
)
selections = st.lists(st.lists(items, min_size=1, max_size=2, unique_by=lambda i: i.key()), min_size=1, max_size=3)


def conditions(n: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.integers(0, n - 1).map(lambda i: ("sel", f"sel{i}")), st.just(("1of",)), st.just(("allof",)))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            inner.map(lambda c: ("not", c)),
            st.tuples(st.sampled_from(["and", "or"]), inner, inner).map(lambda t: (t[0], t[1], t[2])),
        ),
        max_leaves=5,
    )


scalar = st.one_of(st.sampled_from(WORDS), st.sampled_from(["XY", "axyb", "zzz", "yz"]), st.integers(9, 11))
field_value = st.one_of(scalar, st.lists(scalar, max_size=3), st.none())
documents = st.fixed_dictionaries(
    {}, optional={"a": field_value, "b": st.fixed_dictionaries({}, optional={"c": field_value}), "d": field_value}
)


@SETTINGS
@given(data=st.data())
def test_compiled_conditions_agree_with_the_reference(kit: Any, data: st.DataObject) -> None:
    sels = data.draw(selections)
    named = {f"sel{i}": items_ for i, items_ in enumerate(sels)}
    condition = data.draw(conditions(len(sels)))
    detection: dict[str, Any] = {name: {i.key(): list(i.values) for i in its} for name, its in named.items()}
    detection["condition"] = render(condition)
    rule = kit.compile(detection)
    for doc in data.draw(st.lists(documents, min_size=1, max_size=8)):
        assert rule.matches(doc) is ref_condition(condition, named, doc), (detection, doc)


# ---------------------------------------------------------------- wildcards and escaping


def sigma_escape(text: str) -> str:
    return re.sub(r"([*?\\])", r"\\\1", text)


def ref_wildcard(pattern: str, text: str) -> bool:
    """Sigma wildcard matching (``\\`` escapes ``*``, ``?`` and itself), case-insensitive, whole value."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text, re.DOTALL | re.IGNORECASE) is not None


chars = st.text(alphabet="ab*?\\.", max_size=6)


@SETTINGS
@given(literal=chars)
def test_escaped_values_match_themselves_literally(kit: Any, literal: str) -> None:
    rule = kit.compile({"s": {"message": sigma_escape(literal)}, "condition": "s"})
    assert rule.matches({"message": literal})
    assert rule.matches({"message": literal.upper()})
    assert not rule.matches({"message": literal + "x"})


@SETTINGS
@given(pattern=chars, texts=st.lists(st.text(alphabet="ab*?\\.", max_size=7), min_size=1, max_size=6))
def test_wildcard_patterns_agree_with_the_reference(kit: Any, pattern: str, texts: list[str]) -> None:
    rule = kit.compile({"s": {"message": pattern}, "condition": "s"})
    for text in texts:
        assert rule.matches({"message": text}) is ref_wildcard(pattern, text), (pattern, text)


# ---------------------------------------------------------------- encodings


@SETTINGS
@given(
    needle=st.text(alphabet="abcXYZ01 -/", min_size=1, max_size=12),
    prefix=st.binary(max_size=5),
    suffix=st.binary(max_size=5),
)
def test_base64offset_finds_the_needle_at_every_offset(kit: Any, needle: str, prefix: bytes, suffix: bytes) -> None:
    rule = kit.compile({"s": {"message|base64offset|contains": needle}, "condition": "s"})
    for extra in (b"", b"x", b"xy"):  # the three alignments of the needle in the encoded stream
        encoded = base64.b64encode(extra + prefix + needle.encode() + suffix).decode()
        assert rule.matches({"message": encoded}), (extra + prefix, needle)


@SETTINGS
@given(
    words=st.lists(st.text(alphabet="abc", min_size=1, max_size=4), min_size=1, max_size=3),
    dashes=st.lists(st.sampled_from(["-", "/", "\u2013", "\u2014", "\u2015"]), min_size=3, max_size=3),
)
def test_windash_matches_every_dash_variant(kit: Any, words: list[str], dashes: list[str]) -> None:
    value = " ".join(f"-{w}" for w in words)
    rule = kit.compile({"s": {"process.command_line|windash|contains": value}, "condition": "s"})
    variant = " ".join(f"{d}{w}" for d, w in zip(dashes, words, strict=False))
    assert rule.matches({"process": {"command_line": f"cmd.exe {variant} tail"}}), variant
    assert not rule.matches({"process": {"command_line": f"cmd.exe {variant.replace(dashes[0], '+', 1)} tail"}})
