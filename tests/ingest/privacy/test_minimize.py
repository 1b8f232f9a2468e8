"""Data minimization: catalogue and per-source allowlists, event.original."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ingest.ecs import EVENT_FIELDS
from ingest.privacy.minimize import Minimizer, expand_patterns

CATALOGUE = {
    "@timestamp": "date",
    "event.kind": "keyword",
    "event.original": "keyword",
    "user.id": "keyword",
    "user.name": "keyword",
    "url.path": "keyword",
    "url.query": "keyword",
    "related.ip": "ip",
    "source.geo.location": "geo_point",
    "logwarden.source": "keyword",
    "logwarden.privacy.key_id": "keyword",
}


def doc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event": {"kind": "event", "original": "raw"},
        "user": {"id": "u1", "name": "n1"},
        "url": {"path": "/v1/x", "query": "a=b"},
        "related": {"ip": ["203.0.113.1"]},
        "logwarden": {"source": "api_access"},
    }
    base.update(extra)
    return base


def test_catalogued_fields_are_kept_and_event_original_dropped() -> None:
    out = Minimizer(CATALOGUE)(doc())
    assert out == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event": {"kind": "event"},
        "user": {"id": "u1", "name": "n1"},
        "url": {"path": "/v1/x", "query": "a=b"},
        "related": {"ip": ["203.0.113.1"]},
        "logwarden": {"source": "api_access"},
    }


def test_uncatalogued_and_malformed_fields_are_dropped_and_named(caplog: pytest.LogCaptureFixture) -> None:
    d = doc(secret={"x": 1}, user={"id": {"nested": "obj"}, "name": "n", "pw": "x"}, url="scalar-not-object")
    d["related"] = {"ip": [{"a": 1}]}
    with caplog.at_level(logging.WARNING):
        out = Minimizer(CATALOGUE)(d)
    assert out["user"] == {"name": "n"}
    assert "secret" not in out and "url" not in out and "related" not in out
    assert out["logwarden"]["privacy"]["dropped"] == ["related.ip", "secret", "url", "user.id", "user.pw"]
    assert "user.pw" in caplog.text and "'x'" not in caplog.text


def test_geo_point_objects_are_leaves() -> None:
    ok = Minimizer(CATALOGUE)(doc(source={"geo": {"location": {"lat": 1.5, "lon": 2}}}))
    assert ok["source"]["geo"]["location"] == {"lat": 1.5, "lon": 2}
    bad = Minimizer(CATALOGUE)(doc(source={"geo": {"location": {"lat": 1.5, "lon": 2, "x": "y"}}}))
    assert "source" not in bad


def test_per_source_allowlist() -> None:
    m = Minimizer(CATALOGUE, allowlists={"api_access": ["user.id", "url.*"]})
    out = m(doc())
    assert out["user"] == {"id": "u1"}
    assert out["url"] == {"path": "/v1/x", "query": "a=b"}
    assert "related" not in out
    assert out["@timestamp"] and out["event"] == {"kind": "event"} and out["logwarden"]["source"] == "api_access"
    assert "privacy" not in out["logwarden"]  # allowlisted-away fields are dropped by configuration, not reported
    other = m(doc(logwarden={"source": "audit"}))
    assert other["user"] == {"id": "u1", "name": "n1"}


def test_keep_original() -> None:
    assert Minimizer(CATALOGUE, keep_original=True)(doc())["event"]["original"] == "raw"
    m = Minimizer(CATALOGUE, keep_original_sources=["audit"])
    assert "original" not in m(doc())["event"]
    assert m(doc(logwarden={"source": "audit"}))["event"]["original"] == "raw"


def test_event_original_alone_leaves_no_empty_object() -> None:
    assert "event" not in Minimizer(CATALOGUE)({"event": {"original": "raw"}})


def test_expand_patterns() -> None:
    assert expand_patterns(CATALOGUE, ["url.*", "user.id", "url.path"]) == ["url.path", "url.query", "user.id"]
    assert expand_patterns(CATALOGUE, ["*"]) == list(CATALOGUE)
    for bad in ["nope", "nope.*"]:
        with pytest.raises(ValueError, match="matches no catalogued field"):
            expand_patterns(CATALOGUE, [bad])


def test_default_minimizer_keeps_every_golden_field() -> None:
    """The default (whole catalogue) keeps a full api_access document as it is."""
    from ingest.parsers.api_access import parse

    raw = (
        b'{"timestamp":"2026-11-02T08:00:00Z","method":"POST","path":"/v1/x","query":"a=1","status":200,'
        b'"user_id":"u","api_key_id":"k","client_ip":"203.0.113.1","forwarded_for":["10.0.0.1"],"model":"m",'
        b'"user_agent":"curl/8","tls_version":"TLSv1.3","latency_ms":1.5,"mfa":true}'
    )
    parsed = parse(raw)
    assert Minimizer(EVENT_FIELDS)(parse(raw)) == parsed


def test_null_leaves_are_not_reported_as_dropped() -> None:
    out = Minimizer(CATALOGUE)(doc(user={"id": None, "name": "n"}))
    assert out["user"] == {"id": None, "name": "n"}
    assert "privacy" not in out["logwarden"]
