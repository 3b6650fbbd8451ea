"""The estimators behave as scikit-learn's MLP does where a user can see it (issue 13, item
6), each test written from scikit-learn's documentation of ``MLPClassifier``/``MLPRegressor``
and, where it can be run, checked against scikit-learn's own estimator on the same call."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _data(n=120, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (classes > 2) * (X[:, 2] > 1)
    return X, y


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **k)


# --- lbfgs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [dict(max_iter=3), dict(max_fun=4)])
def test_lbfgs_warns_when_it_stops_at_max_iter_or_max_fun(limit):
    """Docs: "lbfgs ... max_fun: ... Maximum number of loss function calls"; scikit-learn
    warns ConvergenceWarning when L-BFGS stops at either limit."""
    X, y = _data()
    for cls in (SkClassifier, MLPClassifier):
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            cls(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0, **limit).fit(X, y)


def test_lbfgs_converged_fit_does_not_warn_and_counts_iterations():
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", tol=1e-2, max_iter=1000,
                           random_state=0).fit(X, X[:, 0])
    assert 0 < clf.n_iter_ < 1000


def test_lbfgs_warm_start_needing_zero_iterations():
    """A warm start from a solution whose gradient is already below tol: scipy takes no
    iteration (fastbp raised IndexError on history.loss[-1])."""
    X, y = _data()
    for cls in (SkRegressor, MLPRegressor):
        reg = _quiet(cls(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=200,
                         random_state=0, warm_start=True).fit, X, X[:, 0])
        reg.set_params(tol=1e6)
        reg.fit(X, X[:, 0])
        assert reg.n_iter_ == 0, cls
        assert np.isfinite(reg.loss_)


# --- n_iter_ ---------------------------------------------------------------------------------
def test_n_iter_counts_the_latest_call():
    """Docs: n_iter_ is "the number of iterations the solver has run" -- in the latest call
    (fit, warm-started fit or partial_fit), while t_ counts every sample seen."""
    X, y = _data()
    seen = {}
    for cls in (SkClassifier, MLPClassifier):
        clf = cls(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, warm_start=True,
                  n_iter_no_change=np.inf, random_state=0)
        _quiet(clf.fit, X, y)
        counts = [clf.n_iter_]
        clf.set_params(max_iter=3)
        _quiet(clf.fit, X, y)
        counts.append(clf.n_iter_)
        clf.partial_fit(X, y)
        counts.append(clf.n_iter_)
        seen[cls.__name__ + cls.__module__] = (counts, clf.t_)
    assert len({str(v) for v in seen.values()}) == 1, seen
    assert seen["MLPClassifierfastbp.sklearn"] == ([5, 3, 1], 9 * len(X))


# --- learning-rate schedules continue -------------------------------------------------------
@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_partial_fit_continues_the_learning_rate_schedule(schedule):
    """scikit-learn: 30 partial_fit calls equal one 30-iteration fit (without shuffling):
    invscaling's rate keeps falling with the samples seen, adaptive's plateau state and rate
    carry over.  fastbp restarted both at learning_rate_init on every call."""
    X, y = _data()
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * X[:, 2] ** 2
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate=schedule,
                  learning_rate_init=0.05, momentum=0.5, shuffle=False, max_iter=30,
                  random_state=0, n_iter_no_change=np.inf if schedule == "invscaling" else 3,
                  tol=1e9 if schedule == "adaptive" else 1e-4)
    for cls in (SkRegressor, MLPRegressor):
        whole = _quiet(cls(**params).fit, X, y)
        steps = cls(**params)
        for _ in range(30):
            steps.partial_fit(X, y)
        np.testing.assert_allclose(steps.predict(X), whole.predict(X), rtol=1e-10,
                                   atol=1e-10, err_msg=cls.__module__)
        assert whole.n_iter_ == 30
    rates = whole.network_.history.learning_rate
    if schedule == "adaptive":  # tol=1e9: every 4th epoch divides the rate by 5
        assert rates[-1] == pytest.approx(0.05 * 0.2 ** 7)
    else:
        assert rates[-1] == pytest.approx(0.05 / (29 * len(X) + 1) ** 0.5)


# --- classes ------------------------------------------------------------------------------------
def test_warm_start_with_a_subset_of_the_classes_is_refused():
    """scikit-learn: "warm_start can only be used where `y` has the same classes as in the
    previous call to fit"."""
    X, y = _data()
    for cls in (SkClassifier, MLPClassifier):
        clf = _quiet(cls(hidden_layer_sizes=(4,), max_iter=3, warm_start=True,
                         random_state=0).fit, X, y)
        keep = y != 2
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the "
                                             "same classes"):
            clf.fit(X[keep], y[keep])
    # partial_fit (no warm start) may see a subset, as in scikit-learn
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    _quiet(clf.fit, X, y)
    clf.partial_fit(X[keep], y[keep])


def test_partial_fit_with_early_stopping_raises():
    """scikit-learn: "partial_fit does not support early_stopping=True"."""
    X, y = _data()
    for cls in (SkClassifier, MLPClassifier):
        with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
            cls(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, X[:, 0])


def test_n_iter_no_change_inf_turns_stopping_off():
    """scikit-learn's own test (test_n_iter_no_change_inf): with a huge tol every epoch is
    "no improvement", yet n_iter_no_change=np.inf trains to max_iter."""
    X, y = _data()
    for cls in (SkClassifier, MLPClassifier):
        clf = _quiet(cls(hidden_layer_sizes=(4,), solver="sgd", tol=1e9, max_iter=40,
                         n_iter_no_change=np.inf, random_state=0).fit, X, y)
        assert clf.n_iter_ == 40
        es = _quiet(cls(hidden_layer_sizes=(4,), tol=1e9, max_iter=25, early_stopping=True,
                        n_iter_no_change=np.inf, random_state=0).fit, X, y)
        assert es.n_iter_ == 25 and len(es.validation_scores_) == 25
    assert len(es.validation_loss_curve_) == 25
    # the same settings with a finite n_iter_no_change stop after 1 + 3 + 1 epochs
    stops = [_quiet(cls(hidden_layer_sizes=(4,), tol=1e9, max_iter=40, n_iter_no_change=3,
                        random_state=0).fit, X, y).n_iter_ for cls in (SkClassifier,
                                                                       MLPClassifier)]
    assert stops == [5, 5]


# --- divergence -----------------------------------------------------------------------------
def test_divergence_error_is_a_value_error():
    assert issubclass(fastbp.DivergenceError, ValueError)
    assert issubclass(fastbp.DivergenceError, FloatingPointError)


def test_non_finite_weights_raise_scikit_learns_value_error():
    """scikit-learn's test_nonfinite_params: inputs near float64's maximum make the weights
    non-finite; fit raises ValueError "Solver produced non-finite parameter weights"."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    for cls in (SkRegressor, MLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match="Solver produced non-finite parameter "
                                                 "weights"):
                cls().fit(X, y)


def test_early_stopping_ending_in_nan_keeps_the_best_weights():
    """scikit-learn's test_mlp_diverging_loss: with early stopping, a fit whose loss
    diverges ends without error, its last validation score NaN and the best weights kept."""
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    # (fastbp's classifier computes cross-entropy from the logits and does not diverge
    # there; squared error does, in both)
    for cls in (SkRegressor, MLPRegressor):
        mlp = cls(hidden_layer_sizes=100, activation="identity", solver="sgd",
                  learning_rate_init=1, max_iter=20, early_stopping=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlp.fit(X, y)
        assert str(mlp.validation_scores_[-1]) == str(np.nan)
        assert isinstance(mlp.validation_scores_[-1], float)
        assert np.isfinite(mlp.predict(X)).all()


# --- dtype ----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_dtype_follows_the_input_as_in_scikit_learn(solver):
    X, y = _data()
    X32 = X.astype(np.float32)
    sk = _quiet(SkClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5,
                             random_state=0).fit, X32, y)
    fb = _quiet(MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5,
                              random_state=0).fit, X32, y)
    assert fb.coefs_[0].dtype == np.float32 and fb.predict_proba(X32).dtype == np.float32
    if solver == "adam":  # (scikit-learn's lbfgs hands back SciPy's float64 vector)
        assert sk.coefs_[0].dtype == np.float32 and sk.predict_proba(X32).dtype == np.float32
    reg = _quiet(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit,
                 X32, X[:, 0])
    assert reg.predict(X32).dtype == np.float32 and reg.predict(X).dtype == np.float32
    f64 = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit, X, y)
    assert f64.coefs_[0].dtype == np.float64
    forced = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0,
                                  dtype="float64").fit, X32, y)
    assert forced.coefs_[0].dtype == np.float64  # the dtype parameter still wins
    forced.set_params(warm_start=True)
    _quiet(forced.fit, X32, y)  # a warm start keeps the network's dtype
    assert forced.coefs_[0].dtype == np.float64


# --- coefs_ / intercepts_ ---------------------------------------------------------------------
def test_coefs_and_intercepts_are_assignable():
    """Assigning scikit-learn's fitted weights makes fastbp predict scikit-learn's
    probabilities: assignment writes into network_.params, the views stay views."""
    X, y = _data()
    sk = _quiet(SkClassifier(hidden_layer_sizes=(6, 5), max_iter=30, random_state=1).fit, X, y)
    fb = _quiet(MLPClassifier(hidden_layer_sizes=(6, 5), max_iter=1, random_state=2).fit, X, y)
    assert not np.allclose(fb.predict_proba(X), sk.predict_proba(X))
    fb.coefs_ = sk.coefs_
    fb.intercepts_ = sk.intercepts_
    np.testing.assert_allclose(fb.predict_proba(X), sk.predict_proba(X), rtol=1e-12,
                               atol=1e-14)
    assert all(np.shares_memory(c, fb.network_.params) for c in fb.coefs_ + fb.intercepts_)
    before = fb.network_.params.copy()
    with pytest.raises(ValueError, match=r"coefs_ must be arrays of shapes \[\(5, 6\)"):
        fb.coefs_ = [c.T for c in sk.coefs_]
    bad = [c.copy() for c in sk.intercepts_]
    bad[1][0] = np.nan
    with pytest.raises(ValueError, match="intercepts_ contains NaN"):
        fb.intercepts_ = bad
    np.testing.assert_array_equal(fb.network_.params, before)  # nothing half-written
    with pytest.raises(AttributeError, match="only after fit"):
        MLPClassifier().coefs_ = sk.coefs_


# --- initialization ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_initial_weights_are_scikit_learns(activation):
    """Glorot uniform with scikit-learn's factor (6, or 2 for logistic), biases drawn too,
    from the same RandomState: the same random_state gives scikit-learn's initial weights
    (a learning rate of 1e-300 leaves them as drawn)."""
    X, y = _data()
    kw = dict(hidden_layer_sizes=(7, 3), activation=activation, solver="sgd",
              learning_rate_init=1e-300, max_iter=1, random_state=5, shuffle=False)
    sk = _quiet(SkClassifier(**kw).fit, X, y)
    fb = _quiet(MLPClassifier(**kw).fit, X, y)
    for a, b in zip(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_array_equal(a, b)
    # Network's own initialization is unchanged (its tests pin 0.1's draws)
    net = fastbp.Network([5, 7, 3, 3], hidden_activation=activation, dtype=np.float64, seed=5)
    assert not np.array_equal(net.weights[0], fb.coefs_[0])


# --- validation_loss_curve_ and hidden_activations --------------------------------------------
def test_validation_loss_curve_beside_validation_scores():
    X, y = _data(300)
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, early_stopping=True,
                               n_iter_no_change=np.inf, learning_rate_init=0.01,
                               random_state=0).fit, X, y)
    curve, scores = clf.validation_loss_curve_, clf.validation_scores_
    assert len(curve) == len(scores) == clf.n_iter_ == 30
    assert curve == clf.network_.history.val_loss  # the held-out mean log-loss per epoch
    assert np.all(np.isfinite(curve)) and curve[-1] < 0.8 * curve[0]
    # the epoch with the best score has a low loss too (the curves describe the same rows)
    assert curve[int(np.argmax(scores))] < np.median(curve)
    assert MLPClassifier(max_iter=2).fit(X, y).validation_loss_curve_ is None
    # kept through a model file
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        clf.save(os.path.join(d, "m.npz"))
        assert fastbp.load(os.path.join(d, "m.npz")).validation_loss_curve_ == curve


def test_hidden_activations_are_the_hidden_layers_outputs():
    from naive import forward
    X, y = _data()
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(6, 4), activation="tanh", max_iter=5,
                               random_state=0).fit, X, y)
    _, A = forward(clf.coefs_, clf.intercepts_, ["tanh", "tanh", "softmax"], X)
    np.testing.assert_allclose(clf.hidden_activations(X, layer=0), A[1], rtol=1e-12)
    np.testing.assert_allclose(clf.hidden_activations(X), A[2], rtol=1e-12)
    np.testing.assert_allclose(clf.hidden_activations(X, layer=-2), A[1], rtol=1e-12)
    with pytest.raises(ValueError, match=r"layer must be in -2..1"):
        clf.hidden_activations(X, layer=2)
    with pytest.raises(ValueError, match="features"):
        clf.hidden_activations(X[:, :3])
    # batch-normalized layers: running statistics, as prediction (checked against the folded
    # network, an independent route to the same function)
    net = fastbp.Network([5, fastbp.Dense(6, "relu", "batch"), fastbp.Dense(4, "tanh", "layer"),
                          3], dtype=np.float64, seed=0)
    net.fit(X, y, epochs=3, batch_size=16, seed=0)
    np.testing.assert_allclose(net.hidden_activations(X, 0),
                               net.folded().hidden_activations(X, 0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.hidden_activations(X, 1),
                               net.folded().hidden_activations(X, 1), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="no hidden layer"):
        fastbp.Network([5, 3]).hidden_activations(X)


def test_partial_fit_signature_and_warm_start_class_rule_are_scikit_learns():
    # scikit-learn >= 1.7: partial_fit(X, y, sample_weight=None, classes=None)
    import inspect
    for ours, theirs in ((MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)):
        assert (list(inspect.signature(ours.partial_fit).parameters)
                == list(inspect.signature(theirs.partial_fit).parameters))
    # with warm_start=True, a later partial_fit call must see every class, as in scikit-learn
    X, y = _data()
    keep = y != 2
    for Est in (MLPClassifier, SkClassifier):
        clf = Est(hidden_layer_sizes=(4,), warm_start=True, random_state=0)
        _quiet(clf.partial_fit, X, y, classes=[0, 1, 2])
        with pytest.raises(ValueError, match="warm_start can only be used"):
            _quiet(clf.partial_fit, X[keep], y[keep])
        clf = Est(hidden_layer_sizes=(4,), random_state=0)  # without warm_start: a subset is fine
        _quiet(clf.partial_fit, X, y, classes=[0, 1, 2])
        _quiet(clf.partial_fit, X[keep], y[keep])
