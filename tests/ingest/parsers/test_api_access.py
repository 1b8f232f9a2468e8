"""The API-access parser: raw gateway JSON -> ECS document, or ParseError with a reason code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, get_parser
from ingest.parsers.api_access import LOGIN_ROUTES, MFA_ROUTES, parse

ISO_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

FULL: dict[str, Any] = {
    "timestamp": "2026-11-02T09:30:15.123456+01:00",
    "request_id": "req_0123456789abcdef01234567",
    "client_ip": "203.0.113.7",
    "forwarded_for": ["10.0.0.5", "198.51.100.2"],
    "api_key_id": "key_AbCdEfGh12345678",
    "user_id": "user_abc123def456",
    "org_id": "org_abc123def456",
    "auth_method": "api_key",
    "mfa": False,
    "method": "post",
    "path": "/v1/files/file_1/content",
    "route": "/v1/files/{file_id}/content",
    "query": "limit=10",
    "status": 200,
    "latency_ms": 12.5,
    "bytes_in": 100,
    "bytes_out": 2000,
    "model": "gpt-mini",
    "input_tokens": 0,
    "output_tokens": 20,
    "user_agent": "OpenAI/Python 1.40.0",
    "tls_version": "TLSv1.3",
}

MINIMAL: dict[str, Any] = {"timestamp": "2026-11-02T08:00:00Z", "method": "GET", "path": "/v1/models", "status": 200}


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf fields of a nested document (arrays are leaves, as in Elasticsearch)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def raw(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    return raw({**base, **changes})


def without(base: dict[str, Any], key: str) -> bytes:
    return raw({k: v for k, v in base.items() if k != key})


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_full_event_maps_every_documented_ecs_field() -> None:
    assert flatten(parse(raw(FULL))) == {
        "@timestamp": "2026-11-02T08:30:15.123Z",
        "event.kind": "event",
        "event.category": ["web"],
        "event.type": ["access"],
        "event.action": "api-request",
        "event.outcome": "success",
        "event.dataset": "logwarden.api_access",
        "event.module": "logwarden",
        "event.id": "req_0123456789abcdef01234567",
        "event.duration": 12_500_000,
        "source.ip": "203.0.113.7",
        "source.address": "203.0.113.7",
        "network.forwarded_ip": "10.0.0.5",
        "user.id": "user_abc123def456",
        "organization.id": "org_abc123def456",
        "http.request.id": "req_0123456789abcdef01234567",
        "http.request.method": "POST",
        "http.request.bytes": 100,
        "http.response.status_code": 200,
        "http.response.bytes": 2000,
        "url.path": "/v1/files/file_1/content",
        "url.query": "limit=10",
        "url.original": "/v1/files/file_1/content?limit=10",
        "user_agent.original": "OpenAI/Python 1.40.0",
        "tls.version": "1.3",
        "tls.version_protocol": "tls",
        "gen_ai.request.model.id": "gpt-mini",
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 20,
        "related.ip": ["203.0.113.7", "10.0.0.5", "198.51.100.2"],
        "related.user": ["user_abc123def456"],
        "logwarden.source": "api_access",
        "logwarden.api.key_id": "key_AbCdEfGh12345678",
        "logwarden.api.route": "/v1/files/{file_id}/content",
        "logwarden.api.auth_method": "api_key",
        "logwarden.api.mfa": False,
        "logwarden.api.latency_ms": 12.5,
    }


def test_minimal_event_carries_only_known_fields() -> None:
    doc = flatten(parse(raw(MINIMAL)))
    assert doc == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event.kind": "event",
        "event.category": ["web"],
        "event.type": ["access"],
        "event.action": "api-request",
        "event.outcome": "success",
        "event.dataset": "logwarden.api_access",
        "event.module": "logwarden",
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.path": "/v1/models",
        "url.original": "/v1/models",
        "logwarden.source": "api_access",
        "logwarden.api.route": "/v1/models",
    }


def test_parser_is_registered() -> None:
    assert PARSERS["api_access"] is parse
    assert get_parser("api_access") is parse


def test_unknown_source_names_the_known_parsers() -> None:
    with pytest.raises(ParseError) as info:
        get_parser("nope")
    assert info.value.reason == "unknown_source"
    assert "api_access" in str(info.value)


@pytest.mark.parametrize("route", sorted(LOGIN_ROUTES))
@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "success"), (302, "success"), (399, "success"), (400, "failure"), (401, "failure"), (503, "failure")],
)
def test_login_routes_are_authentication_events(route: str, status: int, outcome: str) -> None:
    doc = parse(with_(MINIMAL, method="POST", path=route, status=status))
    assert doc["event"]["category"] == ["authentication", "web"]
    assert doc["event"]["action"] == "user-login"
    assert doc["event"]["type"] == ["start", "access"]
    assert doc["event"]["outcome"] == outcome


def test_mfa_route_is_an_authentication_event() -> None:
    (route,) = MFA_ROUTES
    doc = parse(with_(MINIMAL, method="POST", path=route, status=401, mfa=False))
    assert doc["event"]["category"] == ["authentication", "web"]
    assert doc["event"]["action"] == "mfa-verify"
    assert doc["event"]["outcome"] == "failure"
    assert doc["logwarden"]["api"]["mfa"] is False


def test_route_template_decides_the_category_not_the_concrete_path() -> None:
    doc = parse(with_(MINIMAL, path="/v1/auth/login", route="/v1/models"))
    assert doc["event"]["category"] == ["web"]
    assert doc["logwarden"]["api"]["route"] == "/v1/models"
    assert doc["url"]["path"] == "/v1/auth/login"


@pytest.mark.parametrize(
    ("status", "outcome"), [(100, "success"), (204, "success"), (404, "failure"), (599, "failure")]
)
def test_outcome_follows_the_status(status: int, outcome: str) -> None:
    assert parse(with_(MINIMAL, status=status))["event"]["outcome"] == outcome


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json at all", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"timestamp": ', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"42", "not_an_object"),
        (without(MINIMAL, "timestamp"), "missing_field"),
        (without(MINIMAL, "method"), "missing_field"),
        (without(MINIMAL, "path"), "missing_field"),
        (without(MINIMAL, "status"), "missing_field"),
        (with_(MINIMAL, path=""), "missing_field"),
        (with_(MINIMAL, status=None), "missing_field"),
        (with_(MINIMAL, timestamp="yesterday"), "bad_timestamp"),
        (with_(MINIMAL, timestamp="2026-11-02T08:00:00"), "bad_timestamp"),
        (with_(MINIMAL, timestamp=None), "bad_timestamp"),
        (with_(MINIMAL, timestamp=True), "bad_timestamp"),
        (with_(MINIMAL, timestamp=["2026-11-02T08:00:00Z"]), "bad_timestamp"),
        (with_(MINIMAL, timestamp=1e300), "bad_timestamp"),
        # converting to UTC leaves the range of datetime (was an uncaught OverflowError)
        (with_(MINIMAL, timestamp="0001-01-01T00:30:00+01:00"), "bad_timestamp"),
        (with_(MINIMAL, timestamp="9999-12-31T23:30:00-01:00"), "bad_timestamp"),
        (with_(MINIMAL, client_ip="999.1.1.1"), "bad_ip"),
        (with_(MINIMAL, client_ip="example.com"), "bad_ip"),
        (with_(MINIMAL, client_ip=17), "bad_ip"),
        (with_(MINIMAL, forwarded_for=["10.0.0.1", "nope"]), "bad_ip"),
        (with_(MINIMAL, forwarded_for="10.0.0.1, nope"), "bad_ip"),
        (with_(MINIMAL, forwarded_for=[7]), "bad_ip"),
        (with_(MINIMAL, forwarded_for=7), "bad_field"),
        (with_(MINIMAL, forwarded_for={"ip": "10.0.0.1"}), "bad_field"),
        (with_(MINIMAL, status=600), "bad_field"),
        (with_(MINIMAL, status=99), "bad_field"),
        (with_(MINIMAL, status="200"), "bad_field"),
        (with_(MINIMAL, status=True), "bad_field"),
        (with_(MINIMAL, method="FETCH"), "bad_field"),
        (with_(MINIMAL, method=1), "bad_field"),
        (with_(MINIMAL, path=["/v1"]), "bad_field"),
        (with_(MINIMAL, user_id=5), "bad_field"),
        (with_(MINIMAL, route={"a": 1}), "bad_field"),
        (with_(MINIMAL, mfa="yes"), "bad_field"),
        (with_(MINIMAL, bytes_in=-1), "bad_field"),
        (with_(MINIMAL, bytes_out="12"), "bad_field"),
        (with_(MINIMAL, input_tokens=2**60), "bad_field"),
        (with_(MINIMAL, latency_ms=-0.5), "bad_field"),
        (with_(MINIMAL, latency_ms="fast"), "bad_field"),
        # a non-integral count was silently truncated (opt_int promises integral floats only)
        (with_(MINIMAL, bytes_in=10.5), "bad_field"),
        (with_(MINIMAL, status=200.7), "bad_field"),
        # the duration in ns must fit event.duration (a long); 1e303 ms was an uncaught OverflowError
        (with_(MINIMAL, latency_ms=1e303), "bad_field"),
        (with_(MINIMAL, latency_ms=1e13), "bad_field"),
    ],
)
def test_bad_records_raise_parse_error_with_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_parse_error_message_names_the_field() -> None:
    with pytest.raises(ParseError, match="client_ip"):
        parse(with_(MINIMAL, client_ip="999.1.1.1"))
    with pytest.raises(ParseError, match=r"forwarded_for\[1\]"):
        parse(with_(MINIMAL, forwarded_for=["10.0.0.1", "nope"]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-02T08:00:00Z", "2026-11-02T08:00:00.000Z"),
        ("2026-11-02T08:00:00.5Z", "2026-11-02T08:00:00.500Z"),
        ("2026-11-02T09:30:15.123456+01:00", "2026-11-02T08:30:15.123Z"),
        ("2026-11-01T23:30:00.999999-05:00", "2026-11-02T04:30:00.999Z"),
        ("2026-11-02T08:00:00+00:00", "2026-11-02T08:00:00.000Z"),
        ("2026-11-02 08:00:00+05:30", "2026-11-02T02:30:00.000Z"),
        (1793606400, "2026-11-02T08:00:00.000Z"),
        (1793606400.25, "2026-11-02T08:00:00.250Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        # years below 1000 keep four digits (strftime wrote "385-07-25...", not RFC 3339)
        ("0385-07-25T07:06:40Z", "0385-07-25T07:06:40.000Z"),
        (-50000000000, "0385-07-25T07:06:40.000Z"),
    ],
)
def test_timestamps_normalize_to_utc_with_milliseconds(value: Any, expected: str) -> None:
    stamp = parse(with_(MINIMAL, timestamp=value))["@timestamp"]
    assert stamp == expected
    assert ISO_MS_UTC.match(stamp)


@pytest.mark.parametrize(
    "forwarded",
    [
        ["10.0.0.5", "198.51.100.2"],
        "10.0.0.5, 198.51.100.2",
        " 10.0.0.5 ,198.51.100.2,",
        ["10.0.0.5", "", "198.51.100.2"],
    ],
)
def test_forwarded_for_as_list_or_comma_string(forwarded: Any) -> None:
    doc = parse(with_(MINIMAL, client_ip="203.0.113.7", forwarded_for=forwarded))
    assert doc["network"]["forwarded_ip"] == "10.0.0.5"
    assert doc["related"]["ip"] == ["203.0.113.7", "10.0.0.5", "198.51.100.2"]


def test_related_ip_is_deduplicated_and_normalized() -> None:
    doc = parse(with_(MINIMAL, client_ip="2001:DB8::0001", forwarded_for=["2001:db8::1", "10.0.0.1"]))
    assert doc["source"]["ip"] == "2001:db8::1"
    assert doc["related"]["ip"] == ["2001:db8::1", "10.0.0.1"]


def test_empty_forwarded_for_leaves_no_field() -> None:
    doc = parse(with_(MINIMAL, forwarded_for=[], client_ip="203.0.113.7"))
    assert "network" not in doc
    assert doc["related"]["ip"] == ["203.0.113.7"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("TLSv1.3", {"version": "1.3", "version_protocol": "tls"}),
        ("SSLv3", {"version": "3", "version_protocol": "ssl"}),
        ("quic", {"version": "quic"}),
    ],
)
def test_tls_version_split(version: str, expected: dict[str, str]) -> None:
    assert parse(with_(MINIMAL, tls_version=version))["tls"] == expected


def test_empty_and_null_optional_fields_are_dropped() -> None:
    doc = parse(with_(MINIMAL, user_id="", org_id=None, query="", model=None, client_ip=""))
    flat = flatten(doc)
    assert not {"user.id", "organization.id", "url.query", "gen_ai.request.model.id", "source.ip", "related.ip"} & set(
        flat
    )
    assert flat["url.original"] == "/v1/models"


def test_method_is_upper_cased() -> None:
    assert parse(with_(MINIMAL, method="delete"))["http"]["request"]["method"] == "DELETE"


def test_integral_floats_are_accepted_as_counts() -> None:
    doc = parse(with_(MINIMAL, status=404.0, bytes_out=12.0))
    assert doc["http"]["response"] == {"status_code": 404, "bytes": 12}
    assert isinstance(doc["http"]["response"]["bytes"], int)


def test_parse_does_not_mutate_or_depend_on_call_order() -> None:
    data = raw(FULL)
    assert parse(data) == parse(data)


# ---------------------------------------------------------------------------------------------------------------
# property tests: untrusted input never raises anything but ParseError

KEYS = [*FULL, "extra", "nested"]
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
plausible = {
    "timestamp": st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        st.text(alphabet="0123456789-:TZ.+ ", max_size=32),
        st.floats(allow_nan=False),
        st.integers(),
    ),
    "client_ip": st.one_of(st.ip_addresses().map(str), st.text(alphabet="0123456789abcdef.:%", max_size=45)),
    "forwarded_for": st.one_of(st.lists(st.ip_addresses().map(str), max_size=3), st.text(max_size=30)),
    "status": st.one_of(st.integers(), st.floats(allow_nan=False)),
    "latency_ms": st.floats(allow_nan=False),
    "method": st.sampled_from(["GET", "post", "Patch", "BREW", ""]),
}


def _mutated_event() -> st.SearchStrategy[dict[str, Any]]:
    """A valid event with some keys replaced by arbitrary or plausible-but-odd values."""
    replacement = st.sampled_from(sorted(KEYS)).flatmap(
        lambda key: st.tuples(st.just(key), plausible.get(key, json_values) | json_values)
    )
    return st.lists(replacement, max_size=4).map(lambda pairs: {**FULL, **dict(pairs)})


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_arbitrary_bytes_only_raise_parse_error(data: bytes) -> None:
    try:
        doc = parse(data)
    except ParseError as exc:
        assert exc.reason in {"invalid_json", "not_an_object", "missing_field", "bad_timestamp", "bad_ip", "bad_field"}
    else:
        assert ISO_MS_UTC.match(doc["@timestamp"])


@given(
    st.one_of(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=12), _mutated_event())
)
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_objects_only_raise_parse_error(event: dict[str, Any]) -> None:
    data = json.dumps(event).encode()  # json, not orjson: integers beyond 64 bits are allowed here
    try:
        doc = parse(data)
    except ParseError as exc:
        assert exc.reason in {"invalid_json", "missing_field", "bad_timestamp", "bad_ip", "bad_field"}
    else:
        assert set(flatten(doc)) <= set(EVENT_FIELDS)
        assert ISO_MS_UTC.match(doc["@timestamp"])
        assert 100 <= doc["http"]["response"]["status_code"] <= 599
        if "duration" in doc["event"]:
            assert 0 <= doc["event"]["duration"] < 2**63


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)
ips = st.ip_addresses().map(str)
words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)
counts = st.integers(min_value=0, max_value=2**40)


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    moment = draw(moments)
    event: dict[str, Any] = {
        "timestamp": moment.isoformat(),
        "method": draw(st.sampled_from(["GET", "POST", "put", "DELETE", "PATCH", "HEAD", "OPTIONS"])),
        "path": draw(st.sampled_from(["/v1/models", "/v1/chat/completions", *LOGIN_ROUTES, *MFA_ROUTES])),
        "status": draw(st.integers(min_value=100, max_value=599)),
    }
    optional = {
        "request_id": words,
        "client_ip": ips,
        "forwarded_for": st.lists(ips, max_size=4) | st.lists(ips, max_size=4).map(", ".join),
        "api_key_id": words,
        "user_id": words,
        "org_id": words,
        "auth_method": st.sampled_from(["api_key", "password", "session", "oauth"]),
        "mfa": st.booleans(),
        "route": st.sampled_from(["/v1/files/{file_id}", *LOGIN_ROUTES]),
        "query": words,
        "latency_ms": st.floats(min_value=0, max_value=1e9),
        "bytes_in": counts,
        "bytes_out": counts,
        "model": words,
        "input_tokens": counts,
        "output_tokens": counts,
        "user_agent": words,
        "tls_version": st.sampled_from(["TLSv1.2", "TLSv1.3", "h3"]),
    }
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        event[key] = draw(optional[key])
    return event, moment


@given(valid_events())
@settings(max_examples=300)
def test_valid_events_only_produce_catalogued_fields(case: tuple[dict[str, Any], datetime]) -> None:
    event, moment = case
    doc = parse(raw(event))
    flat = flatten(doc)
    uncatalogued = sorted(set(flat) - set(EVENT_FIELDS))
    assert not uncatalogued, f"fields missing from ingest.ecs.EVENT_FIELDS: {uncatalogued}"
    utc = moment.astimezone(UTC)
    assert flat["@timestamp"] == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert flat["http.response.status_code"] == event["status"]
    assert flat["event.outcome"] == ("success" if event["status"] < 400 else "failure")
    if "user_id" in event:
        assert flat["user.id"] == event["user_id"]
        assert flat["related.user"] == [event["user_id"]]
    if "client_ip" in event:
        assert flat["related.ip"][0] == flat["source.ip"]
