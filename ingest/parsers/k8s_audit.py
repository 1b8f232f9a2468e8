"""Kubernetes API-server audit events (``audit.k8s.io/v1`` ``Event``, one JSON object per line) to ECS.

The webhook backend posts ``EventList`` objects: :func:`split` cuts them into one raw ``Event`` each.

====================================  ==============================================================
audit key                             ECS field
====================================  ==============================================================
kind (required, ``Event``)            checked (``wrong_kind`` otherwise), as is apiVersion
                                      ``audit.k8s.io/*``
stageTimestamp / requestReceived...   ``@timestamp`` (the stage's time, else when received; one needed)
auditID                               ``event.id`` (shared by the stages of one request)
verb (required)                       ``event.action``, ``event.type``
responseStatus.code                   ``http.response.status_code``, ``event.outcome`` (< 400 success)
user.username / uid / groups          ``user.name`` / ``user.id`` / ``user.group.name``
impersonatedUser.username             ``user.effective.name`` (the identity the request ran as)
sourceIPs                             ``source.ip`` (the first), all in ``related.ip``
userAgent                             ``user_agent.original``
requestURI                            ``url.original``, ``url.path``, ``url.query``
objectRef.namespace                   ``orchestrator.namespace``
objectRef.resource / name             ``orchestrator.resource.type`` / ``orchestrator.resource.name``
objectRef.apiVersion / apiGroup       ``orchestrator.api_version`` / ``logwarden.k8s.api_group``
objectRef.subresource                 ``logwarden.k8s.subresource`` (``exec``, ``log``, ``token``...)
stage / level                         ``logwarden.k8s.stage`` / ``logwarden.k8s.level``
annotations authorization decision    ``logwarden.k8s.authz_decision`` (``allow``/``forbid``)
====================================  ==============================================================

Categories (ECS allowed values): exec/attach/port-forward into a pod are ``process`` ``start``;
RBAC objects, service accounts and their tokens, certificate signing requests and
token/access reviews are ``iam``; other API objects are ``configuration``; requests without an
object (``/healthz``, ``/version``) are ``web`` ``access``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ingest.errors import ParseError
from ingest.parsers._common import decode_json_object, ip_or_none, iso_timestamp, opt_int, opt_str, prune

DATASET: Final = "kubernetes.audit"
INTERACTIVE_SUBRESOURCES: Final = frozenset({"exec", "attach", "portforward"})
IAM_RESOURCES: Final = frozenset(
    {
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "serviceaccounts",
        "certificatesigningrequests",
        "tokenreviews",
        "subjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "localsubjectaccessreviews",
    }
)
_VERB_TYPES: Final = {
    "create": "creation",
    "update": "change",
    "patch": "change",
    "delete": "deletion",
    "deletecollection": "deletion",
}
_READ_VERBS: Final = frozenset({"get", "list", "watch"})
_DECISION: Final = "authorization.k8s.io/decision"


def split(raw: bytes) -> list[bytes]:
    """One raw ``Event`` per item of an ``EventList``, else ``raw`` itself.

    Items of a list may omit ``kind``/``apiVersion``; they get the list's, so each event stands alone.

    >>> split(b'{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{"verb": "get"}]}')
    [b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}']
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("kind") != "EventList":
        return [raw]
    items = value.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ParseError("bad_field", "items: expected a list of audit events")
    api_version = value.get("apiVersion")
    try:
        return [
            orjson.dumps({"kind": "Event", "apiVersion": api_version, **item})
            if isinstance(item, dict) and "kind" not in item
            else orjson.dumps(item)
            for item in items
        ]
    except orjson.JSONEncodeError:  # nests deeper than orjson writes (255)
        raise ParseError("too_deep", "items: an event nests too deeply to re-serialize") from None


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one audit ``Event``.

    >>> doc = parse(b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get", '
    ...             b'"stageTimestamp": "2026-11-02T08:00:00.123456Z", "objectRef": {"resource": "secrets"}, '
    ...             b'"responseStatus": {"code": 403}}')
    >>> doc["event"]["category"], doc["event"]["outcome"], doc["orchestrator"]["resource"]["type"]
    (['configuration'], 'failure', 'secrets')
    """
    event = decode_json_object(raw)
    _check_kind(event)
    verb = opt_str(event, "verb")
    if verb is None:
        raise ParseError("missing_field", "verb: required field missing")
    stamp_key = "stageTimestamp" if event.get("stageTimestamp") is not None else "requestReceivedTimestamp"
    if event.get(stamp_key) is None:
        raise ParseError("missing_field", "stageTimestamp / requestReceivedTimestamp: required field missing")
    timestamp = iso_timestamp(event[stamp_key], stamp_key)
    user = _object(event, "user")
    impersonated = _object(event, "impersonatedUser")
    ref = _object(event, "objectRef")
    status = opt_int(_object(event, "responseStatus"), "code")
    source_ips = _source_ips(event.get("sourceIPs"))
    resource = opt_str(ref, "resource")
    subresource = opt_str(ref, "subresource")
    category, event_type = _classify(verb, resource, subresource)
    user_name = opt_str(user, "username")
    effective_name = opt_str(impersonated, "username")
    uri = opt_str(event, "requestURI")
    path, _, query = uri.partition("?") if uri else ("", "", "")
    annotations = _object(event, "annotations")

    return prune(
        {
            "@timestamp": timestamp,
            "event": {
                "kind": "event",
                "category": category,
                "type": event_type,
                "action": verb,
                "outcome": None if status is None else ("success" if status < 400 else "failure"),
                "dataset": DATASET,
                "module": "kubernetes",
                "id": opt_str(event, "auditID"),
            },
            "user": {
                "name": user_name,
                "id": opt_str(user, "uid"),
                "group": {"name": _strings(user.get("groups"), "user.groups")},
                "effective": {"name": effective_name},
            },
            "source": {"ip": source_ips[0] if source_ips else None, "address": source_ips[0] if source_ips else None},
            "user_agent": {"original": opt_str(event, "userAgent")},
            "url": {"original": uri, "path": path or None, "query": query or None},
            "http": {"response": {"status_code": status}},
            "orchestrator": {
                "type": "kubernetes",
                "namespace": opt_str(ref, "namespace"),
                "api_version": opt_str(ref, "apiVersion"),
                "resource": {"type": resource, "name": opt_str(ref, "name")},
            },
            "related": {
                "ip": source_ips,
                "user": _unique(user_name, effective_name),
            },
            "logwarden": {
                "source": "k8s_audit",
                "k8s": {
                    "stage": opt_str(event, "stage"),
                    "level": opt_str(event, "level"),
                    "subresource": subresource,
                    "api_group": opt_str(ref, "apiGroup"),
                    "authz_decision": opt_str(annotations, _DECISION),
                },
            },
        }
    )


def _check_kind(event: dict[str, Any]) -> None:
    kind = event.get("kind")
    if kind is None:
        raise ParseError("missing_field", "kind: required field missing")
    if kind != "Event":
        raise ParseError("wrong_kind", f"kind: expected Event, got {_describe(kind)}")
    api_version = event.get("apiVersion")
    if api_version is not None and not (isinstance(api_version, str) and api_version.startswith("audit.k8s.io/")):
        raise ParseError("wrong_kind", f"apiVersion: expected audit.k8s.io/*, got {_describe(api_version)}")


def _describe(value: Any) -> str:
    return repr(value[:32]) if isinstance(value, str) else type(value).__name__


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is an object, ``{}`` when absent or null."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError("bad_field", f"{key}: expected an object, got {type(value).__name__}")
    return value


def _strings(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ParseError("bad_field", f"{field}: expected a list of strings")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ParseError("bad_field", f"{field}: expected a list of strings")
        if item and item not in out:
            out.append(item)
    return out


def _unique(*values: str | None) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _source_ips(value: Any) -> list[str]:
    ips: list[str] = []
    for i, text in enumerate(_strings(value, "sourceIPs") or ()):
        ip = ip_or_none(text, f"sourceIPs[{i}]")
        if ip is not None and ip not in ips:
            ips.append(ip)
    return ips


def _classify(verb: str, resource: str | None, subresource: str | None) -> tuple[list[str], list[str]]:
    """``(event.category, event.type)`` with ECS allowed values."""
    if resource is None:
        return ["web"], ["access"]
    if resource == "pods" and subresource in INTERACTIVE_SUBRESOURCES:
        return ["process"], ["start" if verb in ("create", "get") else "info"]
    if resource in IAM_RESOURCES:
        return ["iam"], [_VERB_TYPES.get(verb, "info")]
    return ["configuration"], [_VERB_TYPES.get(verb, "access" if verb in _READ_VERBS else "info")]
