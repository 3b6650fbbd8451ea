"""Recurrent networks where other features meet them: hidden_activations of recurrent and
later hidden layers (against the NumPy reference of tests/naive.py), and sparse input, which
only dense networks take, refused with a clear error."""
import numpy as np
import pytest

import fastbp
from fastbp import Dense

import naive

LENGTHS = np.array([6, 1, 3, 5, 6, 2])


def _naive_layers(net, count):
    """The first ``count`` layers of ``net`` as naive.py's layer dicts (copies)."""
    out = []
    for layer in net.layers[:count]:
        if isinstance(layer, Dense):
            out.append({"kind": "dense", "activation": layer.activation,
                        "params": {"weight": layer.weight.copy(), "bias": layer.bias.copy()}})
            continue
        names = naive.recurrent_tensor_names(layer.bidirectional)
        out.append({"kind": layer.kind, "activation": layer.activation,
                    "bidirectional": layer.bidirectional,
                    "return_sequences": layer.return_sequences,
                    "params": {n: getattr(layer, n).copy() for n in names}})
    return out


def _net(layers, dtype=np.float64):
    net = fastbp.Network(layers, output="softmax", dtype=dtype, seed=0)
    net.params[:] = np.random.default_rng(1).normal(scale=0.6, size=net.n_params)
    return net


@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_hidden_activations_of_recurrent_layers(lengths):
    net = _net([3, fastbp.LSTM(4, return_sequences=True, bidirectional=True),
                fastbp.GRU(3, bidirectional=True), Dense(5, activation="tanh"), 2])
    X = np.random.default_rng(2).normal(size=(6, 6, 3))
    L = LENGTHS if lengths is not None else np.full(6, 6)
    valid = np.arange(6)[None, :] < L[:, None]
    shapes = {0: (6, 6, 8), 1: (6, 6), 2: (6, 5)}
    for k, shape in shapes.items():
        got = net.hidden_activations(X, layer=k, lengths=lengths)
        assert got.shape == shape
        want = naive.recurrent_predict(_naive_layers(net, k + 1), X, lengths)
        if got.ndim == 3:
            assert np.all(got[~valid] == 0)  # zeros past each length, as predict_proba's
            got, want = got[valid], want[valid]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(net.hidden_activations(X, lengths=lengths),
                                  net.hidden_activations(X, layer=2, lengths=lengths))


def test_hidden_activations_after_a_sequence_output():
    net = _net([3, fastbp.RNN(4, activation="relu", return_sequences=True),
                Dense(5, activation="tanh", normalization="layer"), 3], dtype=np.float32)
    X = np.random.default_rng(2).normal(size=(6, 6, 3)).astype(np.float32)
    got = net.hidden_activations(X, layer=-1, lengths=LENGTHS)
    assert got.shape == (6, 6, 5) and got.dtype == np.float32
    valid = np.arange(6)[None, :] < LENGTHS[:, None]
    assert np.all(got[~valid] == 0)
    rec = net.hidden_activations(X, layer=0, lengths=LENGTHS)
    want = naive.recurrent_predict(_naive_layers(net, 1), X, LENGTHS)
    np.testing.assert_allclose(rec[valid], want[valid], rtol=0, atol=1e-5)
    # the dense layer: layer norm and tanh of the recurrent outputs, step by step
    layer = net.layers[1]
    z = rec[valid].astype(np.float64) @ layer.weight.T + layer.bias
    z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + layer.eps)
    np.testing.assert_allclose(got[valid], np.tanh(z * layer.scale + layer.shift), rtol=0,
                               atol=1e-5)


def test_hidden_activations_bad_arguments():
    net = _net([3, fastbp.GRU(4), 2])
    X = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="lengths must lie in 1..3"):
        net.hidden_activations(X, lengths=[1, 4])
    with pytest.raises(ValueError, match="3-D array"):
        net.hidden_activations(X[0])
    with pytest.raises(ValueError, match="lengths is only for networks with recurrent"):
        fastbp.Network([3, 4, 2], seed=0).hidden_activations(np.zeros((2, 3)), lengths=[1, 1])


def test_sparse_input_to_a_recurrent_network_is_a_clear_error():
    sp = pytest.importorskip("scipy.sparse", reason="scipy is not installed")
    net = _net([3, fastbp.GRU(4), 2])
    X = sp.csr_matrix(np.eye(4, 3))
    message = "sparse input is supported for dense networks only"
    with pytest.raises(TypeError, match=message):
        net.fit(X, np.array([0, 1, 0, 1]), epochs=1)
    with pytest.raises(TypeError, match=message):
        net.predict(sp.csc_matrix(X))
    with pytest.raises(TypeError, match=message):
        net.gradient(X, np.array([0, 1, 0, 1]))
    with pytest.raises(TypeError, match=message):
        net.hidden_activations(X, layer=0)


def test_recurrent_blas_thread_rule_follows_the_per_step_product():
    """A recurrent network keeps every BLAS thread when its per-step product h W_hh^T is big
    (R3: LSTM 128 units, batch 64: 64 x 512 x 128 multiply-adds), and runs BLAS on one thread
    when it is small (R1: GRU 64 units, batch 32: 32 x 192 x 64), whatever the layer's
    parameter count; fit_many trains the former one after another."""
    from fastbp._config import BLAS_THREADS_MIN_STEP_MACS
    from fastbp._threads import _ONE_THREAD, blas_threads_for
    from fastbp.many import _uses_all_blas_threads
    r3 = fastbp.Network([16, fastbp.LSTM(128), 10], seed=0)
    r1 = fastbp.Network([8, fastbp.GRU(64), 10], seed=0)
    assert 64 * 4 * 128 * 128 >= BLAS_THREADS_MIN_STEP_MACS > 32 * 3 * 64 * 64
    assert r3.layout.uses_all_blas_threads(64) and not r3.layout.uses_all_blas_threads(16)
    assert not r1.layout.uses_all_blas_threads(32)
    assert blas_threads_for(r3.layout, 64) is not _ONE_THREAD
    assert blas_threads_for(r1.layout, 32) is _ONE_THREAD
    assert _uses_all_blas_threads(r3, {"batch_size": 64})
    assert not _uses_all_blas_threads(r1, {"batch_size": 32})
    bi = fastbp.Network([16, fastbp.LSTM(128, bidirectional=True), 10], seed=0)
    assert bi.layout.uses_all_blas_threads(64)  # per direction: the same product
