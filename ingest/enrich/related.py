"""Fill ``related.ip`` and ``related.user`` from the address and user fields of a document (deduplicated).

Runs before pseudonymization, so that ``related.user`` holds the same pseudonyms as ``user.id`` afterwards.

>>> RelatedEnricher()({"source": {"ip": "203.0.113.9"}, "user": {"id": "u1", "target": {"name": "u2"}},
...                     "related": {"user": ["u1"]}})["related"]
{'user': ['u1', 'u2'], 'ip': ['203.0.113.9']}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

DEFAULT_IP_FIELDS: Final = (
    "source.ip",
    "network.forwarded_ip",
    "client.ip",
    "destination.ip",
    "server.ip",
    "host.ip",
)
DEFAULT_USER_FIELDS: Final = (
    "user.id",
    "user.name",
    "user.email",
    "user.target.id",
    "user.target.name",
    "user.target.email",
    "user.changes.name",
    "user.effective.id",
    "user.effective.name",
    "source.user.name",
    "destination.user.name",
)


Tree = dict[str, "Tree | str"]


def _tree(groups: dict[str, Iterable[str]]) -> Tree:
    """Nested dict of the fields; a leaf holds the name of its group (``"user"`` or ``"ip"``)."""
    root: Tree = {}
    for group, fields in groups.items():
        for name in fields:
            *parents, leaf = name.split(".")
            node = root
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValueError(f"{name}: its parent is also a field")
                node = child
            node[leaf] = group
    return root


def _gather(node: dict[str, Any], tree: Tree, found: dict[str, dict[str, None]]) -> None:
    for key, sub in tree.items():
        value = node.get(key)
        if value is None:
            continue
        if type(sub) is str:
            if type(value) is str:
                if value:
                    found[sub][value] = None
            elif type(value) is list:
                out = found[sub]
                for v in value:
                    if type(v) is str and v:
                        out[v] = None
        elif type(value) is dict and type(sub) is dict:
            _gather(value, sub, found)


class RelatedEnricher:
    """Append the values of ``ip_fields`` to ``related.ip`` and of ``user_fields`` to ``related.user``."""

    def __init__(
        self, ip_fields: Iterable[str] = DEFAULT_IP_FIELDS, user_fields: Iterable[str] = DEFAULT_USER_FIELDS
    ) -> None:
        self.ip_fields = tuple(ip_fields)
        self.user_fields = tuple(user_fields)
        self._tree = _tree({"user": list(self.user_fields), "ip": list(self.ip_fields)})

    def __repr__(self) -> str:
        return "RelatedEnricher()"

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        related = doc.get("related")
        if type(related) is not dict:
            related = {}
        found: dict[str, dict[str, None]] = {"user": {}, "ip": {}}
        for name in ("user", "ip"):
            existing = related.get(name)
            if type(existing) is list:
                found[name].update((v, None) for v in existing if type(v) is str and v)
            elif type(existing) is str and existing:
                found[name][existing] = None
        _gather(doc, self._tree, found)
        for name in ("user", "ip"):
            if found[name]:
                related[name] = list(found[name])
        if related:
            doc["related"] = related
        return doc
