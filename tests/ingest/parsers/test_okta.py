"""The Okta System Log parser and the JSON-array splitter."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, SPLITTERS
from ingest.parsers._common import split_json_array
from ingest.parsers.okta import parse
from ingest.pipeline import Normalizer, document_id
from ingest.records import Record

ECS_TYPES_BY_CATEGORY = {
    "authentication": {"start", "end", "info"},
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
    "intrusion_detection": {"allowed", "denied", "info"},
    "session": {"start", "end", "info"},
}
REASONS = {"invalid_json", "not_an_object", "missing_field", "bad_timestamp", "bad_ip", "bad_field"}

FULL: dict[str, Any] = {
    "uuid": "5b1e0c7a-98f4-11f0-8a1b-2f3c4d5e6f70",
    "published": "2026-11-02T08:00:00.123Z",
    "eventType": "user.session.start",
    "version": "0",
    "severity": "INFO",
    "displayMessage": "User login to Okta",
    "actor": {"id": "00u1", "type": "User", "alternateId": "ana@example.com", "displayName": "Ana Example"},
    "client": {
        "userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"},
        "zone": "null",
        "device": "Computer",
        "ipAddress": "203.0.113.45",
        "geographicalContext": {
            "city": "Berlin",
            "state": "Land Berlin",
            "country": "Germany",
            "postalCode": "10117",
            "geolocation": {"lat": 52.5167, "lon": 13.4},
        },
    },
    "outcome": {"result": "SUCCESS", "reason": None},
    "target": [{"id": "0oa1", "type": "AppInstance", "alternateId": "Console", "displayName": "Okta Admin Console"}],
    "authenticationContext": {
        "authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
        "credentialType": "PASSWORD",
        "externalSessionId": "102abc",
    },
    "securityContext": {"asNumber": 3320, "asOrg": "dtag", "isp": "deutsche telekom ag", "isProxy": False},
    "debugContext": {
        "debugData": {
            "requestId": "req1",
            "requestUri": "/idp/idx/identify",
            "threatSuspected": "false",
            "risk": "{level=LOW}",
            "behaviors": "{New Geo-Location=NEGATIVE, New Device=POSITIVE}",
            "factor": "OKTA_VERIFY_PUSH",
        }
    },
    "transaction": {"type": "WEB", "id": "tx1", "detail": {}},
    "request": {"ipChain": [{"ip": "203.0.113.45", "version": "V4"}, {"ip": "10.0.0.8", "version": "V4"}]},
}
MINIMAL: dict[str, Any] = {"published": "2026-11-02T08:00:00Z", "eventType": "user.session.start"}


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def raw(event: Any) -> bytes:
    return orjson.dumps(event)


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    return raw({**base, **changes})


def okta(**changes: Any) -> dict[str, Any]:
    return flatten(parse(with_(MINIMAL, **changes)))


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_full_event_maps_every_documented_field() -> None:
    assert flatten(parse(raw(FULL))) == {
        "@timestamp": "2026-11-02T08:00:00.123Z",
        "message": "User login to Okta",
        "event.kind": "event",
        "event.category": ["authentication", "session"],
        "event.type": ["start"],
        "event.action": "user.session.start",
        "event.outcome": "success",
        "event.id": "5b1e0c7a-98f4-11f0-8a1b-2f3c4d5e6f70",
        "event.dataset": "logwarden.okta",
        "event.module": "okta",
        "user.id": "00u1",
        "user.name": "ana@example.com",
        "user.email": "ana@example.com",
        "source.ip": "203.0.113.45",
        "source.address": "203.0.113.45",
        "source.geo.country_name": "Germany",
        "source.geo.region_name": "Land Berlin",
        "source.geo.city_name": "Berlin",
        "source.as.number": 3320,
        "source.as.organization.name": "dtag",
        "user_agent.original": "Mozilla/5.0",
        "url.path": "/idp/idx/identify",
        "related.ip": ["203.0.113.45", "10.0.0.8"],
        "related.user": ["00u1", "ana@example.com"],
        "logwarden.source": "okta",
        "logwarden.okta.severity": "INFO",
        "logwarden.okta.outcome_result": "SUCCESS",
        "logwarden.okta.actor.type": "User",
        "logwarden.okta.target.type": ["AppInstance"],
        "logwarden.okta.target.id": ["0oa1"],
        "logwarden.okta.target.name": ["Okta Admin Console"],
        "logwarden.okta.client.os": "Mac OS X",
        "logwarden.okta.client.browser": "CHROME",
        "logwarden.okta.client.device": "Computer",
        "logwarden.okta.geo.lat": 52.5167,
        "logwarden.okta.geo.lon": 13.4,
        "logwarden.okta.isp": "deutsche telekom ag",
        "logwarden.okta.is_proxy": False,
        "logwarden.okta.session_id": "102abc",
        "logwarden.okta.credential_type": "PASSWORD",
        "logwarden.okta.auth_provider": "OKTA_AUTHENTICATION_PROVIDER",
        "logwarden.okta.transaction.id": "tx1",
        "logwarden.okta.transaction.type": "WEB",
        "logwarden.okta.request_id": "req1",
        "logwarden.okta.threat_suspected": False,
        "logwarden.okta.risk_level": "LOW",
        "logwarden.okta.behaviors": ["New Device"],
        "logwarden.okta.factor": "OKTA_VERIFY_PUSH",
    }


def test_minimal_event() -> None:
    assert okta() == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event.kind": "event",
        "event.category": ["authentication", "session"],
        "event.type": ["start"],
        "event.action": "user.session.start",
        "event.outcome": "unknown",
        "event.dataset": "logwarden.okta",
        "event.module": "okta",
        "logwarden.source": "okta",
    }


def test_parser_and_splitter_are_registered() -> None:
    assert PARSERS["okta"] is parse
    assert SPLITTERS["okta"] is split_json_array


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        ("SUCCESS", "success"),
        ("ALLOW", "success"),
        ("success", "success"),
        ("FAILURE", "failure"),
        ("DENY", "failure"),
        ("SKIPPED", "unknown"),
        ("CHALLENGE", "unknown"),
        ("UNKNOWN", "unknown"),
        (None, "unknown"),
    ],
)
def test_outcome_mapping_keeps_the_raw_result(result: str | None, outcome: str) -> None:
    doc = okta(outcome={"result": result, "reason": "WHY"})
    assert doc["event.outcome"] == outcome
    assert doc.get("logwarden.okta.outcome_result") == result
    assert doc["event.reason"] == "WHY"


@pytest.mark.parametrize(
    ("event_type", "category", "types"),
    [
        ("user.session.start", ["authentication", "session"], ["start"]),
        ("user.session.end", ["session"], ["end"]),
        ("user.session.expire", ["session"], ["end"]),
        ("user.session.access_admin_app", ["session"], ["info"]),
        ("user.authentication.sso", ["authentication"], ["info"]),
        ("user.authentication.auth_via_mfa", ["authentication"], ["info"]),
        ("user.mfa.okta_verify.deny_push", ["authentication"], ["info"]),
        ("user.mfa.attempt_bypass", ["authentication"], ["info"]),
        ("user.mfa.factor.deactivate", ["iam"], ["user", "change"]),
        ("user.mfa.factor.reset_all", ["iam"], ["user", "change"]),
        ("system.push.send_factor_verify_push", ["authentication"], ["info"]),
        ("user.account.lock", ["iam"], ["user", "change"]),
        ("user.account.privilege.grant", ["iam"], ["user", "change"]),
        ("user.lifecycle.create", ["iam"], ["user", "creation"]),
        ("user.lifecycle.suspend", ["iam"], ["user", "change"]),
        ("application.user_membership.add", ["iam"], ["user", "change"]),
        ("group.user_membership.remove", ["iam"], ["group", "user", "change"]),
        ("group.lifecycle.create", ["iam"], ["group", "creation"]),
        ("group.privilege.grant", ["iam"], ["group", "change"]),
        ("policy.evaluate_sign_on", ["authentication"], ["info"]),
        ("policy.lifecycle.update", ["configuration"], ["change"]),
        ("policy.lifecycle.delete", ["configuration"], ["deletion"]),
        ("policy.rule.create", ["configuration"], ["creation"]),
        ("application.lifecycle.delete", ["configuration"], ["deletion"]),
        ("zone.update", ["configuration"], ["change"]),
        ("system.api_token.create", ["iam"], ["creation"]),
        ("system.api_token.revoke", ["iam"], ["deletion"]),
        ("security.threat.detected", ["intrusion_detection"], ["info"]),
        ("security.request.blocked", ["intrusion_detection"], ["denied"]),
    ],
)
def test_categorization_by_family(event_type: str, category: list[str], types: list[str]) -> None:
    doc = okta(eventType=event_type)
    assert (doc["event.category"], doc["event.type"]) == (category, types)
    allowed = set().union(*(ECS_TYPES_BY_CATEGORY[c] for c in category))
    assert set(types) <= allowed


def test_unknown_family_has_no_category() -> None:
    doc = okta(eventType="app.oauth2.as.authorize.code")
    assert "event.category" not in doc
    assert doc["event.type"] == ["info"]


def test_non_user_actor_goes_to_the_okta_namespace() -> None:
    doc = okta(actor={"id": "0oa9", "type": "PublicClientApp", "alternateId": "0oa9", "displayName": "terraform"})
    assert not any(name.startswith("user.") for name in doc)
    assert "related.user" not in doc
    assert (doc["logwarden.okta.actor.id"], doc["logwarden.okta.actor.name"]) == ("0oa9", "terraform")
    assert doc["logwarden.okta.actor.type"] == "PublicClientApp"


def test_user_display_names_are_not_kept() -> None:
    doc = flatten(parse(raw(FULL)))
    assert "Ana Example" not in json.dumps(doc)


def test_login_that_is_not_an_address_is_a_name_only() -> None:
    doc = okta(actor={"id": "00u2", "type": "User", "alternateId": "DOMAIN\\ana"})
    assert doc["user.name"] == "DOMAIN\\ana"
    assert "user.email" not in doc


def test_unknown_placeholders_are_dropped() -> None:
    doc = okta(
        actor={"id": "unknown", "type": "User", "alternateId": "ana@example.com", "displayName": "unknown"},
        client={"userAgent": {"os": "Unknown", "browser": "UNKNOWN"}, "device": "Unknown", "zone": "null"},
        target=[{"id": "x1", "type": "AuthenticatorEnrollment", "alternateId": "unknown", "displayName": "unknown"}],
    )
    assert "user.id" not in doc
    assert doc["user.name"] == "ana@example.com"
    assert doc["related.user"] == ["ana@example.com"]
    assert not any(name.startswith("logwarden.okta.client") for name in doc)
    assert "logwarden.okta.target.name" not in doc


def test_targets_first_user_first_group_and_the_others() -> None:
    doc = okta(
        target=[
            {"id": "app1", "type": "AppInstance", "displayName": "Slack"},
            {"id": "00u5", "type": "User", "alternateId": "bo@example.com", "displayName": "Bo"},
            {"id": "00u6", "type": "User", "alternateId": "cy@example.com"},
            {"id": "00g1", "type": "UserGroup", "displayName": "admins"},
            {"id": "00g2", "type": "UserGroup", "displayName": "devs"},
        ]
    )
    assert (doc["user.target.id"], doc["user.target.name"], doc["user.target.email"]) == (
        "00u5",
        "bo@example.com",
        "bo@example.com",
    )
    assert (doc["group.id"], doc["group.name"]) == ("00g1", "admins")
    assert doc["logwarden.okta.target.type"] == ["AppInstance", "User", "UserGroup"]
    assert doc["logwarden.okta.target.id"] == ["app1", "00g1", "00g2"]
    assert doc["logwarden.okta.target.name"] == ["Slack", "admins", "devs"]
    assert doc["related.user"] == ["00u5", "bo@example.com"]


def test_geolocation_needs_both_coordinates() -> None:
    assert "logwarden.okta.geo.lat" not in okta(client={"geographicalContext": {"geolocation": {"lat": 1.0}}})
    doc = okta(client={"geographicalContext": {"geolocation": {"lat": -33, "lon": -70.5}}})
    assert (doc["logwarden.okta.geo.lat"], doc["logwarden.okta.geo.lon"]) == (-33.0, -70.5)
    assert isinstance(doc["logwarden.okta.geo.lat"], float)


@pytest.mark.parametrize(
    ("debug", "expected"),
    [
        ({"threatSuspected": "TRUE"}, {"logwarden.okta.threat_suspected": True}),
        ({"threatSuspected": "maybe"}, {}),
        ({"risk": "{reasons=Anomalous Device, level=high}"}, {"logwarden.okta.risk_level": "HIGH"}),
        ({"risk": "{reasons=none}"}, {}),
        (
            {"behaviors": "{New IP=POSITIVE, Velocity=positive, New City=NEGATIVE}"},
            {"logwarden.okta.behaviors": ["New IP", "Velocity"]},
        ),
        (
            {"privilegeGranted": "Super administrator, Help desk administrator"},
            {"logwarden.okta.privilege_granted": ["Super administrator", "Help desk administrator"]},
        ),
        ({"requestUri": 5, "factor": ["x"], "requestId": None}, {}),  # free-form: non-strings are ignored
    ],
)
def test_debug_data(debug: dict[str, Any], expected: dict[str, Any]) -> None:
    doc = okta(debugContext={"debugData": debug})
    found = {k: v for k, v in doc.items() if k.startswith("logwarden.okta.") or k == "url.path"}
    assert found == expected


@pytest.mark.parametrize("context", [None, "x", {"debugData": None}, {"debugData": [1]}, {}])
def test_odd_debug_context_is_ignored(context: Any) -> None:
    assert okta(debugContext=context)["event.action"] == "user.session.start"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{]", "invalid_json"),
        (raw([MINIMAL]), "not_an_object"),
        (raw({"eventType": "user.session.start"}), "missing_field"),
        (raw({"published": "2026-11-02T08:00:00Z"}), "missing_field"),
        (with_(MINIMAL, published="2026-11-02T08:00:00"), "bad_timestamp"),
        (with_(MINIMAL, published=None), "bad_timestamp"),
        (with_(MINIMAL, eventType=1), "bad_field"),
        (with_(MINIMAL, outcome="SUCCESS"), "bad_field"),
        (with_(MINIMAL, outcome={"result": 1}), "bad_field"),
        (with_(MINIMAL, actor=["00u1"]), "bad_field"),
        (with_(MINIMAL, actor={"id": 5, "type": "User"}), "bad_field"),
        (with_(MINIMAL, client={"ipAddress": "10.0.0.256"}), "bad_ip"),
        (with_(MINIMAL, client={"userAgent": "Mozilla"}), "bad_field"),
        (with_(MINIMAL, client={"geographicalContext": {"geolocation": {"lat": 91, "lon": 0}}}), "bad_field"),
        (with_(MINIMAL, client={"geographicalContext": {"geolocation": {"lat": "1", "lon": 0}}}), "bad_field"),
        (with_(MINIMAL, client={"geographicalContext": {"geolocation": {"lat": 0, "lon": 180.5}}}), "bad_field"),
        (with_(MINIMAL, client={"geographicalContext": {"geolocation": {"lat": True, "lon": 0}}}), "bad_field"),
        (with_(MINIMAL, securityContext={"asNumber": "AS3320"}), "bad_field"),
        (with_(MINIMAL, securityContext={"isProxy": "false"}), "bad_field"),
        (with_(MINIMAL, target={"id": "00u1"}), "bad_field"),
        (with_(MINIMAL, target=["00u1"]), "bad_field"),
        (with_(MINIMAL, target=[{"id": 1, "type": "User"}]), "bad_field"),
        (with_(MINIMAL, request={"ipChain": "10.0.0.1"}), "bad_field"),
        (with_(MINIMAL, request={"ipChain": ["10.0.0.1"]}), "bad_field"),
        (with_(MINIMAL, request={"ipChain": [{"ip": "nope"}]}), "bad_ip"),
    ],
)
def test_bad_records_raise_parse_error_with_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_error_messages_name_the_nested_field() -> None:
    with pytest.raises(ParseError, match=r"target\[1\]\.id"):
        parse(with_(MINIMAL, target=[{"id": "a"}, {"id": 2}]))
    with pytest.raises(ParseError, match=r"request\.ipChain\[1\]\.ip"):
        parse(with_(MINIMAL, request={"ipChain": [{"ip": "10.0.0.1"}, {"ip": "x"}]}))
    with pytest.raises(ParseError, match=r"client\.ipAddress"):
        parse(with_(MINIMAL, client={"ipAddress": "x"}))


# ---------------------------------------------------------------------------------------------------------------
# the splitter


def test_array_is_split_into_one_record_per_event_with_deterministic_bytes() -> None:
    events = [{**FULL, "uuid": f"uuid-{i}", "published": f"2026-11-02T08:00:0{i}.000Z"} for i in range(3)]
    body = json.dumps(events, indent=2).encode()  # pretty-printed, as an API client may save it
    parts = split_json_array(body)
    assert parts == [orjson.dumps(e) for e in events]
    assert split_json_array(body) == parts

    normalized, dead = Normalizer().normalize_all([Record("okta", body, "okta", 0, 42)])
    assert dead == []
    assert [e.doc["event"]["id"] for e in normalized] == ["uuid-0", "uuid-1", "uuid-2"]
    assert [e.record.value for e in normalized] == parts
    assert all(e.record.offset == 42 and e.record.topic == "okta" for e in normalized)
    assert len({e.doc_id for e in normalized}) == 3
    again, _ = Normalizer().normalize_all([Record("okta", body, "okta", 0, 43)])
    assert [e.doc_id for e in again] == [e.doc_id for e in normalized]  # a replay overwrites itself
    assert normalized[0].doc_id == document_id(Record("okta", parts[0]))


@pytest.mark.parametrize("body", [raw(FULL), b'  {"a": 1}\n', b"not json", b"", b"42"])
def test_anything_but_an_array_passes_through_unchanged(body: bytes) -> None:
    assert split_json_array(body) == [body]


def test_leading_whitespace_before_the_array_is_fine() -> None:
    assert split_json_array(b' \n\t[{"a": 1}]') == [b'{"a":1}']


def test_empty_array_holds_no_events() -> None:
    assert split_json_array(b"[]") == []
    assert Normalizer().normalize_all([Record("okta", b"[ ]")]) == ([], [])


def test_invalid_array_is_one_dead_letter_at_the_split_stage() -> None:
    events, dead = Normalizer().normalize_all([Record("okta", b'[{"a": 1}, ', "okta", 1, 9)])
    assert events == []
    (letter,) = dead
    assert (letter.reason, letter.stage, letter.record.value) == ("invalid_json", "split", b'[{"a": 1}, ')


def test_bad_elements_are_dead_letters_on_their_own() -> None:
    body = raw([MINIMAL, 7, {"eventType": "x"}, {**MINIMAL, "uuid": "u2"}])
    events, dead = Normalizer().normalize_all([Record("okta", body)])
    assert [e.doc["event"].get("id") for e in events] == [None, "u2"]
    assert [(d.reason, d.stage, d.record.value) for d in dead] == [
        ("not_an_object", "parse", b"7"),
        ("missing_field", "parse", b'{"eventType":"x"}'),
    ]


def test_an_element_too_deep_to_re_serialize_is_refused_whole() -> None:
    body = b"[" + b"[" * 300 + b"]" * 300 + b"]"
    with pytest.raises(ParseError) as info:
        split_json_array(body)
    assert info.value.reason == "too_deep"


_scalars = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)


@given(st.lists(st.dictionaries(st.text(max_size=6), _scalars, max_size=4), max_size=6))
def test_split_round_trips_every_element(values: list[dict[str, Any]]) -> None:
    parts = split_json_array(raw(values))
    assert [orjson.loads(p) for p in parts] == values


@given(st.binary(max_size=200))
def test_splitter_only_raises_parse_error(data: bytes) -> None:
    try:
        parts = split_json_array(data)
    except ParseError as exc:
        assert exc.reason in {"invalid_json", "too_deep"}
    else:
        assert isinstance(parts, list)


# ---------------------------------------------------------------------------------------------------------------
# property tests on the parser

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
_SUBKEYS = {
    "actor": ["id", "type", "alternateId", "displayName"],
    "client": ["ipAddress", "userAgent", "geographicalContext", "device"],
    "outcome": ["result", "reason"],
    "securityContext": ["asNumber", "asOrg", "isProxy"],
    "debugContext": ["debugData"],
    "request": ["ipChain"],
}


def _mutated() -> st.SearchStrategy[dict[str, Any]]:
    top = st.sampled_from([*FULL, "extra"]).flatmap(lambda key: st.tuples(st.just((key,)), json_values))
    nested = st.sampled_from(sorted(_SUBKEYS)).flatmap(
        lambda key: st.tuples(st.sampled_from(_SUBKEYS[key]).map(lambda sub: (key, sub)), json_values)
    )

    def apply(changes: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(json.dumps(FULL))
        for path, value in changes:
            if len(path) == 1:
                event[path[0]] = value
            elif isinstance(event.get(path[0]), dict):
                event[path[0]][path[1]] = value
        return event

    return st.lists(top | nested, max_size=4).map(apply)


@given(_mutated())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_events_are_parsed_or_refused_with_catalogued_fields(event: dict[str, Any]) -> None:
    try:
        doc = parse(json.dumps(event).encode())
    except ParseError as exc:
        assert exc.reason in REASONS
        return
    flat = flatten(doc)
    assert set(flat) <= set(EVENT_FIELDS), sorted(set(flat) - set(EVENT_FIELDS))
    assert flat["event.outcome"] in {"success", "failure", "unknown"}
