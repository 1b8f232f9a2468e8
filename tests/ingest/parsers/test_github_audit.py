"""The GitHub organization audit-log parser (and its JSON-array splitter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, SPLITTERS
from ingest.parsers._common import split_json_array
from ingest.parsers.github_audit import parse
from ingest.pipeline import Normalizer
from ingest.records import Record

ECS_TYPES_BY_CATEGORY = {
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "file": {"access", "change", "creation", "deletion", "info"},
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
}
REASONS = {"invalid_json", "not_an_object", "missing_field", "bad_timestamp", "bad_ip", "bad_field"}

FULL: dict[str, Any] = {
    "@timestamp": 1793606400123,
    "_document_id": "Xq0cRvl2sHJ4mJqwZbXg1A",
    "action": "org.add_member",
    "actor": "octo-admin",
    "actor_id": 1048576,
    "actor_ip": "203.0.113.10",
    "actor_is_bot": False,
    "actor_location": {"country_code": "DE"},
    "business": "example-enterprise",
    "created_at": 1793606400123,
    "external_identity_nameid": "octo.admin@example.com",
    "operation_type": "create",
    "org": "example-org",
    "org_id": 98765432,
    "permission": "read",
    "request_id": "C0DE:1A2B",
    "user": "new-hire",
    "user_agent": "Mozilla/5.0",
    "user_id": 2097152,
}
MINIMAL: dict[str, Any] = {"@timestamp": 1793606400000, "action": "repo.create"}


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


def github(**changes: Any) -> dict[str, Any]:
    return flatten(parse(with_(MINIMAL, **changes)))


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_full_event_maps_every_documented_field() -> None:
    assert flatten(parse(raw(FULL))) == {
        "@timestamp": "2026-11-02T08:00:00.123Z",
        "event.kind": "event",
        "event.category": ["iam"],
        "event.type": ["group", "user", "change"],
        "event.action": "org.add_member",
        "event.outcome": "success",
        "event.id": "Xq0cRvl2sHJ4mJqwZbXg1A",
        "event.dataset": "github.audit",
        "event.module": "github",
        "user.name": "octo-admin",
        "user.id": "1048576",
        "user.email": "octo.admin@example.com",
        "user.target.name": "new-hire",
        "user.target.id": "2097152",
        "source.ip": "203.0.113.10",
        "source.address": "203.0.113.10",
        "source.geo.country_iso_code": "DE",
        "user_agent.original": "Mozilla/5.0",
        "organization.name": "example-org",
        "organization.id": "98765432",
        "http.request.id": "C0DE:1A2B",
        "related.ip": ["203.0.113.10"],
        "related.user": ["octo-admin", "new-hire"],
        "logwarden.source": "github_audit",
        "logwarden.github.permission": "read",
        "logwarden.github.operation_type": "create",
        "logwarden.github.business": "example-enterprise",
        "logwarden.github.actor_is_bot": False,
    }


def test_minimal_event() -> None:
    assert github() == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event.kind": "event",
        "event.category": ["configuration"],
        "event.type": ["creation"],
        "event.action": "repo.create",
        "event.outcome": "success",
        "event.dataset": "github.audit",
        "event.module": "github",
        "logwarden.source": "github_audit",
    }


def test_parser_and_splitter_are_registered() -> None:
    assert PARSERS["github_audit"] is parse
    assert SPLITTERS["github_audit"] is split_json_array


@pytest.mark.parametrize(
    ("action", "category", "types"),
    [
        ("org.add_member", ["iam"], ["group", "user", "change"]),
        ("org.update_member", ["iam"], ["group", "user", "change"]),
        ("org.remove_outside_collaborator", ["iam"], ["group", "user", "change"]),
        ("repo.add_member", ["iam"], ["group", "user", "change"]),
        ("team.add_member", ["iam"], ["group", "user", "change"]),
        ("team.create", ["iam"], ["group", "creation"]),
        ("team.destroy", ["iam"], ["group", "deletion"]),
        ("repo.create", ["configuration"], ["creation"]),
        ("repo.destroy", ["configuration"], ["deletion"]),
        ("repo.access", ["configuration"], ["change"]),
        ("protected_branch.destroy", ["configuration"], ["deletion"]),
        ("protected_branch.rejected_ref_update", ["configuration"], ["change"]),
        ("org.disable_two_factor_requirement", ["configuration"], ["change"]),
        ("hook.create", ["configuration"], ["creation"]),
        ("oauth_application.create", ["iam"], ["creation"]),
        ("personal_access_token.request_created", ["iam"], ["creation"]),
        ("personal_access_token.access_revoked", ["iam"], ["change"]),
        ("org_credential_authorization.grant", ["iam"], ["creation"]),
        ("org_credential_authorization.revoke", ["iam"], ["deletion"]),
        ("integration_installation.create", ["iam"], ["creation"]),
        ("git.clone", ["file"], ["access"]),
        ("git.fetch", ["file"], ["access"]),
        ("git.push", ["file"], ["change"]),
    ],
)
def test_categorization_by_action_family(action: str, category: list[str], types: list[str]) -> None:
    doc = github(action=action)
    assert (doc["event.category"], doc["event.type"]) == (category, types)
    allowed = set().union(*(ECS_TYPES_BY_CATEGORY[c] for c in category))
    assert set(types) <= allowed


@pytest.mark.parametrize("action", ["pull_request.merge", "workflows.delete_workflow_run", "nodot"])
def test_other_families_have_no_category(action: str) -> None:
    doc = github(action=action)
    assert "event.category" not in doc
    assert doc["event.type"] == ["info"]


@pytest.mark.parametrize(
    ("action", "outcome"),
    [("protected_branch.rejected_ref_update", "failure"), ("repo.destroy", "success"), ("org.rejected", "failure")],
)
def test_outcome(action: str, outcome: str) -> None:
    assert github(action=action)["event.outcome"] == outcome


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1611616633246, "2021-01-25T23:17:13.246Z"),
        (1606929874512, "2020-12-02T17:24:34.512Z"),  # float seconds would round this to .511
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1793606400123.0, "2026-11-02T08:00:00.123Z"),
        ("2026-11-02T09:00:00.5+01:00", "2026-11-02T08:00:00.500Z"),
    ],
)
def test_timestamps_are_epoch_milliseconds(stamp: Any, expected: str) -> None:
    assert github(**{"@timestamp": stamp})["@timestamp"] == expected


def test_created_at_is_the_fallback_timestamp() -> None:
    doc = flatten(parse(raw({"created_at": 1611616633246, "action": "repo.create"})))
    assert doc["@timestamp"] == "2021-01-25T23:17:13.246Z"
    doc = flatten(parse(raw({"@timestamp": None, "created_at": 1611616633246, "action": "repo.create"})))
    assert doc["@timestamp"] == "2021-01-25T23:17:13.246Z"
    both = {"@timestamp": 1793606400000, "created_at": 1611616633246, "action": "repo.create"}
    assert flatten(parse(raw(both)))["@timestamp"] == "2026-11-02T08:00:00.000Z"


@given(st.integers(-62_135_596_800_000, 253_402_300_799_999))
def test_every_millisecond_in_range_is_exact(ms: int) -> None:
    stamp = github(**{"@timestamp": ms})["@timestamp"]
    assert len(stamp) == 24
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp) - datetime(1970, 1, 1, tzinfo=UTC) == timedelta(milliseconds=ms)


def test_ids_are_keywords() -> None:
    doc = github(actor_id=17, user_id="MDQ6VXNlcjE=", org_id=0)
    assert (doc["user.id"], doc["user.target.id"], doc["organization.id"]) == ("17", "MDQ6VXNlcjE=", "0")


def test_visibility_falls_back_to_repository_public() -> None:
    assert github(repository_public=True)["logwarden.github.visibility"] == "public"
    assert github(repository_public=False)["logwarden.github.visibility"] == "private"
    assert github(repository_public=True, visibility="internal")["logwarden.github.visibility"] == "internal"
    assert "logwarden.github.visibility" not in github()


def test_repo_team_and_git_fields() -> None:
    doc = github(
        action="git.clone",
        repository="o/r",
        data={"team": "o/admins"},
        transport_protocol_name="http",
        hashed_token="abc=",
        programmatic_access_type="OAuth access token",
        integration="ci-app",
        actor_is_bot=True,
    )
    assert doc["logwarden.github.repo"] == "o/r"
    assert doc["logwarden.github.team"] == "o/admins"
    assert doc["logwarden.github.transport_protocol"] == "http"
    assert doc["logwarden.github.hashed_token"] == "abc="
    assert doc["logwarden.github.programmatic_access_type"] == "OAuth access token"
    assert doc["logwarden.github.integration"] == "ci-app"
    assert doc["logwarden.github.actor_is_bot"] is True
    assert github(repo="o/a", repository="o/b")["logwarden.github.repo"] == "o/a"
    assert github(team="o/t", data={"team": "o/u"})["logwarden.github.team"] == "o/t"
    assert "logwarden.github.team" not in github(data="o/u")


def test_external_identity_is_an_email_only_when_it_is_an_address() -> None:
    assert github(external_identity_nameid="ana@example.com")["user.email"] == "ana@example.com"
    assert "user.email" not in github(external_identity_nameid="CN=ana,OU=staff")


def test_location_country_name() -> None:
    doc = github(actor_location={"country_code": "US", "country_name": "United States"})
    assert (doc["source.geo.country_iso_code"], doc["source.geo.country_name"]) == ("US", "United States")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"nope", "invalid_json"),
        (raw([MINIMAL]), "not_an_object"),
        (raw({"action": "repo.create"}), "missing_field"),
        (raw({"@timestamp": None, "created_at": None, "action": "repo.create"}), "missing_field"),
        (raw({"@timestamp": 1793606400000}), "missing_field"),
        (with_(MINIMAL, action=""), "missing_field"),
        (with_(MINIMAL, action=["repo.create"]), "bad_field"),
        (with_(MINIMAL, **{"@timestamp": True}), "bad_timestamp"),
        (with_(MINIMAL, **{"@timestamp": "1793606400000"}), "bad_timestamp"),
        (with_(MINIMAL, **{"@timestamp": 10**17}), "bad_timestamp"),
        (with_(MINIMAL, **{"@timestamp": -(10**17)}), "bad_timestamp"),
        (with_(MINIMAL, **{"@timestamp": 1e300}), "bad_timestamp"),
        (with_(MINIMAL, **{"@timestamp": {"ms": 1}}), "bad_timestamp"),
        (with_(MINIMAL, actor_ip="203.0.113.300"), "bad_ip"),
        (with_(MINIMAL, actor_ip=["203.0.113.3"]), "bad_ip"),
        (with_(MINIMAL, actor=7), "bad_field"),
        (with_(MINIMAL, actor_id=1.5), "bad_field"),
        (with_(MINIMAL, actor_id=True), "bad_field"),
        (with_(MINIMAL, org_id=[1]), "bad_field"),
        (with_(MINIMAL, actor_location="DE"), "bad_field"),
        (with_(MINIMAL, actor_location={"country_code": 49}), "bad_field"),
        (with_(MINIMAL, actor_is_bot="false"), "bad_field"),
        (with_(MINIMAL, repository_public=1), "bad_field"),
        (with_(MINIMAL, visibility=True), "bad_field"),
    ],
)
def test_bad_records_raise_parse_error_with_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_api_array_is_split_into_events() -> None:
    page = [
        {**FULL, "_document_id": "a"},
        {**MINIMAL, "_document_id": "b", "action": "git.clone"},
        {"action": "repo.create"},
    ]
    events, dead = Normalizer().normalize_all([Record("github_audit", json.dumps(page).encode(), "gh", 0, 5)])
    assert [e.doc["event"]["id"] for e in events] == ["a", "b"]
    assert [e.record.value for e in events] == [orjson.dumps(page[0]), orjson.dumps(page[1])]
    (letter,) = dead
    assert (letter.reason, letter.record.value) == ("missing_field", b'{"action":"repo.create"}')


def test_a_streamed_single_event_is_parsed_as_sent() -> None:
    body = json.dumps(FULL, indent=1).encode()
    (event,), dead = Normalizer().normalize_all([Record("github_audit", body)])
    assert dead == []
    assert event.record.value == body
    assert event.doc == parse(raw(FULL))


# ---------------------------------------------------------------------------------------------------------------
# property tests

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
plausible: dict[str, st.SearchStrategy[Any]] = {
    "@timestamp": st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=30),
    "action": st.text(alphabet="abcgit._-", max_size=24),
    "actor_ip": st.ip_addresses().map(str) | st.text(max_size=10),
    "actor_id": st.integers(-(2**63), 2**64 - 1) | st.text(max_size=6),
}


def _mutated() -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted({*FULL, "repo", "visibility", "repository_public", "data", "team"})
    pairs = st.sampled_from(keys).flatmap(lambda key: st.tuples(st.just(key), plausible.get(key, json_values)))
    return st.lists(
        pairs | st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), json_values)), max_size=4
    ).map(lambda changes: {**FULL, **dict(changes)})


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
    assert flat["event.outcome"] in {"success", "failure"}
