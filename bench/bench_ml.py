"""Throughput and memory of the ML detectors and feature extraction.

    .venv/bin/python bench/bench_ml.py [--events 100000] [--runs 5] [--batch 1000] [--only features]

Reported (medians of ``--runs``, with ratios to a baseline measured in the same run):

- scoring: feature rows/s of each detector's ``score_samples`` (0-100 scores) in batches of ``--batch`` rows on
  one core, against the baseline scikit-learn ``IsolationForest(n_estimators=100).score_samples`` on the same
  batches; rows are real entity-window features (54 columns) from the generator, repeated with a little noise
  (every value distinct), and once more without it for the ``entity-behaviour`` preset's detector (the production
  scoring path: its values hit the ECDF knots as the stream's do); ECOD and COPOD also against their own scores by
  the numpy ``searchsorted`` path (``_raw_reference``, the code before the knot index), timed alternately;
- feature extraction: events/s of the behaviour features from ECS documents (columns + windows), of the columns
  step alone (native when the extension has it; its ratios to the Python path and to the plain per-document
  reference path, the three timed alternately), of the windows alone (from prebuilt columns: the native ones, which
  carry the text columns' codes, timed alternately with the Python path's), the documents -> rows figure of the
  Python path, and of the request-content features, against the floor of any per-document work measured in the
  same run (reading one field of every document);
- state: bytes per entity measured with tracemalloc for 100k API keys (keys are 38-character pseudonyms),
  extrapolated to 1M active entities.

Times are CPU time of this process (``time.process_time``: other jobs on a shared machine slow it less than wall
time), with numpy's BLAS limited to one thread. Input events come from ``ingest.sources.synthetic`` through the
``Normalizer`` (not timed) and are frozen out of the garbage collector. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.ml.features import native_columns
from detectors.ml.features.behaviour import EntityBehaviour
from detectors.ml.features.columns import EventColumns, columns_from_docs, columns_from_docs_reference
from detectors.ml.features.content import RequestContent
from detectors.ml.models import _FrozenEcdf
from detectors.ml.presets import load_preset
from detectors.ml.registry import create
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sources.synthetic import generate_api_access, to_json_line

os.environ.setdefault("OMP_NUM_THREADS", "1")


def median_time(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def documents(n: int) -> list[dict[str, Any]]:
    normalizer = Normalizer()
    out = []
    for e in generate_api_access(seed=1, duration=timedelta(hours=6), rate_per_s=60.0, scenarios=()):
        result = normalizer.normalize(Record("api_access", to_json_line(e)[:-1]))
        if isinstance(result, NormalizedEvent):
            out.append(result.doc)
        if len(out) >= n:
            break
    return out


def behaviour(docs: list[dict[str, Any]], batch: int) -> np.ndarray:
    eb = EntityBehaviour()
    rows = []
    for start in range(0, len(docs), batch):
        rows += eb.process(columns_from_docs(docs[start : start + batch]))
    rows += eb.flush()
    return np.vstack([r.X for r in rows])


def python_columns(parts: list[list[dict[str, Any]]]) -> list[EventColumns]:
    """The columns step without the native extension."""
    with native_columns.python_only():
        return [columns_from_docs(p) for p in parts]


def bench_scoring(X: np.ndarray, runs: int, batch: int, rows: int = 200_000) -> None:
    plain = X[np.arange(rows) % len(X)]
    jitter = np.random.default_rng(0).normal(scale=0.01, size=(rows, X.shape[1]))
    X = plain + jitter  # enough distinct rows for stable timings (every value distinct: 1024 quantile knots)
    from sklearn.ensemble import IsolationForest

    base = IsolationForest(n_estimators=100, random_state=0).fit(X[:20_000])
    print(f"scoring {len(X)} rows x {X.shape[1]} features in batches of {batch} (one core); each detector is timed")
    print("  alternately with the baseline sklearn IsolationForest(100).score_samples; medians of the runs")
    preset = load_preset("entity-behaviour")
    detectors = [("isolation_forest", {}), ("ecod", {}), (preset.detector, preset.params), ("copod", {}),
                 ("hbos", {}), ("half_space_trees", {}), ("ensemble", {"members": ("isolation_forest", "ecod")}),
                 ("lof", {}), ("knn", {})]  # fmt: skip
    cases = [(name, params, X, "") for name, params in detectors]
    # the preset's detector on the rows as extracted (repeated, no jitter): values hit the knots, as in the stream
    cases.insert(3, (preset.detector, preset.params, plain, ", no jitter"))
    for name, params, data, note in cases:
        det = create(name, **params).fit(data[:20_000])
        batches = [data[i : i + batch] for i in range(0, len(data), batch)]
        subset = batches if name not in ("lof", "knn") else batches[: max(1, len(batches) // 10)]
        n = sum(len(b) for b in subset)
        pairs = [
            (
                median_time(lambda s=subset: [base.score_samples(b) for b in s], 1),
                median_time(lambda d=det, s=subset: [d.score_samples(b) for b in s], 1),
            )
            for _ in range(runs)
        ]
        base_rate = statistics.median(n / tb for tb, _ in pairs)
        rate = statistics.median(n / td for _, td in pairs)
        ratio = statistics.median(tb / td for tb, td in pairs)
        shown = ", ".join(f"{k}={'+'.join(v) if isinstance(v, tuple) else v}" for k, v in params.items())
        label = f"{name}({shown})" if shown else name
        if (name, params) == (preset.detector, preset.params):
            label += f" [{preset.name} preset{note}]"
        extra = ""
        if isinstance(det, _FrozenEcdf):  # the same scores by the numpy searchsorted path, timed alternately
            ref = [
                (
                    median_time(
                        lambda d=det, s=subset: [d.scaler_.transform(d._raw_reference(d._check(b))) for b in s], 1
                    ),
                    median_time(lambda d=det, s=subset: [d.score_samples(b) for b in s], 1),
                )
                for _ in range(runs)
            ]
            extra = f"; {statistics.median(r / t for r, t in ref):.2f}x its searchsorted path"
        print(f"  {label:62s} {rate:10,.0f} rows/s  ({ratio:.2f}x the baseline's {base_rate:,.0f} rows/s{extra})")


def bench_features(docs: list[dict[str, Any]], runs: int, batch: int) -> None:
    n = len(docs)
    t_floor = median_time(lambda: [d["@timestamp"] for d in docs], runs)
    print(f"feature extraction over {n} events (one core); baseline: reading one field of every document "
          f"{n / t_floor:,.0f} ev/s")  # fmt: skip
    for size in (batch, 10 * batch):
        parts = [docs[i : i + size] for i in range(0, n, size)]
        cols: list[EventColumns] = [columns_from_docs(p) for p in parts]
        triples = [(median_time(lambda ps=parts: [columns_from_docs_reference(p) for p in ps], 1),
                    median_time(lambda ps=parts: python_columns(ps), 1),
                    median_time(lambda ps=parts: [columns_from_docs(p) for p in ps], 1))
                   for _ in range(runs)]  # fmt: skip
        t_cols, t_py = statistics.median(t for _, _, t in triples), statistics.median(t for _, t, _ in triples)
        ref_ratio = statistics.median(r / t for r, _, t in triples)
        py_ratio = statistics.median(p / t for _, p, t in triples)
        native = "native" if native_columns.available() else "Python (no native extension)"

        def windows(cs: list[EventColumns] = cols) -> None:
            eb = EntityBehaviour()
            for c in cs:
                eb.process(c)
            eb.flush()

        with native_columns.python_only():
            py_cols = [columns_from_docs(p) for p in parts]
        wins = [(median_time(lambda cs=py_cols: windows(cs), 1), median_time(windows, 1)) for _ in range(runs)]
        t_win, t_win_py = statistics.median(t for _, t in wins), statistics.median(t for t, _ in wins)
        print(f"  batches of {size:6d}: documents -> behaviour rows {n / (t_cols + t_win):10,.0f} ev/s "
              f"(columns {n / t_cols:10,.0f} ev/s, {native} = {py_ratio:.2f}x the Python path and {ref_ratio:.2f}x "
              f"the reference path; windows from its columns {n / t_win:10,.0f} ev/s = {t_win_py / t_win:.2f}x "
              f"from the Python path's columns); the Python path: {n / (t_py + t_win_py):10,.0f} ev/s")  # fmt: skip
    content = RequestContent().fit(docs[:20_000])
    parts = [docs[i : i + batch] for i in range(0, n, batch)]
    t = median_time(lambda: [content.transform(p) for p in parts], runs)
    print(f"  request content features (batches of {batch}): {n / t:10,.0f} ev/s")


def bench_memory(n: int = 100_000) -> None:
    keys = np.array([f"ps_k1_{i:032x}" for i in range(n)], dtype=object)
    none = np.full(n, None, dtype=object)
    cols = EventColumns(
        minute=np.full(n, 29_893_440, np.int64), status=np.full(n, 200, np.int64), bytes_out=np.ones(n),
        input_tokens=np.ones(n), output_tokens=np.ones(n), latency_ms=np.ones(n),
        route=np.full(n, "/v1/models", dtype=object), path=np.full(n, "/v1/models", dtype=object),
        country=none, asn=none, user_agent=np.full(n, "sdk", dtype=object),
        entities={"api_key": keys, "user": none, "source_ip": none, "org": none}, event_ids=[""] * n,
    )  # fmt: skip
    warm = EntityBehaviour()  # the compiled kernels' first call loads them (once per process, not per entity)
    warm.process(cols.take(np.arange(10)))
    warm.flush()
    del warm
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    eb = EntityBehaviour()
    eb.process(cols)
    eb.flush()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per = used / n
    arrays = eb.tables["api_key"].bytes_per_entity()
    print(f"state: {per:,.0f} bytes per entity measured for {n:,} API keys (arrays {arrays} B, the rest is the "
          f"key index and growth slack); 1M active entities ~ {per * 1e6 / 2**30:.2f} GiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--only", choices=("scoring", "features", "memory"), help="run one part only")
    args = parser.parse_args()
    threadpool_limits(1)  # one core: the CPU time of BLAS helper threads would count too
    docs = documents(args.events)
    gc.freeze()
    if args.only in (None, "scoring"):
        bench_scoring(behaviour(docs, 5000), args.runs, args.batch)
    if args.only in (None, "features"):
        bench_features(docs, args.runs, args.batch)
    if args.only in (None, "memory"):
        bench_memory()


if __name__ == "__main__":
    main()
