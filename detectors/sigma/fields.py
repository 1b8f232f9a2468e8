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

    def get(doc: dict[str, Any]) -> list[Any]:
        if name in doc:  # flat dotted key
            return _as_list(doc[name])
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

    return get


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
