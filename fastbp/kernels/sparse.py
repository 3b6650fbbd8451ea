"""Sparse (CSR) input: the first dense layer reads only each row's nonzeros.

A separate code path beside :mod:`.epoch` (whose dense kernels are untouched): the data
set is a CSR matrix given as its three arrays (``indptr``, ``indices`` as int64, ``data`` of
the parameters' dtype); a batch is a list of row numbers (``order[start:start+rows]``, or
``start..`` when ``order`` is empty), never a dense copy.

- forward, layer 0: z_r = b + sum over the nonzeros (k, v) of row r of v * W[:, k]: nnz * n_out
  multiply-adds instead of n_in * n_out;
- backward, layer 0: grad W[:, k] = sum_r v_rk delta_r over the nonzeros only (the rest of
  the block is zero), grad b = column sums of delta; no delta for the input;
- every later row of the layer table runs the dense kernels of :mod:`.model`'s passes.

Plain SGD (no momentum, clipping or L2 penalty) takes a fused step on layer 0: each nonzero
(k, v) of a row moves W[:, k] by -lr v delta_r the moment the row's delta is known, and the
biases by -lr times delta's column sums, so a batch touches only its nonzeros' columns
instead of zeroing, filling and stepping the whole block (vocabulary x units) per batch.  The
later rows take the usual gradient and the same SGD step as the update rule's.

Weights are stored unit by unit (W[j, k] at ``W_OFF + j * N_IN + k``), so a nonzero's
column is read with stride N_IN: a bag-of-words row of a few hundred nonzeros touches that
many columns of the first layer and nothing else.
"""
import numpy as np
from numba import njit

from .._config import JIT, PREDICT_CHUNK
from .activations import U, activate, backprop_activation, keep_pre, undo_dropout
from .borrow import borrow, borrow_readonly
from .codes import A_OFF, ACT, B_OFF, DENSE, EVAL, KIND, N_IN, N_OUT, W_OFF
from .epoch import copy, eval_buffers
from .layers import dense, norm
from .layers.dense import bias_gradient
from .losses import loss_param, output_delta
from .model import add_l2, apply_dropout
from .optimizers import clip_by_global_norm, plain_sgd, update
from .rng import shuffle as shuffle_order


@njit(**JIT)
def first_forward(indptr, indices, data, order, start, rows, params, spec, acts):
    """Layer 0's pre-activations of a batch of CSR rows, into its block of ``acts``."""
    n_in = spec[0, N_IN]
    n_out = spec[0, N_OUT]
    w0 = spec[0, W_OFF]
    b0 = U(spec[0, B_OFF])
    by_order = order.shape[0] > 0
    for r in range(rows):
        i = order[start + r] if by_order else start + r
        zr = U(r * n_out)
        for j in range(n_out):
            acts[zr + U(j)] = params[b0 + U(j)]
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            w = U(w0 + indices[p])
            for j in range(n_out):
                acts[zr + U(j)] += v * params[w + U(j * n_in)]


@njit(**JIT)
def first_backward(indptr, indices, data, order, start, rows, grad, spec, acts):
    """Layer 0's gradient from its delta (in ``acts``): biases, then the weight block zeroed
    and the nonzeros' products added."""
    n_in = spec[0, N_IN]
    n_out = spec[0, N_OUT]
    w0 = spec[0, W_OFF]
    bias_gradient(acts, 0, rows, n_out, grad, spec[0, B_OFF])
    zero = grad.dtype.type(0)
    for k in range(n_in * n_out):
        grad[U(w0 + k)] = zero
    by_order = order.shape[0] > 0
    for r in range(rows):
        i = order[start + r] if by_order else start + r
        dr = U(r * n_out)
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            w = U(w0 + indices[p])
            for j in range(n_out):
                grad[w + U(j * n_in)] += v * acts[dr + U(j)]


@njit(**JIT)
def first_sgd_step(indptr, indices, data, order, start, rows, params, spec, acts, lr):
    """Layer 0's plain SGD step from its delta (in ``acts``), fused: biases by -lr times
    delta's column sums, and W[:, k] by -lr v delta_r for each nonzero (k, v) of each row; the
    rest of the block has a zero gradient and is not touched."""
    n_in = spec[0, N_IN]
    n_out = spec[0, N_OUT]
    w0 = spec[0, W_OFF]
    b0 = U(spec[0, B_OFF])
    for j in range(n_out):
        s = acts[U(j)]
        for r in range(1, rows):
            s += acts[U(r * n_out + j)]
        params[b0 + U(j)] -= lr * s
    by_order = order.shape[0] > 0
    for r in range(rows):
        i = order[start + r] if by_order else start + r
        dr = U(r * n_out)
        for p in range(indptr[i], indptr[i + 1]):
            c = lr * data[p]
            w = U(w0 + indices[p])
            for j in range(n_out):
                params[w + U(j * n_in)] -= c * acts[dr + U(j)]


@njit(**JIT)
def rest_sgd_step(params, grad, spec, lr):
    """The plain SGD step (as :func:`.optimizers.sgd` takes it) of every parameter outside
    layer 0's block, which :func:`first_sgd_step` has stepped."""
    for k in range(spec[0, W_OFF]):
        params[k] -= lr * grad[k]
    for k in range(spec[0, B_OFF] + spec[0, N_OUT], params.shape[0]):
        params[k] -= lr * grad[k]


@njit(**JIT)
def forward_rest(params, bufs, spec, acts, pre, stats, rows, mode, activate_output, dropout,
                 masks, key, t, pos0):
    """:func:`.model.forward` after layer 0's pre-activations are in place: its
    activation (and dropout), then every later row."""
    n_layers = spec.shape[0]
    use_dropout = dropout.shape[0] > 0
    below = borrow_readonly(acts)  # what a dense row reads (one type with model.forward's)
    for l in range(n_layers):
        if l > 0:
            if spec[l, KIND] == DENSE:
                dense.forward(below, rows * spec[l - 1, A_OFF], params, spec, l, acts, rows)
            else:
                norm.forward(acts, rows * spec[l - 1, A_OFF], params, bufs, spec, l, acts,
                             stats, rows, mode)
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
def backward_rest(params, grad, spec, acts, pre, stats, tmp, rows, mode, dropout, masks):
    """:func:`.model.backward` down to layer 0's delta (left in ``acts``)."""
    use_dropout = dropout.shape[0] > 0
    no_lr = params.dtype.type(0)
    below = borrow_readonly(acts)  # a dense row's input, read only (see forward_rest)
    for l in range(spec.shape[0] - 1, 0, -1):
        so = rows * spec[l - 1, A_OFF]
        if spec[l, KIND] == DENSE:
            dense.backward(below, so, params, grad, spec, l, acts, tmp, rows, no_lr)
        else:
            norm.backward(acts, so, params, grad, spec, l, acts, tmp, stats, rows, mode)
        count = rows * spec[l, N_IN]
        if use_dropout and dropout[l - 1] > 0.0:
            undo_dropout(tmp, 0, acts, so, masks, count)
        backprop_activation(tmp, 0, acts, so, pre, count, spec[l - 1, ACT])


@njit(**JIT)
def batch_gradient(indptr, indices, data, order, start, rows, y, yo, w, wo, params, bufs,
                   grad, spec, loss, acts, pre, stats, tmp, inv_norm, mode, dropout, masks,
                   key, t, pos0, lr):
    """:func:`.epoch.batch_gradient` for a batch of CSR rows; with ``lr > 0`` layer 0 takes
    its fused SGD step (:func:`first_sgd_step`) instead of writing its gradient."""
    first_forward(indptr, indices, data, order, start, rows, params, spec, acts)
    forward_rest(params, bufs, spec, acts, pre, stats, rows, mode, False, dropout, masks, key,
                 t, pos0)
    last = spec.shape[0] - 1
    total = output_delta(acts, rows * spec[last, A_OFF], y, yo, w, wo, rows, spec[last, N_OUT],
                         inv_norm, spec[last, ACT], loss, True, loss_param(spec))
    backward_rest(params, grad, spec, acts, pre, stats, tmp, rows, mode, dropout, masks)
    if lr > 0:
        first_sgd_step(indptr, indices, data, order, start, rows, params, spec, acts, lr)
    else:
        first_backward(indptr, indices, data, order, start, rows, grad, spec, acts)
    return total


@njit(**JIT)
def gather_targets(Yf, sw, order, start, rows, n_out, yb, wbuf):
    """Targets (and weights) of rows ``order[start:start+rows]`` into the batch buffers;
    returns the batch's total weight."""
    weighted = sw.shape[0] > 0
    total = 0.0
    for k in range(rows):
        i = order[start + k]
        copy(Yf, i * n_out, yb, k * n_out, n_out)
        if weighted:
            wbuf[k] = sw[i]
            total += sw[i]
    return total if weighted else float(rows)


@njit(**JIT)
def train_epoch(indptr, indices, data, Y, sw, params, bufs, grad, state, spec, loss, opt,
                rule, hyper, alpha, clip, counter, batch_size, shuffle, rng, order, first,
                stop, ybuf, wbuf, acts, pre, stats, tmp, dropout, masks, mode):
    """:func:`.epoch.train_epoch` for CSR inputs: the same shuffling stream, batches,
    weighting, L2, clipping and updates; plain SGD fuses layer 0's step (see the module
    docstring)."""
    indptr, indices, data, Y, sw, params, bufs, grad, state = borrow(indptr), \
        borrow(indices), borrow(data), borrow(Y), borrow(sw), borrow(params), borrow(bufs), \
        borrow(grad), borrow(state)
    spec, hyper, counter, rng, order = borrow(spec), borrow(hyper), borrow(counter), \
        borrow(rng), borrow(order)
    ybuf, wbuf, acts, pre, stats, tmp, dropout, masks = borrow(ybuf), borrow(wbuf), \
        borrow(acts), borrow(pre), borrow(stats), borrow(tmp), borrow(dropout), borrow(masks)
    n = Y.shape[0]
    n_out = Y.shape[1]
    Yf = Y.reshape(Y.size)
    yb = ybuf.reshape(ybuf.size)
    if shuffle and first == 0:
        shuffle_order(order, rng[:1])
    key = rng[1]
    weighted = sw.shape[0] > 0
    no_order = order[:0]
    fused = plain_sgd(opt, hyper, clip, alpha)
    lr = params.dtype.type(hyper[0]) if fused else params.dtype.type(0)
    total = 0.0
    for b in range(first, stop):
        start = b * batch_size
        rows = min(batch_size, n - start)
        if shuffle:
            gather_targets(Yf, sw, order, start, rows, n_out, yb, wbuf)
            ords, os, ys, yo, ws, wo = order, start, yb, 0, (wbuf if weighted else sw), 0
        else:
            ords, os, ys, yo, ws, wo = no_order, start, Yf, start * n_out, sw, start
        norm_w = float(rows)
        if weighted:
            norm_w = 0.0
            for k in range(rows):
                norm_w += ws[wo + k]
            if norm_w <= 0.0:
                continue
        t = counter[0] + 1
        batch_loss = batch_gradient(indptr, indices, data, ords, os, rows, ys, yo, ws, wo,
                                    params, bufs, grad, spec, loss, acts, pre, stats, tmp,
                                    1.0 / norm_w, mode, dropout, masks, key, t, 0,
                                    lr) / norm_w
        if alpha > 0.0:
            batch_loss += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm_w) / norm_w
        if not np.isfinite(batch_loss):
            return np.nan
        counter[0] = t
        if fused:
            rest_sgd_step(params, grad, spec, lr)
        else:
            if clip > 0.0:
                clip_by_global_norm(grad, clip)
            update(rule, params, grad, state, hyper, t, batch_loss)
        total += batch_loss * rows
    return total


@njit(**JIT)
def gradient_sums(indptr, indices, data, Y, sw, order, start, count, params, bufs, grad,
                  spare, spec, loss, acts, pre, stats, tmp, chunk, mode, dropout, masks, key,
                  t, pos0, ybuf, wbuf):
    """:func:`.epoch.gradient_sums` for CSR inputs."""
    grad[:] = 0
    n_out = Y.shape[1]
    Yf = Y.reshape(Y.size)
    yb = ybuf.reshape(ybuf.size)
    weighted = sw.shape[0] > 0
    in_place = order.shape[0] == 0
    total = 0.0
    total_w = 0.0
    for c in range(start, start + count, chunk):
        rows = min(chunk, start + count - c)
        if in_place:
            ys, yo, ws, wo = Yf, c * n_out, sw, c
            if weighted:
                for k in range(rows):
                    total_w += sw[c + k]
            else:
                total_w += rows
        else:
            total_w += gather_targets(Yf, sw, order, c, rows, n_out, yb, wbuf)
            ys, yo, ws, wo = yb, 0, (wbuf if weighted else sw), 0
        target = grad if c == start else spare
        total += batch_gradient(indptr, indices, data, order, c, rows, ys, yo, ws, wo, params,
                                bufs, target, spec, loss, acts, pre, stats, tmp, 1.0, mode,
                                dropout, masks, key, t, pos0 + c - start,
                                params.dtype.type(0))
        if c > start:
            for k in range(grad.shape[0]):
                grad[k] += spare[k]
    return total, total_w


@njit(**JIT)
def predict_into(indptr, indices, data, params, bufs, spec, out):
    """Output activations of every CSR row into ``out``, ``PREDICT_CHUNK`` rows at a time
    (running statistics)."""
    n = out.shape[0]
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    chunk = max(1, min(PREDICT_CHUNK, n))
    acts, stats = eval_buffers(spec, chunk, params.dtype)
    none = acts[:0]
    no_order = indptr[:0]
    of = out.reshape(out.size)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        first_forward(indptr, indices, data, no_order, start, rows, params, spec, acts)
        forward_rest(params, bufs, spec, acts, none, stats, rows, EVAL, True, none, acts,
                     np.uint64(0), 0, 0)
        zo = rows * spec[last, A_OFF]
        copy(acts, zo, of, start * n_out, rows * n_out)


@njit(**JIT)
def evaluate(indptr, indices, data, Y, sw, params, bufs, spec, loss, out):
    """:func:`.epoch.evaluate` for CSR inputs: mean loss (running statistics), outputs into
    ``out``."""
    n = Y.shape[0]
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    chunk = max(1, min(PREDICT_CHUNK, n))
    acts, stats = eval_buffers(spec, chunk, params.dtype)
    none = acts[:0]
    no_order = indptr[:0]
    Yf = Y.reshape(Y.size)
    of = out.reshape(out.size)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        first_forward(indptr, indices, data, no_order, start, rows, params, spec, acts)
        forward_rest(params, bufs, spec, acts, none, stats, rows, EVAL, False, none, acts,
                     np.uint64(0), 0, 0)
        zo = rows * spec[last, A_OFF]
        total += output_delta(acts, zo, Yf, start * n_out, sw, start, rows, n_out, 1.0,
                              spec[last, ACT], loss, False, loss_param(spec))
        activate(acts, zo, rows * n_out, n_out, spec[last, ACT])
        copy(acts, zo, of, start * n_out, rows * n_out)
    norm_w = float(n)
    if sw.shape[0] > 0:
        norm_w = 0.0
        for k in range(n):
            norm_w += sw[k]
    return total / norm_w


from .._cache import load_without_refresh  # noqa: E402  (see fastbp._cache)

load_without_refresh(globals())
