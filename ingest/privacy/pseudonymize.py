"""Keyed pseudonyms for user identifiers: same value + same key -> same pseudonym, in every field and source.

A pseudonym is ``ps_<key id>_<32 hex>``: the first 128 bits of HMAC-SHA256(key, UTF-8 value). Rules and
dashboards still group by user (``user.id``, ``related.user`` and ``user.target.id`` of the same person
carry the same pseudonym); without the key nobody can tell which user it is, nor test a guess.
With the key, an authorized analyst can compute the pseudonym of a known identifier
(:meth:`Pseudonymizer.pseudonym`) to find that user's events.

The key id travels in the pseudonym and in ``logwarden.privacy.key_id``: after a key rotation old and
new pseudonyms of a user differ (by design: rotation breaks linkability), and the key id tells which
key made which. Values are hashed exactly as sent (no case folding).

>>> p = Pseudonymizer(b"k" * 32, "k1", ["user.id", "related.user"])
>>> doc = p({"user": {"id": "alice"}, "related": {"user": ["alice", "bob"]}})
>>> doc["user"]["id"] == doc["related"]["user"][0] == p.pseudonym("alice")
True
>>> doc["user"]["id"]
'ps_k1_6664a42048c6d6d7fe3657e39b14155c'
>>> doc["logwarden"]["privacy"]["key_id"]
'k1'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final

from ingest.privacy._doc import Tree, build_tree, privacy_node

#: A key id goes into every pseudonym: short, lower-case letters and digits (no ``_``, the separator).
KEY_ID_PATTERN: Final = re.compile(r"^[a-z0-9]{1,16}$")
PSEUDONYM_PATTERN: Final = re.compile(r"^ps_[a-z0-9]{1,16}_[0-9a-f]{32}$")

#: Identifier fields pseudonymized by default whenever the catalogue has them (see :func:`identifier_fields`).
DEFAULT_IDENTIFIER_FIELDS: Final = (
    "user.id",
    "user.name",
    "user.email",
    "user.full_name",
    "user.target.id",
    "user.target.name",
    "user.target.email",
    "user.target.full_name",
    "user.changes.id",
    "user.changes.name",
    "user.changes.email",
    "user.effective.id",
    "user.effective.name",
    "user.effective.email",
    "related.user",
    "logwarden.api.key_id",
    "logwarden.audit.target_id",
)

# Catalogued keyword fields that look like personal identifiers (checked by the leak test and the
# catalogue test, so a field another source adds is covered or consciously exempted).
_IDENTIFIER_NAME: Final = re.compile(
    r"(?:^|\.)user(?:\.(?!group\.)[a-z_]+)?\.(?:id|name|email|full_name|hash)$"
    r"|\.(?:actor|target|member|owner|principal)\.(?:id|name|email|login|alternate_id|display_name)$"
    r"|\.(?:email|emails|e_mail|username|user_name|user_id|user_login|login|actor|actor_id|actor_login|actor_name"
    r"|actor_email|principal|principal_id|principal_name|key_id|api_key_id|access_key_id|target_id|target_name"
    r"|target_user|target_user_id|target_user_name|target_email|owner_email|owner_login|member|member_login|invitee)$"
    r"|_(?:email|login|username|user_id)$"
)
_NEVER: Final = ("logwarden.privacy.", "user_agent.")


def identifier_fields(catalogue: Mapping[str, str]) -> tuple[str, ...]:
    """The identifier fields of ``catalogue`` to pseudonymize by default (keyword fields only).

    :data:`DEFAULT_IDENTIFIER_FIELDS` plus every keyword field whose name looks like a user identifier
    (``*.user.name``, ``*.email``, ``*.actor_login``, ``*.key_id``, ...).

    >>> identifier_fields({"user.id": "keyword", "source.user.name": "keyword", "user_agent.name": "keyword",
    ...                    "logwarden.github.actor_login": "keyword", "event.id": "keyword"})
    ('user.id', 'logwarden.github.actor_login', 'source.user.name')
    """
    found = [f for f in DEFAULT_IDENTIFIER_FIELDS if catalogue.get(f) == "keyword"]
    found += sorted(
        name
        for name, kind in catalogue.items()
        if kind == "keyword" and name not in found and not name.startswith(_NEVER) and _IDENTIFIER_NAME.search(name)
    )
    return tuple(found)


def derive_key_id(key: bytes) -> str:
    """A stable 8-hex-digit id of ``key`` (an HMAC of a constant: it tells nothing about the key).

    >>> derive_key_id(b"k" * 32)
    '06a6018a'
    """
    return hmac.new(key, b"logwarden pseudonymization key id", hashlib.sha256).hexdigest()[:8]


class Pseudonymizer:
    """Replace the values of ``fields`` (strings, numbers, and every element of lists) by pseudonyms.

    Values that cannot be an identifier of a keyword field (objects, booleans) are removed. Pseudonyms
    are cached (LRU, ``cache_size`` entries): identifiers repeat all day.
    """

    def __init__(self, key: bytes, key_id: str, fields: Iterable[str], *, cache_size: int = 65_536) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonymization key must have at least 16 bytes")
        if not KEY_ID_PATTERN.match(key_id):
            raise ValueError(f"key id must match {KEY_ID_PATTERN.pattern}")
        self.key_id = key_id
        self.fields = tuple(fields)
        self._tree: Tree = build_tree(self.fields)
        self._key = bytes(key)
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._prefix = f"ps_{key_id}_"
        self.pseudonym = lru_cache(maxsize=cache_size)(self._compute)

    def __repr__(self) -> str:  # never the key
        return f"Pseudonymizer(key_id={self.key_id!r}, fields={len(self.fields)})"

    def native_key(self) -> bytes:
        """The key, for the native fast path only (:mod:`ingest.native` hands it to the extension): never log it."""
        return self._key

    def _compute(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return self._prefix + mac.hexdigest()[:32]

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        self._apply(doc, self._tree)
        privacy_node(doc)["key_id"] = self.key_id
        return doc

    def _apply(self, node: dict[str, Any], tree: Tree) -> None:
        for key, sub in tree.items():
            value = node.get(key)
            if value is None:
                continue
            if sub is None:
                new = self._value(value)
                if new is None:
                    del node[key]
                else:
                    node[key] = new
            elif type(value) is dict:
                self._apply(value, sub)

    def pseudonymize_value(self, value: Any) -> Any:
        """The pseudonymized value of an identifier field; ``None`` = remove the field (nothing identifying)."""
        return self._value(value)

    def _value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.pseudonym(value)
        if kind is list:
            out = [p for v in value if (p := self._scalar(v)) is not None]
            return out or None
        return self._scalar(value)

    def _scalar(self, value: Any) -> str | None:
        if type(value) is str:
            return self.pseudonym(value)
        if type(value) is int or type(value) is float:
            return self.pseudonym(str(value))
        return None  # objects, booleans, nested lists: not an identifier; drop rather than keep in clear
