"""Reading a dotted field from a nested ECS document, arrays flattened (any element may match)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

Getter = Callable[[dict[str, Any]], list[Any]]


@lru_cache(maxsize=4096)
def field_getter(name: str) -> Getter:
    """A function returning every value of ``name`` in a document (``[]`` when absent).

    >>> field_getter("event.category")({"event": {"category": ["authentication", "web"]}})
    ['authentication', 'web']
    >>> field_getter("user.id")({"user.id": "flat-keys-work-too"})
    ['flat-keys-work-too']
    """
    parts = tuple(name.split("."))

    def slow(doc: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [doc]
        for part in parts:
            nxt: list[Any] = []
            for node in nodes:
                if isinstance(node, dict) and part in node:
                    nxt.extend(_as_list(node[part]))
            if not nxt:
                return []
            nodes = nxt
        return nodes

    if len(parts) == 1:

        def get1(doc: dict[str, Any]) -> list[Any]:
            value = doc.get(name, _MISSING)
            if value is _MISSING:
                return []
            return value if type(value) is list else [value]

        return get1

    if len(parts) == 2:
        first, second = parts

        def get2(doc: dict[str, Any]) -> list[Any]:
            node = doc.get(first, _MISSING)
            if type(node) is dict:
                value = node.get(second, _MISSING)
                if value is not _MISSING:
                    return value if type(value) is list else [value]
            elif type(node) is list:
                return slow(doc)
            if name in doc:  # flat dotted key
                return _as_list(doc[name])
            return []

        return get2

    if len(parts) == 3:
        a, b, c = parts

        def get3(doc: dict[str, Any]) -> list[Any]:
            node = doc.get(a, _MISSING)
            if type(node) is dict:
                node = node.get(b, _MISSING)
                if type(node) is dict:
                    value = node.get(c, _MISSING)
                    if value is not _MISSING:
                        return value if type(value) is list else [value]
                elif type(node) is list:
                    return slow(doc)
            elif type(node) is list:
                return slow(doc)
            if name in doc:  # flat dotted key
                return _as_list(doc[name])
            return []

        return get3

    def get(doc: dict[str, Any]) -> list[Any]:
        node: Any = doc
        for part in parts:  # fast path: objects all the way down
            if type(node) is not dict:
                if isinstance(node, list):
                    return slow(doc)
                break
            node = node.get(part, _MISSING)
            if node is _MISSING:
                break
        else:
            return node if type(node) is list else [node]
        if name in doc:  # flat dotted key
            return _as_list(doc[name])
        return []

    return get


_MISSING: Any = object()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class FieldView(dict[str, list[Any]]):
    """A document seen as ``field name -> values``, each field read once (what predicates receive).

    >>> view = FieldView.of({"user": {"id": "u1"}, "tags": ["a", "b"]})
    >>> view["user.id"], view["tags"], view["nope"]
    (['u1'], ['a', 'b'], [])
    """

    __slots__ = ("doc",)
    doc: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> FieldView:
        view = cls()
        view.doc = doc
        return view

    def __missing__(self, name: str) -> list[Any]:
        get = _GETTERS.get(name)
        if get is None:
            get = _GETTERS[name] = field_getter(name)
        values = self[name] = get(self.doc)
        return values


_GETTERS: dict[str, Getter] = {}


def read(view: FieldView, name: str) -> list[Any]:
    """``view[name]`` without the ``__missing__`` dispatch (the same values; for hot paths)."""
    values = view.get(name)
    if values is None:
        get = _GETTERS.get(name)
        if get is None:
            get = _GETTERS[name] = field_getter(name)
        values = view[name] = get(view.doc)
    return values


def as_view(doc: dict[str, Any]) -> FieldView:
    return doc if isinstance(doc, FieldView) else FieldView.of(doc)


def first_value(doc: dict[str, Any], name: str) -> Any:
    """The first non-null value of ``name`` (``None`` when absent); ``doc`` may be a :class:`FieldView`."""
    values = doc[name] if isinstance(doc, FieldView) else field_getter(name)(doc)
    for value in values:
        if value is not None:
            return value
    return None


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """A nested document from dotted keys (``{"user.id": 1}`` -> ``{"user": {"id": 1}}``); nested input is merged.

    >>> nest({"user.id": "u1", "user": {"name": "n"}, "@timestamp": "t"})
    {'user': {'id': 'u1', 'name': 'n'}, '@timestamp': 't'}
    """
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            value = nest(value)
        *parents, leaf = key.split(".") if key != "@timestamp" else [key]
        node = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = _merge(node[leaf], value)
        else:
            node[leaf] = value
    return out


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
