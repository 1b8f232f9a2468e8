"""Field mapping per log source (community rules in other taxonomies) and the logsources of our events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detectors.sigma.engine import RuleEngine, event_logsource
from detectors.sigma.lint import lint
from detectors.sigma.taxonomy import EVENT_LOGSOURCES, TAXONOMIES, event_logsources, taxonomy_of
from ingest.ecs import EVENT_FIELDS
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record

CASES = [
    (
        {"product": "aws", "service": "cloudtrail"},
        {
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey",
            "userIdentity.type": "Root",
            "sourceIPAddress|cidr": "198.51.100.0/24",
            "errorCode": "AccessDenied",
        },
        {
            "logwarden.source": "cloudtrail",
            "event.provider": "iam.amazonaws.com",
            "event.action": "CreateAccessKey",
            "logwarden.cloudtrail.user_identity_type": "Root",
            "source.address": "198.51.100.7",
            "error.code": "AccessDenied",
        },
    ),
    (
        {"product": "okta", "service": "okta"},
        {"eventType": "user.mfa.factor.deactivate", "actor.alternateId|endswith": "@example.com"},
        {"logwarden.source": "okta", "event.action": "user.mfa.factor.deactivate", "user.name": "eve@example.com"},
    ),
    (
        {"product": "github", "service": "audit"},
        {"action": "repo.destroy", "actor": "mallory"},
        {"logwarden.source": "github_audit", "event.action": "repo.destroy", "user.name": "mallory"},
    ),
    (
        {"product": "kubernetes", "service": "audit"},
        {
            "verb": "create",
            "objectRef.resource": "pods",
            "objectRef.subresource": "exec",
            "user.username": "dev",
            "user.groups": "system:masters",
        },
        {
            "logwarden.source": "k8s_audit",
            "event.action": "create",
            "orchestrator.resource.type": "pods",
            "logwarden.k8s.subresource": "exec",
            "user.name": "dev",
            "user.group.name": ["system:authenticated", "system:masters"],
        },
    ),
    (
        {"category": "webserver"},
        {
            "cs-method": "GET",
            "c-uri|contains": "/etc/passwd",
            "sc-status": 200,
            "c-useragent|contains": "curl",
            "c-ip|cidr": "0.0.0.0/0",
            "c-uri-query|contains": "file=",
        },
        {
            "logwarden.source": "nginx",
            "http.request.method": "GET",
            "url.original": "/x?file=/etc/passwd",
            "url.query": "file=/etc/passwd",
            "http.response.status_code": 200,
            "user_agent.original": "curl/8",
            "source.ip": "192.0.2.1",
        },
    ),
]


@pytest.mark.parametrize(("logsource", "selection", "event"), CASES, ids=[c[0].get("product", "web") for c in CASES])
def test_community_rules_are_mapped_onto_our_fields(
    kit: Any, logsource: dict[str, str], selection: dict[str, Any], event: dict[str, Any]
) -> None:
    ruleset = kit.load(kit.rule({"selection": selection, "condition": "selection"}, logsource=logsource))
    (rule,) = ruleset.rules
    assert rule.fields <= set(EVENT_FIELDS)
    dets = kit.run(ruleset, [kit.event(0, event)])
    assert len(dets) == 1
    negative = {**event, **({"event.action": "other"} if "event.action" in event else {"source.ip": "not an ip"})}
    assert kit.run(ruleset, [kit.event(0, negative)]) == []


def test_webserver_rules_run_on_api_access_events(kit: Any) -> None:
    ruleset = kit.load(
        kit.rule({"s": {"c-uri|contains": "union select"}, "condition": "s"}, logsource={"category": "webserver"})
    )
    event = kit.event(0, {"url.original": "/v1/x?q=1 UNION SELECT 2"})  # logwarden.source: api_access
    assert len(kit.run(ruleset, [event])) == 1
    assert event_logsource(event.doc)["category"] == "webserver"


def test_correlation_fields_of_foreign_rules_are_mapped(kit: Any) -> None:
    base = kit.rule(
        {"s": {"eventName": "ConsoleLogin", "errorMessage|contains": "Failed"}, "condition": "s"},
        name="ct_failed_login",
        logsource={"product": "aws", "service": "cloudtrail"},
    )
    count = kit.correlation(
        {
            "type": "value_count",
            "rules": ["ct_failed_login"],
            "group-by": ["userIdentity.userName"],
            "timespan": "10m",
            "condition": {"gte": 3, "field": "sourceIPAddress"},
        },
        name="ct_spray",
    )
    first = kit.correlation(
        {
            "type": "first_seen",
            "rules": ["ct_failed_login"],
            "group-by": ["userIdentity.userName"],
            "field": "awsRegion",
        },
        name="ct_new_region",
    )
    ruleset = kit.load(base, count, first)
    corr = {c.meta.name: c for c in ruleset.correlations}
    assert corr["ct_spray"].group_by == ("user.name",) and corr["ct_spray"].value_fields == ("source.address",)
    assert corr["ct_new_region"].group_by == ("user.name",) and corr["ct_new_region"].value_fields == ("cloud.region",)
    docs = [
        kit.event(
            i,
            {
                "logwarden.source": "cloudtrail",
                "event.action": "ConsoleLogin",
                "user.name": "root",
                "error.message": "Failed authentication",
                "source.address": f"192.0.2.{i}",
                "cloud.region": "eu-west-1",
            },
        )
        for i in range(3)
    ]
    names = sorted(d.rule_name for d in kit.run(ruleset, docs))
    assert names == ["ct_new_region", "ct_spray"]


def test_every_event_source_has_logsources_and_rules_match_them_case_insensitively(kit: Any) -> None:
    for source, logsources in EVENT_LOGSOURCES.items():
        assert event_logsources({"logwarden": {"source": source}}) == logsources
    assert event_logsources({"logwarden.source": "audit"}) == EVENT_LOGSOURCES["audit"]
    assert event_logsources({}) == ()
    ruleset = kit.load(kit.rule({"s": {"event.action": "x"}, "condition": "s"}, logsource={"product": "Okta"}))
    engine = RuleEngine(ruleset)
    assert len(engine.rules_for(kit.event(0, {"logwarden.source": "okta"}).doc)) == 1
    assert engine.rules_for(kit.event(0, {"logwarden.source": "audit"}).doc) == []


def test_taxonomy_of() -> None:
    assert taxonomy_of({"product": "aws", "service": "cloudtrail"}).name == "cloudtrail"  # type: ignore[union-attr]
    assert taxonomy_of({"category": "proxy"}).name == "webserver"  # type: ignore[union-attr]
    assert taxonomy_of({"product": "logwarden", "service": "api_access"}) is None


def test_every_mapping_target_is_catalogued() -> None:
    targets = {f for t in TAXONOMIES for f in t.targets}
    assert sorted(targets - set(EVENT_FIELDS)) == []


def test_lint_reports_unmapped_foreign_fields_as_warnings_and_uncatalogued_fields_as_errors(kit: Any) -> None:
    foreign = kit.rule(
        {"s": {"eventName": "x", "requestParameters.policyDocument|contains": "*"}, "condition": "s"},
        logsource={"product": "aws", "service": "cloudtrail"},
    )
    ours = kit.rule({"s": {"user.favourite_colour": "blue"}, "condition": "s"})
    path = kit.write(foreign, ours)
    report = lint([path])
    by_severity = {(p.severity, p.message.split("'")[1]) for p in report.problems if "field" in p.message}
    assert ("warning", "requestParameters.policyDocument") in by_severity
    assert ("error", "user.favourite_colour") in by_severity
    assert all(p.path == str(path) and p.line >= 1 for p in report.problems)


GOLDEN = Path(__file__).resolve().parents[2] / "ingest" / "parsers" / "golden"

#: Community-style rules, written in their source's own field names, and a golden record each must catch.
COMMUNITY = [
    (
        "cloudtrail",
        "console_login_root",
        {"product": "aws", "service": "cloudtrail"},
        {"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "userIdentity.type": "Root"},
    ),
    (
        "okta",
        "deny_push",
        {"product": "okta", "service": "okta"},
        {"eventType": "user.mfa.okta_verify.deny_push", "outcome.result": "FAILURE"},
    ),
    (
        "github_audit",
        "repo_destroy",
        {"product": "github", "service": "audit"},
        {"action": "repo.destroy", "actor": "octo-admin", "org": "example-org"},
    ),
    (
        "k8s_audit",
        "pod_exec",
        {"category": "application", "product": "kubernetes", "service": "audit"},
        {
            "verb": "create",
            "objectRef.resource": "pods",
            "objectRef.subresource": "exec",
            "user.groups": "oidc:platform-oncall",
        },
    ),
    (
        "nginx",
        "jndi_probe",
        {"category": "webserver"},
        {"c-uri|contains": "${jndi:", "cs-method": "GET", "sc-status": 404, "sc-bytes|lt": 1000},
    ),
]


@pytest.mark.parametrize(("source", "case", "logsource", "selection"), COMMUNITY, ids=[c[1] for c in COMMUNITY])
def test_community_rules_catch_what_our_parsers_produce(
    kit: Any, source: str, case: str, logsource: dict[str, str], selection: dict[str, Any]
) -> None:
    raw = (GOLDEN / source / f"{case}.raw").read_bytes()
    event = Normalizer().normalize(Record(source, raw))
    assert isinstance(event, NormalizedEvent), event
    ruleset = kit.load(kit.rule({"selection": selection, "condition": "selection"}, logsource=logsource))
    assert [d.event_ids for d in kit.run(ruleset, [event])] == [[event.doc_id]]
    assert lint([kit.dir]).errors == []
