"""The Prometheus and Alertmanager configs under deploy/, checked with the real promtool and amtool.

promtool and amtool come from the Debian packages prometheus and prometheus-alertmanager, which
``deploy/local/services.sh fetch`` installs. Without them these tests fail (they never skip).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
RULES_DIR = ROOT / "deploy/prometheus/rules"
RULE_TESTS = ROOT / "deploy/prometheus/tests/pipeline_test.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"
CONTAINER_RULES_DIR = "/etc/prometheus/rules"  # where docker-compose.yml mounts RULES_DIR

RUNBOOKS = ROOT / "docs/runbooks.md"
METRICS_DOC = ROOT / "docs/metrics.md"

REQUIRED_ALERTS = {
    "LogwardenDown",
    "LogwardenIngestStopped",
    "LogwardenDeadLetterRateHigh",
    "LogwardenAlertDeliveryFailing",
    "LogwardenAlertOutboxBacklog",
    "LogwardenConsumerLagGrowing",
    "LogwardenSourceQuiet",
    "LogwardenRulesBroken",
    "LogwardenModelDrift",
}
ROUTED_SEVERITIES = {"critical", "high", "warning"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: run `deploy/local/services.sh fetch` (installs the Debian packages "
            "prometheus and prometheus-alertmanager, which provide promtool, amtool and the servers)",
            pytrace=False,
        )
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (
        f"`{' '.join(args)}` exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def _rule_files() -> list[Path]:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def _alerting_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in _rule_files()
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


# ------------------------------------------------------------------ Prometheus


def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    rule_files = config["rule_files"]
    assert rule_files and all(p.startswith(CONTAINER_RULES_DIR + "/") for p in rule_files), rule_files
    # /etc/prometheus does not exist here: point the globs at the repository's rules directory
    config["rule_files"] = [str(RULES_DIR) + p.removeprefix(CONTAINER_RULES_DIR) for p in rule_files]
    local_config = tmp_path / "prometheus.yml"
    local_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    result = _run(promtool, "check", "config", str(local_config))

    output = result.stdout + result.stderr
    for path in _rule_files():  # every rule file the glob matches was loaded and checked
        assert str(path) in output, f"{path.name} was not loaded through rule_files:\n{output}"


def test_prometheus_config_targets() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"logwarden", "prometheus"} <= jobs.keys()
    logwarden_targets = [t for sc in jobs["logwarden"]["static_configs"] for t in sc["targets"]]
    assert logwarden_targets == ["logwarden:9108"]
    am_targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert am_targets == ["alertmanager:9093"]


def test_promtool_check_rules() -> None:
    promtool = _tool("promtool")
    _run(promtool, "check", "rules", *map(str, _rule_files()))


def test_promtool_rule_unit_tests() -> None:
    promtool = _tool("promtool")
    result = _run(promtool, "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert "SUCCESS" in result.stdout + result.stderr


def test_rule_unit_tests_cover_firing_and_quiet_cases() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    both = firing & quiet
    assert len(both) >= 2, f"need firing and not-firing cases for >= 2 alerts, have {sorted(both)}"
    assert {"LogwardenDown", "LogwardenIngestStopped"} <= both


def test_pipeline_alerts_are_complete_and_routable() -> None:
    rules = _alerting_rules()
    names = {rule["alert"] for rule in rules}
    assert names >= REQUIRED_ALERTS, f"missing alerts: {sorted(REQUIRED_ALERTS - names)}"
    problems = []
    for rule in rules:
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in ROUTED_SEVERITIES:
            problems.append(f"{rule['alert']}: severity {labels.get('severity')!r} not in {ROUTED_SEVERITIES}")
        if not labels.get("team"):
            problems.append(f"{rule['alert']}: no team label")
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problems.append(f"{rule['alert']}: no {key} annotation")
        if not str(annotations.get("runbook_url", "")).startswith("https://"):
            problems.append(f"{rule['alert']}: runbook_url is not an https link")
    assert not problems, "\n".join(problems)


def _exported_metric_names() -> set[str]:
    """Every metric name the worker exports (its metric bundles and collectors, as `logwarden run` wires them)."""
    from prometheus_client import CollectorRegistry

    from alerting.metrics import AlertMetrics, ModelCollector, OutboxCollector, RuleMetrics
    from alerting.outbox import MemoryOutbox
    from detectors.ml.engine import MLEngine
    from detectors.sigma.engine import RuleEngine
    from detectors.sigma.rules import RuleSet
    from ingest.metrics import IngestMetrics

    class Drifting(MLEngine):  # one model with a drift value, so the drift gauge has a sample
        def drift(self) -> dict[str, dict[str, float]]:
            return {"m": {"f": 0.1}}

    registry = CollectorRegistry()
    AlertMetrics.create(registry)
    IngestMetrics.create(registry)
    RuleMetrics.create(registry, RuleEngine(RuleSet()))
    registry.register(OutboxCollector(MemoryOutbox(), ["alertmanager"]))
    registry.register(ModelCollector(Drifting([])))  # exported once the ML engine runs in the worker
    names = {"logwarden_up"}  # the gauge `logwarden run` sets itself
    for metric in registry.collect():
        names.add(metric.name)
        names.update(sample.name for sample in metric.samples)
        if metric.type == "counter":
            names.add(metric.name + "_total")
    return names


def test_pipeline_alerts_use_only_metrics_the_worker_exports_and_documents() -> None:
    exported = _exported_metric_names()
    documented = set(re.findall(r"`(logwarden_[a-z_]+)", METRICS_DOC.read_text(encoding="utf-8")))
    used = {name for rule in _alerting_rules() for name in re.findall(r"\blogwarden_[a-z_]+", rule["expr"])}
    assert used, "no logwarden_* metric found in the rule expressions"
    unknown = used - exported - documented
    assert not unknown, f"alert rules use metrics that are neither exported nor documented: {sorted(unknown)}"
    assert used <= exported, f"alert rules use metrics no collector exports: {sorted(used - exported)}"
    undocumented = sorted(n for n in exported if n.startswith("logwarden_") and not _documented(n, documented))
    assert not undocumented, f"exported but missing from docs/metrics.md: {undocumented}"


def _documented(name: str, documented: set[str]) -> bool:
    base = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
    return name in documented or base in documented or f"{base}_total" in documented


def test_every_alert_has_its_runbook_section() -> None:
    anchors = {
        re.sub(r"[^a-z0-9_-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    missing = [
        rule["alert"]
        for rule in _alerting_rules()
        if rule["annotations"]["runbook_url"].split("#", 1)[1] not in anchors
    ]
    assert not missing, f"docs/runbooks.md has no section for {missing}"


# ------------------------------------------------------------------ Alertmanager


def test_amtool_check_config() -> None:
    amtool = _tool("amtool")
    result = _run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        pytest.param(["alertname=SuspiciousKeyUse", "rule_id=r-1", "severity=critical"], "pager", id="critical"),
        pytest.param(["alertname=LogwardenDown", "severity=critical", "team=platform"], "pager", id="pipeline"),
        pytest.param(
            ["alertname=Exfil", "rule_id=r-2", "severity=high", "team=security"],
            "team-security",
            id="high-security",
        ),
        pytest.param(
            ["alertname=LogwardenDeadLetterRateHigh", "severity=warning", "team=platform"],
            "team-platform",
            id="warning-platform",
        ),
        pytest.param(
            ["alertname=LogwardenModelDrift", "severity=warning", "team=data-science"],
            "team-data-science",
            id="warning-data-science",
        ),
        pytest.param(["alertname=Odd", "severity=warning", "team=nobody"], "default", id="warning-unknown-team"),
        pytest.param(["alertname=Odd", "rule_id=r-3", "severity=medium"], "default", id="default"),
    ],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    amtool = _tool("amtool")
    result = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.stdout.strip() == receiver


def test_alertmanager_routing_shape() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    route = config["route"]
    assert route["group_by"] == ["alertname", "rule_id"]
    receivers = {r["name"] for r in config["receivers"]}

    def walk(node: dict[str, Any]) -> set[str]:
        return {node["receiver"]}.union(*(walk(child) for child in node.get("routes", [])))

    assert walk(route) <= receivers, "every route points at a declared receiver"
    inhibit = config["inhibit_rules"]
    assert any(
        'severity="critical"' in rule["source_matchers"]
        and 'entity_key=~".+"' in rule["source_matchers"]
        and rule["equal"] == ["entity_key"]
        for rule in inhibit
    ), "critical alerts inhibit lesser ones about the same entity (entity_key)"


# ------------------------------------------------------------------ Alertmanager, running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(url: str, payload: object | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body.strip().startswith((b"[", b"{")) else body


@pytest.fixture
def alertmanager_url(tmp_path: Path) -> Iterator[str]:
    """The real Alertmanager on a free loopback port, with deploy/alertmanager/alertmanager.yml."""
    binary = _tool("prometheus-alertmanager") if shutil.which("alertmanager") is None else "alertmanager"
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _http(f"{url}/-/ready")
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"Alertmanager did not start ({exc}):\n{(tmp_path / 'alertmanager.log').read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def test_running_alertmanager_applies_the_inhibition_rules(alertmanager_url: str) -> None:
    # critical mutes the lesser alerts about the same entity only; LogwardenDown mutes the pipeline
    # symptoms of the same job only (a critical alert without entity_key must not mute everything without one)
    alerts = {
        "critical-e1": {"alertname": "KeyAbuse", "rule_id": "r-1", "severity": "critical", "entity_key": "e1"},
        "high-e1": {"alertname": "BruteForce", "rule_id": "r-2", "severity": "high", "entity_key": "e1"},
        "medium-e1": {"alertname": "NewCountry", "rule_id": "r-3", "severity": "medium", "entity_key": "e1"},
        "high-e2": {"alertname": "BruteForce", "rule_id": "r-2", "severity": "high", "entity_key": "e2"},
        "critical-no-entity": {"alertname": "Leak", "rule_id": "r-4", "severity": "critical"},
        "high-no-entity": {"alertname": "Other", "rule_id": "r-5", "severity": "high", "team": "security"},
        "down": {
            "alertname": "LogwardenDown",
            "job": "logwarden",
            "severity": "critical",
            "team": "platform",
        },
        "dlq": {
            "alertname": "LogwardenDeadLetterRateHigh",
            "job": "logwarden",
            "source": "audit",
            "severity": "warning",
            "team": "platform",
        },
        "unrelated": {"alertname": "DiskAlmostFull", "severity": "warning", "team": "platform"},
        # ML: a credential-stuffing address (its own campaign c1) mutes the accounts it tried, not others
        "ip-c1": {
            "alertname": "ml_entity_behaviour",
            "severity": "medium",
            "entity_type": "source_ip",
            "entity_key": "c1",
            "campaign_key": "c1",
        },
        "user-c1": {
            "alertname": "ml_entity_behaviour",
            "severity": "low",
            "entity_type": "user",
            "entity_key": "u1",
            "campaign_key": "c1",
        },
        "user-c1-high": {
            "alertname": "ml_entity_behaviour",
            "severity": "high",
            "entity_type": "user",
            "entity_key": "u2",
            "campaign_key": "c1",
        },
        "user-c2": {
            "alertname": "ml_entity_behaviour",
            "severity": "low",
            "entity_type": "user",
            "entity_key": "u3",
            "campaign_key": "c2",
        },
    }
    now = datetime.now(UTC).isoformat()
    _http(
        f"{alertmanager_url}/api/v2/alerts",
        [{"labels": labels, "startsAt": now} for labels in alerts.values()],
    )

    expected = {
        "critical-e1": "active",
        "high-e1": "suppressed",
        "medium-e1": "suppressed",
        "high-e2": "active",
        "critical-no-entity": "active",
        "high-no-entity": "active",
        "down": "active",
        "dlq": "suppressed",
        "unrelated": "active",
        "ip-c1": "active",
        "user-c1": "suppressed",
        "user-c1-high": "active",  # more severe than the campaign's alert: still pages
        "user-c2": "active",
    }
    states: dict[str, str] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = _http(f"{alertmanager_url}/api/v2/alerts")
        by_labels = {json.dumps(a["labels"], sort_keys=True): a["status"]["state"] for a in got}
        states = {key: by_labels.get(json.dumps(labels, sort_keys=True), "missing") for key, labels in alerts.items()}
        if states == expected:
            break
        time.sleep(0.3)
    assert states == expected
