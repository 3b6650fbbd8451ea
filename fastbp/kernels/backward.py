"""The backward pass: delta propagation from the output layer to the first.

On entry the output layer's block of ``acts`` holds the output delta dLoss/dZ (written by
:func:`losses.output_delta`).  For each layer l, from the last to the first:

    grad W_l = A_{l-1}^T @ delta_l          grad b_l = column sums of delta_l
    delta_{l-1} = (delta_l @ W_l^T) * f'(A_{l-1})

and delta_{l-1} overwrites A_{l-1}'s block once A_{l-1} is no longer needed, so the whole pass
needs one extra (rows, widest layer) buffer ``tmp`` and nothing else.  The input layer gets no
delta.  The gradient is *written* (not accumulated) into ``grad``, in the parameter layout.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import backprop_activation, derivative_from_output
from .codes import ACT, N_IN
from .forward import BLAS_MIN_MACS, layer_biases, layer_block, layer_weights


@njit(**JIT)
def bias_gradient(D, gb):
    rows, n = D.shape
    for j in range(n):
        gb[j] = D[0, j]
    for r in range(1, rows):
        for j in range(n):
            gb[j] += D[r, j]


@njit(**JIT)
def undo_dropout(G, A, M):
    """Route the gradient through inverted dropout: G *= M and A /= M (A = 0 where dropped),
    so that the activation derivative sees the activations before dropout."""
    rows, n = A.shape
    for r in range(rows):
        for j in range(n):
            m = M[r, j]
            G[r, j] *= m
            A[r, j] = A[r, j] / m if m != 0.0 else 0.0


@njit(**JIT)
def backward(x, params, grad, spec, acts, tmp, rows, dropout, masks):
    """Gradient of the batch loss w.r.t. every parameter, written into ``grad``."""
    n_layers = spec.shape[0]
    use_dropout = dropout.shape[0] > 0
    for l in range(n_layers - 1, -1, -1):
        D = layer_block(acts, spec, l, rows)
        W = layer_weights(params, spec, l)
        gW = layer_weights(grad, spec, l)
        bias_gradient(D, layer_biases(grad, spec, l))
        n_in, n_out = W.shape
        if l == 0:
            Aprev = x
        else:
            Aprev = layer_block(acts, spec, l - 1, rows)
        dropped = l > 0 and use_dropout and dropout[l - 1] > 0.0
        if rows * n_in * n_out >= BLAS_MIN_MACS or dropped:
            np.dot(Aprev.T, D, gW)
            if l > 0:
                G = tmp[:rows * n_in].reshape((rows, n_in))
                np.dot(D, W.T, G)
                if dropped:
                    undo_dropout(G, Aprev, layer_block(masks, spec, l - 1, rows))
                backprop_activation(G, Aprev, spec[l - 1, ACT])
        else:
            # one sweep over W and gW per row: gradient, delta and derivative together
            code = spec[l - 1, ACT] if l > 0 else 0
            zero = W.dtype.type(0)
            for r in range(rows):
                for i in range(n_in):
                    a = Aprev[r, i]
                    if r == 0:
                        for j in range(n_out):
                            gW[i, j] = a * D[r, j]
                    else:
                        for j in range(n_out):
                            gW[i, j] += a * D[r, j]
                    if l > 0:
                        s = zero
                        for j in range(n_out):
                            s += W[i, j] * D[r, j]
                        Aprev[r, i] = s * derivative_from_output(a, code)
