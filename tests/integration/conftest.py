"""The real stack for integration tests: Kafka, Elasticsearch, Prometheus and Alertmanager.

They are started once per session by ``deploy/local/services.sh`` (which downloads what is missing)
unless already running (``services.sh start`` beforehand, e.g. by ``.ci/run``). A missing service
is a failure, never a skip. Set ``LOGWARDEN_SVC_KEEP=1`` to leave services this session started
running after the tests.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local" / "services.sh"
RUN_DIR = Path(os.environ.get("LOGWARDEN_SVC_RUN", "/tmp/logwarden-svc"))
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


def _all_up(env: dict[str, str]) -> bool:
    if not all(k in env for k in REQUIRED):
        return False
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
