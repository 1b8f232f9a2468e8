"""Data minimization: keep only the fields allowed for the document's source.

The default allows every catalogued field (:data:`ingest.ecs.EVENT_FIELDS`), so a field a parser writes by
mistake never reaches the store (Elasticsearch keeps unmapped fields in ``_source``). A per-source allowlist
narrows that down: ``{"api_access": ["user.*", "url.path", ...]}``. ``event.original`` (the raw record) is
dropped unless configured to keep it. Uncatalogued fields that were dropped are named in
``logwarden.privacy.dropped`` (a parser or catalogue bug to fix); fields left out of an allowlist are
dropped silently, by configuration.

A leaf must hold a scalar or a list of scalars (``geo_point`` leaves: ``{"lat": .., "lon": ..}``); an object
where the catalogue has a leaf, or a scalar where it has an object, is dropped too.

>>> m = Minimizer({"@timestamp": "date", "user.id": "keyword", "logwarden.source": "keyword",
...                "event.original": "keyword"})
>>> m({"@timestamp": "t", "user": {"id": "u", "pw": "x"}, "event": {"original": "raw"}})
{'@timestamp': 't', 'user': {'id': 'u'}, 'logwarden': {'privacy': {'dropped': ['user.pw']}}}
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from ingest.privacy._doc import Tree, build_tree, privacy_node

log = logging.getLogger(__name__)

#: Always kept, whatever an allowlist says (when catalogued).
ALWAYS_ALLOWED: Final = ("@timestamp", "event.kind", "event.dataset", "event.module", "logwarden.source")
ALWAYS_ALLOWED_PREFIXES: Final = ("logwarden.privacy.",)
_MISSING: Final = object()
_MAX_DROPPED_NAMES: Final = 32


def expand_patterns(catalogue: Collection[str], patterns: Iterable[str]) -> list[str]:
    """Catalogued fields matched by ``patterns`` (exact names, ``prefix.*`` or ``*``); unknown -> ValueError.

    >>> expand_patterns(["user.id", "user.name", "url.path"], ["user.*"])
    ['user.id', 'user.name']
    """
    out: dict[str, None] = {}
    for pattern in patterns:
        if pattern == "*":
            matched = list(catalogue)
        elif pattern.endswith(".*"):
            matched = [f for f in catalogue if f.startswith(pattern[:-1])]
        else:
            matched = [pattern] if pattern in catalogue else []
        if not matched:
            raise ValueError(f"{pattern!r} matches no catalogued field")
        out.update(dict.fromkeys(matched))
    return list(out)


class Minimizer:
    """Drop every field not allowed for the document's source (``logwarden.source``)."""

    def __init__(
        self,
        catalogue: Mapping[str, str],
        *,
        allowlists: Mapping[str, Iterable[str]] | None = None,
        keep_original: bool = False,
        keep_original_sources: Collection[str] = (),
    ) -> None:
        geo = frozenset(name for name, kind in catalogue.items() if kind == "geo_point")
        self._catalogue: Tree = _mark_geo(build_tree(catalogue), geo)
        always = [f for f in catalogue if f in ALWAYS_ALLOWED or f.startswith(ALWAYS_ALLOWED_PREFIXES)]
        self._per_source: dict[str, Tree] = {
            source: _mark_geo(build_tree(dict.fromkeys([*expand_patterns(catalogue, patterns), *always])), geo)
            for source, patterns in (allowlists or {}).items()
        }
        self.keep_original = keep_original
        self.keep_original_sources = frozenset(keep_original_sources)
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Minimizer(allowlists={sorted(self._per_source)}, keep_original={self.keep_original})"

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        source = self.prepare(doc)
        allowed = self._per_source.get(source, self._catalogue) if type(source) is str else self._catalogue
        if _clean(doc, allowed):  # the common case: one read-only pass, nothing to drop
            return doc
        dropped: list[str] = []
        _filter(doc, allowed, self._catalogue, "", dropped)
        if dropped:
            self._warn(dropped)
            privacy_node(doc)["dropped"] = sorted(dropped)[:_MAX_DROPPED_NAMES]
        return doc

    @property
    def catalogue_tree(self) -> Tree:
        """The catalogue as a field tree (``geo_point`` leaves marked), what a source without allowlist keeps."""
        return self._catalogue

    @property
    def source_trees(self) -> dict[str, Tree]:
        """Source -> field tree of its allowlist."""
        return self._per_source

    def prepare(self, doc: dict[str, Any]) -> Any:
        """The document's ``logwarden.source``; drops ``event.original`` (and an emptied ``event``) unless kept."""
        lw = doc.get("logwarden")
        source = lw.get("source") if type(lw) is dict else None
        if not (self.keep_original or source in self.keep_original_sources):
            event = doc.get("event")
            if type(event) is dict and "original" in event:
                del event["original"]
                if not event:
                    del doc["event"]
        return source

    def warn(self, names: list[str]) -> None:
        """Log the dropped names not logged yet (bounded)."""
        self._warn(names)

    def _warn(self, names: list[str]) -> None:
        new = [n for n in names if n not in self._warned]
        if new and len(self._warned) < 1024:
            self._warned.update(new)
            log.warning(
                "dropped uncatalogued or malformed fields (add them to ingest/ecs.py or fix the parser): %s", new
            )


GEO_LEAF: Final[Any] = object()  # leaf marker of geo_point fields: {"lat": .., "lon": ..} objects are leaves
SCALAR_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def _mark_geo(tree: Tree, geo: frozenset[str], prefix: str = "") -> Tree:
    for key, sub in tree.items():
        if sub is None:
            if f"{prefix}{key}" in geo:
                tree[key] = GEO_LEAF
        else:
            _mark_geo(sub, geo, f"{prefix}{key}.")
    return tree


def all_scalars(values: list[Any]) -> bool:
    return all(map(SCALAR_TYPES.__contains__, map(type, values)))


def is_geo_point(value: Any) -> bool:
    return (
        type(value) is dict
        and len(value) == 2
        and type(value.get("lat")) in (int, float)
        and type(value.get("lon")) in (int, float)
    )


def _clean(node: dict[str, Any], allowed: Tree) -> bool:
    """True when ``node`` holds only allowed fields of the right shape (what :func:`_filter` would keep)."""
    for key, value in node.items():
        sub: Any = allowed.get(key, _MISSING)
        if sub is None:
            kind = type(value)
            if kind not in SCALAR_TYPES and not (kind is list and all_scalars(value)):
                return False
        elif sub is _MISSING:
            return False
        elif sub is GEO_LEAF:
            if not is_geo_point(value):
                return False
        elif type(value) is not dict or not value or not _clean(value, sub):
            return False
    return True


def _filter(node: dict[str, Any], allowed: Tree, catalogue: Tree | None, prefix: str, out: list[str]) -> None:
    """Remove from ``node`` what ``allowed`` does not allow; name in ``out`` what the catalogue does not know."""
    remove: list[str] | None = None
    for key, value in node.items():
        sub: Any = allowed.get(key, _MISSING)
        kind = type(value)
        if sub is None:  # a leaf: a scalar or a list of scalars
            if kind in SCALAR_TYPES or (kind is list and all_scalars(value)):
                continue
            out.append(f"{prefix}{key}"[:128])
        elif sub is _MISSING:
            if catalogue is None or key not in catalogue:
                out.append(f"{prefix}{key}"[:128])
        elif sub is GEO_LEAF:
            if is_geo_point(value):
                continue
            out.append(f"{prefix}{key}"[:128])
        elif kind is dict:
            cat = catalogue.get(key) if catalogue is not None else None
            _filter(value, sub, cat if type(cat) is dict else None, f"{prefix}{key}.", out)
            if value:
                continue
        else:  # a scalar where the catalogue has an object
            out.append(f"{prefix}{key}"[:128])
        if remove is None:
            remove = []
        remove.append(key)
    if remove:
        for key in remove:
            del node[key]
