"""Losses, fused with the output activation for numerical stability.

``output_delta`` starts from the output layer's pre-activations z (logits), so it can use
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
from ..registry import BINARY_CROSS_ENTROPY, CROSS_ENTROPY
from .activations import U, derivative, value
from .mathfn import exp, logistic


@njit(**JIT)
def output_delta(z, zo, y, yo, w, wo, rows, n, inv_norm, act, loss, write_delta):
    """Loss of ``rows`` rows of logits ``z[zo:]`` against targets ``y[yo:]`` (n per row).

    Returns sum_r w_r L_r, with w_r = ``w[wo + r]`` (1 when ``w`` is empty).  With
    ``write_delta`` the logits are overwritten by the batch-mean gradient dLoss/dz (the
    output delta), each row scaled by ``w_r * inv_norm``; otherwise they are left unchanged.
    """
    weighted = w.shape[0] > 0
    total = 0.0
    for r in range(rows):
        zr = U(zo + r * n)
        yr = U(yo + r * n)
        wr = np.float64(w[U(wo + r)]) if weighted else 1.0
        c = z.dtype.type(wr * inv_norm)
        lr = 0.0
        if loss == CROSS_ENTROPY:  # softmax output
            m = z[zr]
            for j in range(1, n):
                m = max(m, z[zr + U(j)])
            s = 0.0
            yz = 0.0
            ysum = 0.0
            for j in range(n):
                zj = z[zr + U(j)]
                s += exp(zj - m)
                yz += y[yr + U(j)] * (zj - m)
                ysum += y[yr + U(j)]
            lr = ysum * np.log(s) - yz
            if write_delta:
                scale = z.dtype.type(ysum / s)
                for j in range(n):
                    z[zr + U(j)] = c * (exp(z[zr + U(j)] - m) * scale - y[yr + U(j)])
        elif loss == BINARY_CROSS_ENTROPY:  # logistic output
            for j in range(n):
                v = z[zr + U(j)]
                t = y[yr + U(j)]
                # -[t log p + (1-t) log(1-p)] = softplus(v) - t v
                lr += max(v, 0.0) - t * v + np.log1p(exp(-abs(v)))
                if write_delta:
                    z[zr + U(j)] = c * (logistic(v) - t)
        else:  # squared error, any element-wise output activation
            for j in range(n):
                zj = z[zr + U(j)]
                a = value(zj, act)
                d = a - y[yr + U(j)]
                lr += 0.5 * d * d
                if write_delta:
                    z[zr + U(j)] = c * d * derivative(zj, a, act)
        total += wr * lr
    return total
