"""Throughput of the in-process stages on generated traffic (median of several runs, with a baseline).

    .venv/bin/python bench/bench_pipeline.py [--events 50000] [--runs 5]

Baseline: ``orjson.loads`` of the same raw lines (the floor any JSON parser pays). Reported per stage:
events/s of the api_access parser through the Normalizer, of the rule engine over normalized events,
and their ratio to the baseline. Figures only; never part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import islice

import orjson

from detectors.sigma.engine import RuleEngine
from detectors.sigma.loader import load_rules
from ingest.pipeline import Normalizer
from ingest.records import Record
from ingest.sources.synthetic import generate_api_access, to_json_line
from logwarden.settings import bundled_rules_dir


def median_rate(fn: Callable[[], int], runs: int) -> float:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    stream = generate_api_access(duration=timedelta(hours=24), scenarios=("brute_force", "credential_stuffing"))
    raws = [to_json_line(e) for e in islice(stream, args.events)]
    records = [Record("api_access", raw, "bench", 0, i) for i, raw in enumerate(raws)]
    normalizer = Normalizer()
    events, _ = normalizer.normalize_all(records)
    for event in events:
        event.doc  # noqa: B018 (decoded now: the native path gives JSON text; decoding is the ingest stage's cost)
    ruleset = load_rules([bundled_rules_dir()])

    def baseline() -> int:
        for raw in raws:
            orjson.loads(raw)
        return len(raws)

    def normalize() -> int:
        return len(normalizer.normalize_all(records)[0])

    def detect() -> int:
        engine = RuleEngine(ruleset)
        for i in range(0, len(events), 1000):
            engine.process(events[i : i + 1000])
        return len(events)

    base = median_rate(baseline, args.runs)
    norm = median_rate(normalize, args.runs)
    rules = median_rate(detect, args.runs)
    print(f"events: {len(raws)}, runs: {args.runs} (median)")
    print(f"baseline orjson.loads      {base:>12,.0f} events/s")
    print(f"normalize (api_access)     {norm:>12,.0f} events/s   {base / norm:5.1f}x baseline cost")
    print(f"rule engine ({ruleset.loaded} rules)     {rules:>12,.0f} events/s   {base / rules:5.1f}x baseline cost")


if __name__ == "__main__":
    main()
