"""Forward and backward passes over the layer table, dispatching on its ``KIND`` column.

Activations live in one flat buffer ``acts``: for a batch of ``rows`` rows, layer row l's
block is ``acts[rows*A_OFF : rows*(A_OFF + N_OUT)]``, row-major.  Every row applies its
operation (:mod:`.layers.dense`, :mod:`.layers.norm`) and then its activation.  The backward
pass writes each row's delta over its own block once that block is no longer needed, with one
extra (rows, widest input) buffer ``tmp``; the input layer gets no delta.

Workspace buffers besides ``acts`` and ``tmp``: ``pre`` (pre-activations of the rows whose
activation needs them, same layout as ``acts``; empty when none does), ``stats`` (the norm
rows' batch statistics) and ``masks`` (dropout factors, same layout as ``acts``).
"""
from numba import njit

from .._config import JIT
from .activations import U, activate, backprop_activation, keep_pre, undo_dropout
from .borrow import borrow_readonly
from .codes import A_OFF, ACT, DENSE, DIRS, KIND, LSTM, N_IN, N_OUT, RNN, W_OFF
from .layers import dense, norm
from .layers.recurrent import n_gates
from .rng import keyed, uniform_at


@njit(**JIT)
def apply_dropout(a, ao, m, rows, n, rate, key, t, l, pos0):
    """Inverted dropout on ``rows`` rows of ``n`` units at ``a[ao:]``: zero each entry with
    probability ``rate``, scale the rest by 1/(1-rate); the factors go to ``m`` (same offsets)
    for the backward pass.  Row r's mask is drawn from the stream keyed by (key, update t,
    layer row l, position pos0 + r in the global batch)."""
    keep = 1.0 - rate
    scale = a.dtype.type(1.0 / keep)
    zero = a.dtype.type(0)
    for r in range(rows):
        s = keyed(key, t * 1024 + l, pos0 + r)
        o = U(ao + r * n)
        for k in range(n):
            f = scale if uniform_at(s, k) < keep else zero
            m[o + U(k)] = f
            a[o + U(k)] *= f


@njit(**JIT)
def forward(x, xo, params, bufs, spec, acts, pre, stats, rows, mode, activate_output,
            dropout, masks, key, t, pos0):
    """Forward pass of ``rows`` rows starting at ``x[xo]`` through every layer row.

    Leaves each hidden row's activations in ``acts``; the output row's block holds the output
    activations when ``activate_output`` is true and the logits otherwise, which is what the
    fused loss (:func:`losses.output_delta`) wants.  ``mode``: EVAL, TRAIN or TRAIN_PURE
    (:mod:`.codes`).  ``dropout[l]`` > 0 applies inverted dropout to row l's output (pass an
    empty ``dropout`` to disable it); ``key``, ``t`` and ``pos0`` key its masks.
    """
    n_layers = spec.shape[0]
    use_dropout = dropout.shape[0] > 0
    x = borrow_readonly(x)
    below = borrow_readonly(acts)  # what a layer reads: one read-only type for x and acts
    for l in range(n_layers):
        # the input rows only ever go to a dense row (a norm row follows a dense one)
        if l == 0:
            dense.forward(x, xo, params, spec, l, acts, rows)
        elif spec[l, KIND] == DENSE:
            dense.forward(below, rows * spec[l - 1, A_OFF], params, spec, l, acts, rows)
        else:
            norm.forward(acts, rows * spec[l - 1, A_OFF], params, bufs, spec, l, acts, stats,
                         rows, mode)
        zo = rows * spec[l, A_OFF]
        n = spec[l, N_OUT]
        if l < n_layers - 1:
            if pre.shape[0] > 0:
                keep_pre(acts, pre, zo, rows * n)
            activate(acts, zo, rows * n, n, spec[l, ACT])
            if use_dropout and dropout[l] > 0.0:
                apply_dropout(acts, zo, masks, rows, n, dropout[l], key, t, l, pos0)
        elif activate_output:
            activate(acts, zo, rows * n, n, spec[l, ACT])


@njit(**JIT)
def backward(x, xo, params, grad, spec, acts, pre, stats, tmp, rows, mode, dropout, masks,
             lr):
    """Gradient of the batch loss w.r.t. every parameter, written into ``grad`` (or, with
    ``lr > 0``, applied at once as a plain SGD step: see :mod:`.layers.dense`).  On entry the
    output row's block of ``acts`` holds the output delta dLoss/dz."""
    use_dropout = dropout.shape[0] > 0
    x = borrow_readonly(x)
    below = borrow_readonly(acts)  # a dense row's input, read only (see forward)
    for l in range(spec.shape[0] - 1, -1, -1):
        if l == 0:
            dense.backward(x, xo, params, grad, spec, l, acts, tmp, rows, lr)
            break
        so = rows * spec[l - 1, A_OFF]
        if spec[l, KIND] == DENSE:
            dense.backward(below, so, params, grad, spec, l, acts, tmp, rows, lr)
        else:
            norm.backward(acts, so, params, grad, spec, l, acts, tmp, stats, rows, mode)
        if l > 0:
            count = rows * spec[l, N_IN]
            if use_dropout and dropout[l - 1] > 0.0:
                undo_dropout(tmp, 0, acts, so, masks, count)
            backprop_activation(tmp, 0, acts, so, pre, count, spec[l - 1, ACT])


@njit(**JIT)
def fused_update_possible(spec, rows):
    """Whether a plain SGD step can be fused into the backward pass for batches of ``rows``:
    only dense rows, and one row or every row on BLAS (the loops update row by row, right
    only for one row)."""
    for l in range(spec.shape[0]):
        if spec[l, KIND] != DENSE:
            return False
    if rows == 1:
        return True
    for l in range(spec.shape[0]):
        if not dense.use_blas(rows, spec[l, N_IN], spec[l, N_OUT]):
            return False
    return True


@njit(**JIT)
def _l2(params, grad, w0, count, c):
    s = params.dtype.type(0)
    o = U(w0)
    for k in range(count):
        w = params[o + U(k)]
        grad[o + U(k)] += c * w
        s += w * w
    return s


@njit(**JIT)
def add_l2(params, grad, spec, coef):
    """grad_W += coef * W for every weight matrix (dense rows; recurrent rows' weight_ih and
    weight_hh) -- not biases, not normalization scales; returns sum of W**2."""
    c = params.dtype.type(coef)
    total = 0.0
    for l in range(spec.shape[0]):
        kind = spec[l, KIND]
        if kind == DENSE:
            total += _l2(params, grad, spec[l, W_OFF], spec[l, N_IN] * spec[l, N_OUT], c)
        elif RNN <= kind <= LSTM:
            D = spec[l, DIRS]
            H = spec[l, N_OUT] // D
            GH = n_gates(kind) * H
            for d in range(D):
                w0 = spec[l, W_OFF] + d * GH * (spec[l, N_IN] + H + 2)
                total += _l2(params, grad, w0, GH * (spec[l, N_IN] + H), c)
    return total
