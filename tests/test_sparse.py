"""Sparse (CSR/CSC) input: the sparse first-layer kernels against the dense path, the NumPy
reference and finite differences; training, prediction, validation and the estimators on
sparse matrices; hostile sparse input; a matrix far too large to densify."""
import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse", reason="SciPy is not installed")

import fastbp  # noqa: E402
from naive import flatten, loss_and_grads, numeric_gradient, rel_error  # noqa: E402


def _bow(n=120, m=40, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, m)) * (rng.random((n, m)) < density)
    y = (X[:, :m // 2].sum(axis=1) > X[:, m // 2:].sum(axis=1)).astype(int)
    return X, y


LAYERS = {
    "plain": lambda: [40, 7, 3],
    "deep": lambda: [40, 6, 5, 3],
    "output_only": lambda: [40, 3],
    "batch_norm": lambda: [40, fastbp.Dense(6, "relu", "batch"), 3],
    "layer_norm": lambda: [40, fastbp.Dense(6, "gelu", "layer"), 5, 3],
}


@pytest.mark.parametrize("layers", sorted(LAYERS))
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_gradient_and_outputs_equal_the_dense_path(layers, fmt):
    X, y = _bow()
    net = fastbp.Network(LAYERS[layers](), hidden_activation="tanh", dtype=np.float64, seed=1)
    net.params[:] = np.random.default_rng(2).normal(0, 0.5, net.n_params)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    for training in (True, False):
        ld, gd = net.gradient(X, y, training=training)
        ls, gs = net.gradient(Xs, y, training=training)
        assert ls == pytest.approx(ld, rel=1e-13)
        assert rel_error(gs, gd) < 1e-13
    np.testing.assert_allclose(net.predict_proba(Xs), net.predict_proba(X), rtol=1e-13,
                               atol=1e-15)
    assert net.evaluate(Xs, y) == pytest.approx(net.evaluate(X, y), rel=1e-13)


def test_gradient_matches_reference_and_finite_differences():
    X, y = _bow(30)
    Xs = sp.csr_matrix(X)
    net = fastbp.Network([40, 6, 3], hidden_activation="relu", dtype=np.float64, seed=3)
    net.params[:] = np.random.default_rng(4).normal(0, 0.5, net.n_params)
    Y = np.eye(3)[y]
    sw = np.random.default_rng(5).uniform(0.2, 2.0, len(y))
    value, grad = net.gradient(Xs, Y, sample_weight=sw, alpha=0.1)
    ref_value, dWs, dbs = loss_and_grads([W.copy() for W in net.weights],
                                         [b.copy() for b in net.biases], net.activations,
                                         net.loss, X, Y, sw, 0.1)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_error(grad, flatten(dWs, dbs)) < 1e-12

    def f(p):
        net.params[:] = p
        return net.evaluate(Xs, Y)

    p0 = net.params.copy()
    fd = numeric_gradient(f, p0.copy())
    net.params[:] = p0
    assert rel_error(net.gradient(Xs, Y)[1], fd) < 1e-6


@pytest.mark.parametrize("options", [
    dict(optimizer="adam", batch_size=16),
    dict(optimizer="sgd", batch_size=1, learning_rate=0.05),  # layer 0's step fused
    dict(optimizer="sgd", batch_size=8, learning_rate=0.05, dropout=0.2),  # fused, 8 rows
    dict(optimizer="sgd", batch_size=10, shuffle=False, alpha=0.01, clip_norm=0.5),
    dict(optimizer="rmsprop", batch_size=32, dropout=0.3, validation_fraction=0.2,
         early_stopping=True, patience=2),
    dict(optimizer="rprop"),
])
def test_training_on_sparse_equals_training_on_dense(options):
    X, y = _bow(200)
    sw = np.random.default_rng(6).uniform(0.5, 1.5, len(y))
    nets = [fastbp.Network([40, 8, 3], dtype=np.float64, seed=0) for _ in range(2)]
    h_dense = nets[0].fit(X, y, epochs=4, seed=7, sample_weight=sw, **options)
    h_sparse = nets[1].fit(sp.csr_matrix(X), y, epochs=4, seed=7, sample_weight=sw, **options)
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h_sparse.loss, h_dense.loss, rtol=1e-9)
    np.testing.assert_allclose(h_sparse.val_loss, h_dense.val_loss, rtol=1e-9)


def test_fused_sgd_moves_only_the_columns_of_features_that_occur():
    """Plain SGD steps layer 0 in place, nonzero by nonzero: a feature that never occurs in
    the data keeps its incoming weights bit for bit, and every other parameter moves as the
    dense path moves it (to rounding)."""
    X, y = _bow(120)
    X[:, [3, 17]] = 0.0
    nets = [fastbp.Network([40, 8, 3], dtype=np.float64, seed=0) for _ in range(2)]
    p0 = nets[0].params.copy()
    for bs in (1, 5):
        nets[0].fit(X, y, epochs=2, batch_size=bs, learning_rate=0.1, seed=1)
        nets[1].fit(sp.csr_matrix(X), y, epochs=2, batch_size=bs, learning_rate=0.1, seed=1)
    W0 = nets[1].layout.weights(nets[1].params)[0]
    W_init = nets[1].layout.weights(p0)[0]
    np.testing.assert_array_equal(W0[[3, 17]], W_init[[3, 17]])
    assert np.abs(W0[0] - W_init[0]).max() > 1e-3  # a feature that occurs has moved
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=1e-9, atol=1e-12)


def test_float32_and_index_dtypes():
    X, y = _bow()
    net = fastbp.Network([40, 6, 3], seed=0)  # float32
    expected = net.predict_proba(X.astype(np.float32))
    for make in (sp.csr_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix):
        Xs = make(X)
        if hasattr(Xs, "indices"):
            Xs.indices = Xs.indices.astype(np.int64)
        P = net.predict_proba(Xs)
        assert P.dtype == np.float32
        np.testing.assert_allclose(P, expected, rtol=1e-5, atol=1e-6)
    net.fit(sp.csr_matrix(X), y, epochs=2, seed=0)
    assert np.isfinite(net.params).all()


def test_bad_sparse_input_is_a_clear_error():
    X, y = _bow()
    net = fastbp.Network([40, 6, 3], dtype=np.float64, seed=0)
    bad = sp.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.predict_proba(bad)
    with pytest.raises(ValueError, match="X has 39 features per sample"):
        net.fit(sp.csr_matrix(X[:, :39]), y, epochs=1)
    # a hand-made CSR whose column indices point outside the matrix: an error, not a read
    # outside the weights
    hostile = sp.csr_matrix((np.ones(2), np.array([0, 10 ** 6]), np.array([0, 1, 2])),
                            shape=(2, 40))
    with pytest.raises(ValueError, match="column indices outside 0..39"):
        net.predict_proba(hostile)
    with pytest.raises(ValueError, match="empty"):
        net.predict_proba(sp.csr_matrix((0, 40)))
    with pytest.raises(TypeError, match="real numbers"):
        net.predict_proba(sp.csr_matrix(X.astype(complex)))


def test_a_matrix_too_large_to_densify():
    """1,000,000 columns (dense float64: 16 GB for these 2,000 rows): trains and predicts
    from the nonzeros, and learns the signal they carry."""
    rng = np.random.default_rng(0)
    n, m, per_row = 2000, 1_000_000, 8
    cols = rng.integers(0, m, size=(n, per_row))
    y = rng.integers(0, 2, n)
    cols[:, 0] = y  # column 0 or 1 marks the class
    X = sp.csr_matrix((np.ones(n * per_row), cols.ravel(), np.arange(0, n * per_row + 1,
                                                                      per_row)), shape=(n, m))
    net = fastbp.Network([m, 4, 2], dtype=np.float32, seed=0)
    net.fit(X, y, epochs=5, batch_size=50, optimizer="adam", learning_rate=0.05, seed=0)
    assert (net.predict(X) == y).mean() > 0.95


sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_estimators_take_sparse_input(solver):
    from fastbp.sklearn import MLPClassifier, MLPRegressor
    X, y = _bow(200)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = MLPClassifier(**kw).fit(X, y)
        sparse = MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
        reg_d = MLPRegressor(**kw).fit(X, X[:, 0])
        reg_s = MLPRegressor(**kw).fit(sp.csc_matrix(X), X[:, 0])
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(reg_s.predict(sp.csr_matrix(X)), reg_d.predict(X), rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_allclose(sparse.hidden_activations(sp.csr_matrix(X)),
                               dense.hidden_activations(X), rtol=1e-7, atol=1e-9)
