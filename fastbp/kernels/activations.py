"""Activation functions and their derivatives, on 2-D blocks of a batch, in place.

Derivatives are expressed through the activation's *output* ``a`` (tanh: 1 - a**2, logistic:
a (1 - a), relu: a > 0), so the backward pass needs only the stored activations, never the
pre-activations.  Softmax appears only as an output layer, where it is fused with the
cross-entropy loss (see :mod:`fastbp.kernels.losses`).
"""
from numba import njit

from .._config import JIT
from .codes import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU, SOFTMAX, TANH
from .mathfn import exp, logistic, tanh


@njit(**JIT)
def activation_value(z, code):
    """f(z) for one value, for the element-wise activations (not softmax)."""
    if code == LOGISTIC:
        return logistic(z)
    if code == TANH:
        return tanh(z)
    if code == RELU:
        return max(z, 0.0)
    if code == LEAKY_RELU:
        return z if z > 0.0 else LEAKY_SLOPE * z
    return z


@njit(**JIT)
def activate(Z, code):
    """Replace every entry of the (rows, units) block ``Z`` by its activation."""
    rows, n = Z.shape
    if code == IDENTITY:
        return
    if code == LOGISTIC:
        for r in range(rows):
            for j in range(n):
                Z[r, j] = logistic(Z[r, j])
    elif code == TANH:
        for r in range(rows):
            for j in range(n):
                Z[r, j] = tanh(Z[r, j])
    elif code == RELU:
        for r in range(rows):
            for j in range(n):
                Z[r, j] = max(Z[r, j], 0.0)
    elif code == LEAKY_RELU:
        for r in range(rows):
            for j in range(n):
                z = Z[r, j]
                Z[r, j] = z if z > 0.0 else LEAKY_SLOPE * z
    elif code == SOFTMAX:
        for r in range(rows):
            m = Z[r, 0]
            for j in range(1, n):
                m = max(m, Z[r, j])
            s = 0.0
            for j in range(n):
                e = exp(Z[r, j] - m)
                Z[r, j] = e
                s += e
            inv = 1.0 / s
            for j in range(n):
                Z[r, j] *= inv


@njit(**JIT)
def derivative_from_output(a, code):
    """f'(z) written through a = f(z), for the element-wise activations."""
    if code == LOGISTIC:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return 1.0 if a > 0.0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if a > 0.0 else LEAKY_SLOPE
    return 1.0


@njit(**JIT)
def backprop_activation(G, A, code):
    """A <- G * f'(A), element-wise, for a hidden layer.

    ``G`` holds dLoss/dA (the next layer's delta times its weights); ``A`` holds the layer's
    activations on entry and its delta dLoss/dZ on return, so the backward pass reuses the
    activation buffer instead of keeping a second one.  ``G`` may be ``A`` itself.
    """
    rows, n = A.shape
    if code == IDENTITY:
        for r in range(rows):
            for j in range(n):
                A[r, j] = G[r, j]
    elif code == LOGISTIC:
        for r in range(rows):
            for j in range(n):
                a = A[r, j]
                A[r, j] = G[r, j] * (a * (1.0 - a))
    elif code == TANH:
        for r in range(rows):
            for j in range(n):
                a = A[r, j]
                A[r, j] = G[r, j] * (1.0 - a * a)
    elif code == RELU:
        for r in range(rows):
            for j in range(n):
                A[r, j] = G[r, j] if A[r, j] > 0.0 else 0.0
    elif code == LEAKY_RELU:
        for r in range(rows):
            for j in range(n):
                g = G[r, j]
                A[r, j] = g if A[r, j] > 0.0 else LEAKY_SLOPE * g
