"""The dense forward pass: Z = A_prev @ W + b, then the activation, layer after layer.

Every layer writes its block of one flat activation buffer (``acts``); the block of layer l
for a batch of ``rows`` rows is ``acts[rows*A_OFF : rows*(A_OFF + N_OUT)]`` viewed as
(rows, N_OUT).  Weights and biases are views into the flat parameter vector, as described by
the ``spec`` table (see :mod:`fastbp.kernels.codes`).
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import activate
from .codes import A_OFF, ACT, B_OFF, N_IN, N_OUT, W_OFF
from .rng import uniform

#: multiply-adds (rows * n_in * n_out) from which a layer's products go to BLAS; below it the
#: hand-written loops, which avoid BLAS's call and packing overhead, are faster (measured:
#: benchmarks/ and the closing notes of the speed issue).
BLAS_MIN_MACS = 1 << 16


@njit(**JIT)
def layer_weights(flat, spec, l):
    """The (N_IN, N_OUT) weight matrix of layer ``l``: a view into ``flat``."""
    n_in = spec[l, N_IN]
    n_out = spec[l, N_OUT]
    w0 = spec[l, W_OFF]
    return flat[w0:w0 + n_in * n_out].reshape((n_in, n_out))


@njit(**JIT)
def layer_biases(flat, spec, l):
    """The N_OUT biases of layer ``l``: a view into ``flat``."""
    b0 = spec[l, B_OFF]
    return flat[b0:b0 + spec[l, N_OUT]]


@njit(**JIT)
def layer_block(buf, spec, l, rows):
    """Layer ``l``'s (rows, N_OUT) block of an activation-shaped buffer."""
    n = spec[l, N_OUT]
    o = rows * spec[l, A_OFF]
    return buf[o:o + rows * n].reshape((rows, n))


@njit(**JIT)
def affine(A, W, b, Z):
    """Z = A @ W + b for a block of rows (BLAS for big products, loops for small ones)."""
    rows, n_in = A.shape
    n_out = W.shape[1]
    if rows * n_in * n_out >= BLAS_MIN_MACS:
        np.dot(A, W, Z)
        for r in range(rows):
            for j in range(n_out):
                Z[r, j] += b[j]
    else:
        for r in range(rows):
            for j in range(n_out):
                Z[r, j] = b[j]
            for i in range(n_in):
                a = A[r, i]
                if a != 0.0:  # relu/dropout zeros cost nothing
                    for j in range(n_out):
                        Z[r, j] += a * W[i, j]


@njit(**JIT)
def apply_dropout(A, M, rate, rng):
    """Inverted dropout: zero each entry with probability ``rate``, scale the rest by
    1/(1-rate); the factors go to ``M`` for the backward pass."""
    rows, n = A.shape
    keep = 1.0 - rate
    scale = 1.0 / keep
    for r in range(rows):
        for j in range(n):
            m = scale if uniform(rng) < keep else 0.0
            M[r, j] = m
            A[r, j] *= m


@njit(**JIT)
def forward(x, params, spec, acts, rows, activate_output, dropout, masks, rng):
    """Forward pass of ``rows`` rows of ``x`` through every layer.

    Leaves each hidden layer's activations in ``acts``; the output layer's block holds the
    output activations when ``activate_output`` is true and the logits (pre-activations)
    otherwise, which is what the fused loss (:func:`losses.output_delta`) wants.
    ``dropout[l]`` > 0 applies inverted dropout to hidden layer l's output, drawing from
    ``rng`` and recording the factors in ``masks`` (same layout as ``acts``); pass an empty
    ``dropout`` to disable it.
    """
    n_layers = spec.shape[0]
    use_dropout = dropout.shape[0] > 0
    A = x
    for l in range(n_layers):
        Z = layer_block(acts, spec, l, rows)
        affine(A, layer_weights(params, spec, l), layer_biases(params, spec, l), Z)
        if l < n_layers - 1:
            activate(Z, spec[l, ACT])
            if use_dropout and dropout[l] > 0.0:
                apply_dropout(Z, layer_block(masks, spec, l, rows), dropout[l], rng)
        elif activate_output:
            activate(Z, spec[l, ACT])
        A = Z
