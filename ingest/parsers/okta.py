"""Okta System Log events (the ``LogEvent`` object of ``/api/v1/logs``) to ECS.

The System Log API returns JSON arrays of events; :func:`ingest.parsers._common.split_json_array` (the registered
splitter) cuts an array into one record per event and passes a single object through. The
parts of a ``LogEvent`` we read, every one optional unless marked required:

====================================================  ==============================================================
LogEvent key                                          ECS field
====================================================  ==============================================================
published (required)                                  ``@timestamp`` (UTC, milliseconds)
eventType (required)                                  ``event.action``; ``event.category``/``event.type`` by family
uuid                                                  ``event.id``
displayMessage                                        ``message``
severity (DEBUG, INFO, WARN, ERROR)                   ``logwarden.okta.severity``
outcome.result                                        ``event.outcome`` (SUCCESS, ALLOW: success; FAILURE, DENY:
                                                      failure; anything else or absent: unknown), the value as sent
                                                      in ``logwarden.okta.outcome_result``
outcome.reason                                        ``event.reason``
actor {id, type, alternateId}                         a ``User`` actor: ``user.id``, ``user.name`` (alternateId, the
                                                      login), ``user.email`` (alternateId when it is an address);
                                                      any other actor (apps, ``SystemPrincipal``):
                                                      ``logwarden.okta.actor.id`` / ``.name`` (displayName);
                                                      always ``logwarden.okta.actor.type``
target [{id, type, alternateId, displayName}]         the first ``User``: ``user.target.id``, ``.name``, ``.email``;
                                                      the first ``UserGroup``: ``group.id``, ``group.name``; every
                                                      type in ``logwarden.okta.target.type``, the ids and display
                                                      names of non-user targets in ``logwarden.okta.target.id`` /
                                                      ``.name``
client.ipAddress                                      ``source.ip``, ``source.address``, ``related.ip``
client.userAgent.rawUserAgent / os / browser          ``user_agent.original`` / ``logwarden.okta.client.os`` /
                                                      ``.browser`` (``UNKNOWN`` dropped)
client.device                                         ``logwarden.okta.client.device``
client.geographicalContext country / state / city     ``source.geo.country_name`` / ``region_name`` / ``city_name``
client.geographicalContext.geolocation {lat, lon}     ``logwarden.okta.geo.lat`` / ``.lon`` (doubles: the catalogue
                                                      has no ``geo_point``)
securityContext asNumber / asOrg                      ``source.as.number`` / ``source.as.organization.name``
securityContext isp / isProxy                         ``logwarden.okta.isp`` / ``logwarden.okta.is_proxy``
authenticationContext externalSessionId               ``logwarden.okta.session_id``
authenticationContext credentialType                  ``logwarden.okta.credential_type``
authenticationContext authenticationProvider          ``logwarden.okta.auth_provider``
transaction {id, type}                                ``logwarden.okta.transaction.id`` / ``.type``
debugContext.debugData.requestId / requestUri         ``logwarden.okta.request_id`` / ``url.path``
debugContext.debugData.threatSuspected                ``logwarden.okta.threat_suspected`` (boolean)
debugContext.debugData.risk (``{level=HIGH, ...}``)   ``logwarden.okta.risk_level``
debugContext.debugData.behaviors                      ``logwarden.okta.behaviors``: the behaviours marked POSITIVE
                                                      (``New Device``, ``New IP``, ``Velocity``...)
debugContext.debugData.factor                         ``logwarden.okta.factor`` (``OKTA_VERIFY_PUSH``...)
debugContext.debugData.privilegeGranted               ``logwarden.okta.privilege_granted`` (list)
request.ipChain[].ip                                  ``related.ip``
====================================================  ==============================================================

Okta writes ``unknown`` (or ``UNKNOWN``, ``"null"``) where it does not know a value (the actor of a
failed sign-in by an unknown login, a browser it could not tell): such values are dropped.
``debugData`` is free-form (string values in practice): a value of another type is ignored there,
whereas a wrong type anywhere else is a ``bad_field``. Display names of users are not kept (they
are personal data the privacy step does not pseudonymize).

Event families and their ECS categorization (:data:`FAMILIES`, first prefix that matches wins;
``create``/``delete`` verbs turn ``change`` into ``creation``/``deletion`` where marked):

==========================================  ==================================  ====================
eventType                                   event.category                      event.type
==========================================  ==================================  ====================
user.session.start                          authentication, session             start
user.session.end / user.session.expire      session                             end
user.session.*                              session                             info
user.authentication.*                       authentication                      info
user.mfa.factor.*                           iam                                 user, change
user.mfa.*, system.push.*                   authentication                      info
user.account.*                              iam                                 user, change
user.lifecycle.*                            iam                                 user, change (verb)
application.user_membership.*               iam                                 user, change
group.user_membership.*                     iam                                 group, user, change
group.*                                     iam                                 group, change (verb)
policy.evaluate_sign_on                     authentication                      info
policy.*, application.lifecycle.*, zone.*   configuration                       change (verb)
system.api_token.*                          iam                                 change (verb; revoke is
                                                                                deletion)
security.request.blocked                    intrusion_detection                 denied
security.*                                  intrusion_detection                 info
anything else                               (none)                              info
==========================================  ==================================  ====================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, ParamSpec, TypeVar

from ingest.errors import ParseError
from ingest.parsers._common import decode_json_object, ip_or_none, iso_timestamp, opt_int

DATASET: Final = "logwarden.okta"
_P = ParamSpec("_P")
_T = TypeVar("_T")

_Categorization = tuple[tuple[str, ...], tuple[str, ...]]
#: (eventType prefix, event.category, event.type, whether the verb decides creation/deletion)
FAMILIES: Final[tuple[tuple[str, tuple[str, ...], tuple[str, ...], bool], ...]] = (
    ("user.session.start", ("authentication", "session"), ("start",), False),
    ("user.session.end", ("session",), ("end",), False),
    ("user.session.expire", ("session",), ("end",), False),
    ("user.session.", ("session",), ("info",), False),
    ("user.authentication.", ("authentication",), ("info",), False),
    ("user.mfa.factor.", ("iam",), ("user", "change"), False),
    ("user.mfa.", ("authentication",), ("info",), False),
    ("system.push.", ("authentication",), ("info",), False),
    ("user.account.", ("iam",), ("user", "change"), False),
    ("user.lifecycle.", ("iam",), ("user", "change"), True),
    ("application.user_membership.", ("iam",), ("user", "change"), False),
    ("group.user_membership.", ("iam",), ("group", "user", "change"), False),
    ("group.", ("iam",), ("group", "change"), True),
    ("policy.evaluate_sign_on", ("authentication",), ("info",), False),
    ("policy.", ("configuration",), ("change",), True),
    ("application.lifecycle.", ("configuration",), ("change",), True),
    ("zone.", ("configuration",), ("change",), True),
    ("system.api_token.", ("iam",), ("change",), True),
    ("security.request.blocked", ("intrusion_detection",), ("denied",), False),
    ("security.", ("intrusion_detection",), ("info",), False),
)
_OUTCOMES: Final = {"SUCCESS": "success", "ALLOW": "success", "FAILURE": "failure", "DENY": "failure"}
_CREATE_VERBS: Final = frozenset({"create", "add"})
_DELETE_VERBS: Final = frozenset({"delete", "remove", "revoke"})
_UNKNOWN_VALUES: Final = frozenset({"UNKNOWN", "Unknown", "unknown", "null"})


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one Okta ``LogEvent``.

    Built field by field, without a generic pruning pass (absent values are never written).

    >>> doc = parse(b'{"published": "2026-11-02T08:00:00.000Z", "eventType": "user.session.start", '
    ...             b'"outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}, '
    ...             b'"actor": {"id": "00u1", "type": "User", "alternateId": "ana@example.com"}}')
    >>> doc["event"]["category"], doc["event"]["outcome"], doc["user"]["email"]
    (['authentication', 'session'], 'failure', 'ana@example.com')
    """
    event = decode_json_object(raw)
    get = event.get
    _check_strings(event, _STRING_KEYS, "")
    if "published" not in event:
        raise ParseError("missing_field", "published: required field missing")
    timestamp = iso_timestamp(event["published"], "published")
    event_type = get("eventType") or None
    if event_type is None:
        raise ParseError("missing_field", "eventType: required field missing")
    category, types = _classify(event_type)
    outcome = _object(event, "outcome", "outcome")
    _check_strings(outcome, ("result", "reason"), "outcome.")
    result = outcome.get("result") or None

    ecs_event: dict[str, Any] = {
        "kind": "event",
        "type": list(types),
        "action": event_type,
        "outcome": _OUTCOMES.get(result.upper(), "unknown") if result else "unknown",
        "dataset": DATASET,
        "module": "okta",
    }
    if category:
        ecs_event["category"] = list(category)
    if reason := outcome.get("reason"):
        ecs_event["reason"] = reason
    if uuid := get("uuid"):
        ecs_event["id"] = uuid
    okta: dict[str, Any] = {}
    doc: dict[str, Any] = {
        "@timestamp": timestamp,
        "event": ecs_event,
        "logwarden": {"source": "okta", "okta": okta},
    }
    if message := get("displayMessage"):
        doc["message"] = message
    if severity := get("severity"):
        okta["severity"] = severity
    if result:
        okta["outcome_result"] = result

    user: dict[str, Any] = {}
    related_users: list[str] = []
    _actor(_object(event, "actor", "actor"), user, okta, related_users)
    if (targets := get("target")) is not None:
        _targets(targets, user, doc, okta, related_users)
    if user:
        doc["user"] = user
    related_ips = _client(_object(event, "client", "client"), doc, okta)
    _security(_object(event, "securityContext", "securityContext"), doc, okta)
    _contexts(event, okta)
    _debug(event, doc, okta)
    _ip_chain(event, related_ips)
    if related_ips or related_users:
        related: dict[str, Any] = {}
        doc["related"] = related
        if related_ips:
            related["ip"] = related_ips
        if related_users:
            related["user"] = list(dict.fromkeys(related_users))
    return doc


_STRING_KEYS: Final = ("eventType", "uuid", "displayMessage", "severity")


@lru_cache(maxsize=4096)
def _classify(event_type: str) -> _Categorization:
    """``(event.category, event.type)`` of an eventType (cached: a few hundred types exist)."""
    for prefix, category, types, by_verb in FAMILIES:
        if event_type.startswith(prefix):
            if by_verb:
                verb = event_type.rsplit(".", 1)[-1]
                if verb in _CREATE_VERBS:
                    types = tuple("creation" if t == "change" else t for t in types)
                elif verb in _DELETE_VERBS:
                    types = tuple("deletion" if t == "change" else t for t in types)
            return category, types
    return (), ("info",)


def _check_strings(obj: dict[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    """One cheap type pass instead of a checked accessor per field."""
    get = obj.get
    for key in keys:
        value = get(key)
        if value is not None and type(value) is not str:
            raise ParseError("bad_field", f"{prefix}{key}: expected a string, got {type(value).__name__}")


def _object(parent: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return _EMPTY
    if type(value) is not dict:
        raise ParseError("bad_field", f"{field}: expected an object, got {type(value).__name__}")
    return value


_EMPTY: Final[dict[str, Any]] = {}


def _known(value: str | None) -> str | None:
    """A checked string without Okta's placeholders for "not known" (``UNKNOWN``, ``"null"``)."""
    return None if not value or value in _UNKNOWN_VALUES else value


def _actor(actor: dict[str, Any], user: dict[str, Any], okta: dict[str, Any], related_users: list[str]) -> None:
    if not actor:
        return
    _check_strings(actor, _PRINCIPAL_KEYS, "actor.")
    actor_type = actor.get("type") or None
    actor_id = _known(actor.get("id"))
    out: dict[str, Any] = {}
    if actor_type is not None:
        out["type"] = actor_type
    if actor_type == "User":
        login = _known(actor.get("alternateId"))
        if actor_id is not None:
            user["id"] = actor_id
            related_users.append(actor_id)
        if login is not None:
            user["name"] = login
            related_users.append(login)
            if "@" in login:
                user["email"] = login
    else:
        if actor_id is not None:
            out["id"] = actor_id
        if name := _known(actor.get("displayName")):
            out["name"] = name
    if out:
        okta["actor"] = out


_PRINCIPAL_KEYS: Final = ("id", "type", "alternateId", "displayName")


def _targets(
    value: Any, user: dict[str, Any], doc: dict[str, Any], okta: dict[str, Any], related_users: list[str]
) -> None:
    """The first ``User`` target, the first ``UserGroup`` target, and every target's type, id and name."""
    if type(value) is not list:
        raise ParseError("bad_field", "target: expected a list of objects")
    types: list[str] = []
    ids: list[str] = []
    names: list[str] = []
    seen_user = seen_group = False
    for i, item in enumerate(value):
        if type(item) is not dict:
            raise ParseError("bad_field", f"target[{i}]: expected an object")
        _check_strings(item, _PRINCIPAL_KEYS, f"target[{i}].")
        kind = item.get("type") or None
        item_id = _known(item.get("id"))
        if kind is not None and kind not in types:
            types.append(kind)
        if kind == "User":
            if not seen_user:
                seen_user = True
                target: dict[str, Any] = {}
                if item_id is not None:
                    target["id"] = item_id
                    related_users.append(item_id)
                if (login := _known(item.get("alternateId"))) is not None:
                    target["name"] = login
                    related_users.append(login)
                    if "@" in login:
                        target["email"] = login
                if target:
                    user["target"] = target
            continue
        display = _known(item.get("displayName"))
        if kind == "UserGroup" and not seen_group:
            seen_group = True
            if group := {k: v for k, v in (("id", item_id), ("name", display)) if v is not None}:
                doc["group"] = group
        if item_id is not None:
            ids.append(item_id)
        if display is not None:
            names.append(display)
    target_ns = {k: v for k, v in (("type", types), ("id", ids), ("name", names)) if v}
    if target_ns:
        okta["target"] = target_ns


def _client(client: dict[str, Any], doc: dict[str, Any], okta: dict[str, Any]) -> list[str]:
    """``source.*``, ``user_agent.original`` and ``logwarden.okta.client.*``; the client IP for ``related.ip``."""
    if not client:
        return []
    source: dict[str, Any] = {}
    related_ips: list[str] = []
    if client_ip := ip_or_none(client.get("ipAddress"), "client.ipAddress"):
        source["ip"] = source["address"] = client_ip
        related_ips.append(client_ip)
    details: dict[str, Any] = {}
    agent = _object(client, "userAgent", "client.userAgent")
    if agent:
        if user_agent := _str(agent, "rawUserAgent", "client.userAgent."):
            doc["user_agent"] = {"original": user_agent}
        _copy_strings(agent, _AGENT_KEYS, "client.userAgent.", details)
    _copy_strings(client, _DEVICE_KEYS, "client.", details)
    if details:
        okta["client"] = details
    place = _object(client, "geographicalContext", "client.geographicalContext")
    if place:
        geo: dict[str, Any] = {}
        _copy_strings(place, _PLACE_KEYS, "client.geographicalContext.", geo)
        if geo:
            source["geo"] = geo
        location = _object(place, "geolocation", "client.geographicalContext.geolocation")
        lat, lon = location.get("lat"), location.get("lon")
        if lat is not None and lon is not None:
            okta["geo"] = {"lat": _coordinate(lat, "lat", 90.0), "lon": _coordinate(lon, "lon", 180.0)}
    if source:
        doc["source"] = source
    return related_ips


_AGENT_KEYS: Final = (("os", "os"), ("browser", "browser"))
_DEVICE_KEYS: Final = (("device", "device"),)
_PLACE_KEYS: Final = (("country", "country_name"), ("state", "region_name"), ("city", "city_name"))


def _str(obj: dict[str, Any], key: str, prefix: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value or None
    raise ParseError("bad_field", f"{prefix}{key}: expected a string, got {type(value).__name__}")


def _copy_strings(src: dict[str, Any], pairs: tuple[tuple[str, str], ...], prefix: str, dst: dict[str, Any]) -> None:
    """``dst[name] = src[key]`` for each string that is present and known; a value of another type is refused."""
    get = src.get
    for key, name in pairs:
        value = get(key)
        if value is None:
            continue
        if type(value) is not str:
            raise ParseError("bad_field", f"{prefix}{key}: expected a string, got {type(value).__name__}")
        if value and value not in _UNKNOWN_VALUES:
            dst[name] = value


def _coordinate(value: Any, key: str, bound: float) -> float:
    if (type(value) is float or type(value) is int) and -bound <= value <= bound:  # NaN fails the comparison
        return float(value)
    raise ParseError("bad_field", f"client.geographicalContext.geolocation.{key}: not a coordinate")


def _security(security: dict[str, Any], doc: dict[str, Any], okta: dict[str, Any]) -> None:
    if not security:
        return
    as_number = security.get("asNumber")
    if as_number is not None and not (type(as_number) is int and 0 <= as_number <= 2**53):
        as_number = _within("securityContext", opt_int, security, "asNumber")
    as_org = _str(security, "asOrg", "securityContext.")
    if as_number is not None or as_org is not None:
        autonomous: dict[str, Any] = {}
        if as_number is not None:
            autonomous["number"] = as_number
        if as_org is not None:
            autonomous["organization"] = {"name": as_org}
        doc.setdefault("source", {})["as"] = autonomous
    _copy_strings(security, _SECURITY_KEYS, "securityContext.", okta)
    is_proxy = security.get("isProxy")
    if is_proxy is not None:
        if type(is_proxy) is not bool:
            raise ParseError("bad_field", f"securityContext.isProxy: expected a boolean, got {type(is_proxy).__name__}")
        okta["is_proxy"] = is_proxy


_SECURITY_KEYS: Final = (("isp", "isp"),)


def _within(prefix: str, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call ``func``; a :class:`ParseError` it raises names the field as ``prefix.key``."""
    try:
        return func(*args, **kwargs)
    except ParseError as exc:
        raise ParseError(exc.reason, f"{prefix}.{exc}") from None


def _contexts(event: dict[str, Any], okta: dict[str, Any]) -> None:
    """``authenticationContext`` and ``transaction``."""
    auth = _object(event, "authenticationContext", "authenticationContext")
    if auth:
        _copy_strings(auth, _AUTH_KEYS, "authenticationContext.", okta)
    transaction = _object(event, "transaction", "transaction")
    if transaction:
        found: dict[str, Any] = {}
        _copy_strings(transaction, _TRANSACTION_KEYS, "transaction.", found)
        if found:
            okta["transaction"] = found


_AUTH_KEYS: Final = (
    ("externalSessionId", "session_id"),
    ("credentialType", "credential_type"),
    ("authenticationProvider", "auth_provider"),
)
_TRANSACTION_KEYS: Final = (("id", "id"), ("type", "type"))


def _debug(event: dict[str, Any], doc: dict[str, Any], okta: dict[str, Any]) -> None:
    """What we read of ``debugContext.debugData`` (free-form: values that are not strings are ignored)."""
    context = event.get("debugContext")
    data = context.get("debugData") if type(context) is dict else None
    if type(data) is not dict or not data:
        return
    get = data.get
    if type(uri := get("requestUri")) is str and uri:
        doc["url"] = {"path": uri}
    if type(request_id := get("requestId")) is str and request_id:
        okta["request_id"] = request_id
    if type(threat := get("threatSuspected")) is str and (suspected := _TEXT_BOOLS.get(threat.lower())) is not None:
        okta["threat_suspected"] = suspected
    if type(risk := get("risk")) is str and (level := _risk_level(risk)):
        okta["risk_level"] = level
    if type(behaviors := get("behaviors")) is str and (positive := _positive_behaviors(behaviors)):
        okta["behaviors"] = list(positive)
    if type(factor := get("factor")) is str and factor:
        okta["factor"] = factor
    if type(granted := get("privilegeGranted")) is str and (privileges := _comma_list(granted)):
        okta["privilege_granted"] = list(privileges)


_TEXT_BOOLS: Final = {"true": True, "false": False}


def _ip_chain(event: dict[str, Any], related_ips: list[str]) -> None:
    """Add the addresses of ``request.ipChain`` to ``related_ips``."""
    request = event.get("request")
    chain = request.get("ipChain") if type(request) is dict else None
    if chain is None:
        return
    if type(chain) is not list:
        raise ParseError("bad_field", "request.ipChain: expected a list")
    for i, hop in enumerate(chain):
        if type(hop) is not dict:
            raise ParseError("bad_field", f"request.ipChain[{i}]: expected an object")
        ip = ip_or_none(hop.get("ip"), f"request.ipChain[{i}].ip")
        if ip and ip not in related_ips:
            related_ips.append(ip)


def _pairs(value: str) -> list[tuple[str, str]]:
    """``{a=B, c=D}`` (a Java map's text) as ``[("a", "B"), ("c", "D")]``."""
    inner = value.strip().removeprefix("{").removesuffix("}")
    return [(k.strip(), v.strip()) for k, _, v in (part.partition("=") for part in inner.split(",")) if k.strip()]


@lru_cache(maxsize=4096)
def _risk_level(value: str) -> str | None:
    return next((v.upper() for k, v in _pairs(value) if k == "level" and v), None)


@lru_cache(maxsize=4096)
def _positive_behaviors(value: str) -> tuple[str, ...]:
    """The behaviours marked POSITIVE (cached: a handful of behaviours, few combinations)."""
    return tuple(k for k, v in _pairs(value) if v.upper() == "POSITIVE")


@lru_cache(maxsize=4096)
def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
