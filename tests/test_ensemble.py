"""Bagging and parameter grids on fit_many's machinery: members equal their own fits."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402

import fastbp  # noqa: E402
from fastbp import MLPClassifier, MLPRegressor  # noqa: E402


def _params(est):
    return est.network_.params


def test_grid_members_equal_their_own_fits(digits):
    X_train, X_test, y_train, y_test = digits
    base = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0,
                         dtype=np.float32)
    grid = {"learning_rate_init": [1e-3, 3e-3], "alpha": [0.0, 1e-3],
            "hidden_layer_sizes": [(16,), (32,)]}
    ests = fastbp.param_grid(base, grid)
    assert len(ests) == 8
    fitted = fastbp.fit_estimators(ests, X_train, y_train, n_jobs=2)
    for est in fitted:
        alone = clone(est).fit(X_train, y_train)
        assert np.array_equal(_params(alone), _params(est))
        assert alone.loss_curve_ == est.loss_curve_


def test_bagging_classifier_members_and_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    member = MLPClassifier(hidden_layer_sizes=(32,), max_iter=40, learning_rate_init=0.01,
                           random_state=0)
    bag = fastbp.BaggingClassifier(member, n_estimators=5, random_state=0, n_jobs=2)
    bag.fit(X_train, y_train)
    # each member is its own fit on its bootstrap sample
    for est, idx in zip(bag.estimators_, bag.estimators_samples_):
        alone = clone(est).fit(X_train[idx], np.searchsorted(bag.classes_, y_train[idx]))
        assert np.array_equal(_params(alone), _params(est))
    proba = bag.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    acc = bag.score(X_test, y_test)
    assert acc >= 0.95, acc
    # the same seed gives the same ensemble
    again = fastbp.BaggingClassifier(member, n_estimators=5, random_state=0, n_jobs=1)
    again.fit(X_train, y_train)
    assert np.array_equal(again.predict_proba(X_test), proba)


def test_bagging_with_string_labels_and_a_missing_class_in_a_sample():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = np.array(["a"] * 29 + ["b"] * 29 + ["rare"] * 2)
    bag = fastbp.BaggingClassifier(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3),
                                   n_estimators=6, max_samples=20, random_state=1)
    bag.fit(X, y)
    assert any(len(e.classes_) < 3 for e in bag.estimators_)
    assert set(bag.predict(X)) <= {"a", "b", "rare"}
    np.testing.assert_allclose(bag.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


def test_bagging_regressor_beats_the_mean():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    bag = fastbp.BaggingRegressor(MLPRegressor(hidden_layer_sizes=(32,), max_iter=200,
                                               learning_rate_init=0.01, random_state=0),
                                  n_estimators=4, random_state=0)
    bag.fit(X[:300], y[:300])
    assert bag.score(X[300:], y[300:]) >= 0.8
    members = np.mean([e.predict(X[300:]) for e in bag.estimators_], axis=0)
    assert np.array_equal(bag.predict(X[300:]), members)


def test_bad_parameters_are_named():
    X = np.zeros((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="n_estimators must be a positive int"):
        fastbp.BaggingClassifier(n_estimators=0).fit(X, y)
    with pytest.raises(ValueError, match="max_samples must be"):
        fastbp.BaggingClassifier(max_samples=11).fit(X, y)
    with pytest.raises(TypeError, match="estimator must be a fastbp"):
        fastbp.BaggingClassifier(estimator=object()).fit(X, y)
    with pytest.raises(ValueError, match="n_jobs must be"):
        fastbp.fit_estimators([MLPClassifier()], X, y, n_jobs=0)
