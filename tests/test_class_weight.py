"""class_weight on MLPClassifier and Network.fit: scikit-learn's rule (each sample's class
weight multiplies its sample_weight; "balanced" is n_samples / (n_classes * class count))."""
import warnings

import numpy as np
import pytest

import fastbp


def _imbalanced(n=600, seed=0):
    """Two overlapping Gaussian classes, 9 to 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    X = rng.normal(size=(n, 4)) + y[:, None] * np.array([1.2, 0.8, 0.0, 0.0])
    return X, y


def test_network_class_weight_equals_the_equivalent_sample_weight():
    X, y = _imbalanced(200)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    cw = {0: 0.3, 1: 4.0}
    nets = [fastbp.Network([4, 6, 2], dtype=np.float64, seed=0) for _ in range(2)]
    nets[0].fit(X, y, epochs=3, batch_size=16, seed=0, sample_weight=sw, class_weight=cw)
    nets[1].fit(X, y, epochs=3, batch_size=16, seed=0,
                sample_weight=sw * np.where(y == 1, 4.0, 0.3))
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    # "balanced" is n / (n_classes * count), also for one logistic output (classes 0/1)
    counts = np.bincount(y)
    balanced = (len(y) / (2 * counts))[y]
    for out, target in (("softmax", y), ("logistic", y[:, None].astype(float))):
        a, b = (fastbp.Network([4, 5, 2 if out == "softmax" else 1], output=out,
                               dtype=np.float64, seed=0) for _ in range(2))
        a.fit(X, target, epochs=2, batch_size=32, seed=0, class_weight="balanced")
        b.fit(X, target, epochs=2, batch_size=32, seed=0, sample_weight=balanced)
        np.testing.assert_array_equal(a.params, b.params)


def test_network_class_weight_errors():
    X, y = _imbalanced(50)
    net = fastbp.Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match="key 2 that is not a class index 0..1"):
        net.fit(X, y, epochs=1, class_weight={2: 1.0})
    with pytest.raises(ValueError, match="class_weight must be a dict, 'balanced' or None"):
        net.fit(X, y, epochs=1, class_weight="balance")
    with pytest.raises(ValueError, match="class_weight.*must be"):
        net.fit(X, y, epochs=1, class_weight={0: -1.0})
    with pytest.raises(ValueError, match="needs a classifier"):
        fastbp.Network([4, 3, 1], output="identity").fit(X, y[:, None] * 1.0, epochs=1,
                                                          class_weight="balanced")
    with pytest.raises(ValueError, match="multi-label"):
        fastbp.Network([4, 3, 2], output="logistic").fit(X, np.c_[y, 1 - y] * 1.0, epochs=1,
                                                          class_weight="balanced")


sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_estimator_class_weight_equals_the_equivalent_sample_weight(solver):
    from fastbp.sklearn import MLPClassifier
    X, y = _imbalanced(300)
    labels = np.array(["common", "rare"])[y]
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    kw = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPClassifier(class_weight={"rare": 5.0}, **kw).fit(X, labels, sample_weight=sw)
        b = MLPClassifier(**kw).fit(X, labels, sample_weight=sw * np.where(y == 1, 5.0, 1.0))
        c = MLPClassifier(class_weight="balanced", **kw).fit(X, labels)
        d = MLPClassifier(**kw).fit(X, labels, sample_weight=(len(y) / (2 * np.bincount(y)))[y])
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    np.testing.assert_array_equal(c.network_.params, d.network_.params)


def test_balanced_recovers_minority_recall():
    """On a 9:1 problem the unweighted model sacrifices the rare class; "balanced" trades
    some accuracy for minority recall on held-out data (bar: recall +0.2 and >= 0.6)."""
    from sklearn.metrics import recall_score
    from fastbp.sklearn import MLPClassifier
    X, y = _imbalanced(4000)
    X_te, y_te = _imbalanced(4000, seed=1)
    kw = dict(hidden_layer_sizes=(8,), max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MLPClassifier(**kw).fit(X, y)
        balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    r_plain = recall_score(y_te, plain.predict(X_te))
    r_bal = recall_score(y_te, balanced.predict(X_te))
    assert r_bal >= 0.6 and r_bal >= r_plain + 0.2, (r_plain, r_bal)


def test_estimator_class_weight_errors():
    from fastbp.sklearn import MLPClassifier
    X, y = _imbalanced(60)
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    MLPClassifier(class_weight={1: 3.0}).partial_fit(X, y, classes=[0, 1])  # a dict is fine
    with pytest.raises(ValueError, match="multi-label"):
        MLPClassifier(class_weight={0: 2.0}, max_iter=1).fit(X, np.c_[y, 1 - y])
    with pytest.raises(ValueError, match="not in class_weight|not found"):
        MLPClassifier(class_weight={7: 2.0}, max_iter=1).fit(X, y)


def test_estimator_with_class_weight_round_trips_a_model_file(tmp_path):
    from fastbp.sklearn import MLPClassifier
    X, y = _imbalanced(100)
    for cw in ({np.int64(1): 3.0, 0: 0.5}, "balanced"):
        clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, class_weight=cw,
                            random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
        clf.save(tmp_path / "m.npz")
        back = fastbp.load(tmp_path / "m.npz")
        assert back.class_weight == cw
        np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
