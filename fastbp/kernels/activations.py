"""Activation functions: one value and one derivative per activation, and the loops over
the activation buffer that apply them.

To add an activation: register its name and traits in :mod:`fastbp.registry`, then give it a
branch in :func:`value` and one in :func:`derivative`, and its line in the two dispatch
tables (:func:`activate`, :func:`backprop_activation`) below (and a reference in
``tests/naive.py``).  Nothing else changes.

A layer's block of the activation buffer is ``rows * n_units`` contiguous values, so the
element-wise activations are one flat loop.  Each activation gets its own copy of that loop
(the dispatch tables), in which ``code`` is a constant: LLVM then drops the other branches of
:func:`value` and vectorizes the loop (with the code a run-time value inside the loop, as
measured, it stayed scalar: tanh's division was ``divss``, not ``vdivps``).  Softmax works row
by row and appears only as an output layer, fused with the cross-entropy loss (see
:mod:`fastbp.kernels.losses`).

:func:`derivative` gets both the pre-activation z and the output a = f(z).  Most derivatives
are written through a (tanh: 1 - a**2), so the backward pass needs only the stored
activations; activations registered with ``needs_pre`` (silu, gelu) read z, which the
forward pass then keeps in a second buffer (``pre``, same layout).

Indexing convention for every loop kernel: offsets into flat arrays are converted to unsigned
integers (``U``) and the loops index ``buf[o + U(k)]``.  With a signed index of unknown sign,
Numba emits a negative-index wraparound check that keeps LLVM from vectorizing; with slices
instead of offsets, every slice costs reference-count updates (atomic instructions) that
dominated the time of online training.
"""
import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE
from ..registry import (ELU, EXP, GELU, IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU,
                        SILU, SOFTMAX, SOFTPLUS, TANH)
from .mathfn import exp, like, logistic, tanh

U = np.uint64

_GELU_K = 0.7978845608028654   # sqrt(2 / pi)
_GELU_C = 0.044715


@njit(**JIT_INLINE)
def value(z, code):
    """f(z) for one value of an element-wise activation (not softmax)."""
    zero = like(z, 0.0)
    if code == LOGISTIC:
        return logistic(z)
    if code == TANH:
        return tanh(z)
    if code == RELU:
        return max(z, zero)
    if code == LEAKY_RELU:
        return z if z > zero else like(z, LEAKY_SLOPE) * z
    if code == ELU:  # alpha = 1; expm1: exp(z) - 1 cancels for small |z|
        return z if z > zero else like(z, np.expm1(z))
    if code == SOFTPLUS:  # log(1 + e^z), stable for both signs
        return max(z, zero) + np.log1p(exp(-abs(z)))
    if code == SILU:
        return z * logistic(z)
    if code == GELU:  # tanh approximation, PyTorch's approximate="tanh"
        # 0.5 z (1 + tanh u) = z logistic(2u): no cancellation in 1 + tanh u for u << 0;
        # below z = -10, |f| < 1e-36, and z times the clamped exp's floor would not be
        if z < like(z, -10.0):
            return zero
        return z * logistic(like(z, 2.0) * _gelu_u(z))
    if code == EXP:  # output only (the log link of the Poisson loss)
        return exp(z)
    return z


@njit(**JIT_INLINE)
def _gelu_u(z):
    """u = sqrt(2/pi) (z + 0.044715 z**3), the argument of GELU's tanh."""
    return like(z, _GELU_K) * (z + like(z, _GELU_C) * z * z * z)


@njit(**JIT_INLINE)
def derivative(z, a, code):
    """f'(z), from the pre-activation ``z`` and/or the output ``a`` = f(z).  Only
    activations registered with ``needs_pre`` may read ``z``; the others get ``z = a``."""
    zero = like(a, 0.0)
    one = like(a, 1.0)
    if code == LOGISTIC:
        return a * (one - a)
    if code == TANH:
        return one - a * a
    if code == RELU:
        return one if a > zero else zero
    if code == LEAKY_RELU:
        return one if a > zero else like(a, LEAKY_SLOPE)
    if code == ELU:  # e^z = a + 1 for z <= 0
        return one if a > zero else a + one
    if code == SOFTPLUS:  # logistic(z) = 1 - e^-a
        return -np.expm1(-a)
    if code == SILU:
        s = logistic(z)
        return s * (one + z * (one - s))
    if code == GELU:
        # 0.5 (1 + t) + 0.5 z (1 - t**2) u' with t = tanh u, written as s + 2 z u' s (1 - s)
        # with s = logistic(2u) and 1 - s = logistic(-2u): 1 - t**2 from a t that rounds near
        # +-1 is all rounding error, which z u' ~ z**3 magnified (float32: f'(100) was 1.03).
        # Beyond |z| = 10 the second term is below 1e-35: f' is 1 or 0.
        if abs(z) > like(z, 10.0):
            return one if z > zero else zero
        u2 = like(z, 2.0) * _gelu_u(z)
        s = logistic(u2)
        du = like(z, _GELU_K) * (one + like(z, 3.0 * _GELU_C) * z * z)
        return s + like(z, 2.0) * z * du * s * logistic(-u2)
    if code == EXP:
        return a
    return one


@njit(**JIT_INLINE)
def _activate(buf, o, count, code):
    for k in range(count):
        buf[o + U(k)] = value(buf[o + U(k)], code)


@njit(**JIT)
def activate(buf, off, count, width, code):
    """Replace ``buf[off:off+count]`` (rows of ``width`` units) by its activation."""
    o = U(off)
    if code == SOFTMAX:
        zero = buf.dtype.type(0)
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
    # the dispatch table: one loop per activation, with its code a constant
    elif code == LOGISTIC:
        _activate(buf, o, count, LOGISTIC)
    elif code == TANH:
        _activate(buf, o, count, TANH)
    elif code == RELU:
        _activate(buf, o, count, RELU)
    elif code == LEAKY_RELU:
        _activate(buf, o, count, LEAKY_RELU)
    elif code == ELU:
        _activate(buf, o, count, ELU)
    elif code == SOFTPLUS:
        _activate(buf, o, count, SOFTPLUS)
    elif code == SILU:
        _activate(buf, o, count, SILU)
    elif code == GELU:
        _activate(buf, o, count, GELU)
    elif code == EXP:
        _activate(buf, o, count, EXP)


@njit(**JIT)
def keep_pre(buf, pre, off, count):
    """Copy the pre-activations ``buf[off:off+count]`` to ``pre`` (same offsets), for the
    activations whose derivative needs them."""
    o = U(off)
    for k in range(count):
        pre[o + U(k)] = buf[o + U(k)]


@njit(**JIT_INLINE)
def _backprop(g, gb, a, ab, count, code):
    for k in range(count):
        v = a[ab + U(k)]
        a[ab + U(k)] = g[gb + U(k)] * derivative(v, v, code)


@njit(**JIT_INLINE)
def _backprop_pre(g, gb, a, ab, pre, count, code):
    # a separate loop for the needs_pre activations: with both loops behind a run-time test
    # of ``pre`` in one function, LLVM no longer vectorized the common one (measured 4x slower)
    for k in range(count):
        a[ab + U(k)] = g[gb + U(k)] * derivative(pre[ab + U(k)], a[ab + U(k)], code)


@njit(**JIT)
def backprop_activation(g, go, a, ao, pre, count, code):
    """a[ao+k] <- g[go+k] * f'(z[ao+k]) for k < count, for a hidden layer.

    ``g`` holds dLoss/dA (the next layer's delta times its weights); ``a`` holds the layer's
    activations on entry and its delta dLoss/dZ on return, so the backward pass reuses the
    activation buffer instead of keeping a second one.  ``pre`` holds the pre-activations
    (same offsets as ``a``) for the activations registered with ``needs_pre``.
    """
    gb = U(go)
    ab = U(ao)
    if code == IDENTITY:
        for k in range(count):
            a[ab + U(k)] = g[gb + U(k)]
    # the dispatch table, as in activate (needs_pre activations through _backprop_pre)
    elif code == LOGISTIC:
        _backprop(g, gb, a, ab, count, LOGISTIC)
    elif code == TANH:
        _backprop(g, gb, a, ab, count, TANH)
    elif code == RELU:
        _backprop(g, gb, a, ab, count, RELU)
    elif code == LEAKY_RELU:
        _backprop(g, gb, a, ab, count, LEAKY_RELU)
    elif code == ELU:
        _backprop(g, gb, a, ab, count, ELU)
    elif code == SOFTPLUS:
        _backprop(g, gb, a, ab, count, SOFTPLUS)
    elif code == SILU:
        _backprop_pre(g, gb, a, ab, pre, count, SILU)
    elif code == GELU:
        _backprop_pre(g, gb, a, ab, pre, count, GELU)


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
