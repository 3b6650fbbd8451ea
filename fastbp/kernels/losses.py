"""Losses, fused with the output activation for numerical stability.

``output_delta`` starts from the output layer's pre-activations z (logits), so it can use
log-sum-exp for softmax + cross-entropy and softplus for logistic + binary cross-entropy, and
never takes the log of a probability that rounded to 0.

Per sample (row) r, with targets y and outputs p = f(z):

- squared_error:        L_r = 1/2 sum_j (p_j - y_j)**2,             dL/dz = (p - y) f'(z)
- binary_cross_entropy: L_r = -sum_j y_j log p_j + (1-y_j) log(1-p_j), dL/dz = p - y (logistic)
- cross_entropy:        L_r = -sum_j y_j log softmax(z)_j,          dL/dz = p sum(y) - y (softmax)
- poisson:              L_r = sum_j p_j - y_j z_j + y_j log y_j - y_j, dL/dz = p - y (exp output,
                        p = e^z: half the Poisson deviance, scikit-learn's MLPRegressor loss)
- absolute_error:       L_r = sum_j |p_j - y_j|,                    dL/dz = sign(p - y) f'(z)
- huber:                L_r = sum_j h(p_j - y_j), h(d) = d**2/2 for |d| <= e, else
                        e (|d| - e/2);                              dL/dz = clip(d, -e, e) f'(z)

The huber threshold e reaches the kernels in the layer table (the EPS column of the output
layer's dense row, :func:`loss_param`), so changing it never recompiles anything.

A batch's loss is the (sample-weighted) mean of L_r; its gradient is the same mean of dL/dz,
which is why each row of the delta is scaled by ``w_r * inv_norm``.
"""
import numpy as np
from numba import njit

from .._config import JIT
from ..registry import ABSOLUTE_ERROR, BINARY_CROSS_ENTROPY, CROSS_ENTROPY, HUBER, POISSON
from .activations import U, derivative, value
from .codes import DENSE, EPS, KIND
from .mathfn import bits_to_float, exp, logistic


@njit(**JIT)
def loss_param(spec):
    """The loss's parameter (huber's epsilon): the EPS column of the output layer's dense
    row (0 for losses without one)."""
    l = spec.shape[0] - 1
    while l > 0 and spec[l, KIND] != DENSE:
        l -= 1
    return bits_to_float(spec[l, EPS])


@njit(**JIT)
def output_delta(z, zo, y, yo, w, wo, rows, n, inv_norm, act, loss, write_delta, param):
    """Loss of ``rows`` rows of logits ``z[zo:]`` against targets ``y[yo:]`` (n per row);
    ``param`` is the loss's parameter (:func:`loss_param`).

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
        elif loss == POISSON:  # exp output: log link
            for j in range(n):
                v = z[zr + U(j)]
                t = y[yr + U(j)]
                p = exp(v)
                lr += p - t * v + (t * np.log(t) - t if t > 0 else 0.0)
                if write_delta:
                    z[zr + U(j)] = c * (p - t)
        elif loss == ABSOLUTE_ERROR:  # any element-wise output activation
            for j in range(n):
                zj = z[zr + U(j)]
                a = value(zj, act)
                d = a - y[yr + U(j)]
                lr += abs(d)
                if write_delta:
                    s = z.dtype.type(1.0 if d > 0 else (-1.0 if d < 0 else 0.0))
                    z[zr + U(j)] = c * s * derivative(zj, a, act)
        elif loss == HUBER:  # any element-wise output activation
            e = z.dtype.type(param)
            for j in range(n):
                zj = z[zr + U(j)]
                a = value(zj, act)
                d = a - y[yr + U(j)]
                ad = abs(d)
                lr += 0.5 * d * d if ad <= e else e * (ad - 0.5 * e)
                if write_delta:
                    g = min(max(d, -e), e)
                    z[zr + U(j)] = c * g * derivative(zj, a, act)
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
