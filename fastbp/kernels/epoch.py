"""Whole-batch and whole-epoch kernels: everything between two Python calls.

- :func:`batch_gradient`: forward, fused loss/output delta, backward for one batch: the one
  kernel every path below goes through.
- :func:`train_epoch`: shuffle (seeded), then for every mini-batch: gather, gradient, L2,
  clipping, update.  Batch size 1 is FANN's online (incremental) training, batch size N full
  batch.  It runs a range of the epoch's batches per call, so that Python can check for
  Ctrl-C between bounded slices of a long epoch.
- :func:`gradient_sums`: the *unnormalized* loss and gradient sums of a set of rows, in
  chunks: a full-batch step (RPROP, L-BFGS), one MPI rank's share of a step, the public
  ``gradient``.  The caller reduces (across ranks) and divides by the total weight.
- :func:`predict_into` / :func:`evaluate`: outputs (and loss) of a data set, in chunks.

Data arrays are 2-D (samples, features), C-contiguous; inside, rows are addressed by offsets
into flat views, so online training reads a sample where it lies.  Nothing allocates inside
the loops; the buffers come from the caller (see :class:`fastbp.network.Workspace`).
``rng`` is uint64[2]: the shuffling generator's state, then the dropout key.

Prediction and evaluation call ``forward`` with exactly the argument types training does
(``mode`` and ``t`` as ``np.int64``, ``activate_output`` the literal False, ``pos0`` the
literal 0; the output activation applied after it), so all three share one compiled forward
pass.  Numba compiles a separate specialization of a callee for every literal argument value
(``Literal[int](0)``), so prediction used to compile a second forward pass, seconds on a cold
cache.  Training's own call is left exactly as it was: changing its argument types changed
how LLVM compiled the batch-norm reductions, and with them the bits.
"""
import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE, PREDICT_CHUNK
from .activations import U, activate
from .borrow import borrow, borrow_readonly
from .codes import A_OFF, ACT, DENSE, EVAL, KIND, N_OUT, T_OFF
from .losses import loss_param, output_delta
from .model import add_l2, backward, forward, fused_update_possible
from .optimizers import clip_by_global_norm, plain_sgd, update
from .rng import shuffle as shuffle_order


@njit(**JIT_INLINE)
def batch_gradient(x, xo, y, yo, w, wo, params, bufs, grad, spec, loss, acts, pre, stats, tmp,
                   rows, inv_norm, mode, dropout, masks, key, t, pos0, lr):
    """Gradient of the loss of ``rows`` rows (inputs at ``x[xo:]``, targets at ``y[yo:]``,
    sample weights at ``w[wo:]`` or none when ``w`` is empty), each row's term scaled by
    ``inv_norm``, written into ``grad``; returns sum_r w_r L_r.  With ``lr > 0`` the plain
    SGD step is applied instead (see :func:`model.fused_update_possible`)."""
    forward(x, xo, params, bufs, spec, acts, pre, stats, rows, mode, False, dropout, masks,
            key, t, pos0)
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    total = output_delta(acts, rows * spec[last, A_OFF], y, yo, w, wo, rows, n_out, inv_norm,
                         spec[last, ACT], loss, True, loss_param(spec))
    backward(x, xo, params, grad, spec, acts, pre, stats, tmp, rows, mode, dropout, masks, lr)
    return total


@njit(**JIT)
def gather_rows(Xf, Yf, sw, order, start, rows, n_in, n_out, xb, yb, wbuf):
    """Copy the rows ``order[start:start+rows]`` of the flat data (and their sample weights,
    when ``sw`` is not empty) into the batch buffers; returns the batch's total weight."""
    weighted = sw.shape[0] > 0
    total = 0.0
    # plain loops, not slice assignments: those compile a shape check with an error message
    # (formatting and raising code), which was most of this kernel's compile time
    for k in range(rows):
        i = order[start + k]
        src = U(i * n_in)
        dst = U(k * n_in)
        for j in range(n_in):
            xb[dst + U(j)] = Xf[src + U(j)]
        src = U(i * n_out)
        dst = U(k * n_out)
        for j in range(n_out):
            yb[dst + U(j)] = Yf[src + U(j)]
        if weighted:
            wbuf[k] = sw[i]
            total += sw[i]
    return total if weighted else float(rows)


@njit(**JIT)
def train_epoch(X, Y, sw, params, bufs, grad, state, spec, loss, opt, rule, hyper, alpha, clip,
                counter, batch_size, shuffle, rng, order, first, stop, xbuf, ybuf, wbuf, acts,
                pre, stats, tmp, dropout, masks, mode):
    """Batches ``first`` to ``stop - 1`` of an epoch of mini-batch training; returns the sum
    over their samples of each batch's loss (including the L2 penalty, as scikit-learn
    reports it) at the time it was seen, or NaN when a batch's loss is not finite (that
    batch's update is then not applied).

    ``order`` (int64, length N) is the visiting order, shuffled in place from ``rng`` at the
    start of the epoch (``first == 0``) when ``shuffle``; ``counter[0]`` counts updates
    (Adam's t).  ``opt`` is the optimizer's code, ``rule`` its compiled update
    (:func:`.optimizers.update_rule`); plain SGD takes the fused path where it can.  A batch
    is read where it lies (in order, or a single row) or gathered into ``xbuf``/``ybuf``/
    ``wbuf``.
    """
    X, Y, sw, params, bufs, grad, state = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(bufs), borrow(grad), borrow(state)
    spec, hyper, counter, rng, order = borrow(spec), borrow(hyper), borrow(counter), \
        borrow(rng), borrow(order)
    xbuf, ybuf, wbuf, acts, pre, stats, tmp, dropout, masks = borrow(xbuf), borrow(ybuf), \
        borrow(wbuf), borrow(acts), borrow(pre), borrow(stats), borrow(tmp), borrow(dropout), \
        borrow(masks)
    n, n_in = X.shape
    n_out = Y.shape[1]
    Xf = borrow_readonly(X.reshape(X.size))  # one type for read-only and writable X
    Yf = Y.reshape(Y.size)
    xb = xbuf.reshape(xbuf.size)
    yb = ybuf.reshape(ybuf.size)
    if shuffle and first == 0:
        shuffle_order(order, rng[:1])
    key = rng[1]
    weighted = sw.shape[0] > 0
    fusable = plain_sgd(opt, hyper, clip, alpha)
    fused_full = fusable and fused_update_possible(spec, batch_size)  # all but a last batch
    lr = params.dtype.type(hyper[0])
    no_lr = params.dtype.type(0)
    total = 0.0
    for b in range(first, stop):
        start = b * batch_size
        rows = min(batch_size, n - start)
        if not shuffle:
            xs, xo, ys, yo, ws, wo = Xf, start * n_in, Yf, start * n_out, sw, start
        elif rows == 1:
            i = order[start]
            xs, xo, ys, yo, ws, wo = Xf, i * n_in, Yf, i * n_out, sw, i
        else:
            gather_rows(Xf, Yf, sw, order, start, rows, n_in, n_out, xb, yb, wbuf)
            xs, xo, ys, yo, ws, wo = xb, 0, yb, 0, (wbuf if weighted else sw), 0
        norm = float(rows)
        if weighted:
            norm = 0.0
            for k in range(rows):
                norm += ws[wo + k]
            if norm <= 0.0:  # every sample of the batch has weight 0: nothing to learn
                continue
        fused = fused_full if rows == batch_size else (fusable and
                                                       fused_update_possible(spec, rows))
        t = counter[0] + 1
        batch_loss = batch_gradient(xs, xo, ys, yo, ws, wo, params, bufs, grad, spec, loss,
                                    acts, pre, stats, tmp, rows, 1.0 / norm, mode, dropout,
                                    masks, key, t, 0, lr if fused else no_lr) / norm
        if not fused and alpha > 0.0:
            batch_loss += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm) / norm
        if not np.isfinite(batch_loss):
            return np.nan
        counter[0] = t
        if not fused:
            if clip > 0.0:
                clip_by_global_norm(grad, clip)
            update(rule, params, grad, state, hyper, t, batch_loss)
        total += batch_loss * rows
    return total


@njit(**JIT)
def gradient_sums(X, Y, sw, order, start, count, params, bufs, grad, spare, spec, loss, acts,
                  pre, stats, tmp, chunk, mode, dropout, masks, key, t, pos0, xbuf, ybuf,
                  wbuf):
    """Unnormalized sum_r w_r dL_r (into ``grad``) over ``count`` rows from ``start``:
    rows ``order[start:...]`` gathered into the batch buffers, or the rows themselves in
    place when ``order`` is empty.  Returns (sum_r w_r L_r, sum_r w_r).  Works ``chunk`` rows
    at a time (the buffers are sized for it), adding each chunk's gradient (computed into
    ``spare``) to ``grad``.  Zero rows give zeros."""
    X, Y, sw, order, params, bufs, grad, spare = borrow(X), borrow(Y), borrow(sw), \
        borrow(order), borrow(params), borrow(bufs), borrow(grad), borrow(spare)
    spec, acts, pre, stats, tmp, dropout, masks = borrow(spec), borrow(acts), borrow(pre), \
        borrow(stats), borrow(tmp), borrow(dropout), borrow(masks)
    xbuf, ybuf, wbuf = borrow(xbuf), borrow(ybuf), borrow(wbuf)
    grad[:] = 0
    n_in = X.shape[1]
    n_out = Y.shape[1]
    Xf = borrow_readonly(X.reshape(X.size))  # one type for read-only and writable X
    Yf = Y.reshape(Y.size)
    xb = xbuf.reshape(xbuf.size)
    yb = ybuf.reshape(ybuf.size)
    weighted = sw.shape[0] > 0
    in_place = order.shape[0] == 0
    no_lr = params.dtype.type(0)
    total = 0.0
    total_w = 0.0
    for c in range(start, start + count, chunk):
        rows = min(chunk, start + count - c)
        if in_place:
            xs, xo, ys, yo, ws, wo = Xf, c * n_in, Yf, c * n_out, sw, c
            if weighted:
                for k in range(rows):
                    total_w += sw[c + k]
            else:
                total_w += rows
        else:
            total_w += gather_rows(Xf, Yf, sw, order, c, rows, n_in, n_out, xb, yb, wbuf)
            xs, xo, ys, yo, ws, wo = xb, 0, yb, 0, (wbuf if weighted else sw), 0
        target = grad if c == start else spare
        total += batch_gradient(xs, xo, ys, yo, ws, wo, params, bufs, target, spec, loss,
                                acts, pre, stats, tmp, rows, 1.0, mode, dropout, masks, key,
                                t, pos0 + c - start, no_lr)
        if c > start:
            for k in range(grad.shape[0]):
                grad[k] += spare[k]
    return total, total_w


@njit(**JIT)
def finish_gradient(params, grad, spec, loss_sum, total_w, alpha):
    """Turn reduced sums into the mean loss (plus alpha/2 |W|^2 / total_w) and its gradient,
    in place; returns the mean loss."""
    inv = grad.dtype.type(1.0 / total_w)
    for k in range(grad.shape[0]):
        grad[k] *= inv
    value = loss_sum / total_w
    if alpha > 0.0:
        value += 0.5 * alpha * add_l2(params, grad, spec, alpha / total_w) / total_w
    return value


@njit(**JIT)
def copy(src, so, dst, do, count):
    """dst[do:do+count] = src[so:so+count], as a loop: a slice assignment compiles a shape
    check with its error message (formatting code: seconds of a cold compile)."""
    s = U(so)
    d = U(do)
    for k in range(count):
        dst[d + U(k)] = src[s + U(k)]


@njit(**JIT)
def all_finite(X):
    """True when no entry of X is NaN or infinite."""
    s = X.dtype.type(0)
    for v in X.reshape(X.size):
        s += v * 0  # stays 0 unless some v is NaN or +-inf
    return s == 0


@njit(**JIT)
def eval_buffers(spec, rows, dtype):
    """Activation and statistics buffers for evaluation-mode passes of ``rows`` rows (one
    allocation: a prediction of one row is dominated by such fixed costs)."""
    last = spec.shape[0] - 1
    n_acts = rows * (spec[last, A_OFF] + spec[last, N_OUT])
    width = 0
    for l in range(spec.shape[0]):
        if spec[l, KIND] != DENSE:
            width = max(width, spec[l, T_OFF] + 2 * spec[l, N_OUT])
    buf = np.empty(n_acts + rows * width, dtype=dtype)
    return buf[:n_acts], buf[n_acts:]


@njit(**JIT)
def predict_into(X, params, spec, out):
    """Output activations of every row of ``X`` (N, n_in) into ``out`` (N, n_out) for a
    network without buffers (no batch norm), ``PREDICT_CHUNK`` rows at a time.  Every array
    argument costs a call from Python about 0.1 us to unbox, which is 5 % of predicting one
    row: the buffer vector is passed only where there is one (:func:`predict_into_buffered`).

    Returns False, without computing anything, when ``X`` holds a NaN or an infinity.
    """
    return _predict(X, params, params[:0], spec, out)


@njit(**JIT)
def predict_into_buffered(X, params, bufs, spec, out):
    """:func:`predict_into` with the network's buffers (running statistics)."""
    return _predict(X, params, bufs, spec, out)


@njit(**JIT_INLINE)
def _predict(X, params, bufs, spec, out):
    X, params, bufs, spec, out = borrow(X), borrow(params), borrow(bufs), borrow(spec), \
        borrow(out)
    if not all_finite(X):
        return False
    n, n_in = X.shape
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    chunk = min(PREDICT_CHUNK, n)
    acts, stats = eval_buffers(spec, chunk, params.dtype)
    no_dropout = acts[:0]  # no allocation (a one-row prediction is mostly fixed costs)
    no_pre = acts[:0]
    Xf = borrow_readonly(X.reshape(X.size))  # one type for read-only and writable X
    of = out.reshape(out.size)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(Xf, start * n_in, params, bufs, spec, acts, no_pre, stats, rows, np.int64(EVAL),
                False, no_dropout, acts, np.uint64(0), np.int64(0), 0)
        zo = rows * spec[last, A_OFF]
        activate(acts, zo, rows * n_out, n_out, spec[last, ACT])
        copy(acts, zo, of, start * n_out, rows * n_out)
    return True


@njit(**JIT)
def evaluate(X, Y, sw, params, bufs, spec, loss, out, acts, stats):
    """Mean loss over (X, Y) (no penalty, running statistics) with the output activations
    written to ``out``."""
    X, Y, sw, params, bufs, spec, out, acts, stats = borrow(X), borrow(Y), borrow(sw), \
        borrow(params), borrow(bufs), borrow(spec), borrow(out), borrow(acts), borrow(stats)
    n, n_in = X.shape
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    chunk = acts.shape[0] // (spec[last, A_OFF] + n_out)
    weighted = sw.shape[0] > 0
    no_dropout = acts[:0]  # no allocation (a one-row prediction is mostly fixed costs)
    no_pre = acts[:0]
    Xf = borrow_readonly(X.reshape(X.size))  # one type for read-only and writable X
    Yf = Y.reshape(Y.size)
    of = out.reshape(out.size)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(Xf, start * n_in, params, bufs, spec, acts, no_pre, stats, rows, np.int64(EVAL),
                False, no_dropout, acts, np.uint64(0), np.int64(0), 0)
        zo = rows * spec[last, A_OFF]
        total += output_delta(acts, zo, Yf, start * n_out, sw, start, rows, n_out, 1.0,
                              spec[last, ACT], loss, False, loss_param(spec))
        activate(acts, zo, rows * n_out, n_out, spec[last, ACT])
        copy(acts, zo, of, start * n_out, rows * n_out)
    norm = float(n)
    if weighted:
        norm = 0.0
        for k in range(n):
            norm += sw[k]
    return total / norm
