"""Batch normalization and layer normalization of a dense layer's pre-activations.

Ioffe & Szegedy's placement: linear, normalize, scale and shift, activation.  The norm row
reads the dense row's block z (rows x n) and writes y = scale * x_hat + shift, with

    batch norm:  x_hat[r, j] = (z[r, j] - mean_j) / sqrt(var_j + eps)   (over the batch)
    layer norm:  x_hat[r, j] = (z[r, j] - mean_r) / sqrt(var_r + eps)   (over the units)

(biased variances, as PyTorch).  In training mode batch norm uses the batch's statistics and
(mode TRAIN) updates the running ones, PyTorch's way: running = (1 - momentum) running +
momentum * batch, with the *unbiased* batch variance (not from a 1-row batch).  In EVAL mode
it uses the running statistics, an affine map per unit.  Layer norm is the same in both
modes.

The forward pass overwrites z with x_hat (the dense row's backward needs only its own input,
never its output), and keeps 1/sqrt(var + eps) in the workspace's ``stats`` block, so the
backward pass needs nothing else:

    grad scale_j = sum delta * x_hat,  grad shift_j = sum delta,  g = delta * scale
    batch norm (train): dz = inv_std / N * (N g - sum_r g - x_hat sum_r g x_hat)
    layer norm:         dz = inv_std / n * (n g - sum_j g - x_hat sum_j g x_hat)
    batch norm (eval):  dz = g * inv_std

``stats`` block of a norm row: ``stats[rows * T_OFF:]``, 2n values for batch norm (per unit:
inv_std, then the mean), 2 per row for layer norm.
"""
import numpy as np
from numba import njit

from ..._config import JIT, JIT_INLINE
from ..activations import U
from ..codes import (A_OFF, B_OFF, BATCH_NORM, EPS, EVAL, MOMENTUM, N_OUT, S_OFF, T_OFF,
                     TRAIN, W_OFF)
from ..mathfn import bits_to_float


@njit(**JIT_INLINE)
def _offsets(spec, l, rows, ao):
    """Row ``l``'s units and its (unsigned) offsets: scales, shifts, its block of ``acts``,
    its statistics block, the input block."""
    return (spec[l, N_OUT], U(spec[l, W_OFF]), U(spec[l, B_OFF]), U(rows * spec[l, A_OFF]),
            U(rows * spec[l, T_OFF]), U(ao))


@njit(**JIT)
def forward(a, ao, params, bufs, spec, l, acts, stats, rows, mode):
    """Normalize the block ``a[ao:ao+rows*n]`` (overwritten by x_hat) into row ``l``'s block
    of ``acts`` (before its activation)."""
    n, g0, b0, yo, so, xo = _offsets(spec, l, rows, ao)
    eps = bits_to_float(spec[l, EPS])
    dt = params.dtype.type
    zero = dt(0)
    if spec[l, 0] == BATCH_NORM:
        if mode == EVAL:  # running statistics: x_hat = (z - mean) inv_std
            r0 = U(spec[l, S_OFF])
            for j in range(n):
                stats[so + U(j)] = dt(1.0 / np.sqrt(bufs[r0 + U(n + j)] + eps))
                stats[so + U(n + j)] = bufs[r0 + U(j)]
        else:
            inv_rows = dt(1.0 / rows)
            for j in range(n):
                stats[so + U(j)] = zero
                stats[so + U(n + j)] = zero
            for r in range(rows):  # means
                x = xo + U(r * n)
                for j in range(n):
                    stats[so + U(n + j)] += a[x + U(j)]
            for j in range(n):
                stats[so + U(n + j)] *= inv_rows
            for r in range(rows):  # biased variances
                x = xo + U(r * n)
                for j in range(n):
                    d = a[x + U(j)] - stats[so + U(n + j)]
                    stats[so + U(j)] += d * d
            # a 1-row batch (the last of an epoch whose size leaves 1 over) has no variance
            # and its mean is one sample: it must not move the running statistics (it used
            # to move the mean alone, by momentum times that sample)
            if mode == TRAIN and rows > 1:
                m = bits_to_float(spec[l, MOMENTUM])
                r0 = U(spec[l, S_OFF])
                unbias = rows / (rows - 1.0)
                for j in range(n):
                    var = stats[so + U(j)] * inv_rows
                    bufs[r0 + U(j)] = dt((1.0 - m) * bufs[r0 + U(j)]
                                         + m * stats[so + U(n + j)])
                    bufs[r0 + U(n + j)] = dt((1.0 - m) * bufs[r0 + U(n + j)]
                                             + m * var * unbias)
            for j in range(n):
                stats[so + U(j)] = dt(1.0 / np.sqrt(stats[so + U(j)] * inv_rows + eps))
        for r in range(rows):
            x = xo + U(r * n)
            y = yo + U(r * n)
            for j in range(n):
                xh = (a[x + U(j)] - stats[so + U(n + j)]) * stats[so + U(j)]
                a[x + U(j)] = xh
                acts[y + U(j)] = params[g0 + U(j)] * xh + params[b0 + U(j)]
    else:  # layer norm, over the units of each row
        inv_n = dt(1.0 / n)
        for r in range(rows):
            x = xo + U(r * n)
            y = yo + U(r * n)
            mean = zero
            for j in range(n):
                mean += a[x + U(j)]
            mean *= inv_n
            var = zero
            for j in range(n):
                d = a[x + U(j)] - mean
                var += d * d
            inv_std = dt(1.0 / np.sqrt(var * inv_n + eps))
            stats[so + U(2 * r)] = inv_std
            stats[so + U(2 * r + 1)] = mean
            for j in range(n):
                xh = (a[x + U(j)] - mean) * inv_std
                a[x + U(j)] = xh
                acts[y + U(j)] = params[g0 + U(j)] * xh + params[b0 + U(j)]


@njit(**JIT)
def backward(a, ao, params, grad, spec, l, acts, tmp, stats, rows, mode):
    """Gradients of row ``l``'s scale and shift from its delta (its block of ``acts``) and
    x_hat (``a[ao:]``); dLoss/dz of the dense row before goes to ``tmp[:rows*n]``."""
    n, g0, b0, do, so, xo = _offsets(spec, l, rows, ao)
    dt = params.dtype.type
    zero = dt(0)
    for j in range(n):
        grad[g0 + U(j)] = zero
        grad[b0 + U(j)] = zero
    for r in range(rows):
        x = xo + U(r * n)
        d = do + U(r * n)
        for j in range(n):
            dj = acts[d + U(j)]
            grad[g0 + U(j)] += dj * a[x + U(j)]
            grad[b0 + U(j)] += dj
    if spec[l, 0] == BATCH_NORM:
        if mode == EVAL:
            for r in range(rows):
                d = do + U(r * n)
                t = U(r * n)
                for j in range(n):
                    tmp[t + U(j)] = acts[d + U(j)] * params[g0 + U(j)] * stats[so + U(j)]
            return
        # sum_r g = scale * grad shift, sum_r g x_hat = scale * grad scale
        inv_rows = dt(1.0 / rows)
        for r in range(rows):
            x = xo + U(r * n)
            d = do + U(r * n)
            t = U(r * n)
            for j in range(n):
                gam = params[g0 + U(j)]
                tmp[t + U(j)] = stats[so + U(j)] * gam * (
                    acts[d + U(j)] - (grad[b0 + U(j)] + a[x + U(j)] * grad[g0 + U(j)])
                    * inv_rows)
    else:
        inv_n = dt(1.0 / n)
        for r in range(rows):
            x = xo + U(r * n)
            d = do + U(r * n)
            t = U(r * n)
            s1 = zero
            s2 = zero
            for j in range(n):
                g = acts[d + U(j)] * params[g0 + U(j)]
                s1 += g
                s2 += g * a[x + U(j)]
            s1 *= inv_n
            s2 *= inv_n
            inv_std = stats[so + U(2 * r)]
            for j in range(n):
                g = acts[d + U(j)] * params[g0 + U(j)]
                tmp[t + U(j)] = inv_std * (g - s1 - a[x + U(j)] * s2)
