"""CloudTrail records -> ECS documents; the ``{"Records": [...]}`` envelope splitter."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, SPLITTERS
from ingest.parsers.cloudtrail import parse, split
from ingest.pipeline import Normalizer
from ingest.records import Record

IAM_USER: dict[str, Any] = {
    "type": "IAMUser",
    "principalId": "AIDAEXAMPLE000000001",
    "arn": "arn:aws:iam::210987654321:user/alice",
    "accountId": "210987654321",
    "accessKeyId": "AKIAEXAMPLE000000001",
    "userName": "alice",
}
ASSUMED_ROLE: dict[str, Any] = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLE000000002:bob@example.com",
    "arn": "arn:aws:sts::210987654321:assumed-role/Admin/bob@example.com",
    "accountId": "210987654321",
    "accessKeyId": "ASIAEXAMPLE000000002",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLE000000002",
            "arn": "arn:aws:iam::210987654321:role/Admin",
            "accountId": "210987654321",
            "userName": "Admin",
        },
        "attributes": {"creationDate": "2026-11-02T08:00:00Z", "mfaAuthenticated": "true"},
    },
}
RECORD: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": IAM_USER,
    "eventTime": "2026-11-02T08:40:11Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateAccessKey",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.61",
    "userAgent": "aws-cli/2.18.4",
    "requestParameters": {"userName": "carol"},
    "responseElements": {"accessKey": {"accessKeyId": "AKIAEXAMPLE000000003", "status": "Active"}},
    "requestID": "req-1",
    "eventID": "evt-1",
    "readOnly": False,
    "eventType": "AwsApiCall",
    "managementEvent": True,
    "recipientAccountId": "210987654321",
    "tlsDetails": {"tlsVersion": "TLSv1.2"},
}
CONSOLE_LOGIN: dict[str, Any] = {
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE000000001",
        "accountId": "210987654321",
        "userName": "alice",
    },
    "eventTime": "2026-11-02T08:15:42Z",
    "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.61",
    "responseElements": {"ConsoleLogin": "Success"},
    "additionalEventData": {"MFAUsed": "Yes"},
    "eventType": "AwsConsoleSignIn",
    "recipientAccountId": "210987654321",
}


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    return orjson.dumps({**base, **changes})


def without(base: dict[str, Any], key: str) -> bytes:
    return orjson.dumps({k: v for k, v in base.items() if k != key})


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_registered_with_its_splitter() -> None:
    assert PARSERS["cloudtrail"] is parse
    assert SPLITTERS["cloudtrail"] is split


def test_record_maps_every_documented_field() -> None:
    assert flatten(parse(orjson.dumps(RECORD))) == {
        "@timestamp": "2026-11-02T08:40:11.000Z",
        "event.kind": "event",
        "event.category": ["iam"],
        "event.type": ["creation", "user"],
        "event.action": "CreateAccessKey",
        "event.provider": "iam.amazonaws.com",
        "event.outcome": "success",
        "event.dataset": "aws.cloudtrail",
        "event.module": "aws",
        "event.id": "evt-1",
        "cloud.provider": "aws",
        "cloud.region": "us-east-1",
        "cloud.account.id": "210987654321",
        "source.ip": "198.51.100.61",
        "source.address": "198.51.100.61",
        "user_agent.original": "aws-cli/2.18.4",
        "tls.version": "1.2",
        "tls.version_protocol": "tls",
        "user.id": "AIDAEXAMPLE000000001",
        "user.name": "alice",
        "user.target.name": "carol",
        "related.ip": ["198.51.100.61"],
        "related.user": ["alice", "carol"],
        "logwarden.source": "cloudtrail",
        "logwarden.cloudtrail.event_type": "AwsApiCall",
        "logwarden.cloudtrail.user_identity_type": "IAMUser",
        "logwarden.cloudtrail.access_key_id": "AKIAEXAMPLE000000001",
        "logwarden.cloudtrail.read_only": False,
        "logwarden.cloudtrail.request_id": "req-1",
        "logwarden.cloudtrail.request_parameters": '{"userName":"carol"}',
    }


def test_response_elements_are_not_copied() -> None:
    """STS responses carry session credentials; nothing of responseElements may reach the document."""
    secret = {"credentials": {"accessKeyId": "ASIA0", "sessionToken": "TOKEN-SECRET"}}
    doc = parse(
        with_(
            RECORD,
            eventSource="sts.amazonaws.com",
            eventName="AssumeRole",
            requestParameters={"roleArn": "arn:aws:iam::210987654321:role/Admin", "roleSessionName": "s"},
            responseElements=secret,
        )
    )
    assert b"TOKEN-SECRET" not in orjson.dumps(doc)
    assert doc["event"]["category"] == ["iam"]
    assert doc["event"]["type"] == ["info"]


@pytest.mark.parametrize(
    ("response", "extra", "outcome"),
    [
        ({"ConsoleLogin": "Success"}, {}, "success"),
        ({"ConsoleLogin": "Failure"}, {"errorMessage": "Failed authentication"}, "failure"),
        ({"ConsoleLogin": "Success"}, {"errorCode": "Throttling"}, "failure"),
        (None, {}, "unknown"),
        ({}, {}, "unknown"),
    ],
)
def test_console_login_outcome(response: Any, extra: dict[str, Any], outcome: str) -> None:
    doc = parse(with_(CONSOLE_LOGIN, responseElements=response, **extra))
    assert doc["event"]["outcome"] == outcome
    assert doc["event"]["category"] == ["authentication"]
    assert doc["event"]["type"] == ["start"]


def test_console_login_failure_keeps_the_error_message() -> None:
    doc = parse(
        with_(CONSOLE_LOGIN, responseElements={"ConsoleLogin": "Failure"}, errorMessage="Failed authentication")
    )
    assert doc["error"] == {"message": "Failed authentication"}


def test_root_console_login() -> None:
    identity = {
        "type": "Root",
        "principalId": "210987654321",
        "arn": "arn:aws:iam::210987654321:root",
        "accountId": "210987654321",
        "accessKeyId": "",
    }
    doc = flatten(parse(with_(CONSOLE_LOGIN, userIdentity=identity, additionalEventData={"MFAUsed": "No"})))
    assert doc["user.name"] == "root"
    assert doc["user.id"] == "210987654321"
    assert doc["related.user"] == ["root"]
    assert doc["logwarden.cloudtrail.user_identity_type"] == "Root"
    assert doc["logwarden.cloudtrail.mfa_authenticated"] is False
    assert "logwarden.cloudtrail.access_key_id" not in doc  # "" is absent


def test_error_code_means_failure() -> None:
    doc = flatten(parse(with_(RECORD, errorCode="AccessDenied", errorMessage="not authorized")))
    assert doc["event.outcome"] == "failure"
    assert doc["error.code"] == "AccessDenied"
    assert doc["error.message"] == "not authorized"


def test_assumed_role_identity() -> None:
    doc = flatten(parse(with_(RECORD, userIdentity=ASSUMED_ROLE, requestParameters=None)))
    assert doc["user.name"] == "Admin"
    assert doc["user.id"] == "AROAEXAMPLE000000002:bob@example.com"
    assert doc["user.roles"] == ["arn:aws:iam::210987654321:role/Admin"]
    assert doc["related.user"] == ["Admin", "bob@example.com"]
    assert doc["logwarden.cloudtrail.mfa_authenticated"] is True
    assert doc["logwarden.cloudtrail.access_key_id"] == "ASIAEXAMPLE000000002"


def test_assumed_role_without_session_issuer_falls_back_to_the_arn() -> None:
    identity = {k: v for k, v in ASSUMED_ROLE.items() if k != "sessionContext"}
    doc = flatten(parse(with_(RECORD, userIdentity=identity, requestParameters=None)))
    assert doc["user.name"] == "Admin"
    assert "user.roles" not in doc
    assert doc["related.user"] == ["Admin", "bob@example.com"]
    assert "logwarden.cloudtrail.mfa_authenticated" not in doc


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        (
            {
                "type": "FederatedUser",
                "arn": "arn:aws:sts::210987654321:federated-user/dave",
                "sessionContext": {"sessionIssuer": {"userName": "alice"}},
            },
            "dave",
        ),
        ({"type": "FederatedUser", "sessionContext": {"sessionIssuer": {"userName": "alice"}}}, "alice"),
        ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, None),
        ({"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "123456789012"}, None),
        ({"type": "IdentityCenterUser", "userName": "erin"}, "erin"),
        ({"type": "Unknown", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "HIDDEN_DUE_TO_SECURITY_REASONS"),
        ({}, None),
        (None, None),
    ],
)
def test_user_name_by_identity_type(identity: Any, name: str | None) -> None:
    doc = parse(with_(RECORD, userIdentity=identity, requestParameters=None))
    assert doc.get("user", {}).get("name") == name


def test_aws_service_invoker_and_service_source_address() -> None:
    identity = {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}
    doc = flatten(parse(with_(RECORD, userIdentity=identity, sourceIPAddress="autoscaling.amazonaws.com")))
    assert doc["logwarden.cloudtrail.invoked_by"] == "autoscaling.amazonaws.com"
    assert doc["source.address"] == "autoscaling.amazonaws.com"
    assert "source.ip" not in doc and "related.ip" not in doc


@pytest.mark.parametrize(
    ("address", "ip"),
    [
        ("2001:DB8::5", "2001:db8::5"),
        ("203.0.113.9", "203.0.113.9"),
        ("AWS Internal", None),
        ("ec2.amazonaws.com", None),
        ("10.0.0.300", None),
    ],
)
def test_source_ip_only_when_an_ip(address: str, ip: str | None) -> None:
    doc = parse(with_(RECORD, sourceIPAddress=address))
    assert doc["source"].get("ip") == ip
    assert doc["source"]["address"] == address


@pytest.mark.parametrize(
    ("additional", "attributes", "expected"),
    [
        ({"MFAUsed": "Yes"}, None, True),
        ({"MFAUsed": "No"}, {"mfaAuthenticated": "true"}, False),  # the sign-in's own answer wins
        (None, {"mfaAuthenticated": "false"}, False),
        (None, {"mfaAuthenticated": "TRUE"}, True),
        (None, {"mfaAuthenticated": True}, True),
        ({"MFAUsed": "maybe"}, None, None),
        (None, None, None),
    ],
)
def test_mfa_authenticated(additional: Any, attributes: Any, expected: bool | None) -> None:
    identity = {**ASSUMED_ROLE, "sessionContext": {**ASSUMED_ROLE["sessionContext"], "attributes": attributes}}
    doc = flatten(parse(with_(RECORD, userIdentity=identity, additionalEventData=additional)))
    assert doc.get("logwarden.cloudtrail.mfa_authenticated") == expected


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("false", False), ("TRUE", True), ("x", None)])
def test_read_only_accepts_booleans_and_old_string_values(value: Any, expected: bool | None) -> None:
    assert flatten(parse(with_(RECORD, readOnly=value))).get("logwarden.cloudtrail.read_only") == expected


def test_target_user_only_for_iam_calls() -> None:
    doc = parse(
        with_(
            RECORD,
            eventSource="s3.amazonaws.com",
            eventName="PutBucketPolicy",
            requestParameters={"userName": "x", "bucketName": "b"},
        )
    )
    assert "target" not in doc["user"]
    assert doc["related"]["user"] == ["alice"]


def test_group_target_of_add_user_to_group() -> None:
    doc = flatten(
        parse(
            with_(
                RECORD,
                eventName="AddUserToGroup",
                requestParameters={"groupName": "Administrators", "userName": "alice"},
            )
        )
    )
    assert doc["user.target.group.name"] == "Administrators"
    assert doc["user.target.name"] == "alice"
    assert doc["related.user"] == ["alice"]
    assert doc["event.type"] == ["change", "user", "group"]


@pytest.mark.parametrize(
    ("source", "name", "params", "category", "types"),
    [
        ("signin.amazonaws.com", "ConsoleLogin", None, ["authentication"], ["start"]),
        ("signin.amazonaws.com", "CheckMfa", None, ["authentication"], ["info"]),
        ("sts.amazonaws.com", "AssumeRole", {"roleArn": "arn"}, ["iam"], ["info"]),
        ("sts.amazonaws.com", "GetCallerIdentity", None, ["iam"], ["info"]),
        ("iam.amazonaws.com", "CreateUser", {"userName": "x"}, ["iam"], ["creation", "user"]),
        ("iam.amazonaws.com", "DeleteRole", {"roleName": "x"}, ["iam"], ["deletion"]),
        ("iam.amazonaws.com", "ListUsers", None, ["iam"], ["info", "user"]),
        (
            "iam.amazonaws.com",
            "AttachRolePolicy",
            {"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ["iam"],
            ["change", "admin"],
        ),
        ("iam.amazonaws.com", "CreateGroup", {"groupName": "g"}, ["iam"], ["creation", "group"]),
        ("cloudtrail.amazonaws.com", "StopLogging", {"name": "t"}, ["configuration"], ["change"]),
        ("cloudtrail.amazonaws.com", "DeleteTrail", {"name": "t"}, ["configuration"], ["deletion"]),
        ("cloudtrail.amazonaws.com", "PutEventSelectors", {"trailName": "t"}, ["configuration"], ["change"]),
        ("cloudtrail.amazonaws.com", "LookupEvents", None, ["configuration"], ["info"]),
        ("config.amazonaws.com", "StopConfigurationRecorder", None, ["configuration"], ["change"]),
        ("guardduty.amazonaws.com", "DeleteDetector", None, ["configuration"], ["deletion"]),
        ("ec2.amazonaws.com", "RunInstances", None, None, ["creation"]),
        ("s3.amazonaws.com", "GetObject", None, None, ["info"]),
        ("kms.amazonaws.com", "ScheduleKeyDeletion", None, None, ["change"]),
    ],
)
def test_category_and_type(
    source: str, name: str, params: dict[str, Any] | None, category: list[str] | None, types: list[str]
) -> None:
    doc = parse(with_(RECORD, eventSource=source, eventName=name, requestParameters=params, responseElements=None))
    assert doc["event"].get("category") == category
    assert doc["event"]["type"] == types


def test_account_falls_back_to_the_identity_account() -> None:
    doc = parse(without(RECORD, "recipientAccountId"))
    assert doc["cloud"]["account"]["id"] == "210987654321"


@pytest.mark.parametrize("params", [None, {}])
def test_empty_request_parameters_are_absent(params: Any) -> None:
    doc = parse(with_(RECORD, requestParameters=params))
    assert "request_parameters" not in doc["logwarden"]["cloudtrail"]


@pytest.mark.parametrize("key", ["eventTime", "eventName", "eventSource"])
def test_required_fields(key: str) -> None:
    assert reason_of(without(RECORD, key)) == "missing_field"
    assert reason_of(with_(RECORD, **{key: None})) == "missing_field"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eventTime": "yesterday"}, "bad_timestamp"),
        ({"eventTime": "2026-11-02T08:00:00"}, "bad_timestamp"),
        ({"eventName": 7}, "bad_field"),
        ({"eventName": ""}, "missing_field"),
        ({"userIdentity": "alice"}, "bad_field"),
        ({"userIdentity": {"type": "AssumedRole", "sessionContext": []}}, "bad_field"),
        ({"requestParameters": ["x"]}, "bad_field"),
        ({"sourceIPAddress": 1}, "bad_field"),
        ({"tlsDetails": "TLSv1.2"}, "bad_field"),
        ({"eventName": "ConsoleLogin", "responseElements": "Success"}, "bad_field"),
    ],
)
def test_malformed_records(changes: dict[str, Any], reason: str) -> None:
    assert reason_of(with_(RECORD, **changes)) == reason


@pytest.mark.parametrize(("data", "reason"), [(b"{", "invalid_json"), (b"[]", "not_an_object"), (b"", "invalid_json")])
def test_not_a_record(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_deeply_nested_request_parameters_are_refused() -> None:
    deep = b'{"a":' * 300 + b"1" + b"}" * 300  # orjson reads 1024 levels but writes only 255
    raw = orjson.dumps(RECORD).replace(b'{"userName":"carol"}', deep)
    assert reason_of(raw) == "too_deep"


def test_every_emitted_field_is_catalogued() -> None:
    docs = [
        parse(orjson.dumps(RECORD)),
        parse(with_(RECORD, userIdentity=ASSUMED_ROLE, errorCode="AccessDenied", errorMessage="no")),
        parse(with_(CONSOLE_LOGIN, userIdentity={"type": "AWSService", "invokedBy": "x.amazonaws.com"})),
        parse(with_(RECORD, eventName="AddUserToGroup", requestParameters={"groupName": "g"})),
    ]
    for doc in docs:
        assert set(flatten(doc)) <= set(EVENT_FIELDS)


# --- the envelope splitter ----------------------------------------------------------------------------------------


def envelope(records: list[Any]) -> bytes:
    return orjson.dumps({"Records": records})


def test_split_envelope_into_one_raw_record_per_event() -> None:
    records = [RECORD, CONSOLE_LOGIN, {**RECORD, "eventID": "evt-2"}]
    parts = split(envelope(records))
    assert [orjson.loads(part) for part in parts] == records
    assert parts == [orjson.dumps(r) for r in records]


def test_split_is_deterministic() -> None:
    raw = b'{"Records": [ {"b": 1, "a": [1, 2.5, "x"]},\n {"eventName": "A"} ]}'
    assert split(raw) == split(raw) == [b'{"b":1,"a":[1,2.5,"x"]}', b'{"eventName":"A"}']


def test_split_passes_a_single_record_through_unchanged() -> None:
    raw = b'{ "eventName": "ConsoleLogin",  "eventTime": "2026-11-02T08:00:00Z" }'
    assert split(raw) == [raw]
    assert split(b"[1, 2]") == [b"[1, 2]"]  # not an envelope: the parser refuses it with its own reason


@pytest.mark.parametrize(("raw", "reason"), [(b"{", "invalid_json"), (b'{"Records": {}}', "bad_field")])
def test_split_refuses_broken_envelopes(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        split(raw)
    assert info.value.reason == reason


def test_split_refuses_items_nesting_too_deep_to_write() -> None:
    with pytest.raises(ParseError) as info:
        split(b'{"Records": [' + b"[" * 300 + b"]" * 300 + b"]}")
    assert info.value.reason == "too_deep"


def test_normalizer_splits_an_envelope_keeping_provenance() -> None:
    records = [RECORD, CONSOLE_LOGIN, {**RECORD, "eventID": "evt-2"}]
    raw = envelope(records)
    events, dead = Normalizer().normalize_all([Record("cloudtrail", raw, "cloudtrail", 2, 41)])
    assert not dead
    assert [e.doc["event"]["id"] for e in events if "id" in e.doc["event"]] == ["evt-1", "evt-2"]
    assert [e.doc["event"]["action"] for e in events] == ["CreateAccessKey", "ConsoleLogin", "CreateAccessKey"]
    assert {(e.record.topic, e.record.partition, e.record.offset) for e in events} == {("cloudtrail", 2, 41)}
    assert len({e.doc_id for e in events}) == 3
    again, _ = Normalizer().normalize_all([Record("cloudtrail", raw, "cloudtrail", 2, 41)])
    assert [e.doc_id for e in again] == [e.doc_id for e in events]  # a replay overwrites the same documents


def test_normalizer_dead_letters_bad_items_and_keeps_good_ones() -> None:
    raw = envelope([RECORD, "not a record", {"eventName": "X"}])
    events, dead = Normalizer().normalize_all([Record("cloudtrail", raw, "cloudtrail", 0, 1)])
    assert len(events) == 1
    assert [(d.reason, d.record.value) for d in dead] == [
        ("not_an_object", b'"not a record"'),
        ("missing_field", b'{"eventName":"X"}'),
    ]


def test_normalizer_dead_letters_an_unparseable_envelope_whole() -> None:
    events, dead = Normalizer().normalize_all([Record("cloudtrail", b'{"Records": [', "cloudtrail", 0, 1)])
    assert not events
    assert [(d.reason, d.stage, d.record.value) for d in dead] == [("invalid_json", "split", b'{"Records": [')]


def test_empty_envelope_has_no_events() -> None:
    assert split(envelope([])) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4), max_size=6))
def test_split_round_trips_any_list_of_objects(items: list[dict[str, Any]]) -> None:
    items = [{k: v for k, v in item.items() if not isinstance(v, int) or abs(v) < 2**63} for item in items]
    assert [orjson.loads(part) for part in split(envelope(items))] == items
