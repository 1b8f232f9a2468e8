"""End-to-end ingest throughput on the real stack: Kafka -> ``logwarden run`` -> Elasticsearch.

    sudo deploy/local/services.sh start all
    .venv/bin/python bench/bench_kafka_to_es.py [--events 200000] [--runs 3]

Each run produces ``--events`` generated gateway events to a fresh topic (3 partitions, as ``logwarden setup``
creates them), then times one worker (``logwarden run --until-idle``) from start until every event is indexed,
and reads its peak RSS: once as an ingest-only worker (no rules: decode, parse, privacy, bulk index, dead
letters, offsets) and once as the default worker (the shipped rules too), each with its own consumer group
and indices. Baseline, measured in the same run on the same topic: a bare kafka-python consumer reading the
records without processing them (the transport's own ceiling for one Python process).
Before the runs, ``--warm-up`` generated documents (300k by default) are bulk-indexed into a scratch index: a freshly
started Elasticsearch compiles its indexing path as it goes (2-3x its later CPU per document). The warm-up takes off
most of that, not all: here the first run after a restart still cost Elasticsearch ~1.5x the CPU per document of the
second, so use ``--runs`` of 2 or more and read the runs one by one.
The worker's CPU time per event (user + system, all its threads) is printed beside its rate: on a shared or
loaded machine it is the steadier figure. So are Elasticsearch's and the Kafka broker's CPU time per event over the
same interval (from ``/proc/<pid>/stat`` of the processes ``deploy/local/services.sh`` started): their sum with the
worker's is what one event costs the whole stack, and ``cores / sum`` is the most any worker could reach when the
stack shares this machine's cores (the "stack ceiling" printed). Figures only (median of the runs); never part of
the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import islice
from pathlib import Path

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer
from pydantic import SecretStr

from ingest.ecs import EVENT_FIELDS, index_template
from ingest.pipeline import Normalizer
from ingest.privacy.config import PrivacyConfig, build_privacy_transforms
from ingest.records import NormalizedEvent, Record
from ingest.sinks.elasticsearch import bulk_body
from ingest.sources.synthetic import generate_api_access, to_json_line

KEY = "bench-pseudonymization-key-0123456789abcdef"
RUN_DIR = Path(os.environ.get("LOGWARDEN_SVC_RUN", "/tmp/logwarden-svc"))


def services() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (RUN_DIR / "services.env").read_text().splitlines() if "=" in line)
    return dict(pairs)


def produce(bootstrap: str, topic: str, raws: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=262144)
    for raw in raws:
        producer.send(topic, raw)
    producer.flush()
    producer.close()


def service_cpu_seconds(name: str) -> float:
    """User + system CPU seconds so far of a service started by ``services.sh`` (``name``: ``es``, ``kafka``)."""
    pid = int((RUN_DIR / name / f"{name}.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


STACK: tuple[str, ...] = ("es", "kafka")


def warm_up(es: Elasticsearch, raws: list[bytes], key: str) -> float:
    """Index ``raws`` (normalized as the worker does) into a scratch index, untimed by the runs: a freshly started
    Elasticsearch compiles its indexing path as it goes and indexes 2-3x slower for the first ~300k documents.
    Returns the warm-up's documents/s."""
    normalizer = Normalizer(build_privacy_transforms(PrivacyConfig(pseudonymization_key=SecretStr(key))))
    events = [
        e for e in (normalizer.normalize(Record("api_access", raw)) for raw in raws) if isinstance(e, NormalizedEvent)
    ]
    index = f"bench-warmup-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=index, **index_template(index, None, EVENT_FIELDS)["template"])
    started = time.perf_counter()
    try:
        for start in range(0, len(events), 2000):
            part = events[start : start + 2000]
            body = bulk_body([(index, e.doc_id, e.json) for e in part])
            es.bulk(operations=body, filter_path=["errors"])  # type: ignore[arg-type]  # NDJSON bytes pass through
    finally:
        es.indices.delete(index=index)
    return len(events) / (time.perf_counter() - started)


def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"bare-{uuid.uuid4().hex[:6]}"
    )
    seen, started = 0, time.perf_counter()
    while seen < n:
        for messages in consumer.poll(timeout_ms=500, max_records=5000).values():
            seen += len(messages)
    elapsed = time.perf_counter() - started
    consumer.close()
    return n / elapsed


def worker_run(
    env: dict[str, str], es: Elasticsearch, prefix: str, n: int
) -> tuple[float, float, float, dict[str, float]]:
    """(events/s, peak RSS MiB, CPU seconds, each stack service's CPU seconds) of one `logwarden run` indexing n events.

    Peak RSS is the worker's own (VmHWM, read while it runs); CPU seconds are its user + system time, all threads
    (the rusage of the children reaped meanwhile: the worker is the only one); the services' over the same interval.
    """
    stack_before = {name: service_cpu_seconds(name) for name in STACK}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "logwarden", "run", "--until-idle", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_kib = 0
    while worker.poll() is None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            status = Path(f"/proc/{worker.pid}/status").read_text()
            peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
        time.sleep(0.2)
    _, stderr = worker.communicate()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stack = {name: service_cpu_seconds(name) - before for name, before in stack_before.items()}
    cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    if worker.returncode != 0:
        raise SystemExit(stderr[-2000:])
    elapsed = time.perf_counter() - started - 2.0  # minus the idle wait at the end
    es.indices.refresh(index=f"{prefix}-events")
    indexed = int(es.count(index=f"{prefix}-events")["count"])
    if indexed != n:
        raise SystemExit(f"indexed {indexed} of {n}")
    return n / elapsed, peak_kib / 1024, cpu, stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=300_000, help="documents indexed before the runs (0: none)")
    parser.add_argument("--bulk-concurrency", type=int, help="LOGWARDEN_ELASTICSEARCH_BULK_CONCURRENCY (else default)")
    args = parser.parse_args()
    svc = services()
    raws = [to_json_line(e) for e in islice(generate_api_access(rate_per_s=50, duration=_hours(24)), args.events)]
    es = Elasticsearch(svc["ELASTICSEARCH_URL"], request_timeout=120)
    if args.warm_up:
        warm = [to_json_line(e) for e in islice(generate_api_access(seed=11, duration=_hours(48)), args.warm_up)]
        print(f"Elasticsearch warm-up: {args.warm_up:,} documents at {warm_up(es, warm, KEY):,.0f}/s", flush=True)
    no_rules = tempfile.mkdtemp(prefix="bench-no-rules-")
    modes = {"ingest only": {"LOGWARDEN_RULES_DIR": json.dumps([no_rules])}, "with the shipped rules": {}}
    bare: list[float] = []
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    rss: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu_us: dict[str, list[float]] = {mode: [] for mode in modes}
    stack_us: dict[str, dict[str, list[float]]] = {mode: {name: [] for name in STACK} for mode in modes}
    for run in range(args.runs):
        run_id = uuid.uuid4().hex[:8]
        topic = f"bench-{run_id}"
        env = {
            **os.environ,
            "LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS": svc["KAFKA_BOOTSTRAP_SERVERS"],
            "LOGWARDEN_ELASTICSEARCH_URL": svc["ELASTICSEARCH_URL"],
            "LOGWARDEN_TOPICS": json.dumps({topic: "api_access"}),
            "LOGWARDEN_INDEX_REPLICAS": "0",
            "LOGWARDEN_METRICS_PORT": "0",
            "LOGWARDEN_BATCH_SIZE": str(args.batch_size),
            "LOGWARDEN_LOG_LEVEL": "WARNING",
            "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY": KEY,
        }
        if args.bulk_concurrency:
            env["LOGWARDEN_ELASTICSEARCH_BULK_CONCURRENCY"] = str(args.bulk_concurrency)
        subprocess.run([sys.executable, "-m", "logwarden", "setup"], env=env, check=True, capture_output=True)
        produce(svc["KAFKA_BOOTSTRAP_SERVERS"], topic, raws)
        bare.append(bare_consume(svc["KAFKA_BOOTSTRAP_SERVERS"], topic, len(raws)))
        line = [f"run {run + 1}: bare consumer {bare[-1]:,.0f}/s"]
        for i, (mode, extra) in enumerate(modes.items()):
            prefix = f"bench-{run_id}-{i}"
            mode_env = {**env, **extra, "LOGWARDEN_KAFKA_GROUP_ID": prefix, "LOGWARDEN_INDEX_PREFIX": prefix}
            subprocess.run([sys.executable, "-m", "logwarden", "setup"], env=mode_env, check=True, capture_output=True)
            rate, peak, cpu, stack = worker_run(mode_env, es, prefix, len(raws))
            for name, seconds in stack.items():
                stack_us[mode][name].append(seconds / len(raws) * 1e6)
            rates[mode].append(rate)
            rss[mode].append(peak)
            cpu_us[mode].append(cpu / len(raws) * 1e6)
            es.indices.delete(index=f"{prefix}-*")
            others = ", ".join(f"{name} {stack_us[mode][name][-1]:.0f}" for name in STACK)
            line.append(f"{mode} {rate:,.0f}/s ({cpu_us[mode][-1]:.0f} CPU µs/event; {others}; peak {peak:.0f} MiB)")
        print(", ".join(line), flush=True)
    base = statistics.median(bare)
    print(f"median of {args.runs}: bare consumer {base:,.0f} events/s")
    for mode in modes:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpu_us[mode])
        print(f"  logwarden run, {mode}: {rate:,.0f} events/s ({rate / base:.2f}x the bare consumer), "
              f"{cpu:.0f} CPU µs/event (all threads; {1e6 / cpu:,.0f} events per CPU second), "
              f"peak RSS {max(rss[mode]):.0f} MiB")  # fmt: skip
        stack_cpu = {name: statistics.median(stack_us[mode][name]) for name in STACK}
        total = cpu + sum(stack_cpu.values())
        cores = os.cpu_count() or 1
        parts = " + ".join(f"{name} {us:.0f}" for name, us in stack_cpu.items())
        print(f"    stack CPU µs/event: worker {cpu:.0f} + {parts} = {total:.0f}; "
              f"stack ceiling on {cores} shared cores: {cores * 1e6 / total:,.0f} events/s")  # fmt: skip


def _hours(n: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=n)


if __name__ == "__main__":
    main()
