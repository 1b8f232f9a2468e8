"""Alert latency on the real stack: an event produced to Kafka -> its alert visible in Alertmanager.

    sudo deploy/local/services.sh start all
    .venv/bin/python bench/bench_alert_latency.py [--rate 2000] [--seconds 60] [--every 3] [--runs 3]

Each run starts one ``logwarden run`` worker (shipped rules, shipped settings: batch 1000, privacy on,
pipelined writes, alert outbox) on a fresh topic and waits until it has its partitions. Then a
separate process at nice 10 (in production the producers do not share the SIEM's two cores; the
worker and the poller run at normal priority) produces a steady stream of generated gateway events
at ``--rate`` events/s (generated at that rate for ``--orgs`` organisations, so users keep natural
request rates), stamped with the current time. After ``--warmup`` seconds, every ``--every``
seconds a brute-force burst is injected into the stream: 10 failed password sign-ins for a fresh
user, 50 ms apart. A poller asks Alertmanager (``GET /api/v2/alerts``) every 25 ms; the latency of a
burst is the time from producing its 10th failure (the event that completes the rule's condition)
until its alert is listed. Reported per run: p50/p95/p99 over the bursts (``--verbose``: each burst);
then the median of the runs. A burst without an alert 30 s after the stream ended counts as missed.
Figures only, never part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from ingest.privacy.pseudonymize import Pseudonymizer, derive_key_id
from ingest.sources.synthetic import generate_api_access, to_json_line

RUN_DIR = Path(os.environ.get("LOGWARDEN_SVC_RUN", "/tmp/logwarden-svc"))
KEY = b"bench-alert-latency-key-0123456789abcdef"
RULE = "api_login_brute_force"
MISSED_AFTER_S = 30.0


def services() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (RUN_DIR / "services.env").read_text().splitlines() if "=" in line)
    return dict(pairs)


def stamp(t: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def failed_login(user: str, ip: str, t: float) -> bytes:
    return orjson.dumps(
        {
            "timestamp": stamp(t),
            "request_id": f"req_{uuid.uuid4().hex[:24]}",
            "client_ip": ip,
            "method": "POST",
            "path": "/v1/auth/login",
            "status": 401,
            "user_id": user,
            "auth_method": "password",
            "user_agent": "python-requests/2.31.0",
        }
    )


class Poller(threading.Thread):
    """Polls Alertmanager for brute-force alerts; notes when each entity's alert is first listed."""

    def __init__(self, url: str, interval_s: float = 0.025) -> None:
        super().__init__(daemon=True)
        query = urllib.parse.quote(f'alertname="{RULE}"')
        self.url = f"{url}/api/v2/alerts?filter={query}&silenced=false&inhibited=true"
        self.interval_s = interval_s
        self.seen: dict[str, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    alerts = json.loads(response.read())
            except OSError:
                time.sleep(self.interval_s)
                continue
            now = time.time()
            for alert in alerts:
                self.seen.setdefault(alert["annotations"].get("entity", ""), now)
            time.sleep(self.interval_s)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def produce(bootstrap: str, topic: str, pool: list[bytes], args: argparse.Namespace, start_at: float, out: Any) -> None:
    """The load generator (a separate, niced process: producers do not run on the SIEM's machine).

    Sends the steady stream with the current time as event time and injects the bursts; puts
    {pseudonymized entity: wall time its 10th failure was produced} on ``out`` at the end.
    """
    os.nice(10)
    pseudo = Pseudonymizer(KEY, derive_key_id(KEY), ())
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    bursts: dict[str, float] = {}
    pending: list[tuple[float, str, str, int]] = []  # (due, user, ip, index) of burst events still to send
    sent, n = 0, len(pool)
    warmup_end = start_at + args.warmup
    end = warmup_end + args.seconds
    next_burst = warmup_end
    while time.time() < end:
        now = time.time()
        head = b'{"timestamp":"' + stamp(now).encode()
        for _ in range(max(0, int((now - start_at) * args.rate) - sent)):
            raw = pool[sent % n]
            producer.send(topic, head + raw[38:])  # the same event, stamped now (the stamp is 24 bytes at 14)
            sent += 1
        if now >= next_burst:
            user, ip = f"user_{uuid.uuid4().hex[:12]}", f"198.51.100.{len(bursts) % 250 + 1}"
            pending += [(now + i * 0.05, user, ip, i) for i in range(10)]
            bursts[f"user.id={pseudo.pseudonym(user)}"] = float("nan")
            next_burst += args.every
        for item in [p for p in pending if p[0] <= now]:
            _, user, ip, index = item
            producer.send(topic, failed_login(user, ip, time.time()))
            if index == 9:
                producer.flush()
                bursts[f"user.id={pseudo.pseudonym(user)}"] = time.time()
            pending.remove(item)
        time.sleep(max(0.0, 0.01 - (time.time() - now)))
    producer.flush()
    producer.close()
    out.put((bursts, sent / (time.time() - start_at)))


def make_pool(rate: float, orgs: int, seconds: float = 80.0) -> list[bytes]:
    """``seconds`` of normal traffic generated at ``rate`` for ``orgs`` organisations (replayed in a loop).

    Generated at the target rate, so each user and key keeps a natural request rate (replaying a small
    world faster would make every user a heavy hitter and the volume rules fire all the time).
    """
    generated = generate_api_access(
        seed=5, duration=timedelta(seconds=seconds), rate_per_s=rate, n_orgs=orgs, scenarios=()
    )
    failed = ("/v1/auth/login", 401)  # failed logins come from the bursts only
    pool = [to_json_line(e) for e in generated if (e.raw["path"], e.raw["status"]) != failed]
    assert all(raw.startswith(b'{"timestamp":"') and raw[38:40] == b'",' for raw in pool)
    return pool


def wait_assigned(port: int, timeout_s: float = 90.0) -> None:
    """Until the worker reports the lag of its partitions (it has joined the group and has positions)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                if b"\nlogwarden_consumer_lag{" in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the worker got no partitions within {timeout_s:.0f} s")


def one_run(svc: dict[str, str], args: argparse.Namespace, pool: list[bytes]) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-lat-{run_id}"
    store = Path(tempfile.mkdtemp(prefix="bench-lat-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        metrics_port = sock.getsockname()[1]
    env = {
        **os.environ,
        "LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS": svc["KAFKA_BOOTSTRAP_SERVERS"],
        "LOGWARDEN_ELASTICSEARCH_URL": svc["ELASTICSEARCH_URL"],
        "LOGWARDEN_ALERTMANAGER_URL": svc["ALERTMANAGER_URL"],
        "LOGWARDEN_TOPICS": json.dumps({topic: "api_access"}),
        "LOGWARDEN_KAFKA_GROUP_ID": f"bench-lat-{run_id}",
        "LOGWARDEN_INDEX_PREFIX": f"bench-lat-{run_id}",
        "LOGWARDEN_INDEX_REPLICAS": "0",
        "LOGWARDEN_METRICS_PORT": str(metrics_port),
        "LOGWARDEN_STORE_PATH": str(store),
        "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY": KEY.decode(),
        "LOGWARDEN_LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "-m", "logwarden", "setup"], env=env, check=True, capture_output=True)
    worker = subprocess.Popen([sys.executable, "-m", "logwarden", "run"], env=env, stderr=subprocess.PIPE, text=True)
    wait_assigned(metrics_port)
    poller = Poller(svc["ALERTMANAGER_URL"])
    poller.start()
    spawn = multiprocessing.get_context("spawn")  # not fork: this process runs threads (poller, Kafka)
    out = spawn.Queue()
    load = spawn.Process(target=produce, args=(svc["KAFKA_BOOTSTRAP_SERVERS"], topic, pool, args, time.time(), out))
    load.start()
    bursts, rate = out.get(timeout=args.warmup + args.seconds + 120)
    load.join(30)
    deadline = time.time() + MISSED_AFTER_S
    while time.time() < deadline and not all(e in poller.seen for e in bursts):
        time.sleep(0.2)
    poller.halt.set()
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=120)
    if worker.returncode != 0:
        raise SystemExit(f"worker failed:\n{stderr[-3000:]}")
    (store / "worker.log").write_text(stderr)
    latencies = [poller.seen[e] - t for e, t in bursts.items() if e in poller.seen and t == t]
    in_order = " ".join(f"{poller.seen[e] - t:.1f}" if e in poller.seen else "-" for e, t in bursts.items())
    warnings = [line for line in stderr.splitlines() if " WARNING " in line and "kafka.net.selector" not in line]
    return {
        "latencies": latencies,
        "bursts": len(bursts),
        "missed": len(bursts) - len(latencies),
        "rate": rate,
        "in_order": in_order,
        "log": f"{store / 'worker.log'} ({len(warnings)} warnings{': ' + warnings[0][-160:] if warnings else ''})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="steady events/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of stream before the first burst")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between bursts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orgs", type=int, default=1000, help="organisations of the generated platform")
    parser.add_argument("--verbose", action="store_true", help="print each burst's latency, in order")
    args = parser.parse_args()
    svc = services()
    pool = make_pool(args.rate, args.orgs)
    summaries = []
    for run in range(args.runs):
        result = one_run(svc, args, pool)
        lat = result["latencies"]
        if not lat:
            raise SystemExit(f"run {run + 1}: no burst raised an alert ({result['bursts']} bursts)")
        p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
        summaries.append((p50, p95, p99, max(lat)))
        print(
            f"run {run + 1}: {result['rate']:,.0f} events/s produced, {result['bursts']} bursts, "
            f"{result['missed']} missed; latency p50 {p50:.2f} s, p95 {p95:.2f} s, p99 {p99:.2f} s, "
            f"max {max(lat):.2f} s; worker log {result['log']}",
            flush=True,
        )
        if args.verbose:
            print(f"  per burst, in order (s): {result['in_order']}", flush=True)
    med = [statistics.median(s[i] for s in summaries) for i in range(4)]
    print(
        f"median of {args.runs} runs at {args.rate:,.0f} events/s: p50 {med[0]:.2f} s, p95 {med[1]:.2f} s, "
        f"p99 {med[2]:.2f} s, max {med[3]:.2f} s (target p95 <= 2 s)"
    )


if __name__ == "__main__":
    main()
