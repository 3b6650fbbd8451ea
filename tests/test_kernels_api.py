"""The public kernels, called from a user's own @njit code."""
import numpy as np
import pytest
from numba import njit

import fastbp
from fastbp.kernels import gradient, mean_loss, network_arrays, predict_proba
from fastbp.kernels.codes import N_OUT


@njit
def user_predict_all(population, X, buffers, spec):
    """A user's loop: outputs of many parameter vectors for the same inputs."""
    out = np.empty((population.shape[0], X.shape[0], spec[spec.shape[0] - 1, N_OUT]),
                   dtype=population.dtype)
    for i in range(population.shape[0]):
        out[i] = predict_proba(X, population[i], buffers, spec)
    return out


@njit
def user_losses(population, X, Y, buffers, spec, loss):
    losses = np.empty(population.shape[0])
    for i in range(population.shape[0]):
        losses[i] = mean_loss(X, Y, population[i], buffers, spec, loss)
    return losses


@njit
def user_gradient(X, Y, params, buffers, spec, loss):
    grad = np.empty_like(params)
    value = gradient(X, Y, params, buffers, spec, loss, grad)
    return value, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_njit_code_gets_the_same_outputs_as_predict_proba(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(dtype)  # more rows than one kernel chunk
    nets = [fastbp.Network([6, 9, 4], hidden_activation="tanh", dtype=dtype, seed=s)
            for s in range(3)]
    params, buffers, spec, loss = network_arrays(nets[0])
    assert np.shares_memory(params, nets[0].params) and loss == nets[0].loss_code
    population = np.stack([n.params for n in nets])
    out = user_predict_all(population, X, buffers, spec)
    # the same kernel; BLAS may split the products over a different number of threads (fastbp
    # limits small products to one), which changes float32 rounding in the last bits only
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for i, net in enumerate(nets):
        np.testing.assert_allclose(out[i], net.predict_proba(X), rtol=tol, atol=tol)


def test_user_njit_losses_and_gradient_match_the_network():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, 40)
    Y = np.eye(3)[y]
    nets = [fastbp.Network([5, 7, 3], dtype=np.float64, seed=s) for s in range(4)]
    _, buffers, spec, loss = network_arrays(nets[0])
    losses = user_losses(np.stack([n.params for n in nets]), X, Y, buffers, spec, loss)
    np.testing.assert_allclose(losses, [n.evaluate(X, y) for n in nets], rtol=1e-12)
    value, grad = user_gradient(X, Y, nets[1].params, buffers, spec, loss)
    ref_value, ref_grad = nets[1].gradient(X, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_public_kernels_reject_bad_input_with_a_clear_error():
    net = fastbp.Network([3, 4, 2], dtype=np.float64, seed=0)
    params, buffers, spec, loss = network_arrays(net)
    with pytest.raises(ValueError, match="wrong number of features"):
        predict_proba(np.ones((2, 5)), params, buffers, spec)
    X = np.ones((2, 3))
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        predict_proba(X, params, buffers, spec)
    # Y shorter than X would read past its end: refused, as are bad codes and grad sizes
    grad = np.empty_like(params)
    with pytest.raises(ValueError, match="different numbers of rows"):
        gradient(np.ones((5, 3)), np.ones((2, 2)), params, buffers, spec, loss, grad)
    with pytest.raises(ValueError, match="columns"):
        mean_loss(np.ones((2, 3)), np.ones((2, 3)), params, buffers, spec, loss)
    with pytest.raises(ValueError, match="unknown loss code"):
        mean_loss(np.ones((2, 3)), np.ones((2, 2)), params, buffers, spec, 99)
    with pytest.raises(ValueError, match="grad must have"):
        gradient(np.ones((2, 3)), np.ones((2, 2)), params, buffers, spec, loss, grad[:3])
