"""Losses, fused with the output activation for numerical stability.

``output_delta`` starts from the output layer's pre-activations Z (logits), so it can use
log-sum-exp for softmax + cross-entropy and softplus for logistic + binary cross-entropy, and
never takes the log of a probability that rounded to 0.

Per sample (row) r, with targets y and outputs p = f(z):

- squared_error:        L_r = 1/2 sum_j (p_j - y_j)**2,             dL/dz = (p - y) f'(z)
- binary_cross_entropy: L_r = -sum_j y_j log p_j + (1-y_j) log(1-p_j), dL/dz = p - y (logistic)
- cross_entropy:        L_r = -sum_j y_j log softmax(z)_j,          dL/dz = p sum(y) - y (softmax)

A batch's loss is the (sample-weighted) mean of L_r; its gradient is the same mean of dL/dz,
which is why each row of the delta is scaled by ``w_r * inv_norm``.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import activation_value, derivative_from_output
from .mathfn import exp, logistic
from .codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY


@njit(**JIT)
def output_delta(Z, Y, w, inv_norm, act, loss, write_delta):
    """Loss of a batch from its logits ``Z`` (rows, n_out) and targets ``Y``.

    Returns sum_r w_r L_r (w_r = 1 when ``w`` is empty).  With ``write_delta`` the block ``Z``
    is overwritten by the batch-mean gradient dLoss/dZ, i.e. the output delta, each row scaled
    by ``w_r * inv_norm``; otherwise ``Z`` is left unchanged.
    """
    rows, n = Z.shape
    weighted = w.shape[0] > 0
    total = 0.0
    for r in range(rows):
        wr = w[r] if weighted else 1.0
        c = wr * inv_norm
        lr = 0.0
        if loss == CROSS_ENTROPY:  # softmax output
            m = Z[r, 0]
            for j in range(1, n):
                m = max(m, Z[r, j])
            s = 0.0
            yz = 0.0
            ysum = 0.0
            for j in range(n):
                s += exp(Z[r, j] - m)
                yz += Y[r, j] * (Z[r, j] - m)
                ysum += Y[r, j]
            lr = ysum * np.log(s) - yz
            if write_delta:
                inv = ysum / s
                for j in range(n):
                    Z[r, j] = c * (exp(Z[r, j] - m) * inv - Y[r, j])
        elif loss == BINARY_CROSS_ENTROPY:  # logistic output
            for j in range(n):
                z = Z[r, j]
                y = Y[r, j]
                # -[y log p + (1-y) log(1-p)] = softplus(z) - y z
                lr += max(z, 0.0) - y * z + np.log1p(exp(-abs(z)))
                if write_delta:
                    Z[r, j] = c * (logistic(z) - y)
        else:  # squared error, any element-wise output activation
            for j in range(n):
                a = activation_value(Z[r, j], act)
                d = a - Y[r, j]
                lr += 0.5 * d * d
                if write_delta:
                    Z[r, j] = c * d * derivative_from_output(a, act)
        total += wr * lr
    return total

