"""Activation functions: one value and one derivative per activation, and the loops over
the activation buffer that apply them.

To add an activation: register its name and traits in :mod:`fastbp.registry`, then give it a
value and a derivative function below (their lines in ``_VALUES``/``_DERIVATIVES`` and in
``_value_any``/``_derivative_any``), and its line in the two dispatch tables
(:func:`activate`, :func:`backprop_activation`) (and a reference in ``tests/naive.py``).
Nothing else changes.

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
from numba import njit, types
from numba.extending import overload

from .._config import JIT, JIT_INLINE
from ..registry import (ELU, EXP, GELU, IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU,
                        SILU, SOFTMAX, SOFTPLUS, TANH)
from .mathfn import exp, like, logistic, tanh

U = np.uint64

_GELU_K = 0.7978845608028654   # sqrt(2 / pi)
_GELU_C = 0.044715


def value(z, code):
    """f(z) for one value of an element-wise activation (not softmax), in compiled code.

    With ``code`` a compile-time constant (a global such as ``TANH``, or a literal argument)
    only that activation is compiled (see :func:`_value`); with a run-time code, a branch per
    activation, each compiled as with its constant."""
    raise TypeError("activations.value is for compiled (@njit) code")


def derivative(z, a, code):
    """f'(z), from the pre-activation ``z`` and/or the output ``a`` = f(z), in compiled code
    (``code`` as in :func:`value`).  Only activations registered with ``needs_pre`` may read
    ``z``; the others get ``z = a``."""
    raise TypeError("activations.derivative is for compiled (@njit) code")


# value and derivative are overloads, not inline="always" functions: Numba's inlining of
# their ten branches into every loop that applies an activation (nine loops in activate,
# eight in backprop_activation, six in output_delta) was about a third of a cold compile.
# The overload resolves a constant code at typing time and compiles that activation alone;
# LLVM inlines it into the loop, which then vectorizes as before.
_OPTS = {"fastmath": JIT["fastmath"], "error_model": JIT["error_model"]}


def _value_logistic(z, code):
    return logistic(z)


def _value_tanh(z, code):
    return tanh(z)


def _value_relu(z, code):
    return max(z, like(z, 0.0))


def _value_leaky_relu(z, code):
    return z if z > like(z, 0.0) else like(z, LEAKY_SLOPE) * z


def _value_elu(z, code):  # alpha = 1; expm1: exp(z) - 1 cancels for small |z|
    return z if z > like(z, 0.0) else like(z, np.expm1(z))


def _value_softplus(z, code):  # log(1 + e^z), stable for both signs
    return max(z, like(z, 0.0)) + np.log1p(exp(-abs(z)))


def _value_silu(z, code):
    return z * logistic(z)


def _value_gelu(z, code):  # tanh approximation, PyTorch's approximate="tanh"
    # 0.5 z (1 + tanh u) = z logistic(2u): no cancellation in 1 + tanh u for u << 0;
    # below z = -10, |f| < 1e-36, and z times the clamped exp's floor would not be
    if z < like(z, -10.0):
        return like(z, 0.0)
    return z * logistic(like(z, 2.0) * _gelu_u(z))


def _value_exp(z, code):  # output only (the log link of the Poisson loss)
    return exp(z)


def _value_identity(z, code):
    return z


def _value_any(z, code):
    if code == LOGISTIC:
        return value(z, LOGISTIC)
    if code == TANH:
        return value(z, TANH)
    if code == RELU:
        return value(z, RELU)
    if code == LEAKY_RELU:
        return value(z, LEAKY_RELU)
    if code == ELU:
        return value(z, ELU)
    if code == SOFTPLUS:
        return value(z, SOFTPLUS)
    if code == SILU:
        return value(z, SILU)
    if code == GELU:
        return value(z, GELU)
    if code == EXP:
        return value(z, EXP)
    return z


_VALUES = {LOGISTIC: _value_logistic, TANH: _value_tanh, RELU: _value_relu,
           LEAKY_RELU: _value_leaky_relu, ELU: _value_elu, SOFTPLUS: _value_softplus,
           SILU: _value_silu, GELU: _value_gelu, EXP: _value_exp}


@overload(value, prefer_literal=True, jit_options=_OPTS)
def _value(z, code):
    if isinstance(code, types.IntegerLiteral):
        return _VALUES.get(code.literal_value, _value_identity)
    return _value_any


@njit(**JIT_INLINE)
def _gelu_u(z):
    """u = sqrt(2/pi) (z + 0.044715 z**3), the argument of GELU's tanh."""
    return like(z, _GELU_K) * (z + like(z, _GELU_C) * z * z * z)


def _derivative_logistic(z, a, code):
    return a * (like(a, 1.0) - a)


def _derivative_tanh(z, a, code):
    return like(a, 1.0) - a * a


def _derivative_relu(z, a, code):
    return like(a, 1.0) if a > like(a, 0.0) else like(a, 0.0)


def _derivative_leaky_relu(z, a, code):
    return like(a, 1.0) if a > like(a, 0.0) else like(a, LEAKY_SLOPE)


def _derivative_elu(z, a, code):  # e^z = a + 1 for z <= 0
    return like(a, 1.0) if a > like(a, 0.0) else a + like(a, 1.0)


def _derivative_softplus(z, a, code):  # logistic(z) = 1 - e^-a
    return -np.expm1(-a)


def _derivative_silu(z, a, code):
    s = logistic(z)
    return s * (like(a, 1.0) + z * (like(a, 1.0) - s))


def _derivative_gelu(z, a, code):
    # 0.5 (1 + t) + 0.5 z (1 - t**2) u' with t = tanh u, written as s + 2 z u' s (1 - s)
    # with s = logistic(2u) and 1 - s = logistic(-2u): 1 - t**2 from a t that rounds near
    # +-1 is all rounding error, which z u' ~ z**3 magnified (float32: f'(100) was 1.03).
    # Beyond |z| = 10 the second term is below 1e-35: f' is 1 or 0.
    one = like(a, 1.0)
    if abs(z) > like(z, 10.0):
        return one if z > like(a, 0.0) else like(a, 0.0)
    u2 = like(z, 2.0) * _gelu_u(z)
    s = logistic(u2)
    du = like(z, _GELU_K) * (one + like(z, 3.0 * _GELU_C) * z * z)
    return s + like(z, 2.0) * z * du * s * logistic(-u2)


def _derivative_exp(z, a, code):
    return a


def _derivative_identity(z, a, code):
    return like(a, 1.0)


def _derivative_any(z, a, code):
    if code == LOGISTIC:
        return derivative(z, a, LOGISTIC)
    if code == TANH:
        return derivative(z, a, TANH)
    if code == RELU:
        return derivative(z, a, RELU)
    if code == LEAKY_RELU:
        return derivative(z, a, LEAKY_RELU)
    if code == ELU:
        return derivative(z, a, ELU)
    if code == SOFTPLUS:
        return derivative(z, a, SOFTPLUS)
    if code == SILU:
        return derivative(z, a, SILU)
    if code == GELU:
        return derivative(z, a, GELU)
    if code == EXP:
        return derivative(z, a, EXP)
    return like(a, 1.0)


_DERIVATIVES = {LOGISTIC: _derivative_logistic, TANH: _derivative_tanh,
                RELU: _derivative_relu, LEAKY_RELU: _derivative_leaky_relu,
                ELU: _derivative_elu, SOFTPLUS: _derivative_softplus,
                SILU: _derivative_silu, GELU: _derivative_gelu, EXP: _derivative_exp}


@overload(derivative, prefer_literal=True, jit_options=_OPTS)
def _derivative(z, a, code):
    if isinstance(code, types.IntegerLiteral):
        return _DERIVATIVES.get(code.literal_value, _derivative_identity)
    return _derivative_any


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
