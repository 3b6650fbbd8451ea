"""Activation functions and their derivatives, in place on contiguous runs of a flat buffer.

A layer's block of the activation buffer is ``rows * n_units`` contiguous values, so the
element-wise activations are one flat loop (vectorized by LLVM); softmax works row by row.
Derivatives are expressed through the activation's *output* ``a`` (tanh: 1 - a**2, logistic:
a (1 - a), relu: a > 0), so the backward pass needs only the stored activations, never the
pre-activations.  Softmax appears only as an output layer, where it is fused with the
cross-entropy loss (see :mod:`fastbp.kernels.losses`).

Indexing convention for every loop kernel: offsets into flat arrays are converted to unsigned
integers (``U``) and the loops index ``buf[o + U(k)]``.  With a signed index of unknown sign,
Numba emits a negative-index wraparound check that keeps LLVM from vectorizing; with slices
instead of offsets, every slice costs reference-count updates (atomic instructions) that
dominated the time of online training.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .codes import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU, SOFTMAX, TANH
from .mathfn import exp, logistic, tanh

U = np.uint64


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
def activate(buf, off, count, width, code):
    """Replace ``buf[off:off+count]`` (rows of ``width`` units) by its activation."""
    o = U(off)
    zero = buf.dtype.type(0)
    if code == IDENTITY:
        return
    if code == LOGISTIC:
        for k in range(count):
            buf[o + U(k)] = logistic(buf[o + U(k)])
    elif code == TANH:
        for k in range(count):
            buf[o + U(k)] = tanh(buf[o + U(k)])
    elif code == RELU:
        for k in range(count):
            buf[o + U(k)] = max(buf[o + U(k)], zero)
    elif code == LEAKY_RELU:
        slope = buf.dtype.type(LEAKY_SLOPE)
        for k in range(count):
            z = buf[o + U(k)]
            buf[o + U(k)] = z if z > zero else slope * z
    elif code == SOFTMAX:
        for r in range(0, count, width):
            row = o + U(r)
            m = buf[row]
            for k in range(1, width):
                m = max(m, buf[row + U(k)])
            s = zero
            for k in range(width):
                e = exp(buf[row + U(k)] - m)
                buf[row + U(k)] = e
                s += e
            inv = 1 / s
            for k in range(width):
                buf[row + U(k)] *= inv


@njit(**JIT)
def backprop_activation(g, go, a, ao, count, code):
    """a[ao+k] <- g[go+k] * f'(a[ao+k]) for k < count, for a hidden layer.

    ``g`` holds dLoss/dA (the next layer's delta times its weights); ``a`` holds the layer's
    activations on entry and its delta dLoss/dZ on return, so the backward pass reuses the
    activation buffer instead of keeping a second one.
    """
    gb = U(go)
    ab = U(ao)
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    if code == IDENTITY:
        for k in range(count):
            a[ab + U(k)] = g[gb + U(k)]
    elif code == LOGISTIC:
        for k in range(count):
            v = a[ab + U(k)]
            a[ab + U(k)] = g[gb + U(k)] * (v * (one - v))
    elif code == TANH:
        for k in range(count):
            v = a[ab + U(k)]
            a[ab + U(k)] = g[gb + U(k)] * (one - v * v)
    elif code == RELU:
        for k in range(count):
            a[ab + U(k)] = g[gb + U(k)] if a[ab + U(k)] > zero else zero
    elif code == LEAKY_RELU:
        slope = a.dtype.type(LEAKY_SLOPE)
        for k in range(count):
            v = g[gb + U(k)]
            a[ab + U(k)] = v if a[ab + U(k)] > zero else slope * v


@njit(**JIT)
def undo_dropout(g, go, a, ao, m, count):
    """Route the gradient through inverted dropout: g *= m and a /= m (0 where dropped), so
    that :func:`backprop_activation` sees the activations from before dropout."""
    gb = U(go)
    ab = U(ao)
    zero = a.dtype.type(0)
    for k in range(count):
        f = m[ab + U(k)]
        g[gb + U(k)] *= f
        a[ab + U(k)] = a[ab + U(k)] / f if f != zero else zero
