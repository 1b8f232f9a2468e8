"""GitHub organization audit-log events (REST ``/orgs/{org}/audit-log`` and audit-log streaming) to ECS.

The REST API returns JSON arrays; the registered splitter (:func:`ingest.parsers._common.split_json_array`)
cuts them into one record per event and passes single (streamed) events through. Every key is
optional unless marked required:

=================================  ==========================  ==================================================
key                                type                        ECS field
=================================  ==========================  ==================================================
@timestamp (required, or           ms since the epoch (or      ``@timestamp`` (UTC, milliseconds, exact)
created_at)                        RFC 3339)
_document_id                       str                         ``event.id``
action (required)                  str                         ``event.action``; category/type by family (below)
actor / actor_id                   str / int                   ``user.name`` / ``user.id``, ``related.user``
external_identity_nameid           str                         ``user.email`` (the actor's SAML/SCIM identity,
                                                               when it is an address)
actor_ip                           str (IP)                    ``source.ip``, ``source.address``, ``related.ip``
actor_location.country_code        str                         ``source.geo.country_iso_code``
actor_location.country_name        str                         ``source.geo.country_name``
actor_is_bot                       bool                        ``logwarden.github.actor_is_bot``
user / user_id                     str / int                   ``user.target.name`` / ``user.target.id``,
                                                               ``related.user``
user_agent                         str                         ``user_agent.original``
org / org_id                       str / int                   ``organization.name`` / ``organization.id``
business                           str                         ``logwarden.github.business``
repo (or repository)               str (``org/name``)          ``logwarden.github.repo``
visibility                         str                         ``logwarden.github.visibility`` (public, private,
                                                               internal; from ``repository_public`` if absent)
team (or data.team)                str                         ``logwarden.github.team``
permission                         str                         ``logwarden.github.permission``
operation_type                     str                         ``logwarden.github.operation_type`` (create,
                                                               modify, remove, access, authentication...)
transport_protocol_name            str                         ``logwarden.github.transport_protocol`` (git.*)
programmatic_access_type           str                         ``logwarden.github.programmatic_access_type``
hashed_token                       str                         ``logwarden.github.hashed_token`` (the SHA-256 of
                                                               the token used: a correlation key, not a secret)
integration                        str                         ``logwarden.github.integration`` (GitHub App)
request_id                         str                         ``http.request.id``
=================================  ==========================  ==================================================

The audit log records completed actions: ``event.outcome`` is ``success``, except for actions whose
verb starts with ``rejected`` (``protected_branch.rejected_ref_update``), which are ``failure``.

Categorization by action (first rule that matches; *verb* is the part after the last dot, and
``create``/``add``/``grant``/``install``/``request_created`` verbs make ``creation``,
``destroy``/``delete``/``remove``/``revoke``/``deauthorize``/``uninstall`` verbs ``deletion``):

===================================================  ===================  =========================
action                                               event.category       event.type
===================================================  ===================  =========================
git.clone, git.fetch / git.push                      file                 access / change
verb names a member or collaborator                  iam                  group, user, change
(``org.add_member``, ``repo.remove_member``...)
team.*                                               iam                  group, change (verb)
credential families (:data:`CREDENTIAL_FAMILIES`:    iam                  change (verb)
personal_access_token, oauth_application, ...)
configuration families (:data:`CONFIG_FAMILIES`:     configuration        change (verb)
org, repo, protected_branch, hook, business, ...)
anything else                                        (none)               info
===================================================  ===================  =========================

``git.clone`` reads repository contents, hence ``file``/``access`` (the nearest ECS category).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from ingest.errors import ParseError
from ingest.parsers._common import decode_json_object, ip_or_none, iso_timestamp

DATASET: Final = "github.audit"

CREDENTIAL_FAMILIES: Final = frozenset(
    {
        "personal_access_token",
        "org_credential_authorization",
        "oauth_application",
        "oauth_authorization",
        "oauth_access",
        "integration_installation",
        "integration",
        "public_key",
        "deploy_key",
        "ssh_certificate_authority",
    }
)
CONFIG_FAMILIES: Final = frozenset(
    {
        "org",
        "repo",
        "protected_branch",
        "repository_ruleset",
        "hook",
        "business",
        "environment",
        "repository_vulnerability_alerts",
        "repository_secret_scanning",
        "secret_scanning",
        "dependabot_alerts",
        "org_secret_scanning_custom_pattern",
        "ip_allow_list",
        "ip_allow_list_entry",
    }
)
_CREATE_VERBS: Final = ("create", "add", "grant", "install", "request_created")
_DELETE_VERBS: Final = ("destroy", "delete", "remove", "revoke", "deauthorize", "uninstall")
_EPOCH: Final = datetime(1970, 1, 1)
_Categorization = tuple[tuple[str, ...], tuple[str, ...]]


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one GitHub audit-log event.

    >>> doc = parse(b'{"@timestamp": 1793606400123, "action": "org.add_member", "actor": "octo-admin", '
    ...             b'"user": "new-hire", "org": "example-org"}')
    >>> doc["@timestamp"], doc["event"]["category"], doc["user"]["target"]["name"]
    ('2026-11-02T08:00:00.123Z', ['iam'], 'new-hire')
    """
    event = decode_json_object(raw)
    get = event.get
    for key in _STRING_KEYS:  # one cheap type pass instead of a checked accessor per field
        value = get(key)
        if value is not None and type(value) is not str:
            raise ParseError("bad_field", f"{key}: expected a string, got {type(value).__name__}")
    stamp_key = "@timestamp" if get("@timestamp") is not None else "created_at"
    if get(stamp_key) is None:
        raise ParseError("missing_field", "@timestamp: required field missing (nor created_at)")
    timestamp = _ms_timestamp(event[stamp_key], stamp_key)
    action = get("action") or None
    if action is None:
        raise ParseError("missing_field", "action: required field missing")
    category, types, outcome = _classify(action)
    ecs_event: dict[str, Any] = {
        "kind": "event",
        "type": list(types),
        "action": action,
        "outcome": outcome,
        "dataset": DATASET,
        "module": "github",
    }
    if category:
        ecs_event["category"] = list(category)
    if document_id := get("_document_id"):
        ecs_event["id"] = document_id
    github: dict[str, Any] = {}
    doc: dict[str, Any] = {
        "@timestamp": timestamp,
        "event": ecs_event,
        "logwarden": {"source": "github_audit", "github": github},
    }
    for key, name in _GITHUB_STRINGS:
        if value := get(key):
            github[name] = value
    if "repo" not in github and (repository := get("repository")):
        github["repo"] = repository
    if "team" not in github and type(data := get("data")) is dict and (team := data.get("team")):
        if type(team) is not str:
            raise ParseError("bad_field", f"data.team: expected a string, got {type(team).__name__}")
        github["team"] = team
    if "visibility" not in github and (public := _opt_bool(event, "repository_public")) is not None:
        github["visibility"] = "public" if public else "private"
    if (is_bot := _opt_bool(event, "actor_is_bot")) is not None:
        github["actor_is_bot"] = is_bot

    user: dict[str, Any] = {}
    actor, target = get("actor") or None, get("user") or None
    if actor is not None:
        user["name"] = actor
    if (actor_id := _opt_id(event, "actor_id")) is not None:
        user["id"] = actor_id
    if (nameid := get("external_identity_nameid")) and "@" in nameid:
        user["email"] = nameid
    target_id = _opt_id(event, "user_id")
    if target is not None or target_id is not None:
        user["target"] = {k: v for k, v in (("name", target), ("id", target_id)) if v is not None}
    if user:
        doc["user"] = user
    source: dict[str, Any] = {}
    if actor_ip := ip_or_none(get("actor_ip"), "actor_ip"):
        source["ip"] = source["address"] = actor_ip
    location = get("actor_location")
    if location is not None:
        if type(location) is not dict:
            raise ParseError("bad_field", f"actor_location: expected an object, got {type(location).__name__}")
        geo = {name: value for key, name in _GEO_STRINGS if (value := _opt_str(location, key, "actor_location."))}
        if geo:
            source["geo"] = geo
    if source:
        doc["source"] = source
    if user_agent := get("user_agent"):
        doc["user_agent"] = {"original": user_agent}
    org, org_id = get("org") or None, _opt_id(event, "org_id")
    if org is not None or org_id is not None:
        doc["organization"] = {k: v for k, v in (("name", org), ("id", org_id)) if v is not None}
    if request_id := get("request_id"):
        doc["http"] = {"request": {"id": request_id}}
    users = [u for u in (actor, target) if u is not None]
    if actor_ip or users:
        related: dict[str, Any] = {}
        doc["related"] = related
        if actor_ip:
            related["ip"] = [actor_ip]
        if users:
            related["user"] = list(dict.fromkeys(users))
    return doc


#: event key -> logwarden.github field, for the plain strings
_GITHUB_STRINGS: Final = (
    ("repo", "repo"),
    ("visibility", "visibility"),
    ("team", "team"),
    ("permission", "permission"),
    ("operation_type", "operation_type"),
    ("business", "business"),
    ("transport_protocol_name", "transport_protocol"),
    ("programmatic_access_type", "programmatic_access_type"),
    ("hashed_token", "hashed_token"),
    ("integration", "integration"),
)
_STRING_KEYS: Final = (
    "action",
    "_document_id",
    "actor",
    "user",
    "external_identity_nameid",
    "user_agent",
    "org",
    "request_id",
    "repository",
    *(key for key, _ in _GITHUB_STRINGS),
)
_GEO_STRINGS: Final = (("country_code", "country_iso_code"), ("country_name", "country_name"))


@lru_cache(maxsize=4096)
def _classify(action: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """``(event.category, event.type, event.outcome)`` of an action (cached: a few hundred actions exist)."""
    category, types = _categorize(action)
    return category, types, "failure" if action.rpartition(".")[2].startswith("rejected") else "success"


def _categorize(action: str) -> _Categorization:
    family, _, rest = action.partition(".")
    verb = rest.rpartition(".")[2]
    if family == "git":
        return ("file",), ("change",) if verb == "push" else ("access",)
    if "member" in verb or "collaborator" in verb:
        return ("iam",), ("group", "user", "change")
    change = (
        "creation" if verb.startswith(_CREATE_VERBS) else "deletion" if verb.startswith(_DELETE_VERBS) else "change"
    )
    if family == "team":
        return ("iam",), ("group", change)
    if family in CREDENTIAL_FAMILIES:
        return ("iam",), (change,)
    if family in CONFIG_FAMILIES:
        return ("configuration",), (change,)
    return (), ("info",)


def _ms_timestamp(value: Any, field: str) -> str:
    """Milliseconds since the epoch (exactly, no float seconds) or an RFC 3339 string, as ECS ``@timestamp``."""
    if type(value) is str:
        return iso_timestamp(value, field)
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        try:
            moment = _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise ParseError("bad_timestamp", f"{field}: epoch milliseconds {value!r} out of range") from None
        return moment.isoformat(timespec="milliseconds") + "Z"
    raise ParseError("bad_timestamp", f"{field}: expected epoch milliseconds, got {type(value).__name__}")


def _opt_str(obj: dict[str, Any], key: str, prefix: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value or None
    raise ParseError("bad_field", f"{prefix}{key}: expected a string, got {type(value).__name__}")


def _opt_id(obj: dict[str, Any], key: str) -> str | None:
    """A numeric or string identifier as a keyword string."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return value
    raise ParseError("bad_field", f"{key}: expected an id (integer or string), got {type(value).__name__}")


def _opt_bool(obj: dict[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is None or type(value) is bool:
        return value
    raise ParseError("bad_field", f"{key}: expected a boolean, got {type(value).__name__}")
