"""The kernels' public face: functions a user's own ``@njit`` code can call.

A network is handed over as three values (see :func:`network_arrays`): the flat parameter
vector ``params`` (float32 or float64), the int64 layer table ``spec`` and the integer loss
code.  Everything here works on C-contiguous 2-D arrays of the parameters' dtype and may be
called from nopython code as often as needed, e.g. to evaluate thousands of parameter vectors
in an evolutionary or reinforcement-learning loop::

    from numba import njit
    import fastbp
    from fastbp.kernels import mean_loss, network_arrays

    @njit
    def best_of(population, X, Y, spec, loss):
        losses = np.empty(population.shape[0])
        for i in range(population.shape[0]):
            losses[i] = mean_loss(X, Y, population[i], spec, loss)
        return losses.argmin()

    params, spec, loss = network_arrays(net)

These functions allocate their scratch buffers per call (a few kilobytes for small
networks); the training loop's own kernels (:mod:`.training`) take buffers from the caller.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .._config import JIT
from .codes import A_OFF, N_IN, N_OUT
from .training import all_finite, evaluate, loss_and_gradient, predict_into

#: what :func:`network_arrays` returns
NetworkArrays = namedtuple("NetworkArrays", ["params", "spec", "loss"])

_CHUNK = 256


def network_arrays(net):
    """The arrays a kernel needs to run ``net``: ``(params, spec, loss)``.

    ``params`` is the network's own flat vector (not a copy: a kernel that writes it changes
    the network), ``spec`` its int64 layer table and ``loss`` its loss code
    (:mod:`fastbp.kernels.codes`).
    """
    return NetworkArrays(net.params, net.layout.spec, int(net.loss_code))


@njit(**JIT)
def _check(X, params, spec):
    if X.shape[1] != spec[0, N_IN]:
        raise ValueError("X has the wrong number of features for this network")
    if not all_finite(X):
        raise ValueError("X contains NaN or infinity")


@njit(**JIT)
def predict_proba(X, params, spec):
    """Output activations (N, n_out) of the network ``(params, spec)`` for the rows of X."""
    _check(X, params, spec)
    out = np.empty((X.shape[0], spec[spec.shape[0] - 1, N_OUT]), dtype=params.dtype)
    predict_into(X, params, spec, out)
    return out


@njit(**JIT)
def mean_loss(X, Y, params, spec, loss):
    """Mean loss over (X, Y), Y a (N, n_out) target matrix (one-hot for classes)."""
    _check(X, params, spec)
    last = spec.shape[0] - 1
    rows = min(X.shape[0], _CHUNK)
    acts = np.empty(rows * (spec[last, A_OFF] + spec[last, N_OUT]), dtype=params.dtype)
    out = np.empty(Y.shape, dtype=params.dtype)
    return evaluate(X, Y, np.empty(0, dtype=params.dtype), params, spec, loss, out, acts)


@njit(**JIT)
def gradient(X, Y, params, spec, loss, grad):
    """Mean loss over (X, Y); its gradient goes to ``grad`` (the layout of ``params``)."""
    _check(X, params, spec)
    last = spec.shape[0] - 1
    rows = min(X.shape[0], _CHUNK)
    width = spec[last, A_OFF] + spec[last, N_OUT]
    hidden = 1
    for l in range(1, spec.shape[0]):
        hidden = max(hidden, spec[l, N_IN])
    acts = np.empty(rows * width, dtype=params.dtype)
    tmp = np.empty(rows * hidden, dtype=params.dtype)
    spare = np.empty_like(grad) if X.shape[0] > rows else grad
    return loss_and_gradient(X, Y, np.empty(0, dtype=params.dtype), params, grad, spare, spec,
                             loss, 0.0, acts, tmp, rows)
