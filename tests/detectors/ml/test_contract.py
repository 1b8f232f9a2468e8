"""The contract every registered detector keeps (scikit-learn conventions, one sign, one scale)."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from detectors import create as create_from_package
from detectors.ml.registry import DETECTORS, UnknownDetector, available, create

RNG = np.random.default_rng(42)
X_TRAIN = RNG.normal(size=(400, 4))
X_NORMAL = RNG.normal(size=(50, 4))
X_OUTLIERS = RNG.normal(size=(10, 4)) * 0.3 + 7.0


def fitted(name: str) -> object:
    return create(name).fit(X_TRAIN)


@pytest.mark.parametrize("name", available())
def test_fit_returns_self(name: str) -> None:
    det = create(name)
    assert det.fit(X_TRAIN) is det


@pytest.mark.parametrize("name", available())
def test_scores_are_finite_and_between_0_and_100(name: str) -> None:
    det = create(name).fit(X_TRAIN)
    scores = det.score_samples(np.vstack([X_NORMAL, X_OUTLIERS, [[np.nan, np.inf, -np.inf, 0.0]]]))
    assert np.isfinite(scores).all()
    assert scores.min() >= 0.0 and scores.max() <= 100.0
    assert np.isfinite(det.raw_scores(X_NORMAL)).all()


@pytest.mark.parametrize("name", available())
def test_injected_outliers_score_higher(name: str) -> None:
    det = create(name).fit(X_TRAIN)
    normal, outliers = det.score_samples(X_NORMAL), det.score_samples(X_OUTLIERS)
    assert outliers.min() > np.median(normal)
    assert outliers.mean() > np.quantile(normal, 0.95)
    raw_normal, raw_outliers = det.raw_scores(X_NORMAL), det.raw_scores(X_OUTLIERS)
    assert raw_outliers.mean() > raw_normal.mean(), "one sign: higher raw score = more anomalous"


@pytest.mark.parametrize("name", available())
def test_pickle_round_trip_gives_the_same_scores(name: str) -> None:
    det = create(name).fit(X_TRAIN)
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(det.score_samples(X_NORMAL), again.score_samples(X_NORMAL))


@pytest.mark.parametrize("name", available())
def test_same_seed_same_scores(name: str) -> None:
    a = create(name).fit(X_TRAIN).score_samples(X_OUTLIERS)
    b = create(name).fit(X_TRAIN).score_samples(X_OUTLIERS)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", available())
def test_constructor_only_stores_parameters(name: str) -> None:
    det = create(name)
    params = det.get_params()
    assert set(params) == set(inspect.signature(DETECTORS[name].__init__).parameters) - {"self"}
    assert not [k for k in vars(det) if k.endswith("_")], "nothing learned before fit"
    clone(det)  # scikit-learn can rebuild it from its parameters
    det.fit(X_TRAIN)
    learned = set(vars(det)) - set(params)
    assert learned and all(k.endswith("_") for k in learned), sorted(learned)


@pytest.mark.parametrize("name", available())
def test_dataframes_work_and_keep_feature_names(name: str) -> None:
    frame = pd.DataFrame(X_TRAIN, columns=["a", "b", "c", "d"])
    det = create(name).fit(frame)
    assert list(det.feature_names_in_) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(det.score_samples(frame.iloc[:20]), det.score_samples(X_TRAIN[:20]))


def test_scoring_before_fit_and_wrong_width_are_errors() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        create("hbos").score_samples(X_NORMAL)
    with pytest.raises(ValueError, match="features"):
        create("hbos").fit(X_TRAIN).score_samples(X_NORMAL[:, :2])


def test_unknown_detector_names_the_known_ones() -> None:
    with pytest.raises(UnknownDetector, match="isolation_forest"):
        create("svm")


def test_create_is_exported_from_the_package() -> None:
    det = create_from_package("isolation_forest", n_estimators=20, random_state=3)
    assert det.get_params()["n_estimators"] == 20
    assert det.fit(X_TRAIN).score_samples(X_OUTLIERS).min() > 50


def test_frozen_ecod_and_copod_match_pyod_on_the_training_rows() -> None:
    for name in ("ecod", "copod"):
        det = create(name).fit(X_TRAIN)
        assert np.corrcoef(det.pyod_train_scores_, det.raw_scores(X_TRAIN))[0, 1] > 0.99
    ecod = create("ecod").fit(X_TRAIN)
    alone = ecod.score_samples(X_OUTLIERS[:1])
    batched = ecod.score_samples(X_OUTLIERS)[:1]
    np.testing.assert_array_equal(alone, batched)  # a row's score does not depend on its batch


def test_ensemble_combines_member_scores() -> None:
    ens = create("ensemble", members=("isolation_forest", "hbos"), combine="max").fit(X_TRAIN)
    members = ens.member_scores(X_OUTLIERS)
    assert set(members) == {"isolation_forest", "hbos"}
    np.testing.assert_allclose(ens.raw_scores(X_OUTLIERS), np.maximum(*members.values()))


def test_half_space_trees_learn_and_score_one_row_at_a_time() -> None:
    hst = create("half_space_trees", window_size=50, n_trees=10, height=6)
    for row in X_TRAIN[:120]:
        hst.learn_one(row)
    assert hst.windows_ == 2
    normal = np.mean([hst.score_one(r) for r in X_NORMAL])
    assert hst.score_one(X_OUTLIERS[0]) > normal
    np.testing.assert_allclose(hst.score_samples(X_NORMAL[:3]), [hst.score_one(r) for r in X_NORMAL[:3]])


def test_ecod_extrapolates_beyond_the_training_range_and_aggregates() -> None:
    far, farther = X_TRAIN[:1].copy(), X_TRAIN[:1].copy()
    far[0, 0], farther[0, 0] = X_TRAIN[:, 0].max() + 1.0, X_TRAIN[:, 0].max() + 5.0
    clip = create("ecod", tails="clip").fit(X_TRAIN)
    assert clip.raw_scores(far)[0] == clip.raw_scores(farther)[0], "PyOD's tail stops at the training maximum"
    ecod = create("ecod").fit(X_TRAIN)
    assert ecod.raw_scores(farther)[0] > ecod.raw_scores(far)[0] > clip.raw_scores(far)[0] - 1e-9
    assert np.allclose(ecod.raw_scores(X_TRAIN), clip.raw_scores(X_TRAIN)), "inside the range nothing changes"
    for aggregate in ("max", "sum_max"):
        det = create("ecod", aggregate=aggregate).fit(X_TRAIN)
        assert det.score_samples(farther)[0] > np.median(det.train_scores_)
    with pytest.raises(ValueError, match="aggregate"):
        create("ecod", aggregate="median").fit(X_TRAIN)
