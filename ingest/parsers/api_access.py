"""API gateway access events (JSON, one object per request) to ECS.

The gateway schema, every key optional unless marked required:

====================  ==========  =====================================================
key                   type        ECS field
====================  ==========  =====================================================
timestamp (required)  RFC 3339    ``@timestamp`` (normalized to UTC, milliseconds)
request_id            str         ``http.request.id``, ``event.id``
client_ip             str (IP)    ``source.ip``
forwarded_for         list[str]   ``network.forwarded_ip`` (first hop), all in ``related.ip``
api_key_id            str         ``logwarden.api.key_id``
user_id               str         ``user.id``
org_id                str         ``organization.id``
auth_method           str         ``logwarden.api.auth_method`` (api_key, password, session, oauth)
mfa                   bool        ``logwarden.api.mfa``
method (required)     str         ``http.request.method``
path (required)       str         ``url.path``
route                 str         ``logwarden.api.route`` (template, e.g. ``/v1/files/{file_id}``)
query                 str         ``url.query``
status (required)     int         ``http.response.status_code``, ``event.outcome``
latency_ms            float       ``logwarden.api.latency_ms``, ``event.duration`` (ns)
bytes_in / bytes_out  int         ``http.request.bytes`` / ``http.response.bytes``
model                 str         ``gen_ai.request.model.id``
input_tokens          int         ``gen_ai.usage.input_tokens``
output_tokens         int         ``gen_ai.usage.output_tokens``
user_agent            str         ``user_agent.original``
tls_version           str         ``tls.version`` / ``tls.version_protocol`` (``TLSv1.3``)
====================  ==========  =====================================================

Requests to the sign-in routes (:data:`LOGIN_ROUTES`, :data:`MFA_ROUTES`) are authentication
events (``event.category: [authentication, web]``); everything else is ``web`` access.
"""

from __future__ import annotations

from typing import Any, Final

from ingest.errors import ParseError
from ingest.parsers._common import (
    decode_json_object,
    ip_or_none,
    iso_timestamp,
    opt_float,
    opt_int,
    opt_str,
    prune,
)

DATASET: Final = "logwarden.api_access"
LOGIN_ROUTES: Final = frozenset({"/v1/auth/login", "/v1/auth/token", "/v1/auth/sso/callback"})
MFA_ROUTES: Final = frozenset({"/v1/auth/mfa/verify"})
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one gateway access event.

    >>> doc = parse(b'{"timestamp": "2026-11-02T08:00:00Z", "method": "POST", '
    ...             b'"path": "/v1/auth/login", "status": 401, "user_id": "user_1"}')
    >>> doc["event"]["category"], doc["event"]["outcome"], doc["user"]["id"]
    (['authentication', 'web'], 'failure', 'user_1')
    """
    event = decode_json_object(raw)
    if "timestamp" not in event:
        raise ParseError("missing_field", "timestamp: required field missing")
    timestamp = iso_timestamp(event["timestamp"], "timestamp")
    method = _method(event)
    path = opt_str(event, "path")
    if path is None:
        raise ParseError("missing_field", "path: required field missing")
    status = opt_int(event, "status")
    if status is None or not 100 <= status <= 599:
        raise ParseError("missing_field" if status is None else "bad_field", "status: required HTTP status 100-599")
    route = opt_str(event, "route") or path
    category, action, event_type = _classify(route)
    client_ip = ip_or_none(event.get("client_ip"), "client_ip")
    forwarded = _forwarded(event.get("forwarded_for"))
    user_id = opt_str(event, "user_id")
    latency_ms = opt_float(event, "latency_ms")
    if latency_ms is not None and latency_ms * 1_000_000 >= 2**63:  # event.duration (ns) is a long
        raise ParseError("bad_field", f"latency_ms: out of range: {latency_ms!r}")
    tls = opt_str(event, "tls_version")
    query = opt_str(event, "query")
    request_id = opt_str(event, "request_id")
    mfa = event.get("mfa")
    if mfa is not None and not isinstance(mfa, bool):
        raise ParseError("bad_field", "mfa: expected a boolean")

    return prune(
        {
            "@timestamp": timestamp,
            "event": {
                "kind": "event",
                "category": category,
                "type": event_type,
                "action": action,
                "outcome": "success" if status < 400 else "failure",
                "dataset": DATASET,
                "module": "logwarden",
                "id": request_id,
                "duration": int(latency_ms * 1_000_000) if latency_ms is not None else None,
            },
            "source": {"ip": client_ip, "address": client_ip},
            "network": {"forwarded_ip": forwarded[0] if forwarded else None},
            "user": {"id": user_id},
            "organization": {"id": opt_str(event, "org_id")},
            "http": {
                "request": {"id": request_id, "method": method, "bytes": opt_int(event, "bytes_in")},
                "response": {"status_code": status, "bytes": opt_int(event, "bytes_out")},
            },
            "url": {"path": path, "query": query, "original": f"{path}?{query}" if query else path},
            "user_agent": {"original": opt_str(event, "user_agent")},
            "tls": _tls(tls),
            "gen_ai": {
                "request": {"model": {"id": opt_str(event, "model")}},
                "usage": {
                    "input_tokens": opt_int(event, "input_tokens"),
                    "output_tokens": opt_int(event, "output_tokens"),
                },
            },
            "related": {
                "ip": _unique([client_ip, *forwarded]),
                "user": [user_id] if user_id else None,
            },
            "logwarden": {
                "source": "api_access",
                "api": {
                    "key_id": opt_str(event, "api_key_id"),
                    "route": route,
                    "auth_method": opt_str(event, "auth_method"),
                    "mfa": mfa,
                    "latency_ms": latency_ms,
                },
            },
        }
    )


def _method(event: dict[str, Any]) -> str:
    method = opt_str(event, "method")
    if method is None:
        raise ParseError("missing_field", "method: required field missing")
    method = method.upper()
    if method not in _METHODS:
        raise ParseError("bad_field", f"method: unknown HTTP method {method[:16]!r}")
    return method


def _classify(route: str) -> tuple[list[str], str, list[str]]:
    """``(event.category, event.action, event.type)`` for a route template."""
    if route in LOGIN_ROUTES:
        return ["authentication", "web"], "user-login", ["start", "access"]
    if route in MFA_ROUTES:
        return ["authentication", "web"], "mfa-verify", ["info", "access"]
    return ["web"], "api-request", ["access"]


def _forwarded(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ParseError("bad_field", "forwarded_for: expected a list of IP addresses")
    return [ip for i, hop in enumerate(value) if (ip := ip_or_none(hop, f"forwarded_for[{i}]"))]


def _tls(version: str | None) -> dict[str, Any]:
    if version is None:
        return {}
    protocol, _, number = version.partition("v")
    if protocol.upper() in {"TLS", "SSL"} and number:
        return {"version": number, "version_protocol": protocol.lower()}
    return {"version": version}


def _unique(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
