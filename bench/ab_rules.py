"""A/B throughput of the Sigma engine in two checkouts, measured alternately in one run.

    .venv/bin/python bench/ab_rules.py OLD_CHECKOUT NEW_CHECKOUT [--events 30000] [--rounds 5]

The machine's speed drifts (other work shares its cores), so two versions are only comparable within one run:
each checkout runs in a worker process of its own (its own imports of ``detectors``), set up once with the
events and rules of ``bench_rules.py``; the driver then asks the workers in turn, alternating which one goes
first, for one pass of a row and reads the process CPU time of that pass. Rows: ``indexed``, ``partitions``
(3 partitions interleaved), ``singles`` (single-event rules only), ``unindexed``. Reported per row: the median
events per CPU second of each checkout, their ratio, the median of the per-round ratios, and whether both
reported the same detections (ids, counts, first and last seen, event ids). Figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROWS = ("indexed", "partitions", "singles", "unindexed")


def worker(checkout: str, n_events: int) -> None:
    """Serve passes of the rows named on stdin, one JSON line each on stdout."""
    sys.path[:0] = [checkout, f"{checkout}/bench"]  # before the installed package: this checkout's code
    import gc
    import tempfile
    import time
    from datetime import timedelta
    from itertools import islice

    import bench_rules

    from detectors.sigma.engine import RuleEngine
    from detectors.sigma.loader import load_rules
    from detectors.sigma.rules import RuleSet
    from ingest.pipeline import Normalizer
    from ingest.records import Record
    from ingest.sources.synthetic import generate_api_access, to_json_line

    stream = generate_api_access(duration=timedelta(hours=24), scenarios=("brute_force", "credential_stuffing"))
    records = [Record("api_access", to_json_line(e), "bench", 0, i) for i, e in enumerate(islice(stream, n_events))]
    events, _ = Normalizer().normalize_all(records)
    for event in events:
        event.doc  # noqa: B018 (decoded now: the native path gives JSON text; decoding is the ingest stage's cost)
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        bench_rules.write_rules(Path(tmp), 100)
        ruleset = load_rules([Path(tmp)])
    singles = RuleSet(rules=[r for r in ruleset.rules if r.generate])
    rows: dict[str, tuple[RuleSet, list[Any], bool]] = {
        "indexed": (ruleset, events, True),
        "partitions": (ruleset, bench_rules.as_partitions(events, 3, 1000), True),
        "singles": (singles, events, True),
        "unindexed": (ruleset, events, False),
    }
    print("ready", flush=True)
    for line in sys.stdin:
        rules, batch, use_index = rows[line.strip()]
        started = time.process_time()
        engine = RuleEngine(rules, use_index=use_index)
        found = [d for i in range(0, len(batch), 1000) for d in engine.process(batch[i : i + 1000])]
        found += engine.flush()
        cpu = time.process_time() - started
        final = {d.id: (d.event_count, d.first_seen, d.last_seen, tuple(d.event_ids)) for d in found}
        digest = hashlib.sha256(repr(sorted(final.items())).encode()).hexdigest()[:12]
        print(json.dumps({"rate": len(batch) / cpu, "detections": digest}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", metavar="CHECKOUT", help="the old one, then the new one")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", default="indexed,partitions,singles", help=f"comma-separated, of {ROWS}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.events)
        return
    if len(args.checkouts) != 2:
        parser.error("give two checkouts: the old one, then the new one")
    rows = args.rows.split(",")
    workers = {}
    for name, checkout in zip(("old", "new"), args.checkouts, strict=True):
        command = [sys.executable, __file__, "--worker", str(Path(checkout).resolve()), "--events"]
        proc = subprocess.Popen([*command, str(args.events)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin and proc.stdout and proc.stdout.readline().strip() == "ready", f"{name} worker failed"
        workers[name] = proc
    rates: dict[tuple[str, str], list[float]] = {(w, r): [] for w in workers for r in rows}
    digests: dict[tuple[str, str], set[str]] = {(w, r): set() for w in workers for r in rows}
    for round_ in range(args.rounds):
        for row in rows:
            for name in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                proc = workers[name]
                assert proc.stdin and proc.stdout
                proc.stdin.write(row + "\n")
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
                rates[name, row].append(answer["rate"])
                digests[name, row].add(answer["detections"])
    print(f"{args.events} events, {args.rounds} rounds alternating, events per CPU second (medians)")
    for row in rows:
        old, new = rates["old", row], rates["new", row]
        ratios = statistics.median(b / a for a, b in zip(old, new, strict=True))
        same = "same detections" if digests["old", row] == digests["new", row] else "DETECTIONS DIFFER"
        print(
            f"{row:<11} old {statistics.median(old):>9,.0f}  new {statistics.median(new):>9,.0f}  "
            f"new/old {statistics.median(new) / statistics.median(old):5.2f}  per-round median {ratios:5.2f}  {same}"
        )
    for proc in workers.values():
        assert proc.stdin
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
