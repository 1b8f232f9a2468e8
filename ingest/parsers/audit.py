"""Platform audit events (JSON, one object per line) to ECS.

The platform writes one audit event per security-relevant action (sign-ins, MFA, keys, roles,
members, exports, settings). Every key is optional unless marked required:

========================  ============  =====================================================================
key                       type          ECS field
========================  ============  =====================================================================
timestamp (required)      RFC 3339      ``@timestamp`` (UTC, milliseconds); also ``logwarden.audit.hour_utc``
                                        (0-23) and ``weekday_utc`` (ISO, 1 = Monday) for time-of-day rules
id                        str           ``event.id``
action (required)         str           ``event.action``; ``event.category``/``event.type`` from :data:`ACTIONS`
outcome                   str           ``event.outcome``: ``success``, ``failure`` (absent: ``unknown``)
reason                    str           ``event.reason`` (why it failed, e.g. ``invalid_password``)
org_id                    str           ``organization.id`` (falls back to ``actor.org_id``)
actor.id                  str           ``user.id``, ``related.user``; for an ``api_key`` actor
                                        ``logwarden.api.key_id`` instead (as in API-access events)
actor.email               str           ``user.email``, ``related.user``
actor.name                str           ``user.name``, ``related.user``
actor.type                str           ``logwarden.audit.actor_type``: ``user``, ``service`` or ``api_key``
actor.ip                  str (IP)      ``source.ip``, ``source.address``, ``related.ip``
actor.user_agent          str           ``user_agent.original``
actor.org_id              str           ``organization.id`` when ``org_id`` is absent
actor.roles               list[str]     ``user.roles``; ``logwarden.audit.actor_is_admin`` (any of :data:`ADMIN_ROLES`)
target.type               str           ``logwarden.audit.target_type`` (``user``, ``api_key``, ``role``, ``org``...)
target.id / email / name  str           a user target (``type`` ``user`` or absent): ``user.target.id`` /
                                        ``.email`` / ``.name`` and ``related.user``; any other target:
                                        ``logwarden.audit.target_id`` / ``target_name``
metadata                  object        action-specific details (below); all of it, as sorted-key JSON, in
                                        ``logwarden.audit.metadata``
========================  ============  =====================================================================

The closed list of actions (:data:`ACTIONS`), with their ECS categorization:

=============================  ======================  =====================
action                         event.category          event.type
=============================  ======================  =====================
user.login                     authentication          start
user.logout                    authentication          end
user.mfa.challenge             authentication          info
user.mfa.enrolled / removed    iam                     user, change
user.password.changed          iam                     user, change
api_key.created / revoked      iam                     creation / deletion
role.granted / removed         iam                     user, change
member.invited / removed       iam                     user, creation / deletion
data.export                    database                access
org.settings.changed           configuration           change
audit_log.settings.changed     configuration           change
=============================  ======================  =====================

An export is a bulk read of stored platform data, hence ``database``/``access`` (ECS ``file`` is for
files on hosts). Any other action is accepted as it is sent, with ``logwarden.audit.known_action:
false``, no category and ``event.type: [info]``, and no metadata fields extracted.

Typed metadata, extracted for the known actions (a value of the wrong type is a ``bad_field``):

===============================  ==========================================  =================================
action                           metadata                                    fields (``logwarden.audit.``)
===============================  ==========================================  =================================
role.*, member.invited           ``role`` (str)                              ``role``
user.mfa.*                       ``method`` (str: push, totp, webauthn...)   ``mfa_method``
data.export                      ``rows``, ``bytes`` (int), ``format`` (str)  ``export.rows``, ``.bytes``,
                                                                             ``.format``
audit_log.settings.changed       ``retention_days`` {old, new} (int),        ``retention_days.old``/``.new``,
                                 ``enabled`` {old, new} (bool)               ``retention_shortened``,
                                                                             ``logging_enabled.old``/``.new``,
                                                                             ``logging_disabled``
*.settings.changed               every key whose value is {old, new}, plus   ``changed_keys`` (sorted)
                                 ``changed_keys`` (list[str])
===============================  ==========================================  =================================

Flags for rules (``logwarden.audit.``): ``known_action``; ``privileged_action`` (the action is one
of :data:`PRIVILEGED_ACTIONS`); ``self_action`` (a user target that is the actor itself, by id, else
by e-mail; absent when it cannot be told); ``actor_is_admin`` (absent when ``actor.roles`` is).
Identifiers of user targets are never copied into ``logwarden.audit.*``: the privacy step
pseudonymizes ``user.*`` and ``related.user`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any, Final, ParamSpec, TypeVar

import orjson

from ingest.errors import ParseError
from ingest.parsers._common import decode_json_object, ip_or_none, iso_timestamp, opt_int, opt_str

DATASET: Final = "logwarden.audit"
_P = ParamSpec("_P")
_T = TypeVar("_T")

#: action -> (event.category, event.type)
ACTIONS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "user.login": (("authentication",), ("start",)),
    "user.logout": (("authentication",), ("end",)),
    "user.mfa.challenge": (("authentication",), ("info",)),
    "user.mfa.enrolled": (("iam",), ("user", "change")),
    "user.mfa.removed": (("iam",), ("user", "change")),
    "user.password.changed": (("iam",), ("user", "change")),
    "api_key.created": (("iam",), ("creation",)),
    "api_key.revoked": (("iam",), ("deletion",)),
    "role.granted": (("iam",), ("user", "change")),
    "role.removed": (("iam",), ("user", "change")),
    "member.invited": (("iam",), ("user", "creation")),
    "member.removed": (("iam",), ("user", "deletion")),
    "data.export": (("database",), ("access",)),
    "org.settings.changed": (("configuration",), ("change",)),
    "audit_log.settings.changed": (("configuration",), ("change",)),
}
#: Administrative actions (for "admin action outside business hours" and similar rules).
PRIVILEGED_ACTIONS: Final = frozenset(
    {
        "role.granted",
        "role.removed",
        "member.invited",
        "member.removed",
        "data.export",
        "org.settings.changed",
        "audit_log.settings.changed",
    }
)
ACTOR_TYPES: Final = frozenset({"user", "service", "api_key"})
#: Roles that make an actor an administrator (compared case-insensitively).
ADMIN_ROLES: Final = frozenset({"owner", "admin"})
OUTCOMES: Final = frozenset({"success", "failure", "unknown"})
_ROLE_ACTIONS: Final = frozenset({"role.granted", "role.removed", "member.invited"})
_STRING_KEYS: Final = ("id", "action", "outcome", "reason", "org_id")
_ACTOR_STRING_KEYS: Final = ("id", "email", "name", "type", "user_agent", "org_id")
_TARGET_STRING_KEYS: Final = ("type", "id", "email", "name")


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one platform audit event.

    Built field by field, without a generic pruning pass (absent values are never written).

    >>> doc = parse(b'{"timestamp": "2026-11-02T08:00:00Z", "action": "role.granted", "outcome": "success", '
    ...             b'"actor": {"id": "u1", "roles": ["member"]}, "target": {"type": "user", "id": "u1"}, '
    ...             b'"metadata": {"role": "admin"}}')
    >>> doc["event"]["category"], doc["logwarden"]["audit"]["self_action"], doc["logwarden"]["audit"]["role"]
    (['iam'], True, 'admin')
    """
    event = decode_json_object(raw)
    get = event.get
    _check_strings(event, _STRING_KEYS, "")
    if "timestamp" not in event:
        raise ParseError("missing_field", "timestamp: required field missing")
    timestamp = iso_timestamp(event["timestamp"], "timestamp")
    action = get("action") or None
    if action is None:
        raise ParseError("missing_field", "action: required field missing")
    known = ACTIONS.get(action)
    actor = _object(get("actor"), "actor")
    _check_strings(actor, _ACTOR_STRING_KEYS, "actor.")
    target = _object(get("target"), "target")
    _check_strings(target, _TARGET_STRING_KEYS, "target.")
    metadata = _object(get("metadata"), "metadata")

    ecs_event: dict[str, Any] = {
        "kind": "event",
        "type": list(known[1]) if known else ["info"],
        "action": action,
        "outcome": _outcome(get("outcome") or None),
        "dataset": DATASET,
        "module": "logwarden",
    }
    if known:
        ecs_event["category"] = list(known[0])
    if reason := get("reason"):
        ecs_event["reason"] = reason
    if event_id := get("id"):
        ecs_event["id"] = event_id
    flags: dict[str, Any] = {
        "known_action": known is not None,
        "privileged_action": action in PRIVILEGED_ACTIONS,
        "hour_utc": int(timestamp[11:13]),
        "weekday_utc": _weekday(timestamp[:10]),
    }
    ours: dict[str, Any] = {"source": "audit", "audit": flags}
    doc: dict[str, Any] = {"@timestamp": timestamp, "event": ecs_event, "logwarden": ours}
    user: dict[str, Any] = {}
    related_users: list[str] = []

    actor_type = _actor_type(actor.get("type") or None)
    if actor_type is not None:
        flags["actor_type"] = actor_type
    actor_id = actor.get("id") or None
    if actor_id is not None:
        if actor_type == "api_key":
            ours["api"] = {"key_id": actor_id}
            actor_id = None
        else:
            user["id"] = actor_id
            related_users.append(actor_id)
    actor_email = actor.get("email") or None
    for key, value in (("email", actor_email), ("name", actor.get("name"))):
        if value:
            user[key] = value
            related_users.append(value)
    roles = _roles(actor.get("roles"))
    if roles is not None:
        flags["actor_is_admin"] = any(role.lower() in ADMIN_ROLES for role in roles)
        if roles:
            user["roles"] = roles
    if actor_ip := ip_or_none(actor.get("ip"), "actor.ip"):
        doc["source"] = {"ip": actor_ip, "address": actor_ip}
    if user_agent := actor.get("user_agent"):
        doc["user_agent"] = {"original": user_agent}
    if org_id := get("org_id") or actor.get("org_id"):
        doc["organization"] = {"id": org_id}

    if target:
        _target(target, actor_id, actor_email, user, flags, related_users)
    if user:
        doc["user"] = user
    if actor_ip or related_users:
        related: dict[str, Any] = {}
        doc["related"] = related
        if actor_ip:
            related["ip"] = [actor_ip]
        if related_users:
            related["user"] = list(dict.fromkeys(related_users))
    if metadata:
        if known:
            _within("metadata", _metadata, action, metadata, flags)
        flags["metadata"] = _metadata_json(metadata)
    return doc


def _check_strings(obj: dict[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    """One cheap type pass instead of a checked accessor per field."""
    get = obj.get
    for key in keys:
        value = get(key)
        if value is not None and type(value) is not str:
            raise ParseError("bad_field", f"{prefix}{key}: expected a string, got {type(value).__name__}")


def _within(prefix: str, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call ``func``; a :class:`ParseError` it raises names the field as ``prefix.key``."""
    try:
        return func(*args, **kwargs)
    except ParseError as exc:
        raise ParseError(exc.reason, f"{prefix}.{exc}") from None


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return _EMPTY
    if type(value) is not dict:
        raise ParseError("bad_field", f"{field}: expected an object, got {type(value).__name__}")
    return value


_EMPTY: Final[dict[str, Any]] = {}


@lru_cache(maxsize=1024)
def _weekday(day: str) -> int:
    """ISO weekday (1 = Monday) of a ``YYYY-MM-DD`` date (cached: events come from few days)."""
    return date.fromisoformat(day).isoweekday()


def _outcome(outcome: str | None) -> str:
    if outcome is None:
        return "unknown"
    lowered = outcome.lower()
    if lowered not in OUTCOMES:
        raise ParseError("bad_field", f"outcome: expected success or failure, got {outcome[:32]!r}")
    return lowered


def _actor_type(actor_type: str | None) -> str | None:
    if actor_type is None:
        return None
    lowered = actor_type.lower()
    if lowered not in ACTOR_TYPES:
        raise ParseError("bad_field", f"actor.type: expected user, service or api_key, got {actor_type[:32]!r}")
    return lowered


def _roles(value: Any) -> list[str] | None:
    if value is None:
        return None
    if type(value) is not list or not all(type(role) is str and role for role in value):
        raise ParseError("bad_field", "actor.roles: expected a list of role names")
    return list(dict.fromkeys(value))


def _target(
    target: dict[str, Any],
    actor_id: str | None,
    actor_email: str | None,
    user: dict[str, Any],
    flags: dict[str, Any],
    related_users: list[str],
) -> None:
    """Write the target: a user into ``user.target`` (and ``self_action``), anything else into ``flags``."""
    target_type = target.get("type") or None
    if target_type is not None:
        target_type = target_type.lower()
        flags["target_type"] = target_type
    target_id = target.get("id") or None
    target_name = target.get("name") or None
    if target_type not in (None, "user"):
        if target_id is not None:
            flags["target_id"] = target_id
        if target_name is not None:
            flags["target_name"] = target_name
        return
    target_email = target.get("email") or None
    user_target = {k: v for k, v in (("id", target_id), ("email", target_email), ("name", target_name)) if v}
    if user_target:
        user["target"] = user_target
        related_users.extend(user_target.values())
    if actor_id and target_id:
        flags["self_action"] = actor_id == target_id
    elif actor_email and target_email:
        flags["self_action"] = actor_email.lower() == target_email.lower()


def _metadata(action: str, meta: dict[str, Any], flags: dict[str, Any]) -> None:
    """Write the typed ``logwarden.audit.*`` fields of a known action's metadata into ``flags``."""
    if action in _ROLE_ACTIONS:
        if role := opt_str(meta, "role"):
            flags["role"] = role
    elif action.startswith("user.mfa."):
        if method := opt_str(meta, "method"):
            flags["mfa_method"] = method
    elif action == "data.export":
        export = {
            key: value
            for key, value in (
                ("rows", opt_int(meta, "rows")),
                ("bytes", opt_int(meta, "bytes")),
                ("format", opt_str(meta, "format")),
            )
            if value is not None
        }
        if export:
            flags["export"] = export
    elif action.endswith(".settings.changed"):
        if changed := _changed_keys(meta):
            flags["changed_keys"] = changed
        if action == "audit_log.settings.changed":
            _audit_log_settings(meta, flags)


def _changed_keys(meta: dict[str, Any]) -> list[str]:
    keys = {key for key, value in meta.items() if type(value) is dict and ("old" in value or "new" in value)}
    listed = meta.get("changed_keys")
    if listed is not None:
        if type(listed) is not list or not all(type(key) is str and key for key in listed):
            raise ParseError("bad_field", "changed_keys: expected a list of setting names")
        keys.update(listed)
    return sorted(keys)


def _audit_log_settings(meta: dict[str, Any], flags: dict[str, Any]) -> None:
    retention = _object(meta.get("retention_days"), "retention_days")
    old_days = _within("retention_days", opt_int, retention, "old")
    new_days = _within("retention_days", opt_int, retention, "new")
    if old_days is not None or new_days is not None:
        flags["retention_days"] = {k: v for k, v in (("old", old_days), ("new", new_days)) if v is not None}
    if old_days is not None and new_days is not None:
        flags["retention_shortened"] = new_days < old_days
    enabled = _object(meta.get("enabled"), "enabled")
    was_on, now_on = enabled.get("old"), enabled.get("new")
    for key, flag in (("old", was_on), ("new", now_on)):
        if flag is not None and type(flag) is not bool:
            raise ParseError("bad_field", f"enabled.{key}: expected a boolean")
    if was_on is not None or now_on is not None:
        flags["logging_enabled"] = {k: v for k, v in (("old", was_on), ("new", now_on)) if v is not None}
    if now_on is not None:
        flags["logging_disabled"] = now_on is False and was_on is not False


def _metadata_json(metadata: dict[str, Any]) -> str:
    try:
        return orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        raise ParseError("bad_field", "metadata: nests too deeply to store") from None
