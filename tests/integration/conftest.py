"""The real stack for integration tests: Kafka, Elasticsearch, Prometheus and Alertmanager.

They are started once per session by ``deploy/local/services.sh`` (which downloads what is missing)
unless already running (``services.sh start`` beforehand, e.g. by ``.ci/run``). A missing service
is a failure, never a skip. Set ``LOGWARDEN_SVC_KEEP=1`` to leave services this session started
running after the tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.privacy.pseudonymize import Pseudonymizer, derive_key_id

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local" / "services.sh"
RUN_DIR = Path(os.environ.get("LOGWARDEN_SVC_RUN", "/tmp/logwarden-svc"))
# new per test session: pseudonyms, and so alert ids, never collide with alerts earlier runs left in Alertmanager
PSEUDONYMIZATION_KEY = f"integration-key-{uuid.uuid4().hex}"
REQUIRED = ("KAFKA_BOOTSTRAP_SERVERS", "ELASTICSEARCH_URL", "ALERTMANAGER_URL", "PROMETHEUS_URL")


@dataclass(frozen=True)
class Services:
    kafka: str
    elasticsearch: str
    alertmanager: str
    prometheus: str
    prometheus_targets: Path


def _read_env() -> dict[str, str]:
    path = RUN_DIR / "services.env"
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _all_up(env: dict[str, str], attempts: int = 4) -> bool:
    """Every service answers (a few tries: a loaded machine can make one health check time out, and a session
    that wrongly thinks the services are down would start them and then stop them under everyone's feet)."""
    if not all(k in env for k in REQUIRED):
        return False
    for attempt in range(attempts):
        if _answers(env):
            return True
        if attempt + 1 < attempts:
            time.sleep(2.0)
    return False


def _answers(env: dict[str, str]) -> bool:
    checks = [
        env["ELASTICSEARCH_URL"] + "/_cluster/health",
        env["ALERTMANAGER_URL"] + "/-/ready",
        env["PROMETHEUS_URL"] + "/-/ready",
    ]
    try:
        for url in checks:
            with urllib.request.urlopen(url, timeout=3) as response:
                response.read()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    env = _read_env()
    started = False
    if not _all_up(env):
        result = subprocess.run(["bash", str(SCRIPT), "start", "all"], capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail(
                f"could not start the real services with {SCRIPT} start all (exit {result.returncode}):\n"
                f"{result.stderr[-4000:]}",
                pytrace=False,
            )
        started = True
        env = _read_env()
    missing = [k for k in REQUIRED if k not in env]
    if missing or not _all_up(env):
        pytest.fail(f"services not available after start: missing {missing}; see {RUN_DIR}", pytrace=False)
    yield Services(
        kafka=env["KAFKA_BOOTSTRAP_SERVERS"],
        elasticsearch=env["ELASTICSEARCH_URL"],
        alertmanager=env["ALERTMANAGER_URL"],
        prometheus=env["PROMETHEUS_URL"],
        prometheus_targets=Path(env["PROMETHEUS_TARGETS_FILE"]),
    )
    if started and os.environ.get("LOGWARDEN_SVC_KEEP") != "1":
        subprocess.run(["bash", str(SCRIPT), "stop"], check=False, timeout=120)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.5) -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition probes a service that may not be ready yet
            last_error = exc
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last error: {last_error!r})", pytrace=False)


def services_script(*args: str) -> None:
    """Run ``deploy/local/services.sh`` (e.g. ``stop-es``), failing the test on error."""
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"services.sh {' '.join(args)} failed:\n{result.stderr[-3000:]}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def logwarden_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the ``logwarden`` command (this interpreter's) to completion."""
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def logwarden_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``logwarden run`` in the background (stderr captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "logwarden", "run", *args], env=env, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def deployment(services: Services, tmp_path: Path) -> dict[str, str]:
    """Environment of one isolated logwarden deployment (own topic, group, index prefix, metrics port)."""
    run_id = uuid.uuid4().hex[:10]
    return {
        **os.environ,
        "LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS": services.kafka,
        "LOGWARDEN_KAFKA_GROUP_ID": f"it-{run_id}",
        "LOGWARDEN_TOPICS": json.dumps({f"it-api-access-{run_id}": "api_access"}),
        "LOGWARDEN_KAFKA_TOPIC_PARTITIONS": "2",
        "LOGWARDEN_ELASTICSEARCH_URL": services.elasticsearch,
        "LOGWARDEN_ELASTICSEARCH_TIMEOUT_S": "10",
        "LOGWARDEN_INDEX_PREFIX": f"it-{run_id}",
        "LOGWARDEN_INDEX_REPLICAS": "0",
        "LOGWARDEN_ALERTMANAGER_URL": services.alertmanager,
        "LOGWARDEN_KIBANA_URL": "http://kibana.example:5601",
        "LOGWARDEN_METRICS_PORT": str(free_port()),
        "LOGWARDEN_BATCH_SIZE": "500",
        "LOGWARDEN_POLL_TIMEOUT_S": "0.5",
        "LOGWARDEN_STORE_PATH": str(tmp_path / "store"),
        "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY": PSEUDONYMIZATION_KEY,
    }


def topic_of(deployment: dict[str, str]) -> str:
    return str(next(iter(json.loads(deployment["LOGWARDEN_TOPICS"]))))


def pseudonym(value: str) -> str:
    """What the deployments' privacy step turns ``value`` into (same key, same algorithm)."""
    key = PSEUDONYMIZATION_KEY.encode()
    return Pseudonymizer(key, derive_key_id(key), ()).pseudonym(value)
