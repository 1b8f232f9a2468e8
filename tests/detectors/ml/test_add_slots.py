"""The compiled slot update (``entity_state._add_slots``) equals numpy's gather, compute, scatter it replaced.

Any groups, also several for one slot (buckets ``k`` apart), late ones (a slot holding a newer bucket), negative
buckets, NaN and signed-zero latencies, fractional sums (float32 rounding), int32 wrap-around of buckets."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.ml.features.entity_state import _add_slots

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
K, ROWS, M, S = 4, 3, 3, 2


def _numpy(slot_bucket: Any, sums: Any, sketch: Any, lat: Any, last: Any, pr: Any, pb: Any, group_sums: Any,
           group_sketch: Any, p95: Any) -> npt.NDArray[np.bool_]:  # fmt: skip
    """The numpy code of ``EntityTable.add_groups`` before it was compiled (flat arrays)."""
    at = pr * K + pb % K
    current = np.take(slot_bucket, at)
    ok = current <= pb
    pr, pb, at, current, group_sums, group_sketch, p95 = (pr[ok], pb[ok], at[ok], current[ok], group_sums[ok],
                                                          group_sketch[ok], p95[ok])  # fmt: skip
    stale = current < pb
    slot_bucket[at[stale]] = pb[stale]
    slot_sums, slot_sketch, slot_lat = np.take(sums, at, axis=0), np.take(sketch, at, axis=0), np.take(lat, at)
    slot_sums[stale], slot_sketch[stale], slot_lat[stale] = 0.0, 0, 0.0
    slot_sums += group_sums.astype(np.float32)
    slot_sketch |= group_sketch
    sums[at], sketch[at] = slot_sums, slot_sketch
    lat[at] = np.maximum(slot_lat, p95.astype(np.float32))
    np.maximum.at(last, pr, pb.astype(np.int32))
    return ok


floats = st.one_of(st.floats(-1e9, 1e9, width=32), st.sampled_from([0.0, -0.0, float("nan"), 0.1, 1e30]))
groups = st.lists(st.tuples(st.integers(0, ROWS - 1), st.one_of(st.integers(-6, 12), st.just(2**31 + 1)),
                            st.lists(floats, min_size=M, max_size=M), st.lists(st.integers(0, 2**32 - 1), min_size=S,
                            max_size=S), floats), max_size=8)  # fmt: skip


@SETTINGS
@given(groups, st.lists(st.integers(-3, 9), min_size=ROWS * K, max_size=ROWS * K), st.sampled_from(["f32", "f64"]))
def test_compiled_slot_update_equals_numpy(groups: list[Any], buckets: list[int], p95_type: str) -> None:
    rng = np.random.default_rng(len(groups))
    state = {
        "slot_bucket": np.array(buckets, dtype=np.int32),
        "sums": rng.normal(size=(ROWS * K, M)).astype(np.float32),
        "sketch": rng.integers(0, 2**32, size=(ROWS * K, S), dtype=np.uint32),
        "lat": rng.normal(size=ROWS * K).astype(np.float32),
        "last": rng.integers(-5, 5, size=ROWS, dtype=np.int32),
    }
    pr = np.array([g[0] for g in groups], dtype=np.int64)
    pb = np.array([g[1] for g in groups], dtype=np.int64)
    group_sums = np.array([g[2] for g in groups], dtype=np.float64).reshape(-1, M)
    group_sketch = np.array([g[3] for g in groups], dtype=np.uint32).reshape(-1, S)
    p95 = np.array([g[4] for g in groups], dtype=np.float32 if p95_type == "f32" else np.float64)
    want = {name: array.copy() for name, array in state.items()}
    got = {name: array.copy() for name, array in state.items()}
    ok_want = _numpy(*want.values(), pr, pb, group_sums, group_sketch, p95)
    ok_got = _add_slots(*got.values(), pr, pb, group_sums, group_sketch, p95, K)
    assert ok_got.tolist() == ok_want.tolist()
    for name in state:
        assert got[name].tobytes() == want[name].tobytes(), name  # bit for bit (NaN, -0.0)
