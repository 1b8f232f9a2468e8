"""Alerting on the real Alertmanager and Prometheus.

- an alert arrives with its identity/routing labels and its annotations (runbook, entity, version...);
- open alerts are re-sent before their ``endsAt`` (TTL) passes, and expire once the worker is gone;
- a resolved alert ends (``endsAt`` in the past: it leaves Alertmanager's active alerts long before its TTL);
- Alertmanager down, worker killed, both back: the alert waited in the durable outbox and arrives once
  (on a private Alertmanager process: stopping the shared one would disturb concurrent test sessions);
- Prometheus scrapes the worker and a pipeline-health rule of deploy/prometheus/rules fires.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from .conftest import (
    Services,
    free_port,
    get_json,
    logwarden_cli,
    logwarden_worker,
    pseudonym,
    topic_of,
    wait_until,
)

RULE = "api_login_brute_force"
REPO = Path(__file__).resolve().parents[2]
PIPELINE_RULES = REPO / "deploy/prometheus/rules/pipeline.yml"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def failed_logins(user: str, n: int, start: datetime) -> list[bytes]:
    """``n`` failed password sign-ins for ``user``, one a second from ``start``."""
    return [
        orjson.dumps(
            {
                "timestamp": stamp(start + timedelta(seconds=i)),
                "request_id": f"req_{uuid.uuid4().hex[:24]}",
                "client_ip": "203.0.113.77",
                "method": "POST",
                "path": "/v1/auth/login",
                "status": 401,
                "user_id": user,
                "auth_method": "password",
                "user_agent": "python-requests/2.31.0",
            }
        )
        for i in range(n)
    ]


def produce(services: Services, topic: str, records: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=services.kafka)
    for record in records:
        producer.send(topic, record)
    producer.flush()
    producer.close()


def am_alerts(services: Services, user: str, url: str | None = None) -> list[dict[str, Any]]:
    """The active brute-force alerts in Alertmanager for ``user`` (its pseudonym is in the annotations)."""
    query = urllib.parse.quote(f'alertname="{RULE}"')
    entity = f"user.id={pseudonym(user)}"
    found = get_json(f"{url or services.alertmanager}/api/v2/alerts?filter={query}")
    return [a for a in found if a["annotations"].get("entity") == entity]


def metrics(port: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(port: str, name: str, **labels: str) -> float:
    return metrics(port).get((name, tuple(sorted(labels.items()))), 0.0)


def alert_docs(es: Elasticsearch, prefix: str, alert_id: str) -> list[dict[str, Any]]:
    es.indices.refresh(index=f"{prefix}-alerts")
    hits = es.search(index=f"{prefix}-alerts", query={"term": {"logwarden.alert.id": alert_id}})["hits"]["hits"]
    return [h["_source"] for h in hits]


def stop(worker: subprocess.Popen[str]) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=90)
    return stderr


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def started(services: Services, deployment: dict[str, str]) -> dict[str, str]:
    setup = logwarden_cli("setup", env=deployment)
    assert setup.returncode == 0, setup.stderr
    return deployment


def test_an_alert_arrives_with_labels_and_annotations_then_resolves(
    services: Services, started: dict[str, str]
) -> None:
    env = {**started, "LOGWARDEN_ALERT_TTL_S": "600", "LOGWARDEN_ALERT_QUIET_S": "6"}
    user = f"user_{uuid.uuid4().hex[:12]}"
    # an hour old: the 5-minute window and the 10-minute lateness are long over, so only the quiet period counts
    produce(services, topic_of(env), failed_logins(user, 12, datetime.now(UTC) - timedelta(hours=1)))
    worker = logwarden_worker(env)
    es = Elasticsearch(services.elasticsearch)
    try:
        found = wait_until(lambda: am_alerts(services, user), 60, "the brute-force alert in Alertmanager", 0.2)
        assert isinstance(found, list) and len(found) == 1
        alert = found[0]
        labels, notes = alert["labels"], alert["annotations"]
        assert set(labels) == {"alertname", "severity", "rule_id", "alert_id", "service", "team", "entity_key"}
        assert (labels["alertname"], labels["severity"], labels["team"]) == (RULE, "high", "security")
        assert re.fullmatch(r"[0-9a-f]{16}", labels["entity_key"])
        assert pseudonym(user) not in json.dumps(labels)
        assert (
            notes["runbook_url"]
            == "https://github.com/logwarden/logwarden/blob/main/docs/runbooks.md#api_login_brute_force"
        )
        assert int(notes["event_count"]) >= 10 and notes["risk_score"] == "73"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d\+[0-9a-f]{8}", notes["rule_version"])
        assert notes["description"].startswith(f"{notes['event_count']} events matched {RULE} for user.id=")
        assert set(notes) >= {"summary", "description", "runbook_url", "entity", "first_seen", "last_seen"}
        assert alert["generatorURL"].startswith("http://kibana.example:5601/app/discover")
        assert parse_time(alert["endsAt"]) > datetime.now(UTC) + timedelta(seconds=500)  # now + TTL (600 s)
        assert alert["status"]["state"] == "active"

        # resolved after 6 quiet seconds: it leaves the active alerts ~10 minutes before its TTL would end
        wait_until(lambda: not am_alerts(services, user), 30, "the resolved alert to leave the active alerts")
        # each sink has its own delivery thread: the index may take the resolved state a moment later
        resolved = wait_until(
            lambda: [
                d
                for d in alert_docs(es, started["LOGWARDEN_INDEX_PREFIX"], labels["alert_id"])
                if d["logwarden"]["alert"]["status"] == "resolved"
            ],
            30,
            "the resolved state in the alerts index",
        )
        docs = alert_docs(es, started["LOGWARDEN_INDEX_PREFIX"], labels["alert_id"])
        assert resolved and len(docs) == 1 and docs[0]["logwarden"]["alert"]["status"] == "resolved"
        assert parse_time(docs[0]["logwarden"]["alert"]["resolved_at"]) <= datetime.now(UTC)
        assert docs[0]["rule"]["version"] == notes["rule_version"]
        port = env["LOGWARDEN_METRICS_PORT"]
        assert metric(port, "logwarden_alerts_resolved_total", rule_id=labels["rule_id"]) == 1.0
        assert metric(port, "logwarden_alert_end_to_end_seconds_count", sink="alertmanager") >= 1.0
        assert metric(port, "logwarden_alerts_open") == 0.0
    finally:
        stderr = stop(worker)
        es.close()
    assert worker.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr


def test_open_alerts_are_resent_before_they_expire_and_expire_without_the_worker(
    services: Services, started: dict[str, str]
) -> None:
    env = {**started, "LOGWARDEN_ALERT_TTL_S": "6"}  # endsAt = now + 6 s, re-sent every 2 s; quiet 300 s
    user = f"user_{uuid.uuid4().hex[:12]}"
    produce(services, topic_of(env), failed_logins(user, 12, datetime.now(UTC) - timedelta(minutes=2)))
    worker = logwarden_worker(env)
    try:
        wait_until(lambda: am_alerts(services, user), 60, "the brute-force alert in Alertmanager", 0.2)
        arrived = time.monotonic()
        ends = []
        while time.monotonic() - arrived < 20:  # more than three TTLs
            current = am_alerts(services, user)
            assert len(current) == 1, "the alert must stay active (and single) while the worker re-sends it"
            ends.append(parse_time(current[0]["endsAt"]))
            time.sleep(1)
        assert ends[-1] > ends[0] + timedelta(seconds=10)  # endsAt moved forward with every re-send
        assert metric(env["LOGWARDEN_METRICS_PORT"], "logwarden_alert_resends_total") >= 5
    finally:
        stderr = stop(worker)
    assert worker.returncode == 0, stderr[-3000:]
    wait_until(lambda: not am_alerts(services, user), 20, "the alert to expire once nobody re-sends it")


def _committed_to_end(services: Services, env: dict[str, str]) -> bool:
    topic = topic_of(env)
    probe = KafkaConsumer(bootstrap_servers=services.kafka, group_id=env["LOGWARDEN_KAFKA_GROUP_ID"])
    try:
        partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
        ends = probe.end_offsets(partitions)
        return bool(partitions) and all((probe.committed(tp) or 0) == ends[tp] for tp in partitions)
    finally:
        probe.close(autocommit=False)


class PrivateAlertmanager:
    """A real Alertmanager of this test's own (the shared one stays up for concurrent sessions).

    :meth:`stop` and :meth:`start` take it down and back on the same port with the same storage,
    the way ``deploy/local/services.sh stop-am`` / ``resume-am`` do with the shared one.
    """

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager") or "alertmanager"
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        (workdir / "alertmanager.yml").write_text(
            "route: {receiver: default, group_by: [alertname], group_wait: 1s, group_interval: 1s}\n"
            "receivers: [{name: default}]\n"
        )

    def start(self) -> None:
        log = (self.workdir / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_until(lambda: get_json(f"{self.url}/api/v2/status"), 30, "the private Alertmanager to start", 0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def private_alertmanager(tmp_path: Path) -> Iterator[PrivateAlertmanager]:
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    am = PrivateAlertmanager(workdir)
    am.start()
    try:
        yield am
    finally:
        am.stop()


def test_alertmanager_down_and_worker_killed_the_alert_still_arrives_once(
    services: Services, started: dict[str, str], private_alertmanager: PrivateAlertmanager
) -> None:
    am = private_alertmanager
    env = {**started, "LOGWARDEN_ALERTMANAGER_URL": am.url}
    port = env["LOGWARDEN_METRICS_PORT"]
    user = f"user_{uuid.uuid4().hex[:12]}"
    es = Elasticsearch(services.elasticsearch)
    am.stop()  # Alertmanager down before the attack
    worker = logwarden_worker(env)
    produce(services, topic_of(env), failed_logins(user, 12, datetime.now(UTC) - timedelta(minutes=1)))

    # the alerts index got it, Alertmanager could not: it waits in the outbox, failures are counted
    def in_outbox() -> bool:
        return (
            metric(port, "logwarden_alert_outbox_depth", sink="alertmanager") >= 1
            and metric(port, "logwarden_alert_delivery_failures_total", sink="alertmanager") >= 1
        )

    wait_until(in_outbox, 60, "the alert waiting in the outbox for Alertmanager")
    query = {"term": {"logwarden.alert.entity": f"user.id={pseudonym(user)}"}}
    es.indices.refresh(index=f"{env['LOGWARDEN_INDEX_PREFIX']}-alerts")
    hits = es.search(index=f"{env['LOGWARDEN_INDEX_PREFIX']}-alerts", query=query)["hits"]["hits"]
    assert len(hits) == 1
    alert_id = hits[0]["_source"]["logwarden"]["alert"]["id"]
    # the batch is committed: a restart will not re-detect it, only the outbox can deliver the alert
    wait_until(lambda: _committed_to_end(services, env), 60, "the offsets committed")
    worker.send_signal(signal.SIGKILL)  # no chance to drain anything
    worker.wait(timeout=30)

    am.start()  # same port, same storage
    assert am_alerts(services, user, am.url) == []  # back, and empty of it
    worker = logwarden_worker(env)
    try:
        found = wait_until(lambda: am_alerts(services, user, am.url), 60, "the alert delivered from the outbox", 0.2)
        assert isinstance(found, list) and len(found) == 1 and found[0]["labels"]["alert_id"] == alert_id
        time.sleep(3)
        assert len(am_alerts(services, user, am.url)) == 1  # still one: no duplicate
        assert metric(port, "logwarden_alert_outbox_depth", sink="alertmanager") == 0.0
        assert metric(port, "logwarden_alerts_total", rule_id=found[0]["labels"]["rule_id"], severity="high") == 0.0
        assert len(alert_docs(es, env["LOGWARDEN_INDEX_PREFIX"], alert_id)) == 1
    finally:
        stderr = stop(worker)
        es.close()
    assert worker.returncode == 0, stderr[-3000:]
    assert "open alerts restored from the outbox" in stderr


@pytest.fixture
def pipeline_rules(services: Services) -> Iterator[None]:
    """Load deploy/prometheus/rules (``for:`` shortened to 5 s) into the shared Prometheus; restore it after."""
    prom_dir = services.prometheus_targets.parent
    config = yaml.safe_load((prom_dir / "prometheus.yml").read_text())
    rules_file = Path(config["rule_files"][0])
    original = rules_file.read_text()
    fast = re.sub(r"(?m)^(\s+)for: \d+[smh]$", r"\1for: 5s", PIPELINE_RULES.read_text())
    rules_file.write_text(fast)
    targets = services.prometheus_targets.read_text()

    def reload() -> None:
        request = urllib.request.Request(f"{services.prometheus}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    reload()
    try:
        yield
    finally:
        rules_file.write_text(original)
        services.prometheus_targets.write_text(targets)
        reload()


def test_prometheus_scrapes_logwarden_and_a_pipeline_rule_fires(
    services: Services, started: dict[str, str], pipeline_rules: None
) -> None:
    env = started
    topic = topic_of(env)
    port = env["LOGWARDEN_METRICS_PORT"]
    services.prometheus_targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    worker = logwarden_worker(env)
    producer = KafkaProducer(bootstrap_servers=services.kafka)
    now = datetime.now(UTC)
    sent = 0

    def trickle() -> None:  # 1 broken record in 4: far above the 5% dead-letter threshold
        nonlocal sent
        for record in [*failed_logins(f"user_{sent}", 3, now), b"{broken json"]:
            producer.send(topic, record)
        producer.flush()
        sent += 1

    def firing() -> list[dict[str, Any]]:
        trickle()
        alerts = get_json(f"{services.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "LogwardenDeadLetterRateHigh"
            and a["labels"].get("source") == "api_access"
            and a["state"] == "firing"
        ]

    def state() -> str:
        """What Prometheus sees, for the failure message: the logwarden target and the rule's ratio."""
        targets = get_json(f"{services.prometheus}/api/v1/targets")["data"]["activeTargets"]
        ours = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets if t["labels"]["job"] == "logwarden"]
        expr = 'sum by (source) (increase(logwarden_dead_letters_total{job="logwarden"}[10m]))'
        ratio = get_json(f"{services.prometheus}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]
        rules = get_json(f"{services.prometheus}/api/v1/rules?type=alert")["data"]["groups"]
        names = [r["name"] for g in rules for r in g["rules"]]
        return f"targets {ours}; dead letters {ratio}; alert rules loaded {len(names)}"

    try:
        try:
            found = wait_until(firing, 180, "LogwardenDeadLetterRateHigh firing in Prometheus", 1.0)
        except BaseException:
            print("prometheus state:", state())  # shown with the failure
            raise
        assert isinstance(found, list)
        assert found[0]["labels"]["severity"] == "warning" and found[0]["labels"]["team"] == "platform"
        assert found[0]["annotations"]["runbook_url"].endswith("#logwardendeadletterratehigh")

        # Prometheus hands it to Alertmanager, next to the detection alerts
        query = urllib.parse.quote('alertname="LogwardenDeadLetterRateHigh"')
        wait_until(
            lambda: get_json(f"{services.alertmanager}/api/v2/alerts?filter={query}"),
            60,
            "LogwardenDeadLetterRateHigh in Alertmanager",
        )

        # the consumer lag of this deployment's partitions is scraped too
        promql = urllib.parse.quote(f'logwarden_consumer_lag{{topic="{topic}"}}')

        def lag_series() -> list[Any]:
            return list(get_json(f"{services.prometheus}/api/v1/query?query={promql}")["data"]["result"])

        series = wait_until(lag_series, 60, "logwarden_consumer_lag in Prometheus")
        assert isinstance(series, list) and {s["metric"]["partition"] for s in series} == {"0", "1"}
    finally:
        producer.close()
        stderr = stop(worker)
    assert worker.returncode == 0, stderr[-3000:]
