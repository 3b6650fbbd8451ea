"""The regression losses beyond squared error (poisson, absolute_error, huber): gradients
against central finite differences and the NumPy reference (tests/naive.py), the huber
threshold as data (no recompile), model files, errors, and the estimator's ``loss``."""
import warnings

import numpy as np
import pytest

import fastbp
from fastbp.registry import LOSSES
from gradcheck import assert_gradient_matches
from naive import flatten, loss_and_grads, random_targets, rel_error

# (output activation, loss, huber_epsilon)
CASES = [("exp", "poisson", None)] + [
    (out, loss, eps) for loss, eps in (("absolute_error", None), ("huber", 0.7),
                                       ("huber", 2.5))
    for out in ("identity", "tanh", "logistic")]


def make_problem(depth, batch, out, loss, eps, hidden="tanh", seed=0, n_in=4, n_out=3):
    rng = np.random.default_rng(seed)
    net = fastbp.Network([n_in] + [5] * depth + [n_out], hidden_activation=hidden,
                         output=out, loss=loss, dtype=np.float64, seed=seed,
                         huber_epsilon=eps)
    net.params[:] = rng.normal(0, 0.6, net.n_params)
    X = rng.normal(size=(batch, n_in))
    Y = random_targets(rng, loss, batch, n_out)
    if out in ("tanh", "logistic") and loss != "poisson":
        Y = np.clip(Y, -0.95, 0.95) * (0.5 if out == "logistic" else 1.0) + (
            0.5 if out == "logistic" else 0.0)
    return net, X, Y


def reference(net, X, Y, sw=None, alpha=0.0):
    value, dWs, dbs = loss_and_grads([W.copy() for W in net.weights],
                                     [b.copy() for b in net.biases], net.activations,
                                     net.loss, X, Y, sw, alpha,
                                     huber_epsilon=net.huber_epsilon or 1.0)
    return value, flatten(dWs, dbs)


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("out,loss,eps", CASES)
def test_gradient_matches_reference_and_finite_differences(out, loss, eps, depth, batch):
    net, X, Y = make_problem(depth, batch, out, loss, eps, seed=depth * 10 + batch)
    assert_gradient_matches(net, X, Y, reference)


@pytest.mark.parametrize("loss", ["poisson", "huber"])
def test_weighted_and_penalized_gradient(loss, rng):
    net, X, Y = make_problem(2, 9, "exp" if loss == "poisson" else "identity", loss,
                             None if loss == "poisson" else 0.3, hidden="relu", seed=4)
    sw = rng.uniform(0.1, 3.0, 9)
    value, grad = net.gradient(X, Y, sample_weight=sw, alpha=0.2)
    ref_value, ref_grad = reference(net, X, Y, sw, alpha=0.2)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-10


def test_poisson_loss_is_scikit_learns_half_deviance():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from sklearn.metrics import mean_poisson_deviance
    net, X, Y = make_problem(1, 50, "exp", "poisson", None, n_out=1)
    P = net.predict_proba(X)
    assert net.evaluate(X, Y) == pytest.approx(0.5 * mean_poisson_deviance(Y[:, 0], P[:, 0]),
                                               rel=1e-12)
    from naive import forward
    Z, _ = forward(net.weights, net.biases, net.activations, X)
    np.testing.assert_allclose(P, np.exp(Z[-1]), rtol=1e-13)  # the log link


def test_huber_threshold_is_data_not_a_recompile():
    """Changing huber_epsilon changes the table's value, not the kernels: no new signature,
    and the gradient follows the reference at each threshold."""
    from fastbp.kernels.epoch import gradient_sums
    net, X, Y = make_problem(1, 7, "identity", "huber", 0.5)
    net.gradient(X, Y)
    n_sigs = len(gradient_sums.signatures)
    for eps in (0.05, 0.5, 5.0):
        other = fastbp.Network(net.sizes, hidden_activation="tanh", output="identity",
                               loss="huber", dtype=np.float64, huber_epsilon=eps)
        other.params[:] = net.params
        value, grad = other.gradient(X, Y)
        ref_value, ref_grad = reference(other, X, Y)
        assert value == pytest.approx(ref_value, rel=1e-12)
        assert rel_error(grad, ref_grad) < 1e-10
    assert len(gradient_sums.signatures) == n_sigs
    # a huge threshold is squared error, a tiny one (times 1/eps) absolute error
    sq = fastbp.Network(net.sizes, hidden_activation="tanh", output="identity",
                        dtype=np.float64)
    sq.params[:] = net.params
    big = fastbp.Network(net.sizes, hidden_activation="tanh", output="identity", loss="huber",
                         dtype=np.float64, huber_epsilon=1e6)
    big.params[:] = net.params
    np.testing.assert_allclose(big.gradient(X, Y)[1], sq.gradient(X, Y)[1], rtol=1e-12)


def test_model_files_keep_the_loss_and_its_parameter(tmp_path):
    net, X, Y = make_problem(1, 7, "identity", "huber", 0.3)
    net.save(tmp_path / "h.npz")
    back = fastbp.load(tmp_path / "h.npz")
    assert back.loss == "huber" and back.huber_epsilon == 0.3
    assert back.evaluate(X, Y) == net.evaluate(X, Y)
    net, X, Y = make_problem(1, 7, "exp", "poisson", None)
    net.save(tmp_path / "p.npz")
    back = fastbp.load(tmp_path / "p.npz")
    assert back.loss == "poisson" and back.output_activation == "exp"
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_loss_errors():
    with pytest.raises(ValueError, match="poisson needs a exp output"):
        fastbp.Network([3, 2, 1], output="identity", loss="poisson")
    with pytest.raises(ValueError, match="a exp output is trained with \\['poisson'\\] only"):
        fastbp.Network([3, 2, 1], output="exp", loss="squared_error")
    assert fastbp.Network([3, 2, 1], output="exp").loss == "poisson"
    with pytest.raises(ValueError, match="exp can only be the output activation"):
        fastbp.Network([3, 2, 1], hidden_activation="exp", output="identity")
    with pytest.raises(ValueError, match="huber_epsilon applies to the huber loss"):
        fastbp.Network([3, 2, 1], output="identity", huber_epsilon=1.0)
    with pytest.raises(ValueError, match="huber_epsilon must be > 0"):
        fastbp.Network([3, 2, 1], output="identity", loss="huber", huber_epsilon=0.0)
    net = fastbp.Network([3, 2, 1], output="exp", seed=0)
    with pytest.raises(ValueError, match="y must be >= 0 for the poisson loss"):
        net.fit(np.ones((4, 3)), np.array([1.0, 2.0, -1.0, 0.0]), epochs=1)
    assert set(LOSSES.names(regression=True)) == {"squared_error", "poisson",
                                                  "absolute_error", "huber"}


# --- estimators ------------------------------------------------------------------------------
def test_regressor_losses():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from fastbp.sklearn import MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=400)
    y_out = y.copy()
    y_out[::20] += 30.0  # outliers: 5 % of the rows
    X_te = rng.normal(size=(400, 3))
    y_te = X_te[:, 0] - X_te[:, 1]
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for loss in ("squared_error", "absolute_error", "huber"):
            reg = MLPRegressor(hidden_layer_sizes=(16,), loss=loss, max_iter=300,
                               learning_rate_init=0.01, random_state=0).fit(X, y_out)
            assert reg.network_.loss == loss
            scores[loss] = reg.score(X_te, y_te)
    # the robust losses ignore the outliers that pull squared error away
    assert scores["absolute_error"] > 0.9 and scores["huber"] > 0.9, scores
    assert scores["squared_error"] < min(scores["absolute_error"], scores["huber"]) - 0.05
    with pytest.raises(ValueError, match="must be >= 0 for the poisson loss"):
        MLPRegressor(loss="poisson", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="cross_entropy", max_iter=1).fit(X, y)


def test_poisson_deviance_within_2_percent_of_scikit_learn():
    """Count data with a log-linear rate: fastbp's MLPRegressor(loss="poisson") and
    scikit-learn's at the same settings (lbfgs to convergence, the same initial weights by
    random_state) reach held-out mean Poisson deviances within 2 % of each other."""
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from sklearn.metrics import mean_poisson_deviance
    from sklearn.neural_network import MLPRegressor as SkRegressor
    from fastbp.sklearn import MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    rate = np.exp(0.3 + 0.5 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * np.tanh(X[:, 2] * X[:, 3]))
    y = rng.poisson(rate)
    X_tr, X_te, y_tr, y_te = X[:1500], X[1500:], y[:1500], y[1500:]
    params = dict(hidden_layer_sizes=(16,), loss="poisson", solver="lbfgs", alpha=1e-3,
                  max_iter=2000, random_state=0)
    dev = {}
    for name, cls in (("sklearn", SkRegressor), ("fastbp", MLPRegressor)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = cls(**params).fit(X_tr, y_tr)
        dev[name] = mean_poisson_deviance(y_te, reg.predict(X_te))
    assert abs(dev["fastbp"] - dev["sklearn"]) <= 0.02 * dev["sklearn"], dev
    baseline = mean_poisson_deviance(y_te, np.full(len(y_te), y_tr.mean()))
    assert dev["fastbp"] < 0.8 * baseline, (dev, baseline)
