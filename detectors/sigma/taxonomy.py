"""Which Sigma log sources our events satisfy, and how the field names of other taxonomies map onto ECS.

Community Sigma rules name fields the way their log source does (CloudTrail's ``eventName``, W3C's
``cs-method``, Okta's ``eventType``...). :func:`build_pipeline` turns :data:`TAXONOMIES` into a pySigma
processing pipeline that renames them to our catalogued ECS fields for the rules of that log source
(group-by fields and aliases of correlations included), and resolves ``|expand`` placeholders.

Rules of ``product: logwarden`` already use ECS names (identity mapping). Every document carries
``logwarden.source``; :data:`EVENT_LOGSOURCES` says which logsource(s) it satisfies: a rule runs on an
event when one of them has every ``product``/``service``/``category`` the rule names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation, ValueListPlaceholderTransformation

LogSource = Mapping[str, str]

#: ``logwarden.source`` -> the Sigma logsources its events satisfy.
EVENT_LOGSOURCES: dict[str, tuple[LogSource, ...]] = {
    "api_access": ({"product": "logwarden", "service": "api_access", "category": "webserver"},),
    "audit": ({"product": "logwarden", "service": "audit"},),
    "nginx": ({"category": "webserver", "product": "nginx"},),
    "apache": ({"category": "webserver", "product": "apache"},),
    "cloudtrail": ({"product": "aws", "service": "cloudtrail"},),
    "k8s_audit": ({"category": "application", "product": "kubernetes", "service": "audit"},),
    "okta": ({"product": "okta", "service": "okta"},),
    "github_audit": ({"product": "github", "service": "audit"},),
}

_WEB: dict[str, str | list[str]] = {
    "c-ip": "source.ip",
    "cs-method": "http.request.method",
    "c-uri": "url.original",
    "c-uri-stem": "url.path",
    "c-uri-query": "url.query",
    "cs-uri": "url.original",
    "cs-uri-stem": "url.path",
    "cs-uri-query": "url.query",
    "sc-status": "http.response.status_code",
    "c-useragent": "user_agent.original",
    "cs-user-agent": "user_agent.original",
    "cs-referrer": "http.request.referrer",
    "cs-referer": "http.request.referrer",
    "cs-host": "url.domain",
    "cs-bytes": "http.request.bytes",
    "sc-bytes": ["http.response.bytes", "http.response.body.bytes"],  # api gateway / nginx and Apache
    "cs-username": "user.name",
    "cs-version": "http.version",
}


@dataclass(frozen=True)
class Taxonomy:
    """A foreign field naming and the log sources whose rules use it."""

    name: str
    logsources: tuple[LogSource, ...]
    fields: Mapping[str, str | list[str]]  # a list: the rule tests any of them

    @property
    def targets(self) -> set[str]:
        return {t for v in self.fields.values() for t in ([v] if isinstance(v, str) else v)}


TAXONOMIES: tuple[Taxonomy, ...] = (
    Taxonomy(  # ingest/parsers/cloudtrail.py
        "cloudtrail",
        ({"product": "aws", "service": "cloudtrail"},),
        {
            "eventName": "event.action",
            "eventSource": "event.provider",
            "eventID": "event.id",
            "eventType": "logwarden.cloudtrail.event_type",
            "readOnly": "logwarden.cloudtrail.read_only",
            "requestID": "logwarden.cloudtrail.request_id",
            "sourceIPAddress": "source.address",  # an IP, or a service name such as ec2.amazonaws.com
            "userAgent": "user_agent.original",
            "awsRegion": "cloud.region",
            "recipientAccountId": "cloud.account.id",
            "errorCode": "error.code",
            "errorMessage": "error.message",
            "tlsDetails.tlsVersion": "tls.version",
            "userIdentity.type": "logwarden.cloudtrail.user_identity_type",
            "userIdentity.principalId": "user.id",
            "userIdentity.userName": "user.name",
            "userIdentity.sessionContext.sessionIssuer.userName": "user.name",
            "userIdentity.accountId": "cloud.account.id",
            "userIdentity.accessKeyId": "logwarden.cloudtrail.access_key_id",
            "userIdentity.invokedBy": "logwarden.cloudtrail.invoked_by",
            "userIdentity.sessionContext.attributes.mfaAuthenticated": "logwarden.cloudtrail.mfa_authenticated",
            "additionalEventData.MFAUsed": "logwarden.cloudtrail.mfa_authenticated",
            "requestParameters.userName": "user.target.name",
            "requestParameters.groupName": "user.target.group.name",
        },
    ),
    Taxonomy(  # ingest/parsers/okta.py
        "okta",
        ({"product": "okta"},),
        {
            "eventType": "event.action",
            "uuid": "event.id",
            "displayMessage": "message",
            "severity": "logwarden.okta.severity",
            "outcome.result": "logwarden.okta.outcome_result",
            "outcome.reason": "event.reason",
            "actor.id": "user.id",
            "actor.alternateId": "user.name",  # the login; also in user.email when it is an address
            "actor.type": "logwarden.okta.actor.type",
            "client.ipAddress": "source.ip",
            "client.userAgent.rawUserAgent": "user_agent.original",
            "client.userAgent.os": "logwarden.okta.client.os",
            "client.userAgent.browser": "logwarden.okta.client.browser",
            "client.device": "logwarden.okta.client.device",
            "client.geographicalContext.country": "source.geo.country_name",
            "client.geographicalContext.state": "source.geo.region_name",
            "client.geographicalContext.city": "source.geo.city_name",
            "securityContext.asNumber": "source.as.number",
            "securityContext.asOrg": "source.as.organization.name",
            "securityContext.isp": "logwarden.okta.isp",
            "securityContext.isProxy": "logwarden.okta.is_proxy",
            "target.id": "user.target.id",
            "target.alternateId": "user.target.name",
            "target.type": "logwarden.okta.target.type",
            "target.displayName": "logwarden.okta.target.name",
            "authenticationContext.credentialType": "logwarden.okta.credential_type",
            "authenticationContext.authenticationProvider": "logwarden.okta.auth_provider",
            "authenticationContext.externalSessionId": "logwarden.okta.session_id",
            "transaction.id": "logwarden.okta.transaction.id",
            "transaction.type": "logwarden.okta.transaction.type",
            "debugContext.debugData.requestId": "logwarden.okta.request_id",
            "debugContext.debugData.requestUri": "url.path",
            "debugContext.debugData.threatSuspected": "logwarden.okta.threat_suspected",
            "debugContext.debugData.behaviors": "logwarden.okta.behaviors",
            "debugContext.debugData.factor": "logwarden.okta.factor",
            "debugContext.debugData.privilegeGranted": "logwarden.okta.privilege_granted",
        },
    ),
    Taxonomy(  # ingest/parsers/github_audit.py
        "github",
        ({"product": "github"},),
        {
            "action": "event.action",
            "_document_id": "event.id",
            "actor": "user.name",
            "actor_id": "user.id",
            "actor_ip": "source.ip",
            "actor_is_bot": "logwarden.github.actor_is_bot",
            "actor_location.country_code": "source.geo.country_iso_code",
            "external_identity_nameid": "user.email",
            "user": "user.target.name",
            "user_id": "user.target.id",
            "user_agent": "user_agent.original",
            "org": "organization.name",
            "org_id": "organization.id",
            "business": "logwarden.github.business",
            "repo": "logwarden.github.repo",
            "repository": "logwarden.github.repo",
            "visibility": "logwarden.github.visibility",
            "team": "logwarden.github.team",
            "permission": "logwarden.github.permission",
            "operation_type": "logwarden.github.operation_type",
            "transport_protocol_name": "logwarden.github.transport_protocol",
            "programmatic_access_type": "logwarden.github.programmatic_access_type",
            "hashed_token": "logwarden.github.hashed_token",
            "integration": "logwarden.github.integration",
            "request_id": "http.request.id",
        },
    ),
    Taxonomy(  # ingest/parsers/k8s_audit.py
        "kubernetes",
        ({"product": "kubernetes"},),
        {
            "verb": "event.action",
            "auditID": "event.id",
            "stage": "logwarden.k8s.stage",
            "level": "logwarden.k8s.level",
            "requestURI": "url.original",
            "sourceIPs": "source.ip",
            "userAgent": "user_agent.original",
            "user.username": "user.name",
            "user.uid": "user.id",
            "user.groups": "user.group.name",
            "impersonatedUser.username": "user.effective.name",
            "objectRef.resource": "orchestrator.resource.type",
            "objectRef.subresource": "logwarden.k8s.subresource",
            "objectRef.namespace": "orchestrator.namespace",
            "objectRef.name": "orchestrator.resource.name",
            "objectRef.apiVersion": "orchestrator.api_version",
            "objectRef.apiGroup": "logwarden.k8s.api_group",
            "responseStatus.code": "http.response.status_code",
            "annotations.authorization.k8s.io/decision": "logwarden.k8s.authz_decision",
        },
    ),
    Taxonomy("webserver", ({"category": "webserver"}, {"category": "proxy"}), _WEB),  # ingest/parsers/web_access.py
)


def taxonomy_of(logsource: LogSource) -> Taxonomy | None:
    """The foreign taxonomy a rule's logsource uses (``None``: ECS names, e.g. ``product: logwarden``)."""
    for taxonomy in TAXONOMIES:
        for condition in taxonomy.logsources:
            if all(logsource.get(k, "").lower() == v.lower() for k, v in condition.items()):
                return taxonomy
    return None


def build_pipeline(placeholders: Mapping[str, Any] | None = None) -> ProcessingPipeline:
    """The field mappings of :data:`TAXONOMIES` plus placeholder expansion from ``placeholders``.

    An ``|expand`` placeholder (``%admins%``) becomes the list ``placeholders["admins"]``; an unknown one
    is a load error of the rule.
    """
    items = [
        ProcessingItem(
            FieldMappingTransformation(_mapping(taxonomy)),
            rule_conditions=[LogsourceCondition(**dict(condition))],
            identifier=f"logwarden_{taxonomy.name}_{i}",
        )
        for taxonomy in TAXONOMIES
        for i, condition in enumerate(taxonomy.logsources)
    ]
    items.append(ProcessingItem(ValueListPlaceholderTransformation(), identifier="logwarden_placeholders"))
    return ProcessingPipeline(items=items, vars=dict(placeholders or {}), name="logwarden")


def _mapping(taxonomy: Taxonomy) -> dict[str | None, str | list[str]]:
    return {name: list(target) if isinstance(target, list) else target for name, target in taxonomy.fields.items()}


def event_logsources(doc: Mapping[str, Any]) -> tuple[LogSource, ...]:
    """The Sigma logsources a document satisfies, from its ``logwarden.source``."""
    meta = doc.get("logwarden")
    source = meta.get("source") if isinstance(meta, dict) else doc.get("logwarden.source")
    if not source:
        return ()
    return EVENT_LOGSOURCES.get(str(source), ({"product": "logwarden", "service": str(source)},))


def logsource_matches(rule: LogSource, event: tuple[LogSource, ...]) -> bool:
    """Whether a rule's logsource is satisfied by one of the event's logsources (case-insensitive)."""
    return any(all(ls.get(k, "").lower() == v.lower() for k, v in rule.items()) for ls in event)
