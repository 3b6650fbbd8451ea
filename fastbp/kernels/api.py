"""The kernels' public face: functions a user's own ``@njit`` code can call.

A network is handed over as four values (see :func:`network_arrays`): the flat parameter
vector ``params`` (float32 or float64), the flat buffer vector ``buffers`` (batch norm's
running statistics; empty without), the int64 layer table ``spec`` and the integer loss code.
Everything here works on C-contiguous 2-D arrays of the parameters' dtype and may be called
from nopython code as often as needed, e.g. to evaluate thousands of parameter vectors in an
evolutionary or reinforcement-learning loop::

    from numba import njit
    import fastbp
    from fastbp.kernels import mean_loss, network_arrays

    @njit
    def best_of(population, X, Y, buffers, spec, loss):
        losses = np.empty(population.shape[0])
        for i in range(population.shape[0]):
            losses[i] = mean_loss(X, Y, population[i], buffers, spec, loss)
        return losses.argmin()

    params, buffers, spec, loss = network_arrays(net)

Every function checks the shapes it is given against ``spec`` and raises ``ValueError``
naming the mismatch; normalization uses the running statistics (evaluation mode).  These
functions allocate their scratch buffers per call (a few kilobytes for small networks); the
training loop's own kernels (:mod:`.epoch`) take buffers from the caller.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .._config import JIT, PREDICT_CHUNK
from ..registry import CROSS_ENTROPY, SQUARED_ERROR
from .codes import EVAL, N_IN, N_OUT, SPEC_COLUMNS
from .epoch import (eval_buffers, evaluate, finish_gradient, gradient_sums,
                    predict_into_buffered)

#: what :func:`network_arrays` returns
NetworkArrays = namedtuple("NetworkArrays", ["params", "buffers", "spec", "loss"])


def network_arrays(net):
    """The arrays a kernel needs to run ``net``: ``(params, buffers, spec, loss)``.

    ``params`` and ``buffers`` are the network's own flat vectors (not copies: a kernel that
    writes them changes the network), ``spec`` its int64 layer table and ``loss`` its loss
    code (:mod:`fastbp.registry`).
    """
    return NetworkArrays(net.params, net.buffers, net.layout.spec, int(net.loss_code))


@njit(**JIT)
def _check(X, params, spec):
    if spec.ndim != 2 or spec.shape[1] != SPEC_COLUMNS or spec.shape[0] < 1:
        raise ValueError("spec is not a fastbp layer table")
    if X.shape[1] != spec[0, N_IN]:
        raise ValueError("X has the wrong number of features for this network")
    if params.shape[0] < 1:
        raise ValueError("params is empty")


@njit(**JIT)
def _check_targets(X, Y, params, spec, loss):
    _check(X, params, spec)
    if Y.shape[0] != X.shape[0]:
        raise ValueError("X and Y have different numbers of rows")
    if Y.shape[1] != spec[spec.shape[0] - 1, N_OUT]:
        raise ValueError("Y has the wrong number of columns for this network")
    if loss < SQUARED_ERROR or loss > CROSS_ENTROPY:
        raise ValueError("unknown loss code")


@njit(**JIT)
def predict_proba(X, params, buffers, spec):
    """Output activations (N, n_out) of the network ``(params, buffers, spec)`` for the rows
    of X (a ValueError for NaN or infinite inputs)."""
    _check(X, params, spec)
    out = np.empty((X.shape[0], spec[spec.shape[0] - 1, N_OUT]), dtype=params.dtype)
    if not predict_into_buffered(X, params, buffers, spec, out):
        raise ValueError("X contains NaN or infinity")
    return out


@njit(**JIT)
def mean_loss(X, Y, params, buffers, spec, loss):
    """Mean loss over (X, Y), Y a (N, n_out) target matrix (one-hot for classes)."""
    _check_targets(X, Y, params, spec, loss)
    acts, stats = eval_buffers(spec, min(max(X.shape[0], 1), PREDICT_CHUNK), params.dtype)
    out = np.empty(Y.shape, dtype=params.dtype)
    return evaluate(X, Y, np.empty(0, dtype=params.dtype), params, buffers, spec, loss, out,
                    acts, stats)


@njit(**JIT)
def gradient(X, Y, params, buffers, spec, loss, grad):
    """Mean loss over (X, Y); its gradient goes to ``grad`` (the layout of ``params``).
    Normalization layers use their running statistics (as prediction does)."""
    _check_targets(X, Y, params, spec, loss)
    if grad.shape[0] != params.shape[0]:
        raise ValueError("grad must have as many entries as params")
    rows = min(max(X.shape[0], 1), PREDICT_CHUNK)
    acts, stats = eval_buffers(spec, rows, params.dtype)
    hidden = 1
    for l in range(1, spec.shape[0]):
        hidden = max(hidden, spec[l, N_IN])
    tmp = np.empty(rows * hidden, dtype=params.dtype)
    spare = np.empty_like(grad) if X.shape[0] > rows else grad
    no = np.empty(0, dtype=params.dtype)
    none = np.empty(0, dtype=np.int64)
    xb = np.empty((0, X.shape[1]), dtype=params.dtype)
    yb = np.empty((0, Y.shape[1]), dtype=params.dtype)
    loss_sum, total_w = gradient_sums(X, Y, no, none, 0, X.shape[0], params, buffers, grad,
                                      spare, spec, loss, acts, no, stats, tmp, rows, EVAL,
                                      no, acts, np.uint64(0), 0, 0, xb, yb, no)
    return finish_gradient(params, grad, spec, loss_sum, total_w, 0.0)
