"""The backward pass against central finite differences and an independent NumPy reference."""
import numpy as np
import pytest

import fastbp
from gradcheck import assert_gradient_matches
from naive import random_targets, flatten, loss_and_grads, rel_error

HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
# (output activation, loss): every pairing the library accepts
OUTPUTS = [("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy")] + [
    (a, "squared_error") for a in HIDDEN]


def make_problem(depth, batch, out_act, loss, hidden, seed=0, n_in=4, n_out=3, width=5):
    rng = np.random.default_rng(seed)
    sizes = [n_in] + [width] * depth + [n_out]
    net = fastbp.Network(sizes, hidden_activation=hidden, output=out_act, loss=loss,
                         dtype=np.float64, seed=seed)
    # biases away from zero so every bias gradient is exercised
    net.params[:] = rng.normal(0, 0.6, net.n_params)
    X = rng.normal(size=(batch, n_in))
    return net, X, random_targets(rng, loss, batch, n_out)


def reference(net, X, Y, sw=None, alpha=0.0):
    Ws = [W.copy() for W in net.weights]
    bs = [b.copy() for b in net.biases]
    value, dWs, dbs = loss_and_grads(Ws, bs, net.activations, net.loss, X, Y, sw, alpha)
    return value, flatten(dWs, dbs)


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("out_act,loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_matches_reference_and_finite_differences(hidden, out_act, loss, depth, batch):
    net, X, Y = make_problem(depth, batch, out_act, loss, hidden, seed=depth * 100 + batch)
    assert_gradient_matches(net, X, Y, reference)


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_gradient_with_l2_and_sample_weights(hidden, rng):
    net, X, Y = make_problem(2, 7, "softmax", "cross_entropy", hidden, seed=3)
    sw = rng.uniform(0.1, 3.0, 7)
    value, grad = net.gradient(X, Y, sample_weight=sw, alpha=0.3)
    ref_value, ref_grad = reference(net, X, Y, sw, alpha=0.3)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-10


def test_gradient_over_many_chunks_matches_reference(rng):
    """More rows than one kernel chunk: the chunked sum must equal the one-shot reference."""
    net, X, Y = make_problem(2, 2500, "softmax", "cross_entropy", "tanh", seed=5)
    value, grad = net.gradient(X, Y)
    ref_value, ref_grad = reference(net, X, Y)
    assert value == pytest.approx(ref_value, rel=1e-11)
    assert rel_error(grad, ref_grad) < 1e-10


def test_blas_sized_layers_match_reference():
    """Layers big enough for the BLAS path (not the hand-written loops)."""
    net, X, Y = make_problem(2, 64, "softmax", "cross_entropy", "relu", seed=9, n_in=80,
                             n_out=10, width=96)
    value, grad = net.gradient(X, Y)
    ref_value, ref_grad = reference(net, X, Y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-10


@pytest.mark.parametrize("out_act,loss", OUTPUTS[:3])
def test_float32_within_its_precision_of_float64_reference(out_act, loss):
    net64, X, Y = make_problem(2, 64, out_act, loss, "tanh", seed=11, n_in=20, width=48)
    net32 = fastbp.Network(net64.sizes, hidden_activation="tanh", output=out_act, loss=loss,
                           dtype=np.float32)
    net32.params[:] = net64.params
    p32 = net32.params.astype(np.float64)
    net64.params[:] = p32  # the same (float32-representable) weights in both
    value64, grad64 = net64.gradient(X, Y)
    value32, grad32 = net32.gradient(X.astype(np.float32), Y.astype(np.float32))
    assert grad32.dtype == np.float32
    assert value32 == pytest.approx(value64, rel=1e-5)
    assert rel_error(grad32.astype(np.float64), grad64) < 1e-5
    P64 = net64.predict_proba(X)
    P32 = net32.predict_proba(X)
    assert P32.dtype == np.float32
    # norm-wise: a float32 sum of ~50 terms carries ~1e-6 of the terms' scale
    assert rel_error(P32.astype(np.float64), P64) < 1e-5


def test_forward_matches_reference(rng):
    from naive import forward
    for hidden in HIDDEN:
        net = fastbp.Network([6, 8, 7, 4], hidden_activation=hidden, output="softmax",
                             dtype=np.float64, seed=1)
        X = rng.normal(size=(30, 6))
        _, A = forward(net.weights, net.biases, net.activations, X)
        np.testing.assert_allclose(net.predict_proba(X), A[-1], rtol=1e-13, atol=1e-15)
