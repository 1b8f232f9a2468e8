"""Cost of the privacy and enrichment transforms on generated api_access traffic (medians, with a baseline).

    .venv/bin/python bench/bench_privacy.py [--events 50000] [--runs 5] [--geoip] [--clock cpu]

Baseline: ``orjson.loads`` of the same raw lines, in the same run. Reported, as events/s and µs per event:

- decode + parse + normalize (no transform);
- the same plus the default privacy chain (minimize, pseudonymize, redact, mask) and the document's JSON text
  as the Elasticsearch sink writes it (``NormalizedEvent.json``): the project target (100k events/s on one
  core) is for this row; it runs what ``Normalizer`` runs in production with what ``build_privacy_transforms``
  builds (the fused single pass): the native fast path (:mod:`ingest.native`) when the extension is built,
  with the share of events it handled in the ``native`` column. The rows marked ``(Python)`` force the
  pure-Python chain (``Normalizer(..., native=False)``) on the same records: the baseline of the native rows.
  Rows that only serialize normalize as an ingest-only worker does (``Normalizer(dicts=False)``: the native
  path writes JSON text, no dict); the "dict too" row as a worker with rules or ML (the native path builds
  the dict, the store serializes it) and reads ``NormalizedEvent.doc``. The 4-step row runs the four
  separate reference transforms (``build_reference_transforms``);
- plus sealing (AES-256-GCM of the identifiers), then plus enrichment (related, user agent; ``--geoip`` adds
  GeoIP on a small generated database, which needs the dev dependency ``mmdb-writer``);
- each transform alone, on already normalized documents (fresh copies, not timed).

Records go through in batches of ``--batch-size`` (one batch alive at a time, as in the worker), with the
worker's garbage-collector settings (``--gc worker``, :func:`logwarden.collector.tune_collector`; ``default`` =
CPython's thresholds, ``off`` = no cyclic collector). Figures only; never part of the test run's pass/fail.
The machines are small and noisy: compare ratios, and use ``--clock cpu`` (``time.process_time``, CPU time
of this process) when other work shares the machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from ingest.enrich.config import EnrichmentConfig, build_enrichment_transforms
from ingest.native import available as native_available
from ingest.pipeline import Normalizer, Transform
from ingest.privacy import config as privacy_config
from ingest.privacy.config import PrivacyConfig, build_privacy_transforms
from ingest.privacy.encrypt import generate_key
from ingest.records import Record
from ingest.sources.synthetic import generate_api_access, to_json_line
from logwarden.collector import tune_collector

KEY = "bench-pseudonymization-key-0123456789abcdef"
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter

# the four separate transforms (reference semantics); trees older than the fused pass only have the chain
build_reference_transforms = getattr(privacy_config, "build_reference_transforms", build_privacy_transforms)


def median_seconds(fn: Callable[[], object], runs: int, setup: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        started = clock()
        fn()
        times.append(clock() - started)
    return statistics.median(times)


def make_normalizer(transforms: Sequence[Transform], native: bool, dicts: bool = True) -> Normalizer:
    try:
        return Normalizer(transforms, native=native, dicts=dicts)
    except TypeError:  # trees before Normalizer(dicts=...) or before the native fast path
        try:
            return Normalizer(transforms, native=native)
        except TypeError:
            return Normalizer(transforms)


#: what a row does with each event: nothing more, its JSON text (True), or its JSON text and its dict ("dict")
Output = bool | str


def json_text(event: Any) -> bytes:
    """The JSON text the Elasticsearch sink writes for ``event`` (trees before NormalizedEvent.json: dumps)."""
    json = getattr(event, "json", None)
    return json if json is not None else orjson.dumps(event.doc)


def native_share(normalizer: Normalizer, raws: list[bytes]) -> str:
    """Share of ``raws`` the native fast path handles ("-" when the normalizer does not use it)."""
    fast = getattr(normalizer, "_fast", None)
    if fast is None:
        return "-"
    handled = sum(fast(raw) is not None for raw in raws)
    return f"{handled / len(raws):.1%}"


def geoip_config(directory: Path) -> EnrichmentConfig:
    from mmdb_writer import MmdbU32, MMDBWriter  # dev dependency
    from netaddr import IPSet

    city = MMDBWriter(ip_version=6, database_type="GeoLite2-City", languages=["en"], ipv4_compatible=True)
    asn = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", languages=["en"], ipv4_compatible=True)
    for i, prefix in enumerate(["73.0.0.0/8", "98.0.0.0/8", "34.0.0.0/8", "52.0.0.0/8", "91.0.0.0/8", "81.0.0.0/8"]):
        city.insert_network(
            IPSet([prefix]),
            {
                "country": {"iso_code": "US", "names": {"en": "United States"}},
                "city": {"names": {"en": f"City {i}"}},
                "location": {"latitude": 40.0 + i, "longitude": -74.0 - i},
            },
        )
        asn.insert_network(
            IPSet([prefix]), {"autonomous_system_number": MmdbU32(64500 + i), "autonomous_system_organization": "ISP"}
        )
    city.to_db_file(str(directory / "city.mmdb"))
    asn.to_db_file(str(directory / "asn.mmdb"))
    return EnrichmentConfig(geoip_city_db=directory / "city.mmdb", geoip_asn_db=directory / "asn.mmdb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--geoip", action="store_true", help="add GeoIP (needs mmdb-writer to build a database)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="cpu = process time (loaded machines)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per batch (the worker's default)")
    parser.add_argument(
        "--gc",
        choices=("worker", "default", "off"),
        default="worker",
        help="collector settings: the worker's (logwarden.collector.tune_collector), CPython's defaults, or off",
    )
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]

    stream = generate_api_access(duration=timedelta(hours=24), scenarios=("brute_force", "credential_stuffing"))
    raws = [to_json_line(e) for e in islice(stream, args.events)]
    records = [Record("api_access", raw, "bench", 0, i) for i, raw in enumerate(raws)]
    n = len(records)
    if args.gc == "worker":
        tune_collector()  # what `logwarden run` and `logwarden demo` do before their loop
    elif args.gc == "off":
        gc.disable()

    privacy = build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY))
    reference = build_reference_transforms(PrivacyConfig(pseudonymization_key=KEY))
    sealed_config = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()})
    sealing = build_privacy_transforms(sealed_config)
    sealing_reference = build_reference_transforms(sealed_config)
    with tempfile.TemporaryDirectory() as tmp:
        enrich_config = geoip_config(Path(tmp)) if args.geoip else EnrichmentConfig()
        enrichment = build_enrichment_transforms(enrich_config)

        def pipeline(transforms: Sequence[Transform], serialize: Output, native: bool = True) -> Callable[[], object]:
            as_dict = serialize == "dict"  # rules/ML read the document as a dict too
            # as the worker: the documents as dicts only when something reads them (rules, ML)
            normalizer = make_normalizer(transforms, native, dicts=serialize is not True)

            def run() -> object:
                for start in range(0, n, args.batch_size):  # batch by batch, as the worker: one batch alive at a time
                    events, _ = normalizer.normalize_all(records[start : start + args.batch_size])
                    if serialize:
                        for event in events:
                            json_text(event)  # what the Elasticsearch sink writes
                            if as_dict:
                                event.doc  # noqa: B018 (read as the rules and ML read it)
                return None

            return run

        def baseline() -> None:
            for raw in raws:
                orjson.loads(raw)

        # rows without a suffix run what Normalizer runs in production (the native fast path where it applies,
        # see the "native" column); "(Python)" rows force the pure-Python chain on the same records
        cases: list[tuple[str, Sequence[Transform], Output, bool]] = [
            ("parse + normalize", [], False, True),
            ("parse + normalize (Python)", [], False, False),
            ("parse + normalize + dumps", [], True, True),
            ("  + privacy (target row)", privacy, True, True),
            ("  + privacy, dict too (rules/ML)", privacy, "dict", True),
            ("  + privacy (Python, fused pass)", privacy, True, False),
            ("  + privacy, 4-step reference chain", reference, True, False),
            ("  + privacy + sealing", sealing, True, True),
            ("  + enrichment + privacy", [*enrichment, *privacy], True, True),
            ("  + enrichment + privacy (Python)", [*enrichment, *privacy], True, False),
            ("  + enrichment + privacy + sealing", [*enrichment, *sealing], True, True),
        ]
        rows: list[tuple[str, float, str]] = [("baseline orjson.loads", median_seconds(baseline, args.runs), "")]
        for name, transforms, serialize, native in cases:
            seconds = median_seconds(pipeline(transforms, serialize, native), args.runs)
            rows.append((name, seconds, native_share(make_normalizer(transforms, native), raws)))

        # each transform alone on normalized documents, in chain order (fresh copies per run)
        parsed, _ = Normalizer().normalize_all(records)
        frozen = [orjson.dumps(e.doc) for e in parsed]
        chain: list[Transform] = [*enrichment, *sealing_reference]
        stage_inputs: list[list[bytes]] = []
        docs = [orjson.loads(b) for b in frozen]
        for transform in chain:
            stage_inputs.append([orjson.dumps(d) for d in docs])
            docs = [transform(d) for d in docs]
        single: list[tuple[str, float]] = []
        for transform, inputs in zip(chain, stage_inputs, strict=True):
            batch: list[dict[str, Any]] = []

            def setup(inputs: list[bytes] = inputs, batch: list[dict[str, Any]] = batch) -> None:
                batch[:] = [orjson.loads(b) for b in inputs]

            def apply(transform: Transform = transform, batch: list[dict[str, Any]] = batch) -> None:
                for doc in batch:
                    transform(doc)

            single.append((repr(transform), median_seconds(apply, args.runs, setup)))
        if len(sealing) != len(sealing_reference):  # the fused pass alone, on the input of the reference chain
            fused_inputs = stage_inputs[len(enrichment)]
            for transform in sealing:
                batch = []

                def setup(inputs: list[bytes] = fused_inputs, batch: list[dict[str, Any]] = batch) -> None:
                    batch[:] = [orjson.loads(b) for b in inputs]

                def apply(transform: Transform = transform, batch: list[dict[str, Any]] = batch) -> None:
                    for doc in batch:
                        transform(doc)

                single.append(
                    (type(transform).__name__ + " (fused, sealing on)", median_seconds(apply, args.runs, setup))
                )

    base = rows[0][1]
    print(f"events: {n}, runs: {args.runs} (median), geoip: {args.geoip}, clock: {args.clock}, "
          f"gc: {args.gc} {gc.get_threshold() if gc.isenabled() else 'off'}, batches of {args.batch_size}")  # fmt: skip
    print(f"native extension: {'loaded' if native_available() else 'not built'} (native column: share of events")
    print("handled natively, the rest falls back to the Python chain; '-' = the Python chain runs)")
    print(f"{'stage':38} {'events/s':>12} {'µs/event':>9} {'x baseline':>10} {'native':>8}")
    for name, seconds, share in rows:
        print(f"{name:38} {n / seconds:>12,.0f} {seconds / n * 1e6:>9.2f} {seconds / base:>10.1f} {share:>8}")
    print("\neach transform alone (normalized documents as input):")
    for name, seconds in single:
        print(f"  {name[:60]:60} {seconds / n * 1e6:>7.2f} µs/event")


if __name__ == "__main__":
    main()
