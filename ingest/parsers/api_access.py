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
body                  str         ``http.request.body.content`` (the request body, when the gateway logs it)
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
)

DATASET: Final = "logwarden.api_access"
LOGIN_ROUTES: Final = frozenset({"/v1/auth/login", "/v1/auth/token", "/v1/auth/sso/callback"})
MFA_ROUTES: Final = frozenset({"/v1/auth/mfa/verify"})
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_STRING_KEYS: Final = (
    "request_id",
    "api_key_id",
    "user_id",
    "org_id",
    "auth_method",
    "method",
    "path",
    "route",
    "query",
    "model",
    "user_agent",
    "tls_version",
    "body",
)
_INT_KEYS: Final = ("status", "bytes_in", "bytes_out", "input_tokens", "output_tokens")
_STR_OR_NONE: Final = frozenset({str, type(None)})
_MAX_INT: Final = 2**53
_INF: Final = float("inf")


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one gateway access event.

    Built field by field (no generic pruning pass): this runs on every request the platform serves.

    >>> doc = parse(b'{"timestamp": "2026-11-02T08:00:00Z", "method": "POST", '
    ...             b'"path": "/v1/auth/login", "status": 401, "user_id": "user_1"}')
    >>> doc["event"]["category"], doc["event"]["outcome"], doc["user"]["id"]
    (['authentication', 'web'], 'failure', 'user_1')
    """
    event = decode_json_object(raw)
    get = event.get
    strings = list(map(get, _STRING_KEYS))  # one cheap type pass instead of a checked accessor per field
    if not _STR_OR_NONE.issuperset(map(type, strings)):
        _raise_first_non_string(strings)
    (request_id, api_key_id, user_id, org_id, auth_method, method, path, route, query, model, user_agent, tls, body) = (
        strings
    )
    numbers = list(map(get, _INT_KEYS))
    for number in numbers:
        if number is not None and not (type(number) is int and 0 <= number <= _MAX_INT):
            numbers = [_int(event, key) for key in _INT_KEYS]  # the checked accessor: converts or raises
            break
    status, bytes_in, bytes_out, input_tokens, output_tokens = numbers
    if "timestamp" not in event:
        raise ParseError("missing_field", "timestamp: required field missing")
    timestamp = iso_timestamp(event["timestamp"], "timestamp")
    method = _method(method)
    path = path or None
    if path is None:
        raise ParseError("missing_field", "path: required field missing")
    if status is None or not 100 <= status <= 599:
        raise ParseError("missing_field" if status is None else "bad_field", "status: required HTTP status 100-599")
    route = route or path
    category, action, event_type = _classify(route)
    client_ip = ip_or_none(get("client_ip"), "client_ip")
    forwarded_for = get("forwarded_for")
    forwarded = [] if forwarded_for == [] else _forwarded(forwarded_for)
    user_id = user_id or None
    latency_ms = get("latency_ms")
    if type(latency_ms) is not float or not 0 <= latency_ms < _INF:
        latency_ms = opt_float(event, "latency_ms")
    if latency_ms is not None and latency_ms * 1_000_000 >= 2**63:  # event.duration (ns) is a long
        raise ParseError("bad_field", f"latency_ms: out of range: {latency_ms!r}")
    query = query or None
    request_id = request_id or None
    mfa = get("mfa")
    if mfa is not None and type(mfa) is not bool:
        raise ParseError("bad_field", "mfa: expected a boolean")

    ecs_event: dict[str, Any] = {
        "kind": "event",
        "category": category,
        "type": event_type,
        "action": action,
        "outcome": "success" if status < 400 else "failure",
        "dataset": DATASET,
        "module": "logwarden",
    }
    request: dict[str, Any] = {"method": method}
    if body:
        request["body"] = {"content": body}
    response: dict[str, Any] = {"status_code": status}
    doc: dict[str, Any] = {
        "@timestamp": timestamp,
        "event": ecs_event,
        "http": {"request": request, "response": response},
        "url": {"path": path, "original": f"{path}?{query}" if query else path},
    }
    api: dict[str, Any] = {"route": route}
    doc["logwarden"] = {"source": "api_access", "api": api}
    if request_id is not None:
        ecs_event["id"] = request_id
        request["id"] = request_id
    if latency_ms is not None:
        ecs_event["duration"] = int(latency_ms * 1_000_000)
        api["latency_ms"] = latency_ms
    if query is not None:
        doc["url"]["query"] = query
    if bytes_in is not None:
        request["bytes"] = bytes_in
    if bytes_out is not None:
        response["bytes"] = bytes_out
    related_ip = [client_ip] if client_ip else []
    if client_ip is not None:
        doc["source"] = {"ip": client_ip, "address": client_ip}
    if forwarded:
        doc["network"] = {"forwarded_ip": forwarded[0]}
        for ip in forwarded:
            if ip not in related_ip:
                related_ip.append(ip)
    if user_id is not None:
        doc["user"] = {"id": user_id}
    if org_id:
        doc["organization"] = {"id": org_id}
    if user_agent:
        doc["user_agent"] = {"original": user_agent}
    if tls:
        doc["tls"] = _tls(tls)
    gen_ai = _gen_ai(model or None, input_tokens, output_tokens)
    if gen_ai:
        doc["gen_ai"] = gen_ai
    if related_ip or user_id:
        related: dict[str, Any] = {}
        doc["related"] = related
        if related_ip:
            related["ip"] = related_ip
        if user_id:
            related["user"] = [user_id]
    if api_key_id:
        api["key_id"] = api_key_id
    if auth_method:
        api["auth_method"] = auth_method
    if mfa is not None:
        api["mfa"] = mfa
    return doc


def _raise_first_non_string(values: list[Any]) -> None:
    for key, value in zip(_STRING_KEYS, values, strict=True):
        if value is not None and type(value) is not str:
            raise ParseError("bad_field", f"{key}: expected a string, got {type(value).__name__}")


def _int(event: dict[str, Any], key: str) -> int | None:
    value = event.get(key)
    if type(value) is int and 0 <= value <= 2**53:  # the common case, without the checked accessor
        return value
    return opt_int(event, key)


def _gen_ai(model: str | None, input_tokens: int | None, output_tokens: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model is not None:
        out["request"] = {"model": {"id": model}}
    if input_tokens is not None or output_tokens is not None:
        usage: dict[str, int] = {}
        out["usage"] = usage
        if input_tokens is not None:
            usage["input_tokens"] = input_tokens
        if output_tokens is not None:
            usage["output_tokens"] = output_tokens
    return out


def _method(method: str | None) -> str:
    if not method:
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
