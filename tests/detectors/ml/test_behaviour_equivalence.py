"""The optimized behaviour features equal the frozen pre-optimization code (``behaviour_reference``) bit for bit."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pytest

from detectors.ml.features.behaviour import BehaviourConfig, BehaviourRows, EntityBehaviour
from detectors.ml.features.columns import EventColumns, columns_from_docs
from detectors.ml.features.entity_state import EntityTable

from . import behaviour_reference as ref
from .conftest import docs


def _decide(rows: Any) -> np.ndarray:
    """Refuse to learn some rows (a stable pseudo-random choice per key and hop), as a detector would."""
    return np.array([hash((k, rows.bucket)) % 5 != 0 for k in rows.keys], dtype=bool)


def _run(eb: Any, batches: list[EventColumns], decide: bool) -> list[Any]:
    out: list[Any] = []
    for cols in batches:
        out += eb.process(cols, _decide if decide else None)
    return out + eb.flush(_decide if decide else None)


def _same_rows(got: list[BehaviourRows], want: list[Any]) -> None:
    assert [(r.entity_type, r.bucket) for r in got] == [(r.entity_type, r.bucket) for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.keys == w.keys, (g.entity_type, g.bucket)
        np.testing.assert_array_equal(g.X, w.X, err_msg=f"{g.entity_type} {g.bucket}")
        np.testing.assert_array_equal(g.usual, w.usual)
        np.testing.assert_array_equal(g.history, w.history)
        assert g.X.dtype == w.X.dtype and g.usual.dtype == w.usual.dtype and g.history.dtype == w.history.dtype


def _same_state(got: EntityBehaviour, want: Any) -> None:
    assert got.late_events == want.late_events and got.closed_until == want.closed_until
    for etype, table in got.tables.items():
        other = want.tables[etype]
        assert table.keys == other.keys and table.index == other.index
        n = len(table.keys)
        for name in ("slot_bucket", "sums", "lat", "sketch", "seen", "ewma", "n_obs", "first", "last"):
            np.testing.assert_array_equal(getattr(table, name)[:n], getattr(other, name)[:n], err_msg=name)


def _messy(data: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Missing and odd values, unsorted times, late events: the paths a clean stream never takes."""
    rng = random.Random(seed)
    out = []
    for d in data:
        d = {**d, "logwarden": {"api": dict(d["logwarden"]["api"])}, "source": dict(d.get("source", {}))}
        roll = rng.random()
        if roll < 0.05:
            d["logwarden"]["api"].pop("route", None)  # the path stands in for the route
        elif roll < 0.08:
            d["logwarden"]["api"]["key_id"] = None
        elif roll < 0.10:
            d["source"]["ip"] = float("nan")
        elif roll < 0.12:
            d["source"]["as"] = {"number": rng.choice([64500, 64501, 13335])}
        elif roll < 0.13:
            d.pop("organization", None)
        out.append(d)
    for i in rng.sample(range(len(out)), len(out) // 50):  # some events a few minutes late or early
        j = min(len(out) - 1, max(0, i + rng.randint(-400, 400)))
        out[i], out[j] = out[j], out[i]
    return out


def _amounts(data: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Fractional, huge and negative amounts (early events only) and latencies, missing statuses."""
    rng = random.Random(seed)
    out = []
    for i, d in enumerate(data):
        d = {**d, "http": {**d["http"], "response": dict(d["http"]["response"])}}
        d["logwarden"] = {"api": dict(d["logwarden"]["api"])}
        roll = rng.random()
        if roll < 0.01 and i < len(data) // 4:  # fractional sums: order matters (the latency-ordered path)
            d["http"]["response"]["bytes"] = rng.choice([0.1, 2.5e9, -3, 1e17, -0.0])
        elif roll < 0.02:
            d["logwarden"]["api"]["latency_ms"] = rng.choice([-0.0, 0.0, -1.5, 1e40, float("nan"), None])
        elif roll < 0.03:
            d["http"]["response"].pop("status_code", None)
        out.append(d)
    return out


def _batches(data: list[dict[str, Any]], sizes: list[int]) -> list[EventColumns]:
    out, start, k = [], 0, 0
    while start < len(data):
        size = sizes[k % len(sizes)]
        out.append(columns_from_docs(data[start : start + size]))
        start, k = start + size, k + 1
    return out


CASES = [
    ("clean, batches of 1000", BehaviourConfig(), [1000], False, False),
    ("clean, one batch", BehaviourConfig(), [10**6], True, False),
    ("uneven batches, decide", BehaviourConfig(), [777, 1723, 1, 3000, 50], True, False),
    ("messy, 5-minute windows, eviction", BehaviourConfig(windows=(1, 5), idle_ttl_minutes=4), [500, 2000], True, True),
    ("messy, 2-minute hop", BehaviourConfig(windows=(2, 6, 30), lateness_hops=2), [1500], True, True),
    ("odd amounts and latencies", BehaviourConfig(), [400, 1000, 3000], True, "amounts"),
    ("one window", BehaviourConfig(windows=(1,)), [999], False, True),
    ("keys and users only", BehaviourConfig(entities=("api_key", "user")), [1200], True, True),
    ("no API keys", BehaviourConfig(entities=("source_ip", "org", "user")), [1200], True, False),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log1p of negative amounts, float32 overflow
@pytest.mark.parametrize(("name", "config", "sizes", "decide", "messy"), CASES, ids=[c[0] for c in CASES])
def test_rows_and_state_equal_the_reference(name: str, config: BehaviourConfig, sizes: list[int], decide: bool,
                                           messy: bool | str) -> None:  # fmt: skip
    data = docs(20, ("key_leak", "credential_stuffing", "slow_scraping"))
    if messy:
        data = (_amounts if messy == "amounts" else _messy)(data, seed=len(name))
    batches = _batches(data, sizes)
    fast, slow = EntityBehaviour(config), ref.EntityBehaviour(config)
    got, want = _run(fast, batches, decide), _run(slow, batches, decide)
    assert sum(len(r.keys) for r in want) > 500
    _same_rows(got, want)
    _same_state(fast, slow)


def test_a_reset_clock_state_scores_like_the_reference() -> None:
    """A trained state (history kept, clock reset) then scoring data from another day: same rows."""
    train, score = docs(20, ("key_leak",)), docs(10, ("credential_stuffing",), offset_min=24 * 60)
    fast, slow = EntityBehaviour(), ref.EntityBehaviour()
    for eb in (fast, slow):
        _run(eb, _batches(train, [2000]), True)
        eb.reset_clock()
    _same_rows(_run(fast, _batches(score, [700]), False), _run(slow, _batches(score, [700]), False))


def test_a_state_pickled_by_the_old_code_mid_stream_continues_the_same() -> None:
    """Old states kept the open hops' context links (``_links``); unpickled, they continue as the old code would."""
    data = docs(20, ("key_leak", "credential_stuffing"))
    batches = _batches(data, [1100])
    slow = ref.EntityBehaviour()
    _run_open(slow, batches[:3])
    assert any(len(link) for link in slow._links.values()), "open hops with links"
    state = copy.deepcopy(slow.__dict__)
    state["tables"] = {t: _table_of(table) for t, table in state["tables"].items()}
    fast = EntityBehaviour.__new__(EntityBehaviour)
    fast.__setstate__(state)  # what unpickling does
    _same_rows(_run(fast, batches[3:], True), _run(slow, batches[3:], True))
    _same_state(fast, slow)


def _run_open(eb: Any, batches: list[EventColumns]) -> None:
    for cols in batches:
        eb.process(cols, _decide)


def _table_of(old: Any) -> EntityTable:
    table = EntityTable.__new__(EntityTable)
    table.__dict__.update(old.__dict__)
    return table
