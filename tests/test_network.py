"""The flat parameter layout, dtypes and the prediction API."""
import numpy as np
import pytest

import fastbp


def test_weights_and_biases_are_views_into_params():
    net = fastbp.Network([5, 4, 3, 2], hidden_activation=["relu", "tanh"], output="softmax",
                         dtype=np.float64, seed=0)
    assert net.params.ndim == 1 and net.params.flags.c_contiguous
    assert net.n_params == 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2
    assert [W.shape for W in net.weights] == [(5, 4), (4, 3), (3, 2)]
    assert [b.shape for b in net.biases] == [(4,), (3,), (2,)]
    for W, b in zip(net.weights, net.biases):
        assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
    # writing through a view changes the flat vector ...
    net.weights[1][2, 1] = 42.0
    assert 42.0 in net.params
    k = int(np.flatnonzero(net.params == 42.0)[0])
    # [W0, b0, W1, b1, ...], each W stored unit by unit: W1[i, j] is unit j's i-th input
    assert k == 5 * 4 + 4 + 1 * 4 + 2
    # ... and the reverse
    net.params[:] = np.arange(net.n_params)
    assert net.biases[0][0] == 20 and net.weights[2][0, 0] == 20 + 4 + 12 + 3
    assert net.weights[2][1, 0] == 20 + 4 + 12 + 3 + 1 and net.weights[2][0, 1] == 39 + 3
    # assigning the property copies into the same buffer: views stay valid
    before = net.params
    net.params = np.zeros(net.n_params)
    assert net.params is before and not net.weights[0].any()


def test_gradient_has_the_parameter_layout():
    net = fastbp.Network([3, 4, 2], hidden_activation="tanh", output="softmax",
                         dtype=np.float64, seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    _, grad = net.gradient(X, y)
    assert grad.shape == net.params.shape and grad.dtype == net.params.dtype
    gW = net.layout.weights(grad)
    gb = net.layout.biases(grad)
    # output-layer bias gradient of softmax + cross entropy: mean of (p - onehot)
    P = net.predict_proba(X)
    np.testing.assert_allclose(gb[1], (P - np.eye(2)[y]).mean(axis=0), rtol=1e-12)
    assert gW[0].shape == (3, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_fit_and_predict(dtype):
    net = fastbp.Network([4, 6, 3], hidden_activation="relu", output="softmax", dtype=dtype,
                         seed=0)
    X = np.random.default_rng(0).normal(size=(20, 4))  # float64 input
    y = np.arange(20) % 3
    net.fit(X, y, epochs=2, batch_size=4, learning_rate=0.1, seed=0)
    assert net.params.dtype == dtype
    assert net.predict_proba(X).dtype == dtype
    _, grad = net.gradient(X, y)
    assert grad.dtype == dtype


def test_params_are_not_upcast_by_assignment():
    net = fastbp.Network([2, 3, 2], dtype=np.float32, seed=0)
    net.params = np.ones(net.n_params, dtype=np.float64)
    assert net.params.dtype == np.float32


def test_predict_semantics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    soft = fastbp.Network([3, 4, 3], output="softmax", dtype=np.float64, seed=0)
    P = soft.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(soft.predict(X), P.argmax(axis=1))
    one = fastbp.Network([3, 4, 1], output="logistic", dtype=np.float64, seed=0)
    np.testing.assert_array_equal(one.predict(X), (one.predict_proba(X)[:, 0] > 0.5))
    assert one.predict(X).shape == (10,)
    multi = fastbp.Network([3, 4, 2], output="logistic", dtype=np.float64, seed=0)
    assert multi.predict(X).shape == (10, 2)
    reg = fastbp.Network([3, 4, 2], output="identity", dtype=np.float64, seed=0)
    assert reg.loss == "squared_error" and not reg.is_classifier
    np.testing.assert_array_equal(reg.predict(X), reg.predict_proba(X))


def test_default_losses_and_names():
    assert fastbp.Network([2, 3, 2], output="softmax").loss == "cross_entropy"
    assert fastbp.Network([2, 3, 1], output="sigmoid").loss == "binary_cross_entropy"
    assert fastbp.Network([2, 3, 1], output="sigmoid").activations == ["relu", "logistic"]
    assert fastbp.Network([2, 3, 1], output="tanh").loss == "squared_error"
    assert fastbp.Network([2, 3, 1], output="logistic", loss="squared_error").loss == \
        "squared_error"


def test_init_is_seeded_and_scaled():
    a = fastbp.Network([100, 50, 10], hidden_activation="relu", seed=3)
    b = fastbp.Network([100, 50, 10], hidden_activation="relu", seed=3)
    c = fastbp.Network([100, 50, 10], hidden_activation="relu", seed=4)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    # He-uniform for relu layers, Glorot-uniform for the softmax layer, zero biases
    assert np.abs(a.weights[0]).max() <= np.sqrt(6 / 100)
    assert np.abs(a.weights[0]).max() > 0.9 * np.sqrt(6 / 100)
    assert np.abs(a.weights[1]).max() <= np.sqrt(6 / 60)
    assert not any(b_.any() for b_ in a.biases)


def test_copy_and_pickle_keep_views_consistent():
    import pickle
    net = fastbp.Network([3, 4, 2], dtype=np.float64, seed=0)
    for other in (net.copy(), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(other.params, net.params)
        assert not np.shares_memory(other.params, net.params)
        other.weights[0][0, 0] = 7.0
        assert other.params[0] == 7.0 and net.params[0] != 7.0
