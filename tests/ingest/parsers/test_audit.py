"""The platform audit parser: raw audit JSON -> ECS document, or ParseError with a reason code."""

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
from ingest.parsers.audit import ACTIONS, ADMIN_ROLES, PRIVILEGED_ACTIONS, parse
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record

#: ECS 8.17 event.category -> the event.type values allowed with it
ECS_TYPES_BY_CATEGORY = {
    "authentication": {"start", "end", "info"},
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "database": {"access", "change", "info", "error"},
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
}
REASONS = {"invalid_json", "not_an_object", "missing_field", "bad_timestamp", "bad_ip", "bad_field"}

FULL: dict[str, Any] = {
    "timestamp": "2026-11-02T23:58:12.004+01:00",
    "id": "aud_01",
    "action": "role.granted",
    "outcome": "success",
    "org_id": "org_1",
    "actor": {
        "id": "user_a",
        "email": "a@example.com",
        "name": "alice",
        "type": "user",
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "org_id": "org_other",
        "roles": ["member", "billing"],
    },
    "target": {"type": "user", "id": "user_b", "email": "b@example.com", "name": "bob"},
    "metadata": {"role": "admin", "ticket": "SEC-1"},
}
MINIMAL: dict[str, Any] = {"timestamp": "2026-11-02T08:00:00Z", "action": "user.login"}


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def raw(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    return raw({**base, **changes})


def audit(**changes: Any) -> dict[str, Any]:
    return flatten(parse(with_(MINIMAL, **changes)))


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_full_event_maps_every_documented_field() -> None:
    assert flatten(parse(raw(FULL))) == {
        "@timestamp": "2026-11-02T22:58:12.004Z",
        "event.kind": "event",
        "event.category": ["iam"],
        "event.type": ["user", "change"],
        "event.action": "role.granted",
        "event.outcome": "success",
        "event.id": "aud_01",
        "event.dataset": "logwarden.audit",
        "event.module": "logwarden",
        "user.id": "user_a",
        "user.email": "a@example.com",
        "user.name": "alice",
        "user.roles": ["member", "billing"],
        "user.target.id": "user_b",
        "user.target.email": "b@example.com",
        "user.target.name": "bob",
        "source.ip": "203.0.113.9",
        "source.address": "203.0.113.9",
        "user_agent.original": "Mozilla/5.0",
        "organization.id": "org_1",
        "related.ip": ["203.0.113.9"],
        "related.user": ["user_a", "a@example.com", "alice", "user_b", "b@example.com", "bob"],
        "logwarden.source": "audit",
        "logwarden.audit.known_action": True,
        "logwarden.audit.privileged_action": True,
        "logwarden.audit.actor_type": "user",
        "logwarden.audit.actor_is_admin": False,
        "logwarden.audit.target_type": "user",
        "logwarden.audit.self_action": False,
        "logwarden.audit.hour_utc": 22,
        "logwarden.audit.weekday_utc": 1,
        "logwarden.audit.role": "admin",
        "logwarden.audit.metadata": '{"role":"admin","ticket":"SEC-1"}',
    }


def test_minimal_event() -> None:
    assert audit() == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event.kind": "event",
        "event.category": ["authentication"],
        "event.type": ["start"],
        "event.action": "user.login",
        "event.outcome": "unknown",
        "event.dataset": "logwarden.audit",
        "event.module": "logwarden",
        "logwarden.source": "audit",
        "logwarden.audit.known_action": True,
        "logwarden.audit.privileged_action": False,
        "logwarden.audit.hour_utc": 8,
        "logwarden.audit.weekday_utc": 1,
    }


def test_parser_is_registered_without_a_splitter() -> None:
    assert PARSERS["audit"] is parse
    assert "audit" not in SPLITTERS


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_known_action_has_an_ecs_valid_categorization(action: str) -> None:
    doc = audit(action=action)
    categories, types = doc["event.category"], doc["event.type"]
    assert categories and types
    allowed = set().union(*(ECS_TYPES_BY_CATEGORY[c] for c in categories))
    assert set(types) <= allowed, f"{action}: {types} not allowed with {categories}"
    assert doc["logwarden.audit.known_action"] is True
    assert doc["logwarden.audit.privileged_action"] is (action in PRIVILEGED_ACTIONS)


@pytest.mark.parametrize(
    ("action", "category", "event_type"),
    [
        ("user.login", ["authentication"], ["start"]),
        ("user.logout", ["authentication"], ["end"]),
        ("user.mfa.challenge", ["authentication"], ["info"]),
        ("user.mfa.removed", ["iam"], ["user", "change"]),
        ("api_key.created", ["iam"], ["creation"]),
        ("api_key.revoked", ["iam"], ["deletion"]),
        ("member.removed", ["iam"], ["user", "deletion"]),
        ("data.export", ["database"], ["access"]),
        ("audit_log.settings.changed", ["configuration"], ["change"]),
    ],
)
def test_categorization_of_action_families(action: str, category: list[str], event_type: list[str]) -> None:
    doc = audit(action=action)
    assert (doc["event.category"], doc["event.type"]) == (category, event_type)


def test_unknown_action_is_accepted_and_flagged() -> None:
    doc = audit(action="billing.plan.changed", metadata={"role": "admin", "rows": 5})
    assert doc["event.action"] == "billing.plan.changed"
    assert doc["logwarden.audit.known_action"] is False
    assert doc["event.type"] == ["info"]
    assert "event.category" not in doc
    assert "logwarden.audit.role" not in doc  # no typed extraction for actions we do not know
    assert doc["logwarden.audit.metadata"] == '{"role":"admin","rows":5}'


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("success", "success"), ("failure", "failure"), ("FAILURE", "failure"), ("Unknown", "unknown"), (None, "unknown")],
)
def test_outcome(outcome: str | None, expected: str) -> None:
    assert audit(outcome=outcome)["event.outcome"] == expected


def test_failure_reason_is_event_reason() -> None:
    doc = audit(outcome="failure", reason="invalid_password")
    assert (doc["event.outcome"], doc["event.reason"]) == ("failure", "invalid_password")


@pytest.mark.parametrize("actor_type", ["user", "service", "API_KEY"])
def test_actor_types(actor_type: str) -> None:
    assert audit(actor={"id": "x", "type": actor_type})["logwarden.audit.actor_type"] == actor_type.lower()


def test_api_key_actor_goes_to_the_key_field_not_the_user() -> None:
    doc = audit(actor={"id": "key_1", "type": "api_key", "email": "owner@example.com"})
    assert doc["logwarden.api.key_id"] == "key_1"
    assert "user.id" not in doc
    assert doc["user.email"] == "owner@example.com"
    assert doc["related.user"] == ["owner@example.com"]


def test_organization_falls_back_to_the_actor_org() -> None:
    assert audit(actor={"org_id": "org_9"})["organization.id"] == "org_9"
    assert audit(actor={"org_id": "org_9"}, org_id="org_1")["organization.id"] == "org_1"


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [
        ({"id": "u1"}, {"type": "user", "id": "u1"}, True),
        ({"id": "u1"}, {"type": "user", "id": "u2"}, False),
        ({"email": "Ana@Example.com"}, {"type": "user", "email": "ana@example.com"}, True),
        ({"id": "u1", "email": "a@example.com"}, {"type": "user", "id": "u2", "email": "a@example.com"}, False),
        ({"id": "u1"}, {"id": "u1"}, True),  # a target without a type is a user
        ({"id": "u1"}, {"type": "user", "email": "a@example.com"}, None),  # nothing to compare
        ({}, {"type": "user", "id": "u1"}, None),
        ({"id": "u1"}, {"type": "api_key", "id": "u1"}, None),  # only user targets can be the actor
    ],
)
def test_self_action(actor: dict[str, str], target: dict[str, str], expected: bool | None) -> None:
    doc = audit(action="role.granted", actor=actor, target=target)
    assert doc.get("logwarden.audit.self_action") is expected


def test_non_user_target_ids_go_to_the_audit_namespace_user_target_ids_never_do() -> None:
    key = audit(action="api_key.revoked", target={"type": "api_key", "id": "key_1", "name": "ci"})
    assert (key["logwarden.audit.target_id"], key["logwarden.audit.target_name"]) == ("key_1", "ci")
    assert not any(name.startswith("user.target") for name in key)
    user = audit(action="member.removed", target={"type": "User", "id": "user_9", "name": "bob"})
    assert (user["user.target.id"], user["user.target.name"], user["logwarden.audit.target_type"]) == (
        "user_9",
        "bob",
        "user",
    )
    assert "logwarden.audit.target_id" not in user
    assert "logwarden.audit.target_name" not in user


@pytest.mark.parametrize(
    ("roles", "expected"),
    [(["member"], False), (["Owner"], True), (["billing", "admin"], True), ([], False), (None, None)],
)
def test_actor_is_admin(roles: list[str] | None, expected: bool | None) -> None:
    assert {"owner", "admin"} == ADMIN_ROLES
    doc = audit(actor={"id": "u", "roles": roles})
    assert doc.get("logwarden.audit.actor_is_admin") is expected


def test_duplicate_roles_are_kept_once() -> None:
    assert audit(actor={"roles": ["admin", "admin", "billing"]})["user.roles"] == ["admin", "billing"]


@pytest.mark.parametrize("action", ["role.granted", "role.removed", "member.invited"])
def test_role_metadata(action: str) -> None:
    assert audit(action=action, metadata={"role": "admin"})["logwarden.audit.role"] == "admin"


@pytest.mark.parametrize("action", ["user.mfa.challenge", "user.mfa.enrolled", "user.mfa.removed"])
def test_mfa_method_metadata(action: str) -> None:
    assert audit(action=action, metadata={"method": "push"})["logwarden.audit.mfa_method"] == "push"


def test_export_metadata() -> None:
    doc = audit(action="data.export", metadata={"rows": 120000, "bytes": 12345.0, "format": "csv", "x": [1]})
    assert doc["logwarden.audit.export.rows"] == 120000
    assert doc["logwarden.audit.export.bytes"] == 12345
    assert isinstance(doc["logwarden.audit.export.bytes"], int)
    assert doc["logwarden.audit.export.format"] == "csv"


@pytest.mark.parametrize(
    ("retention", "shortened"),
    [
        ({"old": 365, "new": 7}, True),
        ({"old": 7, "new": 365}, False),
        ({"old": 30, "new": 30}, False),
        ({"new": 7}, None),
    ],
)
def test_retention_shortened(retention: dict[str, int], shortened: bool | None) -> None:
    doc = audit(action="audit_log.settings.changed", metadata={"retention_days": retention})
    assert doc.get("logwarden.audit.retention_shortened") is shortened
    assert doc["logwarden.audit.retention_days.new"] == retention["new"]
    assert doc["logwarden.audit.changed_keys"] == ["retention_days"]


@pytest.mark.parametrize(
    ("enabled", "disabled"),
    [
        ({"old": True, "new": False}, True),
        ({"new": False}, True),
        ({"old": False, "new": False}, False),
        ({"old": False, "new": True}, False),
        ({"old": True}, None),
    ],
)
def test_logging_disabled(enabled: dict[str, bool], disabled: bool | None) -> None:
    doc = audit(action="audit_log.settings.changed", metadata={"enabled": enabled})
    assert doc.get("logwarden.audit.logging_disabled") is disabled
    assert doc.get("logwarden.audit.logging_enabled.old") is enabled.get("old")


def test_changed_keys_are_the_old_new_objects_plus_the_listed_ones_sorted() -> None:
    metadata = {"sso_required": {"old": True, "new": False}, "note": "x", "a": {"new": 1}, "changed_keys": ["b", "a"]}
    doc = audit(action="org.settings.changed", metadata=metadata)
    assert doc["logwarden.audit.changed_keys"] == ["a", "b", "sso_required"]


def test_metadata_json_is_sorted_and_independent_of_key_order() -> None:
    one = audit(metadata={"b": 1, "a": {"y": 2, "x": 1}})["logwarden.audit.metadata"]
    two = audit(metadata={"a": {"x": 1, "y": 2}, "b": 1})["logwarden.audit.metadata"]
    assert one == two == '{"a":{"x":1,"y":2},"b":1}'
    assert "logwarden.audit.metadata" not in audit(metadata={})


def test_metadata_nesting_too_deep_to_store_is_a_bad_field() -> None:
    deep = "[" * 300 + "]" * 300  # orjson reads 1024 levels but writes 254
    data = b'{"timestamp": "2026-11-02T08:00:00Z", "action": "x", "metadata": {"a": ' + deep.encode() + b"}}"
    assert reason_of(data) == "bad_field"


@pytest.mark.parametrize(
    ("timestamp", "hour", "weekday"),
    [("2026-11-02T00:00:00Z", 0, 1), ("2026-11-01T23:59:59.999Z", 23, 7), ("2026-11-07T12:00:00+13:00", 23, 5)],
)
def test_hour_and_weekday_in_utc(timestamp: str, hour: int, weekday: int) -> None:
    doc = audit(timestamp=timestamp)
    assert (doc["logwarden.audit.hour_utc"], doc["logwarden.audit.weekday_utc"]) == (hour, weekday)


def test_empty_and_null_optional_fields_are_dropped() -> None:
    doc = audit(id="", reason=None, actor={"id": "", "ip": "", "roles": None}, target=None, metadata=None)
    assert not {"event.id", "event.reason", "user.id", "source.ip", "related.ip", "user.roles"} & set(doc)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "invalid_json"),
        (b"[]", "not_an_object"),
        (raw({"action": "user.login"}), "missing_field"),
        (raw({"timestamp": "2026-11-02T08:00:00Z"}), "missing_field"),
        (with_(MINIMAL, action=""), "missing_field"),
        (with_(MINIMAL, action=7), "bad_field"),
        (with_(MINIMAL, timestamp="2026-11-02"), "bad_timestamp"),
        (with_(MINIMAL, timestamp="2026-11-02T08:00:00"), "bad_timestamp"),
        (with_(MINIMAL, outcome="partial"), "bad_field"),
        (with_(MINIMAL, outcome=True), "bad_field"),
        (with_(MINIMAL, reason=5), "bad_field"),
        (with_(MINIMAL, actor="user_1"), "bad_field"),
        (with_(MINIMAL, actor={"type": "robot"}), "bad_field"),
        (with_(MINIMAL, actor={"id": 17}), "bad_field"),
        (with_(MINIMAL, actor={"ip": "10.0.0.300"}), "bad_ip"),
        (with_(MINIMAL, actor={"ip": 10}), "bad_ip"),
        (with_(MINIMAL, actor={"roles": "admin"}), "bad_field"),
        (with_(MINIMAL, actor={"roles": ["admin", 1]}), "bad_field"),
        (with_(MINIMAL, actor={"roles": [""]}), "bad_field"),
        (with_(MINIMAL, target=["user_1"]), "bad_field"),
        (with_(MINIMAL, target={"id": {"x": 1}}), "bad_field"),
        (with_(MINIMAL, metadata="role=admin"), "bad_field"),
        (with_(MINIMAL, action="role.granted", metadata={"role": ["admin"]}), "bad_field"),
        (with_(MINIMAL, action="data.export", metadata={"rows": -1}), "bad_field"),
        (with_(MINIMAL, action="data.export", metadata={"rows": 1.5}), "bad_field"),
        (with_(MINIMAL, action="data.export", metadata={"bytes": "1MB"}), "bad_field"),
        (with_(MINIMAL, action="audit_log.settings.changed", metadata={"retention_days": 7}), "bad_field"),
        (with_(MINIMAL, action="audit_log.settings.changed", metadata={"retention_days": {"new": "7"}}), "bad_field"),
        (with_(MINIMAL, action="audit_log.settings.changed", metadata={"enabled": {"new": "false"}}), "bad_field"),
        (with_(MINIMAL, action="org.settings.changed", metadata={"changed_keys": "a,b"}), "bad_field"),
        # metadata of an unknown action is not interpreted: no error
    ],
)
def test_bad_records_raise_parse_error_with_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"actor": {"ip": "nope"}}, "actor.ip"),
        ({"actor": {"roles": 1}}, "actor.roles"),
        ({"target": {"email": 1}}, "target.email"),
        ({"action": "data.export", "metadata": {"rows": "x"}}, "metadata.rows"),
        ({"action": "audit_log.settings.changed", "metadata": {"retention_days": {"old": -1}}}, "retention_days.old"),
        ({"action": "audit_log.settings.changed", "metadata": {"enabled": {"old": 1}}}, "enabled.old"),
    ],
)
def test_error_messages_name_the_nested_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ParseError, match=field.replace(".", r"\.")):
        parse(with_(MINIMAL, **changes))


def test_unknown_action_metadata_of_any_shape_is_accepted() -> None:
    doc = audit(action="x.y", metadata={"rows": "lots", "retention_days": 7})
    assert doc["logwarden.audit.metadata"] == '{"retention_days":7,"rows":"lots"}'


def test_normalizer_turns_an_audit_record_into_an_event() -> None:
    events, dead = Normalizer().normalize_all([Record("audit", raw(FULL), "audit", 0, 7)])
    assert dead == []
    (event,) = events
    assert isinstance(event, NormalizedEvent)
    assert event.doc == parse(raw(FULL))


def test_parse_is_deterministic_and_does_not_mutate_shared_state() -> None:
    data = raw(FULL)
    first = parse(data)
    first["event"]["category"].append("mutated")
    first["user"]["roles"].append("mutated")
    assert parse(data) == parse(raw(FULL))
    assert parse(data)["event"]["category"] == ["iam"]


# ---------------------------------------------------------------------------------------------------------------
# property tests

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
plausible: dict[str, st.SearchStrategy[Any]] = {
    "action": st.sampled_from([*ACTIONS, "x.y", ""]),
    "outcome": st.sampled_from(["success", "failure", "FAILURE", "meh"]),
    "actor": st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=6),
            "email": st.text(max_size=6),
            "type": st.sampled_from(["user", "service", "api_key", "bot"]),
            "ip": st.ip_addresses().map(str) | st.text(max_size=8),
            "roles": st.lists(st.sampled_from(["admin", "owner", "member", ""]), max_size=3) | json_values,
        },
    ),
    "target": st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["user", "api_key", "org"]),
            "id": st.text(max_size=6),
            "email": st.text(max_size=6),
        },
    ),
    "metadata": st.fixed_dictionaries(
        {},
        optional={
            "role": st.text(max_size=6) | json_values,
            "method": st.text(max_size=6),
            "rows": st.integers(-5, 2**60) | json_values,
            "bytes": st.floats(allow_nan=False) | st.integers(),
            "retention_days": st.fixed_dictionaries({}, optional={"old": st.integers(-1, 999), "new": json_values}),
            "enabled": st.fixed_dictionaries({}, optional={"old": st.booleans(), "new": json_values}),
            "changed_keys": st.lists(st.text(max_size=4), max_size=3) | json_values,
        },
    ),
}


def _mutated() -> st.SearchStrategy[dict[str, Any]]:
    pairs = st.sampled_from(sorted(plausible)).flatmap(
        lambda key: st.tuples(st.just(key), plausible[key] | json_values)
    )
    return st.lists(pairs, max_size=4).map(lambda changes: {**FULL, **dict(changes)})


@given(_mutated())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_events_are_parsed_or_refused_with_catalogued_fields(event: dict[str, Any]) -> None:
    data = json.dumps(event).encode()
    try:
        doc = parse(data)
    except ParseError as exc:
        assert exc.reason in REASONS
        return
    flat = flatten(doc)
    assert set(flat) <= set(EVENT_FIELDS), sorted(set(flat) - set(EVENT_FIELDS))
    assert doc["event"]["outcome"] in {"success", "failure", "unknown"}
    for name in ("logwarden.audit.known_action", "logwarden.audit.self_action", "logwarden.audit.actor_is_admin"):
        assert flat.get(name) in (None, True, False)
