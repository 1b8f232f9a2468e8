"""Field trees: fast access to a set of dotted fields in nested ECS documents.

A tree is a nested dict built from dotted names; ``None`` marks a leaf. Walking the tree together with
the document visits only the fields that are both wanted and present, which is much cheaper than
flattening the document.

>>> tree = build_tree(["user.id", "user.target.id", "related.user"])
>>> tree
{'user': {'id': None, 'target': {'id': None}}, 'related': {'user': None}}
>>> doc = {"user": {"id": "u1", "name": "n"}, "related": {"user": ["u1"]}}
>>> [(key, value) for _, key, value in iter_leaves(doc, tree)]
[('id', 'u1'), ('user', ['u1'])]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Tree = dict[str, "Tree | None"]


def split_field(name: str) -> list[str]:
    """The path of a dotted field name (``@timestamp`` is one segment)."""
    return [name] if name == "@timestamp" else name.split(".")


def build_tree(fields: Iterable[str]) -> Tree:
    """Nested dict of the dotted ``fields``; a field that is also the parent of another is a ValueError."""
    root: Tree = {}
    for name in fields:
        *parents, leaf = split_field(name)
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if child is None:
                raise ValueError(f"{name}: its parent is also listed as a field")
            node = child
        if node.get(leaf) is not None:
            raise ValueError(f"{name}: listed as a field and as the parent of another")
        node[leaf] = None
    return root


def iter_leaves(doc: dict[str, Any], tree: Tree) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """``(container, key, value)`` for every field of ``tree`` present (not None) in ``doc``."""
    for key, sub in tree.items():
        value = doc.get(key)
        if value is None:
            continue
        if sub is None:
            yield doc, key, value
        elif type(value) is dict:
            yield from iter_leaves(value, sub)


def get_field(doc: dict[str, Any], name: str) -> Any:
    """The value of a dotted field, ``None`` when absent."""
    node: Any = doc
    for part in split_field(name):
        if type(node) is not dict:
            return None
        node = node.get(part)
    return node


def set_field(doc: dict[str, Any], name: str, value: Any) -> None:
    """Set a dotted field, creating the parent objects."""
    *parents, leaf = split_field(name)
    node = doc
    for part in parents:
        child = node.get(part)
        if type(child) is not dict:
            child = node[part] = {}
        node = child
    node[leaf] = value


def privacy_node(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc["logwarden"]["privacy"]``, created when missing."""
    lw = doc.get("logwarden")
    if type(lw) is not dict:
        lw = doc["logwarden"] = {}
    node = lw.get("privacy")
    if type(node) is not dict:
        node = lw["privacy"] = {}
    return node


def add_kinds(doc: dict[str, Any], field: str, kinds: Iterable[str]) -> None:
    """Merge ``kinds`` into the sorted keyword list ``logwarden.privacy.<field>``."""
    node = privacy_node(doc)
    existing = node.get(field)
    merged = set(kinds)
    if isinstance(existing, list):
        merged.update(k for k in existing if isinstance(k, str))
    node[field] = sorted(merged)


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> value of every leaf (lists are leaves).

    >>> flatten({"a": {"b": 1, "c": [2]}, "d": "x"})
    {'a.b': 1, 'a.c': [2], 'd': 'x'}
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if type(value) is dict:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
