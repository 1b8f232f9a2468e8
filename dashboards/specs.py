"""What the dashboards show: data views, and one spec per dashboard (rows of panels on a 48-column grid).

Every field named here must be in the ECS catalogue (``ingest/ecs.py``) with a type its operation accepts;
``tests/dashboards/test_fields.py`` checks it on the generated NDJSON. Identifiers (``user.id``,
``logwarden.api.key_id``, ...) are pseudonyms in Elasticsearch, so the tables show pseudonyms.
"""

from __future__ import annotations

from dashboards.panels import (
    ALERTS,
    EVENTS,
    Dashboard,
    DataView,
    Search,
    count,
    date_histogram,
    metric,
    percentile,
    row,
    single_metric,
    table,
    terms,
    xy,
)

DATA_VIEWS = (
    DataView(EVENTS, "logwarden-events*", "logwarden events",
             formats={"http.request.bytes": "bytes", "http.response.bytes": "bytes",
                      "logwarden.audit.export.bytes": "bytes"}),
    DataView(ALERTS, "logwarden-alerts*", "logwarden alerts"),
)  # fmt: skip

LOGINS = 'event.category : "authentication" and event.action : ("user-login" or "user.login")'
MFA = 'event.action : ("mfa-verify" or "user.mfa.challenge" or "user.mfa.enrolled" or "user.mfa.removed")'
API = 'logwarden.source : "api_access"'
ML = 'rule.id : ml.* or tags : "ml"'
FAILURE = 'event.outcome : "failure"'
SEVERITIES = ("critical", "high", "medium", "low", "informational")
ALERT_COLUMNS = ("rule.name", "logwarden.alert.entity", "event.risk_score", "logwarden.alert.event_count",
                 "event.start", "event.end", "threat.technique.id", "logwarden.alert.id",
                 "logwarden.alert.source_event_ids")  # fmt: skip


def _security_overview() -> Dashboard:
    p = "logwarden-overview-"
    return Dashboard("logwarden-security-overview", "security_overview", "[logwarden] Security overview",
        "What is happening now: event volume per source, alerts by severity, the rules that fire and the riskiest "
        "entities.",
        (
            row(6,
                (single_metric(p + "events", "Events", EVENTS, count("count", "Events")), 12),
                (single_metric(p + "alerts", "Alerts", ALERTS, count("count", "Alerts")), 12),
                (single_metric(p + "failed-sign-ins", "Failed sign-ins", EVENTS, count("count", "Failed sign-ins"),
                               query=f"{LOGINS} and {FAILURE}"), 12),
                (single_metric(p + "alerted-entities", "Entities with alerts", ALERTS,
                               metric("entities", "unique_count", "logwarden.alert.entity", "Entities")), 12)),
            row(14,
                (xy(p + "events-per-source", "Events per source over time", EVENTS,
                    [terms("source", "logwarden.source", "Source", order_by="count", other=True),
                     date_histogram(), count()], x="time", y=["count"], split="source"), 24),
                (xy(p + "alerts-by-severity", "Alerts by severity over time", ALERTS,
                    [terms("severity", "logwarden.alert.severity", "Severity", order_by="count", size=5),
                     date_histogram(), count("count", "Alerts")], x="time", y=["count"], split="severity"), 24)),
            row(14,
                (table(p + "top-rules", "Top rules", ALERTS,
                       [terms("rule", "rule.name", "Rule", order_by="count"), count("count", "Alerts"),
                        metric("risk", "max", "event.risk_score", "Max risk score"),
                        metric("events", "sum", "logwarden.alert.event_count", "Events in alerts")], sort="count"), 24),
                (table(p + "top-entities", "Top entities by risk", ALERTS,
                       [terms("entity", "logwarden.alert.entity", "Entity (pseudonym)", order_by="risk"),
                        metric("risk", "sum", "event.risk_score", "Total risk score"),
                        metric("max_risk", "max", "event.risk_score", "Max risk score"),
                        count("count", "Alerts"), metric("rules", "unique_count", "rule.name", "Rules")],
                       sort="risk"), 24)),
        ),
    )  # fmt: skip


def _authentication() -> Dashboard:
    p = "logwarden-auth-"
    return Dashboard("logwarden-authentication", "authentication", "[logwarden] Authentication",
        "Who fails and succeeds to sign in, from where, with or without MFA, and which countries appear for the "
        "first time.",
        (
            row(14,
                (xy(p + "outcomes", "Sign-ins by outcome over time", EVENTS,
                    [terms("outcome", "event.outcome", "Outcome", order_by="count", size=3), date_histogram(),
                     count("count", "Sign-ins")], x="time", y=["count"], split="outcome", query=LOGINS), 24),
                (xy(p + "countries", "Sign-ins by country", EVENTS,
                    [terms("country", "source.geo.country_iso_code", "Country", order_by="count", size=15),
                     terms("outcome", "event.outcome", "Outcome", order_by="count", size=3),
                     count("count", "Sign-ins")], x="country", y=["count"], split="outcome",
                    series="bar_horizontal_stacked", query=LOGINS), 24)),
            row(15,
                (table(p + "users", "Sign-in failures and successes by user (pseudonym)", EVENTS,
                       [terms("user", "user.id", "User (pseudonym)", order_by="failures", size=20),
                        count("failures", "Failures", kql=FAILURE),
                        count("successes", "Successes", kql='event.outcome : "success"'),
                        metric("ips", "unique_count", "source.ip", "Source IPs"),
                        metric("last", "max", "@timestamp", "Last attempt", data_type="date")],
                       sort="failures", query=LOGINS), 28),
                (table(p + "first-seen-countries", "Countries by first appearance (newest first)", EVENTS,
                       [terms("country", "source.geo.country_iso_code", "Country", order_by="first", size=50),
                        metric("first", "min", "@timestamp", "First seen", data_type="date"),
                        metric("last", "max", "@timestamp", "Last seen", data_type="date"),
                        metric("users", "unique_count", "user.id", "Users"),
                        metric("keys", "unique_count", "logwarden.api.key_id", "API keys"), count()],
                       sort="first", query="source.geo.country_iso_code : *",
                       description="First and last event from each country in the time range: a country whose "
                                   "first event is recent is new."), 20)),
            row(12,
                (table(p + "mfa", "MFA events", EVENTS,
                       [terms("action", "event.action", "Action", order_by="count"),
                        terms("outcome", "event.outcome", "Outcome", order_by="count", size=3), count(),
                        metric("users", "unique_count", "user.id", "Users")], sort="count", query=MFA), 24),
                (xy(p + "mfa-sign-ins", "Successful sign-ins with and without MFA", EVENTS,
                    [terms("mfa", "logwarden.api.mfa", "MFA", order_by="count", size=2, data_type="boolean"),
                     date_histogram(), count("count", "Sign-ins")], x="time", y=["count"], split="mfa",
                    query='event.action : "user-login" and event.outcome : "success"'), 24)),
        ),
    )  # fmt: skip


def _api_usage() -> Dashboard:
    p = "logwarden-api-"
    latency = "logwarden.api.latency_ms"
    out_tokens = "gen_ai.usage.output_tokens"
    return Dashboard("logwarden-api-usage", "api_usage", "[logwarden] API usage",
        "How the API is used: requests, errors (401/403/429), tokens per organization and key, latency, endpoints.",
        (
            row(6,
                (single_metric(p + "requests", "Requests", EVENTS, count("count", "Requests"), query=API), 12),
                (single_metric(p + "errors", "Failed requests (4xx/5xx)", EVENTS,
                               count("count", "Failed requests", kql=FAILURE), query=API), 12),
                (single_metric(p + "output-tokens", "Output tokens", EVENTS,
                               metric("tokens", "sum", out_tokens, "Output tokens"), query=API), 12),
                (single_metric(p + "p95", "Latency p95 (ms)", EVENTS, percentile("p95", latency, 95, "p95 (ms)"),
                               query=API), 12)),
            row(14,
                (xy(p + "requests-by-auth", "Requests over time by authentication method", EVENTS,
                    [terms("auth", "logwarden.api.auth_method", "Authentication", order_by="count", size=5),
                     date_histogram(), count("count", "Requests")], x="time", y=["count"], split="auth",
                    query=API), 24),
                (xy(p + "error-ratio", "Error ratio over time (share of outcomes)", EVENTS,
                    [terms("outcome", "event.outcome", "Outcome", order_by="count", size=3), date_histogram(),
                     count("count", "Requests")], x="time", y=["count"], split="outcome",
                    series="bar_percentage_stacked", query=API), 24)),
            row(14,
                (xy(p + "denied", "401 / 403 / 429 over time", EVENTS,
                    [terms("status", "http.response.status_code", "Status", order_by="count", size=3,
                           data_type="number"), date_histogram(), count("count", "Responses")],
                    x="time", y=["count"], split="status",
                    query=f"{API} and http.response.status_code : (401 or 403 or 429)"), 24),
                (xy(p + "latency", "Latency percentiles (ms)", EVENTS,
                    [date_histogram(), percentile("p50", latency, 50, "p50"), percentile("p95", latency, 95, "p95"),
                     percentile("p99", latency, 99, "p99")], x="time", y=["p50", "p95", "p99"], series="line",
                    query=API), 24)),
            row(15,
                (table(p + "tokens", "Tokens by organization and API key (pseudonyms)", EVENTS,
                       [terms("org", "organization.id", "Organization", order_by="out"),
                        terms("key", "logwarden.api.key_id", "API key (pseudonym)", order_by="out", size=5),
                        metric("in", "sum", "gen_ai.usage.input_tokens", "Input tokens"),
                        metric("out", "sum", out_tokens, "Output tokens"), count("count", "Requests")],
                       sort="out", query=API), 24),
                (table(p + "endpoints", "Top endpoints", EVENTS,
                       [terms("route", "logwarden.api.route", "Route", order_by="count", size=15),
                        count("count", "Requests"), count("errors", "Failed", kql=FAILURE),
                        metric("latency", "average", latency, "Avg latency (ms)"),
                        percentile("p95", latency, 95, "p95 latency (ms)"),
                        metric("bytes", "sum", "http.response.bytes", "Bytes out")], sort="count", query=API), 24)),
            row(14,
                (xy(p + "tokens-by-org", "Output tokens over time by organization", EVENTS,
                    [terms("org", "organization.id", "Organization", order_by="out", size=5), date_histogram(),
                     metric("out", "sum", out_tokens, "Output tokens")], x="time", y=["out"], split="org",
                    query=API), 48)),
        ),
    )  # fmt: skip


def _admin_audit() -> Dashboard:
    p = "logwarden-audit-"
    exports = 'event.action : "data.export"'
    return Dashboard("logwarden-admin-audit", "admin_audit", "[logwarden] Admin and audit",
        "Administrative changes from the platform's audit log: roles, API keys, audit-log and org settings, data "
        "exports.",
        (
            row(12,
                (table(p + "roles", "Role changes", EVENTS,
                       [terms("action", "event.action", "Action", order_by="count", size=5),
                        terms("role", "logwarden.audit.role", "Role", order_by="count"),
                        terms("actor", "user.id", "Actor (pseudonym)", order_by="count", size=20),
                        count("count", "Changes"),
                        count("self", "Granted to self", kql="logwarden.audit.self_action : true"),
                        metric("last", "max", "@timestamp", "Last", data_type="date")],
                       sort="count", query='event.action : ("role.granted" or "role.removed")'), 24),
                (table(p + "privileged", "Privileged actions by actor", EVENTS,
                       [terms("actor", "user.id", "Actor (pseudonym)", order_by="count", size=20),
                        terms("action", "event.action", "Action", order_by="count", size=20), count("count", "Actions"),
                        metric("last", "max", "@timestamp", "Last", data_type="date")],
                       sort="count", query="logwarden.audit.privileged_action : true"), 24)),
            row(12,
                (table(p + "keys", "API key lifecycle", EVENTS,
                       [terms("key", "logwarden.audit.target_id", "API key", order_by="last", size=20),
                        terms("action", "event.action", "Action", order_by="count", size=5), count("count", "Events"),
                        metric("first", "min", "@timestamp", "First", data_type="date"),
                        metric("last", "max", "@timestamp", "Last", data_type="date")],
                       sort="last", query='event.action : ("api_key.created" or "api_key.revoked")'), 24),
                (xy(p + "keys-over-time", "API keys created and revoked over time", EVENTS,
                    [terms("action", "event.action", "Action", order_by="count", size=5), date_histogram(),
                     count("count", "Events")], x="time", y=["count"], split="action",
                    query='event.action : ("api_key.created" or "api_key.revoked")'), 24)),
            row(12,
                (table(p + "audit-settings", "Audit-log settings changes", EVENTS,
                       [terms("org", "organization.id", "Organization", order_by="count", size=20),
                        terms("actor", "user.id", "Actor (pseudonym)", order_by="count"), count("count", "Changes"),
                        count("disabled", "Logging disabled", kql="logwarden.audit.logging_disabled : true"),
                        count("shortened", "Retention shortened", kql="logwarden.audit.retention_shortened : true"),
                        metric("retention", "min", "logwarden.audit.retention_days.new",
                               "Shortest new retention (days)")],
                       sort="count", query='event.action : "audit_log.settings.changed"'), 24),
                (table(p + "settings-keys", "Settings changed (organization and audit log)", EVENTS,
                       [terms("action", "event.action", "Action", order_by="count", size=5),
                        terms("key", "logwarden.audit.changed_keys", "Setting", order_by="count", size=20),
                        count("count", "Changes")], sort="count", query='event.category : "configuration"'), 24)),
            row(12,
                (table(p + "exports", "Data exports", EVENTS,
                       [terms("actor", "user.id", "Actor (pseudonym)", order_by="bytes", size=20),
                        terms("format", "logwarden.audit.export.format", "Format", order_by="bytes", size=5),
                        count("count", "Exports"), metric("rows", "sum", "logwarden.audit.export.rows", "Rows"),
                        metric("bytes", "sum", "logwarden.audit.export.bytes", "Bytes"),
                        metric("largest", "max", "logwarden.audit.export.bytes", "Largest export (bytes)")],
                       sort="bytes", query=exports), 24),
                (xy(p + "exports-over-time", "Exported bytes over time", EVENTS,
                    [date_histogram(), metric("bytes", "sum", "logwarden.audit.export.bytes", "Bytes")],
                    x="time", y=["bytes"], series="bar", query=exports), 24)),
            row(15,
                (Search(p + "events", "Audit events", EVENTS, 'logwarden.source : "audit"',
                        ("event.action", "event.outcome", "user.id", "user.roles", "user.target.id",
                         "logwarden.audit.target_type", "logwarden.audit.target_id", "organization.id", "source.ip",
                         "logwarden.audit.metadata"),
                        description="Every audit event with who did what to which target."), 48)),
        ),
        time_from="now-7d",
    )  # fmt: skip


def _anomalies() -> Dashboard:
    p = "logwarden-anomalies-"
    score = "event.risk_score"
    return Dashboard("logwarden-anomalies", "anomalies", "[logwarden] Anomalies",
        "ML detector alerts (rule.id = model id starting with 'ml.', or tag 'ml'; event.risk_score = anomaly score, "
        "logwarden.alert.explanation = why): scores over time and the most anomalous entities with explanations.",
        (
            row(14,
                (xy(p + "scores", "Anomaly scores over time (max per model)", ALERTS,
                    [terms("model", "rule.id", "Model", order_by="score"), date_histogram(),
                     metric("score", "max", score, "Max score")], x="time", y=["score"], split="model", series="line",
                    query=ML), 24),
                (table(p + "models", "Anomalies per model", ALERTS,
                       [terms("model", "rule.id", "Model", order_by="count", size=20), count("count", "Anomalies"),
                        metric("max", "max", score, "Max score"), metric("avg", "average", score, "Average score"),
                        metric("entities", "unique_count", "logwarden.alert.entity", "Entities")],
                       sort="count", query=ML), 24)),
            row(14,
                (table(p + "entities", "Top anomalous entities", ALERTS,
                       [terms("entity", "logwarden.alert.entity", "Entity (pseudonym)", order_by="max", size=20),
                        metric("max", "max", score, "Max score"), count("count", "Anomalies"),
                        metric("models", "unique_count", "rule.id", "Models"),
                        metric("last", "max", "event.end", "Last anomalous event", data_type="date")],
                       sort="max", query=ML), 48)),
            row(15,
                (Search(p + "explanations", "Anomalies with explanations (highest score first)", ALERTS, ML,
                        ("rule.id", "logwarden.alert.entity", score, "logwarden.alert.explanation", "event.start",
                         "event.end", "logwarden.alert.id"), sort=((score, "desc"),),
                        description="One row per anomaly alert, with the detector's explanation."), 48)),
        ),
        time_from="now-7d",
    )  # fmt: skip


def severity_search(level: str) -> Search:
    """The triage saved search of one severity (``generatorURL`` links of alerts open it)."""
    return Search(
        f"logwarden-alerts-{level}",
        f"Alerts: {level}",
        ALERTS,
        f'logwarden.alert.severity : "{level}"',
        ALERT_COLUMNS,
        description=f"Alerts of severity {level}, newest first, with their evidence.",
    )


def _alert_triage() -> Dashboard:
    p = "logwarden-triage-"
    return Dashboard("logwarden-alert-triage", "alert_triage", "[logwarden] Alert triage",
        "One saved search per severity with what an analyst needs to decide (rule, entity, score, evidence window, "
        "ATT&CK technique, alert id, source event ids). Alertmanager notifications link to these searches.",
        (
            row(12,
                (table(p + "by-rule", "Alerts by severity and rule", ALERTS,
                       [terms("severity", "logwarden.alert.severity", "Severity", order_by="count", size=5),
                        terms("rule", "rule.name", "Rule", order_by="count", size=20), count("count", "Alerts"),
                        metric("risk", "max", "event.risk_score", "Max risk score"),
                        metric("entities", "unique_count", "logwarden.alert.entity", "Entities")], sort="count"), 24),
                (xy(p + "rules-over-time", "Alerts by rule over time", ALERTS,
                    [terms("rule", "rule.name", "Rule", order_by="count"), date_histogram(), count("count", "Alerts")],
                    x="time", y=["count"], split="rule"), 24)),
            *(row(12, (severity_search(level), 48)) for level in SEVERITIES),
        ),
        time_from="now-7d",
    )  # fmt: skip


DASHBOARDS = (_security_overview(), _authentication(), _api_usage(), _admin_audit(), _anomalies(), _alert_triage())
