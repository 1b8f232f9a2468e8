"""related.ip / related.user filling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.enrich.related import RelatedEnricher


def test_fills_from_addresses_and_users() -> None:
    doc = {
        "source": {"ip": "203.0.113.9"},
        "network": {"forwarded_ip": "10.0.0.1"},
        "user": {"id": "u1", "name": "alice", "email": "a@example.com", "target": {"id": "u2", "name": "bob"}},
    }
    related = RelatedEnricher()(doc)["related"]
    assert related == {"user": ["u1", "alice", "a@example.com", "u2", "bob"], "ip": ["203.0.113.9", "10.0.0.1"]}


def test_keeps_existing_values_first_and_dedupes() -> None:
    doc = {
        "source": {"ip": "203.0.113.9"},
        "user": {"id": "u1"},
        "related": {"ip": ["10.0.0.2", "203.0.113.9"], "user": ["u1", "x"]},
    }
    assert RelatedEnricher()(doc)["related"] == {"user": ["u1", "x"], "ip": ["10.0.0.2", "203.0.113.9"]}


def test_lists_scalars_and_junk() -> None:
    doc = {"user": {"id": ["a", "b", 3, ""], "name": {"odd": 1}}, "related": {"user": "c", "ip": 5}}
    assert RelatedEnricher()(doc)["related"] == {"user": ["c", "a", "b"], "ip": 5}  # junk it cannot use is left


def test_nothing_to_relate_adds_nothing() -> None:
    assert RelatedEnricher()({"event": {"kind": "event"}}) == {"event": {"kind": "event"}}
    assert RelatedEnricher()({"user": "not an object"}) == {"user": "not an object"}


def test_configured_fields() -> None:
    enricher = RelatedEnricher(ip_fields=["client.ip"], user_fields=["user.name"])
    doc = {"client": {"ip": "192.0.2.1"}, "source": {"ip": "192.0.2.2"}, "user": {"id": "u", "name": "n"}}
    assert enricher(doc)["related"] == {"user": ["n"], "ip": ["192.0.2.1"]}


@given(st.lists(st.text(min_size=1, max_size=5), max_size=6), st.lists(st.text(min_size=1, max_size=5), max_size=6))
def test_related_user_is_the_ordered_union(existing: list[str], ids: list[str]) -> None:
    doc = {"related": {"user": list(existing)}, "user": {"id": ids}}
    out = RelatedEnricher()(doc).get("related", {}).get("user", [])
    assert out == list(dict.fromkeys([*existing, *ids]))
