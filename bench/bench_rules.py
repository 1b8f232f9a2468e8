"""Throughput of the Sigma engine with 100 generated rules over synthetic API-access events.

    .venv/bin/python bench/bench_rules.py [--events 50000] [--runs 5] [--rules 100]

Rules are generated programmatically and varied like a real rule set: equalities (actions, routes,
methods, status codes), contains/startswith/endswith on user agents and paths, regular expressions,
CIDR ranges, numeric comparisons, keyword searches, and correlations (event_count, value_count,
value_sum, temporal, absence, first_seen). Events come from ``ingest.sources.synthetic`` through the
``Normalizer`` (normalization is not timed).

Reported (medians of ``--runs``): events/s of the engine with the rules, of the same events as a consumer of a
3-partition topic reads them (each partition in order, 1000 records of one partition after the other, so
correlations see late events), of the engine without the index,
of the single-event rules alone (no correlation, so no event-time work), and of the baseline measured in
the same run (iterating the events and reading one field each, the floor of any per-event work); the
median and worst per-rule p99 evaluation time (each rule's predicate timed over every event, reading its
own fields); state memory per correlation group (tracemalloc for the Python allocations of the correlators'
modules, plus what the native sliding correlators hold outside Python objects: ``SlideGroup.heap_bytes``;
``LOGWARDEN_NATIVE=0`` gives the Python correlators' figure).
The input events are frozen out of the garbage collector (``gc.freeze``): they are the data set, not engine
state. Figures only.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from detectors.sigma.corr_native import NativeSlidingCorrelator
from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import FieldView
from detectors.sigma.loader import load_rules
from detectors.sigma.rules import RuleSet
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sources.synthetic import generate_api_access, to_json_line

ROUTES = ["/v1/chat/completions", "/v1/embeddings", "/v1/files", "/v1/models", "/v1/batches", "/v1/fine_tuning/jobs"]
AGENTS = ["python-requests", "curl/", "Go-http-client", "okhttp", "sqlmap", "nikto", "masscan", "zgrab", "axios"]
NETS = ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "185.220.100.0/22", "45.155.205.0/24", "2001:db8::/32"]


def _rule(n: int, detection: dict[str, Any], logsource: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "title": f"bench rule {n}",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"bench_{n}",
        "description": "generated",
        "logsource": logsource or {"product": "logwarden", "service": "api_access"},
        "detection": detection,
        "level": "low",
    }


WEB = {"category": "webserver"}  # community rules in W3C field names, mapped to ECS by the pipeline


def _single(n: int, rng: random.Random) -> dict[str, Any]:
    kind = n % 8
    route = rng.choice(ROUTES)
    if kind == 0:
        return _rule(
            n,
            {
                "sel": {"logwarden.api.route": route, "http.response.status_code": rng.choice([401, 403, 500])},
                "condition": "sel",
            },
        )
    if kind == 1:
        return _rule(
            n,
            {
                "sel": {"event.action": "user-login", "user_agent.original|contains": rng.choice(AGENTS)},
                "condition": "sel",
            },
        )
    if kind == 2:
        det = {"sel": {"c-uri|startswith": route, "cs-method": rng.choice(["DELETE", "PUT", "PATCH"])}}
        return _rule(n, {**det, "condition": "sel"}, WEB)
    if kind == 3:
        return _rule(
            n,
            {"sel": {"url.path|re": rf"^/v1/files/file_[a-z0-9]{{{rng.randint(4, 12)}}}/content$"}, "condition": "sel"},
        )
    if kind == 4:
        det = {"sel": {"source.ip|cidr": rng.sample(NETS, 2)}, "filter": {"event.outcome": "success"}}
        return _rule(n, {**det, "condition": "sel and not filter"})
    if kind == 5:
        det = {"sel": {"http.response.bytes|gt": rng.randint(10**6, 10**8), "logwarden.api.route": route}}
        return _rule(n, {**det, "condition": "sel"})
    if kind == 6:
        det = {"sel": {"c-useragent|contains|all": [rng.choice(AGENTS), "/"]}, "route": {"c-uri": route}}
        return _rule(n, {**det, "condition": "sel and route"}, WEB)
    needles = rng.sample(["union select", "../..", "<script", "/etc/passwd", "cmd.exe", "${jndi:", "%00"], 3)
    return _rule(n, {"sel": {"c-uri|contains": needles}, "condition": "sel"}, WEB)


def _correlations(first: int) -> list[dict[str, Any]]:
    """Four base rules and ten correlations: two read every request, the others rare events."""

    def corr(n: int, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "title": f"bench correlation {n}",
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "name": f"bench_{n}",
            "description": "generated",
            "correlation": body,
            "level": "high",
        }

    base = [
        _rule(first, {"sel": {"event.action": "user-login", "event.outcome": "failure"}, "condition": "sel"}),
        _rule(first + 1, {"sel": {"event.action": "api-request"}, "condition": "sel"}),
        _rule(first + 2, {"sel": {"event.action": "mfa-verify", "event.outcome": "success"}, "condition": "sel"}),
        _rule(first + 3, {"sel": {"event.action": "user-login", "event.outcome": "success"}, "condition": "sel"}),
        _rule(first + 4, {"sel": {"http.response.status_code|gte": 500}, "condition": "sel"}),
    ]
    b = [r["name"] for r in base]
    n = first + len(base)
    bodies = [
        {"type": "event_count", "rules": [b[0]], "group-by": ["user.id"], "timespan": "5m", "condition": {"gte": 10}},
        {
            "type": "event_count",
            "rules": [b[0]],
            "group-by": ["source.ip"],
            "timespan": "10m",
            "condition": {"gte": 20},
        },
        {
            "type": "value_count",
            "rules": [b[0]],
            "group-by": ["source.ip"],
            "timespan": "5m",
            "condition": {"gte": 30, "field": "user.id"},
        },
        {"type": "temporal", "rules": [b[0], b[3]], "group-by": ["user.id"], "timespan": "10m"},
        {"type": "absence", "rules": [b[3]], "followed-by": [b[2]], "group-by": ["user.id"], "timespan": "5m"},
        {
            "type": "first_seen",
            "rules": [b[3]],
            "group-by": ["user.id"],
            "field": "user_agent.original",
            "learning-period": "1h",
        },
        {
            "type": "value_median",
            "rules": [b[4]],
            "group-by": ["logwarden.api.route"],
            "timespan": "10m",
            "condition": {"gt": 5000, "field": "logwarden.api.latency_ms"},
        },
        {
            "type": "event_count",
            "rules": [b[4]],
            "group-by": ["organization.id"],
            "timespan": "5m",
            "condition": {"gte": 50},
        },
        {
            "type": "value_count",
            "rules": [b[1]],
            "group-by": ["logwarden.api.key_id"],
            "timespan": "15m",
            "condition": {"gte": 20, "field": "source.ip"},
        },
        {
            "type": "value_sum",
            "rules": [b[1]],
            "group-by": ["user.id"],
            "timespan": "10m",
            "condition": {"gt": 5 * 10**8, "field": "http.response.bytes"},
        },
    ]
    return base + [corr(n + i, body) for i, body in enumerate(bodies)]


def write_rules(directory: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    n_singles = count - 15  # 5 base rules + 10 correlations
    singles = [_single(n, rng) for n in range(1, n_singles + 1)]
    text = "---\n".join(yaml.safe_dump(r, sort_keys=False) for r in singles + _correlations(n_singles + 1))
    (directory / "bench_rules.yml").write_text(text, encoding="utf-8")


CPU_RATES: dict[str, float] = {}  # the same runs in process CPU time: steadier than wall time on a shared machine


def median_rate(fn: Callable[[], int], runs: int, label: str = "") -> float:
    rates, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        n = fn()
        rates.append(n / (time.perf_counter() - started))
        cpu.append(n / max(time.process_time() - started_cpu, 1e-9))
    CPU_RATES[label] = statistics.median(cpu)
    return statistics.median(rates)


def per_rule_p99(engine: RuleEngine, events: list[NormalizedEvent]) -> list[float]:
    """p99 (µs) of each rule's predicate over the events of its log source."""
    out = []
    clock = time.perf_counter_ns
    for rule in engine.ruleset.rules:
        samples = []
        views = [FieldView.of(e.doc) for e in events]  # fresh: each rule pays for reading its own fields
        for view in views:
            started = clock()
            rule.predicate(view)
            samples.append(clock() - started)
        samples.sort()
        out.append(samples[int(len(samples) * 0.99)] / 1000)
    return out


def as_partitions(events: list[NormalizedEvent], partitions: int, chunk: int) -> list[NormalizedEvent]:
    """The events as a consumer of a topic with ``partitions`` partitions sees them: each partition in order, read
    ``chunk`` records at a time from one partition after the other (so each chunk is late against the last)."""
    parts = [[e.with_record(replace(e.record, partition=p)) for e in events[p::partitions]] for p in range(partitions)]
    longest = max(map(len, parts))
    return [e for start in range(0, longest, chunk) for part in parts for e in part[start : start + chunk]]


def retained_items(engine: RuleEngine) -> int:
    """Events held in correlation windows (sliding items, tumbling buckets, pending triggers)."""
    total = 0
    for correlator in engine.correlators:
        for _, state in correlator.groups.items():  # type: ignore[attr-defined]
            if isinstance(state, dict):
                total += sum(len(bucket) for bucket in state.values())
            else:
                total += len(getattr(state, "items", None) or getattr(state, "triggers", None) or ())
    return total


def native_state_bytes(engine: RuleEngine) -> int:
    """Bytes of the native correlators' group state that ``tracemalloc`` does not see (``SlideGroup.heap_bytes``:
    the items' buffers and the dicts of distinct values they allocate)."""
    total = 0
    for correlator in engine.correlators:
        if isinstance(correlator, NativeSlidingCorrelator):
            total += sum(state.heap_bytes for _, state in correlator.groups.items())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rules", type=int, default=100)
    args = parser.parse_args()

    stream = generate_api_access(duration=timedelta(hours=24), scenarios=("brute_force", "credential_stuffing"))
    records = [Record("api_access", to_json_line(e), "bench", 0, i) for i, e in enumerate(islice(stream, args.events))]
    events, _ = Normalizer().normalize_all(records)
    for event in events:
        event.doc  # noqa: B018 (decoded now: the native path gives JSON text; decoding is the ingest stage's cost)
    gc.freeze()  # the input events are not engine state: keep the collector from rescanning them
    with tempfile.TemporaryDirectory() as tmp:
        write_rules(Path(tmp), args.rules)
        ruleset = load_rules([Path(tmp)])
    assert not ruleset.errors, ruleset.errors

    def baseline() -> int:
        n = 0
        for event in events:
            n += event.doc["@timestamp"] is not None
        return n

    def detect(use_index: bool, rules: RuleSet = ruleset, stream: list[NormalizedEvent] = events) -> Callable[[], int]:
        def run() -> int:
            engine = RuleEngine(rules, use_index=use_index)
            for i in range(0, len(stream), 1000):
                engine.process(stream[i : i + 1000])
            engine.flush()
            return len(stream)

        return run

    base = median_rate(baseline, args.runs, "baseline")
    indexed = median_rate(detect(True), args.runs, "indexed")
    partitioned = median_rate(detect(True, stream=as_partitions(events, 3, 1000)), args.runs, "3 partitions")
    unindexed = median_rate(detect(False), args.runs, "no index")
    singles = median_rate(detect(True, RuleSet(rules=[r for r in ruleset.rules if r.generate])), args.runs, "singles")
    p99 = per_rule_p99(RuleEngine(ruleset), events)

    tracemalloc.start()
    engine = RuleEngine(ruleset)
    for i in range(0, len(events), 1000):
        engine.process(events[i : i + 1000])
    state_files = [
        tracemalloc.Filter(True, f"*{name}")
        for name in ("corr_base.py", "corr_window.py", "corr_custom.py", "corr_native.py")
    ]
    state = sum(s.size for s in tracemalloc.take_snapshot().filter_traces(state_files).statistics("filename"))
    tracemalloc.stop()
    state += native_state_bytes(engine)
    groups = max(engine.group_count, 1)
    matches = engine.stats.matches

    print(
        f"events: {len(events)}, rules: {len(ruleset.rules)} single + {len(ruleset.correlations)} correlations, "
        f"runs: {args.runs} (median), matches per pass: {matches}"
    )
    print(f"baseline (iterate, read one field) {base:>12,.0f} events/s")
    print(f"engine, indexed                    {indexed:>12,.0f} events/s   {base / indexed:6.1f}x baseline cost")
    label = "engine, 3 partitions interleaved"
    print(f"{label:<34} {partitioned:>12,.0f} events/s   {base / partitioned:6.1f}x baseline cost")
    print(f"engine, no index                   {unindexed:>12,.0f} events/s   {base / unindexed:6.1f}x baseline cost")
    n_single = sum(r.generate for r in ruleset.rules)
    label = f"engine, {n_single} single-event rules only"
    print(f"{label:<34} {singles:>12,.0f} events/s   {base / singles:6.1f}x baseline cost")
    cpu = ", ".join(f"{k} {v:,.0f}" for k, v in CPU_RATES.items())
    print(f"same runs in CPU time (events per CPU second, median): {cpu}")
    print(f"per-rule evaluation p99: median {statistics.median(p99):.2f} µs, worst {max(p99):.2f} µs")
    items = retained_items(engine)
    print(
        f"correlation state: {engine.group_count} groups, {items} events retained, {state / 1024:.0f} KiB allocated "
        f"by the correlators: {state / groups:.0f} bytes/group, {state / max(items, 1):.0f} bytes/retained event"
    )


if __name__ == "__main__":
    main()
