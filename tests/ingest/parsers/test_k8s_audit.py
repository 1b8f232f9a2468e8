"""Kubernetes audit events -> ECS documents; the ``EventList`` splitter."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingest.ecs import EVENT_FIELDS
from ingest.errors import ParseError
from ingest.parsers import PARSERS, SPLITTERS
from ingest.parsers.k8s_audit import parse, split
from ingest.pipeline import Normalizer
from ingest.records import Record

EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/secrets/db-password",
    "verb": "get",
    "user": {"username": "alice@example.com", "uid": "u-1", "groups": ["devs", "system:authenticated"]},
    "sourceIPs": ["198.51.100.88", "10.0.0.4"],
    "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
    "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db-password", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2026-11-02T10:20:01.100482Z",
    "stageTimestamp": "2026-11-02T10:20:01.103915Z",
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: ..."},
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


def without(base: dict[str, Any], *keys: str) -> bytes:
    return orjson.dumps({k: v for k, v in base.items() if k not in keys})


def ref(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", **fields}


def reason_of(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        parse(data)
    return info.value.reason


def test_registered_with_its_splitter() -> None:
    assert PARSERS["k8s_audit"] is parse
    assert SPLITTERS["k8s_audit"] is split


def test_event_maps_every_documented_field() -> None:
    assert flatten(parse(orjson.dumps(EVENT))) == {
        "@timestamp": "2026-11-02T10:20:01.103Z",
        "event.kind": "event",
        "event.category": ["configuration"],
        "event.type": ["access"],
        "event.action": "get",
        "event.outcome": "success",
        "event.dataset": "kubernetes.audit",
        "event.module": "kubernetes",
        "event.id": "a1",
        "user.name": "alice@example.com",
        "user.id": "u-1",
        "user.group.name": ["devs", "system:authenticated"],
        "source.ip": "198.51.100.88",
        "source.address": "198.51.100.88",
        "user_agent.original": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        "url.original": "/api/v1/namespaces/payments/secrets/db-password",
        "url.path": "/api/v1/namespaces/payments/secrets/db-password",
        "http.response.status_code": 200,
        "orchestrator.type": "kubernetes",
        "orchestrator.namespace": "payments",
        "orchestrator.api_version": "v1",
        "orchestrator.resource.type": "secrets",
        "orchestrator.resource.name": "db-password",
        "related.ip": ["198.51.100.88", "10.0.0.4"],
        "related.user": ["alice@example.com"],
        "logwarden.source": "k8s_audit",
        "logwarden.k8s.stage": "ResponseComplete",
        "logwarden.k8s.level": "Metadata",
        "logwarden.k8s.authz_decision": "allow",
    }


def test_pod_exec_is_a_process_start_with_its_subresource() -> None:
    uri = "/api/v1/namespaces/payments/pods/api-0/exec?command=sh&stdin=true&tty=true"
    doc = flatten(
        parse(
            with_(
                EVENT,
                verb="create",
                requestURI=uri,
                objectRef=ref(resource="pods", namespace="payments", name="api-0", subresource="exec"),
                responseStatus={"code": 101},
            )
        )
    )
    assert doc["event.category"] == ["process"]
    assert doc["event.type"] == ["start"]
    assert doc["event.outcome"] == "success"
    assert doc["logwarden.k8s.subresource"] == "exec"
    assert doc["orchestrator.resource.type"] == "pods"
    assert doc["url.query"] == "command=sh&stdin=true&tty=true"
    assert doc["url.path"] == "/api/v1/namespaces/payments/pods/api-0/exec"


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "category", "types"),
    [
        ("get", "secrets", None, ["configuration"], ["access"]),
        ("list", "secrets", None, ["configuration"], ["access"]),
        ("watch", "configmaps", None, ["configuration"], ["access"]),
        ("create", "deployments", None, ["configuration"], ["creation"]),
        ("patch", "deployments", "scale", ["configuration"], ["change"]),
        ("update", "nodes", "status", ["configuration"], ["change"]),
        ("delete", "pods", None, ["configuration"], ["deletion"]),
        ("deletecollection", "events", None, ["configuration"], ["deletion"]),
        ("proxy", "services", None, ["configuration"], ["info"]),
        ("get", "pods", "log", ["configuration"], ["access"]),
        ("create", "pods", "exec", ["process"], ["start"]),
        ("get", "pods", "exec", ["process"], ["start"]),  # websocket upgrade (kubectl >= 1.30)
        ("create", "pods", "attach", ["process"], ["start"]),
        ("create", "pods", "portforward", ["process"], ["start"]),
        ("create", "clusterrolebindings", None, ["iam"], ["creation"]),
        ("escalate", "clusterroles", None, ["iam"], ["info"]),
        ("delete", "rolebindings", None, ["iam"], ["deletion"]),
        ("create", "serviceaccounts", "token", ["iam"], ["creation"]),
        ("list", "roles", None, ["iam"], ["info"]),
        ("create", "certificatesigningrequests", None, ["iam"], ["creation"]),
        ("create", "selfsubjectaccessreviews", None, ["iam"], ["creation"]),
    ],
)
def test_category_and_type(
    verb: str, resource: str, subresource: str | None, category: list[str], types: list[str]
) -> None:
    doc = parse(with_(EVENT, verb=verb, objectRef=ref(resource=resource, subresource=subresource)))
    assert doc["event"]["category"] == category
    assert doc["event"]["type"] == types
    assert doc["event"]["action"] == verb


def test_non_resource_request_is_web_access() -> None:
    doc = flatten(parse(with_(EVENT, requestURI="/healthz?verbose", objectRef=None)))
    assert doc["event.category"] == ["web"]
    assert doc["event.type"] == ["access"]
    assert doc["url.path"] == "/healthz"
    assert doc["url.query"] == "verbose"
    assert not any(k.startswith("orchestrator.resource") for k in doc)
    assert doc["orchestrator.type"] == "kubernetes"


@pytest.mark.parametrize(("code", "outcome"), [(101, "success"), (399, "success"), (403, "failure"), (500, "failure")])
def test_outcome_from_response_code(code: int, outcome: str) -> None:
    doc = parse(with_(EVENT, responseStatus={"code": code}))
    assert doc["event"]["outcome"] == outcome
    assert doc["http"]["response"]["status_code"] == code


def test_request_received_stage_has_no_outcome() -> None:
    doc = parse(without(EVENT, "responseStatus", "stageTimestamp"))
    assert "outcome" not in doc["event"]
    assert "http" not in doc
    assert doc["@timestamp"] == "2026-11-02T10:20:01.100Z"


def test_stage_timestamp_wins_over_received() -> None:
    assert parse(orjson.dumps(EVENT))["@timestamp"] == "2026-11-02T10:20:01.103Z"
    assert parse(with_(EVENT, stageTimestamp=None))["@timestamp"] == "2026-11-02T10:20:01.100Z"


def test_impersonation_fills_the_effective_user() -> None:
    doc = flatten(parse(with_(EVENT, impersonatedUser={"username": "system:serviceaccount:ci:deployer"})))
    assert doc["user.name"] == "alice@example.com"
    assert doc["user.effective.name"] == "system:serviceaccount:ci:deployer"
    assert doc["related.user"] == ["alice@example.com", "system:serviceaccount:ci:deployer"]


def test_api_group_and_forbid_decision() -> None:
    doc = flatten(
        parse(
            with_(
                EVENT,
                objectRef=ref(resource="deployments", apiGroup="apps", namespace="x", name="y"),
                annotations={"authorization.k8s.io/decision": "forbid"},
                responseStatus={"code": 403, "reason": "Forbidden"},
            )
        )
    )
    assert doc["logwarden.k8s.api_group"] == "apps"
    assert doc["logwarden.k8s.authz_decision"] == "forbid"
    assert doc["event.outcome"] == "failure"


def test_ipv6_and_duplicate_source_ips() -> None:
    doc = parse(with_(EVENT, sourceIPs=["2001:DB8::1", "2001:db8::1", "10.0.0.4"]))
    assert doc["source"]["ip"] == "2001:db8::1"
    assert doc["related"]["ip"] == ["2001:db8::1", "10.0.0.4"]


def test_minimal_event() -> None:
    minimal = {"kind": "Event", "verb": "list", "requestReceivedTimestamp": "2026-11-02T10:00:00Z"}
    assert flatten(parse(orjson.dumps(minimal))) == {
        "@timestamp": "2026-11-02T10:00:00.000Z",
        "event.kind": "event",
        "event.category": ["web"],
        "event.type": ["access"],
        "event.action": "list",
        "event.dataset": "kubernetes.audit",
        "event.module": "kubernetes",
        "orchestrator.type": "kubernetes",
        "logwarden.source": "k8s_audit",
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"kind": "Policy"}, "wrong_kind"),
        ({"kind": "EventList"}, "wrong_kind"),
        ({"kind": None}, "missing_field"),
        ({"apiVersion": "v1"}, "wrong_kind"),
        ({"apiVersion": 1}, "wrong_kind"),
        ({"verb": None}, "missing_field"),
        ({"verb": 3}, "bad_field"),
        ({"stageTimestamp": None, "requestReceivedTimestamp": None}, "missing_field"),
        ({"stageTimestamp": "2026-11-02 10:20"}, "bad_timestamp"),
        ({"stageTimestamp": "2026-11-02T10:20:01"}, "bad_timestamp"),
        ({"sourceIPs": ["not-an-ip"]}, "bad_ip"),
        ({"sourceIPs": "198.51.100.88"}, "bad_field"),
        ({"sourceIPs": [1]}, "bad_field"),
        ({"user": "alice"}, "bad_field"),
        ({"user": {"username": "a", "groups": "devs"}}, "bad_field"),
        ({"objectRef": []}, "bad_field"),
        ({"responseStatus": {"code": "200"}}, "bad_field"),
        ({"responseStatus": {"code": -1}}, "bad_field"),
        ({"annotations": ["x"]}, "bad_field"),
    ],
)
def test_malformed_events(changes: dict[str, Any], reason: str) -> None:
    assert reason_of(with_(EVENT, **changes)) == reason


@pytest.mark.parametrize(("data", "reason"), [(b"{", "invalid_json"), (b"[]", "not_an_object"), (b"", "invalid_json")])
def test_not_an_event(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_every_emitted_field_is_catalogued() -> None:
    docs = [
        parse(orjson.dumps(EVENT)),
        parse(
            with_(
                EVENT,
                impersonatedUser={"username": "x"},
                objectRef=ref(resource="pods", subresource="exec", apiGroup=""),
            )
        ),
    ]
    for doc in docs:
        assert set(flatten(doc)) <= set(EVENT_FIELDS)


# --- the EventList splitter ---------------------------------------------------------------------------------------


def event_list(items: Any, **extra: Any) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items, **extra})


def test_split_event_list_into_events() -> None:
    second = {**EVENT, "auditID": "a2", "verb": "list"}
    parts = split(event_list([EVENT, second]))
    assert parts == [orjson.dumps(EVENT), orjson.dumps(second)]


def test_split_gives_items_without_kind_the_lists_kind_and_version() -> None:
    bare = {k: v for k, v in EVENT.items() if k not in ("kind", "apiVersion")}
    (part,) = split(event_list([bare]))
    assert orjson.loads(part) == EVENT
    assert part.startswith(b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",')
    assert parse(part) == parse(orjson.dumps(EVENT))


def test_split_is_deterministic() -> None:
    raw = event_list([{"verb": "get", "auditID": "x"}, EVENT])
    assert split(raw) == split(raw)


def test_split_passes_a_single_event_through_unchanged() -> None:
    raw = b'{"kind": "Event",  "verb": "get"}\n'
    assert split(raw) == [raw]
    assert split(b"[1]") == [b"[1]"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "invalid_json"),
        (b'{"kind": "EventList", "items": {}}', "bad_field"),
        (b'{"kind": "EventList", "items": [' + b"[" * 300 + b"]" * 300 + b"]}", "too_deep"),
    ],
)
def test_split_refuses_broken_lists(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        split(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize("items", [[], None])
def test_empty_list_has_no_events(items: Any) -> None:
    assert split(event_list(items)) == []


def test_normalizer_splits_an_event_list() -> None:
    bare = {k: v for k, v in EVENT.items() if k not in ("kind", "apiVersion")}
    raw = event_list([bare, {**bare, "auditID": "a2"}, {**bare, "verb": None}, "junk"])
    events, dead = Normalizer().normalize_all([Record("k8s_audit", raw, "k8s-audit", 1, 99)])
    assert [e.doc["event"]["id"] for e in events] == ["a1", "a2"]
    assert [d.reason for d in dead] == ["missing_field", "not_an_object"]
    assert {(e.record.topic, e.record.offset) for e in events} == {("k8s-audit", 99)}
    assert len({e.doc_id for e in events}) == 2
    again, _ = Normalizer().normalize_all([Record("k8s_audit", raw, "k8s-audit", 1, 99)])
    assert [e.doc_id for e in again] == [e.doc_id for e in events]
