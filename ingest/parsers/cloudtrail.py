"""AWS CloudTrail records (JSON) to ECS.

A transport record is either one CloudTrail record or a log-file envelope ``{"Records": [...]}``;
:func:`split` cuts an envelope into one raw record per event before :func:`parse` sees them.

====================================  ==============================================================
CloudTrail key                        ECS field
====================================  ==============================================================
eventTime (required)                  ``@timestamp``
eventName (required)                  ``event.action``
eventSource (required)                ``event.provider``
eventID                               ``event.id``
errorCode / errorMessage              ``error.code`` / ``error.message``, ``event.outcome: failure``
responseElements.ConsoleLogin         ``event.outcome`` of ``ConsoleLogin`` (``Success``/``Failure``)
awsRegion                             ``cloud.region`` (``cloud.provider: aws``)
recipientAccountId                    ``cloud.account.id`` (else ``userIdentity.accountId``)
sourceIPAddress                       ``source.ip`` + ``source.address`` when an IP address, else
                                      ``source.address`` only (``ec2.amazonaws.com``, ``AWS Internal``)
userAgent                             ``user_agent.original``
tlsDetails.tlsVersion                 ``tls.version`` / ``tls.version_protocol``
userIdentity.principalId              ``user.id``
userIdentity (see below)              ``user.name``, ``user.roles``
requestParameters.userName            ``user.target.name`` (IAM calls only)
requestParameters.groupName           ``user.target.group.name`` (IAM calls only)
userIdentity.type                     ``logwarden.cloudtrail.user_identity_type``
userIdentity.accessKeyId              ``logwarden.cloudtrail.access_key_id``
userIdentity.invokedBy                ``logwarden.cloudtrail.invoked_by``
MFAUsed / mfaAuthenticated            ``logwarden.cloudtrail.mfa_authenticated`` (boolean)
eventType / readOnly / requestID      ``logwarden.cloudtrail.event_type`` / ``.read_only`` / ``.request_id``
requestParameters                     ``logwarden.cloudtrail.request_parameters`` (compact JSON text)
====================================  ==============================================================

``user.name`` by identity type: ``IAMUser`` (and any other identity carrying one): ``userName``;
``Root``: ``root``; ``AssumedRole``: the role (``sessionContext.sessionIssuer.userName``, else the
role part of the ARN), with the role ARN in ``user.roles`` and the session name (the last part of the
ARN, often a person's e-mail under SSO) in ``related.user``; ``FederatedUser``: the federated name.

``responseElements`` is not copied: for STS calls it holds session credentials.

Categories (ECS allowed values): sign-in events (``signin.amazonaws.com``, ``ConsoleLogin``) are
``authentication``; ``iam`` and ``sts`` calls are ``iam``; calls to the services that record and
guard the account (CloudTrail, Config, GuardDuty, Security Hub, IAM Access Analyzer) are
``configuration``; other services get no category (a per-action table would be needed). ``event.type``
follows the verb of ``eventName``: ``Create``/``Run``/``Register``... -> creation, ``Delete``/``Terminate``...
-> deletion, ``Get``/``List``/``Describe``/``Lookup``... -> info, anything else -> change; ``sts`` calls are
info; IAM calls on a user or group add ``user``/``group``, attaching ``AdministratorAccess`` adds ``admin``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ingest.errors import ParseError
from ingest.parsers._common import decode_json_object, iso_timestamp, normalize_ip, opt_str, prune

DATASET: Final = "aws.cloudtrail"
SIGNIN_SOURCES: Final = frozenset({"signin.amazonaws.com"})
IAM_SOURCES: Final = frozenset({"iam.amazonaws.com", "sts.amazonaws.com"})
CONFIGURATION_SOURCES: Final = frozenset(
    {
        "cloudtrail.amazonaws.com",
        "config.amazonaws.com",
        "guardduty.amazonaws.com",
        "securityhub.amazonaws.com",
        "access-analyzer.amazonaws.com",
    }
)
_CREATION: Final = ("Create", "Run", "Register", "Allocate", "Import", "Upload")
_DELETION: Final = ("Delete", "Terminate", "Deregister", "Release")
_INFO: Final = ("Get", "List", "Describe", "Lookup", "Search", "Head", "Check", "Generate", "Simulate")
_YES: Final = {"yes": True, "true": True, "no": False, "false": False}


def split(raw: bytes) -> list[bytes]:
    """One raw record per event: the items of a ``{"Records": [...]}`` envelope, else ``raw`` itself.

    >>> split(b'{"Records": [{"eventName": "A"}, {"eventName": "B"}]}')
    [b'{"eventName":"A"}', b'{"eventName":"B"}']
    >>> split(b'{"eventName": "A"}')
    [b'{"eventName": "A"}']
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict) or "Records" not in value:
        return [raw]
    records = value["Records"]
    if not isinstance(records, list):
        raise ParseError("bad_field", "Records: expected a list of CloudTrail records")
    try:
        return [orjson.dumps(item) for item in records]
    except orjson.JSONEncodeError:  # nests deeper than orjson writes (255); CloudTrail never does
        raise ParseError("too_deep", "Records: an item nests too deeply to re-serialize") from None


def parse(raw: bytes) -> dict[str, Any]:
    """Parse one CloudTrail record.

    >>> doc = parse(b'{"eventTime": "2026-11-02T08:00:00Z", "eventSource": "signin.amazonaws.com", '
    ...             b'"eventName": "ConsoleLogin", "userIdentity": {"type": "Root", "principalId": "111122223333"}, '
    ...             b'"responseElements": {"ConsoleLogin": "Failure"}}')
    >>> doc["event"]["category"], doc["event"]["outcome"], doc["user"]["name"]
    (['authentication'], 'failure', 'root')
    """
    record = decode_json_object(raw)
    for key in ("eventTime", "eventName", "eventSource"):
        if record.get(key) is None:
            raise ParseError("missing_field", f"{key}: required field missing")
    timestamp = iso_timestamp(record["eventTime"], "eventTime")
    name = _required_str(record, "eventName")
    provider = _required_str(record, "eventSource")
    identity = _object(record, "userIdentity")
    session = _object(identity, "sessionContext", "userIdentity.sessionContext")
    issuer = _object(session, "sessionIssuer", "userIdentity.sessionContext.sessionIssuer")
    identity_type = opt_str(identity, "type")
    user_name, role_arn, session_name = _user(identity_type, identity, issuer)
    error_code = opt_str(record, "errorCode")
    request = record.get("requestParameters")
    if request is not None and not isinstance(request, dict):
        raise ParseError("bad_field", "requestParameters: expected an object")
    target_name, target_group = _targets(provider, request or {})
    category, event_type = _classify(provider, name, request or {})
    source_address = opt_str(record, "sourceIPAddress")
    source_ip = _source_ip(source_address)
    account = opt_str(record, "recipientAccountId") or opt_str(identity, "accountId")
    tls_version = opt_str(_object(record, "tlsDetails"), "tlsVersion")

    return prune(
        {
            "@timestamp": timestamp,
            "event": {
                "kind": "event",
                "category": category,
                "type": event_type,
                "action": name,
                "provider": provider,
                "outcome": _outcome(name, error_code, record),
                "dataset": DATASET,
                "module": "aws",
                "id": opt_str(record, "eventID"),
            },
            "cloud": {"provider": "aws", "region": opt_str(record, "awsRegion"), "account": {"id": account}},
            "source": {"ip": source_ip, "address": source_address},
            "user_agent": {"original": opt_str(record, "userAgent")},
            "tls": _tls(tls_version),
            "user": {
                "id": opt_str(identity, "principalId"),
                "name": user_name,
                "roles": [role_arn] if role_arn else None,
                "target": {"name": target_name, "group": {"name": target_group}},
            },
            "error": {"code": error_code, "message": opt_str(record, "errorMessage")},
            "related": {
                "ip": [source_ip] if source_ip else None,
                "user": _unique(user_name, session_name, target_name),
            },
            "logwarden": {
                "source": "cloudtrail",
                "cloudtrail": {
                    "event_type": opt_str(record, "eventType"),
                    "user_identity_type": identity_type,
                    "access_key_id": opt_str(identity, "accessKeyId"),
                    "invoked_by": opt_str(identity, "invokedBy"),
                    "mfa_authenticated": _mfa(record, session),
                    "read_only": _read_only(record),
                    "request_id": opt_str(record, "requestID"),
                    "request_parameters": _compact_json(request) if request else None,
                },
            },
        }
    )


def _compact_json(value: dict[str, Any]) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise ParseError("too_deep", "requestParameters: nests too deeply to re-serialize") from None


def _required_str(record: dict[str, Any], key: str) -> str:
    value = opt_str(record, key)
    if value is None:
        raise ParseError("missing_field", f"{key}: required field missing")
    return value


def _object(parent: dict[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
    """``parent[key]`` when it is an object, ``{}`` when absent or null."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError("bad_field", f"{name or key}: expected an object, got {type(value).__name__}")
    return value


def _user(
    identity_type: str | None, identity: dict[str, Any], issuer: dict[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """``(user.name, role ARN, session name)`` of the calling identity."""
    if identity_type == "Root":
        return "root", None, None
    arn = opt_str(identity, "arn") or ""
    if identity_type == "AssumedRole":  # arn:aws:sts::111122223333:assumed-role/RoleName/SessionName
        parts = arn.split(":", 5)[-1].split("/")
        role_name = parts[1] if len(parts) == 3 else None
        session_name = parts[2] if len(parts) == 3 else None
        return opt_str(issuer, "userName") or role_name, opt_str(issuer, "arn"), session_name
    if identity_type == "FederatedUser":  # arn:aws:sts::111122223333:federated-user/Name
        federated = arn.rsplit("/", 1)[-1] if "/" in arn else None
        return federated or opt_str(issuer, "userName"), None, None
    return opt_str(identity, "userName"), None, None


def _targets(provider: str, request: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(user.target.name, user.target.group.name)`` for IAM calls acting on a user or group."""
    if provider != "iam.amazonaws.com":
        return None, None
    return opt_str(request, "userName"), opt_str(request, "groupName")


def _outcome(name: str, error_code: str | None, record: dict[str, Any]) -> str:
    if name == "ConsoleLogin":
        result = _object(record, "responseElements").get("ConsoleLogin")
        if result == "Success" and error_code is None:
            return "success"
        if result == "Failure" or error_code is not None:
            return "failure"
        return "unknown"
    return "failure" if error_code is not None else "success"


def _classify(provider: str, name: str, request: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(event.category, event.type)`` with ECS allowed values."""
    if provider in SIGNIN_SOURCES or name == "ConsoleLogin":
        return ["authentication"], ["start" if name == "ConsoleLogin" else "info"]
    verb = _verb_type(name)
    if provider in IAM_SOURCES:
        types = [verb]
        if provider == "sts.amazonaws.com":
            types = ["info"]
        if "userName" in request or "User" in name:
            types.append("user")
        if "groupName" in request or "Group" in name:
            types.append("group")
        if str(request.get("policyArn", "")).endswith("/AdministratorAccess"):
            types.append("admin")
        return ["iam"], types
    if provider in CONFIGURATION_SOURCES:
        return ["configuration"], [verb]
    return [], [verb]


def _verb_type(name: str) -> str:
    if name.startswith(_INFO):
        return "info"
    if name.startswith(_CREATION):
        return "creation"
    if name.startswith(_DELETION):
        return "deletion"
    return "change"


def _unique(*values: str | None) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _source_ip(address: str | None) -> str | None:
    """The address when it is an IP; AWS service names and ``AWS Internal`` are not."""
    return None if address is None else normalize_ip(address)


def _mfa(record: dict[str, Any], session: dict[str, Any]) -> bool | None:
    """MFA used at sign-in (``additionalEventData.MFAUsed``) or for the session (``mfaAuthenticated``)."""
    used = _object(record, "additionalEventData").get("MFAUsed")
    if used is None:
        used = _object(session, "attributes", "userIdentity.sessionContext.attributes").get("mfaAuthenticated")
    if isinstance(used, bool):
        return used
    return _YES.get(used.lower()) if isinstance(used, str) else None


def _read_only(record: dict[str, Any]) -> bool | None:
    value = record.get("readOnly")
    if isinstance(value, str):  # older records write "true"/"false"
        return _YES.get(value.lower())
    return value if isinstance(value, bool) else None


def _tls(version: str | None) -> dict[str, Any]:
    if version is None:
        return {}
    protocol, _, number = version.partition("v")
    if protocol.upper() in {"TLS", "SSL"} and number:
        return {"version": number, "version_protocol": protocol.lower()}
    return {"version": version}
