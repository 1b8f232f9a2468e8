"""The knot index answers as ``np.searchsorted`` does, and ECOD/COPOD score with it bit for bit as without it."""

from __future__ import annotations

import pickle

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.ml import ecdf_index
from detectors.ml.ecdf_index import KnotIndex
from detectors.ml.models import _FrozenEcdf
from detectors.ml.registry import create

F64 = npt.NDArray[np.float64]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# column values: small integers (ties, exact knot hits), tight clusters (crowded cells), wide ranges, huge values
VALUES = st.one_of(
    st.integers(-3, 3).map(float),
    st.floats(-1.0, 1.0).map(lambda v: 5.0 + v * 1e-9),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 1e15, -1e15, 1e30, -1e30, 2.0**53, 2.0**53 + 2]),
)


@st.composite
def matrices(draw: st.DrawFn, rows: tuple[int, int] = (2, 60)) -> F64:
    d = draw(st.integers(1, 4))
    n = draw(st.integers(*rows))
    columns = []
    for _ in range(d):
        kind = draw(st.sampled_from(["any", "constant", "few", "continuous"]))
        if kind == "constant":
            columns.append(np.full(n, draw(VALUES)))
        elif kind == "few":
            columns.append(np.array(draw(st.lists(st.sampled_from(draw(st.lists(VALUES, min_size=1, max_size=3))),
                                                  min_size=n, max_size=n))))  # fmt: skip
        elif kind == "continuous":
            seed = draw(st.integers(0, 2**32 - 1))
            columns.append(
                np.random.default_rng(seed).normal(draw(VALUES), draw(st.sampled_from([1e-6, 0.01, 1e3])), n)
            )
        else:
            columns.append(np.array(draw(st.lists(VALUES, min_size=n, max_size=n))))
    return np.column_stack(columns).astype(np.float64)


def queries(train: F64, extra: F64) -> F64:
    """Training values, their neighbours, values outside the range and the extra rows."""
    lo, hi = train.min(axis=0), train.max(axis=0)
    return np.vstack([train, np.nextafter(train, np.inf), np.nextafter(train, -np.inf), lo - 1.0, hi + 1.0,
                      lo - 1e6, hi * 3 + 7, (lo + hi) / 2, extra[:, : train.shape[1]]])  # fmt: skip


def bits(a: F64) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(a).view(np.int64)  # tells -0.0 from 0.0


@SETTINGS
@given(train=matrices(), extra=matrices((1, 20)), name=st.sampled_from(["ecod", "copod"]), tails=st.sampled_from(
    ["exponential", "clip"]), aggregate=st.sampled_from(["sum", "max", "sum_max"]))  # fmt: skip
def test_scores_equal_the_searchsorted_path_bit_for_bit(train: F64, extra: F64, name: str, tails: str,
                                                        aggregate: str) -> None:  # fmt: skip
    det = create(name, tails=tails, aggregate=aggregate).fit(train)
    assert isinstance(det, _FrozenEcdf)
    X = det._check(queries(train, np.resize(extra, (len(extra), train.shape[1]))))
    np.testing.assert_array_equal(bits(det._raw(X)), bits(det._raw_reference(X)))
    if det.index_ is None:  # shifted knots out of order (values near 1e30): the searchsorted path scores
        assert not (np.diff(det.knots_) >= 0).all()
        return
    x = np.clip(X, det.lo_ - 0.5, det.hi_ + 0.5) + det.offset_
    expected = np.searchsorted(det.knots_, x, side="right") - 1
    np.testing.assert_array_equal(det.index_.last_le(det.knots_, x), expected)


@SETTINGS
@given(knots=st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=1, max_size=300, unique=True),
       cuts=st.lists(st.integers(0, 300), max_size=4), seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_last_le_is_searchsorted_for_any_sorted_knots(knots: list[float], cuts: list[int], seed: int) -> None:
    """Any columns of sorted knots (not only the ECDFs' shifted ones), any values, also outside every range."""
    k = np.sort(np.array(knots))
    bounds = sorted({0, len(k), *(c % len(k) for c in cuts)})
    first, last = np.array(bounds[:-1]), np.array(bounds[1:]) - 1
    index = KnotIndex.build(k, first, last, k[first] - 1.0, k[last] + 1.0)
    rng = np.random.default_rng(seed)
    x = np.concatenate([k, np.nextafter(k, np.inf), np.nextafter(k, -np.inf), rng.uniform(-2e12, 2e12, 50),
                        [np.inf, -np.inf, 0.0, -0.0]])  # fmt: skip
    x = np.resize(x, (len(x) // len(first) + 1, len(first)))
    np.testing.assert_array_equal(index.last_le(k, x), np.searchsorted(k, x, side="right") - 1)


def test_nan_falls_back_to_searchsorted() -> None:
    k = np.array([1.0, 2.0, 3.0])
    index = KnotIndex.build(k, np.array([0]), np.array([2]), np.array([0.5]), np.array([3.5]))
    x = np.array([[2.0], [np.nan]])
    np.testing.assert_array_equal(index.last_le(k, x), np.searchsorted(k, x, side="right") - 1)
    det = create("ecod").fit(np.random.default_rng(0).normal(size=(100, 2)))
    X = np.array([[0.0, np.nan], [1.0, 2.0]])
    np.testing.assert_array_equal(bits(det._raw(X)), bits(det._raw_reference(X)))


def test_crowded_cells_and_the_depth_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Knots clustered far below a cell's width, and grids cut off early, still give searchsorted's answers."""
    rng = np.random.default_rng(1)
    k = np.unique(np.concatenate([rng.normal(0.0, 1e-9, 500), rng.normal(7.0, 1e-3, 500), [100.0]]))
    x = np.concatenate([k, np.nextafter(k, np.inf), rng.normal(0.0, 1e-9, 500), rng.uniform(-1, 101, 500)])[:, None]
    for depth in (1, 2, ecdf_index.DEPTH):
        monkeypatch.setattr(ecdf_index, "DEPTH", depth)
        index = KnotIndex.build(k, np.array([0]), np.array([len(k) - 1]), np.array([-1.0]), np.array([101.0]))
        np.testing.assert_array_equal(index.last_le(k, x), np.searchsorted(k, x, side="right") - 1)


def test_models_pickled_without_the_index_build_it() -> None:
    X = np.random.default_rng(0).normal(size=(300, 3))
    det = create("ecod").fit(X)
    expected = det.score_samples(X)
    del det.index_  # as pickled before the index existed
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_samples(X), expected)
    assert isinstance(again.index_, KnotIndex)
