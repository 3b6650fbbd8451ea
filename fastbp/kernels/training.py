"""Whole-batch and whole-epoch kernels: everything between two Python calls.

- :func:`batch_gradient`: forward, fused loss/output delta, backward for one batch.
- :func:`train_epoch`: shuffle (seeded), then for every mini-batch: gather, gradient, L2,
  update.  Batch size 1 is FANN's online (incremental) training, batch size N full batch.
- :func:`loss_and_gradient`: loss and gradient over a whole data set, in chunks (L-BFGS, RPROP,
  gradient checks).
- :func:`predict_into` / :func:`evaluate`: outputs (and loss) of a data set, in chunks.

Data arrays are 2-D (samples, features), C-contiguous; inside, rows are addressed by offsets
into flat views, so online training reads a sample where it lies.  Nothing allocates inside
the loops; the buffers come from the caller (see :class:`fastbp.network.Workspace`).
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import activate
from .backward import backward, fused_update_possible
from .borrow import borrow
from .codes import A_OFF, ACT, H_ALPHA, H_CLIP, H_LR, H_MOMENTUM, N_OUT, SGD
from .forward import forward
from .losses import output_delta
from .rng import shuffle as shuffle_order
from .updates import add_l2, apply_update


@njit(**JIT)
def batch_gradient(x, xo, y, yo, w, wo, params, grad, spec, loss, acts, tmp, rows, inv_norm,
                   dropout, masks, rng, lr):
    """Gradient of the loss of ``rows`` rows (inputs at ``x[xo:]``, targets at ``y[yo:]``,
    sample weights at ``w[wo:]`` or none when ``w`` is empty) written into ``grad``; returns
    sum_r w_r L_r.  With ``lr > 0`` (one row) the plain SGD step is applied instead."""
    forward(x, xo, params, spec, acts, rows, False, dropout, masks, rng)
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    total = output_delta(acts, rows * spec[last, A_OFF], y, yo, w, wo, rows, n_out, inv_norm,
                         spec[last, ACT], loss, True)
    backward(x, xo, params, grad, spec, acts, tmp, rows, dropout, masks, lr)
    return total


@njit(**JIT)
def gather_rows(Xf, Yf, sw, order, start, rows, n_in, n_out, xb, yb, wbuf):
    """Copy the rows ``order[start:start+rows]`` of the flat data (and their sample weights,
    when ``sw`` is not empty) into the batch buffers; returns the batch's total weight."""
    weighted = sw.shape[0] > 0
    total = 0.0
    for k in range(rows):
        i = order[start + k]
        xb[k * n_in:(k + 1) * n_in] = Xf[i * n_in:(i + 1) * n_in]
        yb[k * n_out:(k + 1) * n_out] = Yf[i * n_out:(i + 1) * n_out]
        if weighted:
            wbuf[k] = sw[i]
            total += sw[i]
    return total if weighted else float(rows)


@njit(**JIT)
def train_epoch(X, Y, sw, params, grad, state, spec, loss, opt, hyper, counter,
                batch_size, shuffle, rng, order, xbuf, ybuf, wbuf, acts, tmp, dropout, masks):
    """One epoch of mini-batch training; returns the epoch's mean loss (NaN on divergence).

    ``order`` (int64, length N) is the visiting order, shuffled in place from ``rng`` when
    ``shuffle``; ``counter[0]`` counts updates (Adam's t).  The epoch loss is the mean over
    samples of each batch's loss at the time it was seen, including the L2 penalty, as
    scikit-learn reports it.  When a batch's loss is not finite the epoch stops and returns
    NaN.  Plain SGD takes the fused path where it can (see :mod:`.backward`).

    A batch is read where it lies (in order, or a single row) or gathered into
    ``xbuf``/``ybuf``/``wbuf`` (shuffled mini-batches).
    """
    X, Y, sw, params, grad, state = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(grad), borrow(state)
    spec, hyper, counter, rng, order = borrow(spec), borrow(hyper), borrow(counter), \
        borrow(rng), borrow(order)
    xbuf, ybuf, wbuf, acts, tmp, dropout, masks = borrow(xbuf), borrow(ybuf), borrow(wbuf), \
        borrow(acts), borrow(tmp), borrow(dropout), borrow(masks)
    n, n_in = X.shape
    n_out = Y.shape[1]
    Xf = X.reshape(X.size)
    Yf = Y.reshape(Y.size)
    xb = xbuf.reshape(xbuf.size)
    yb = ybuf.reshape(ybuf.size)
    if shuffle:
        shuffle_order(order, rng)
    weighted = sw.shape[0] > 0
    fusable = (opt == SGD and hyper[H_MOMENTUM] == 0.0 and hyper[H_CLIP] == 0.0
               and hyper[H_ALPHA] == 0.0)
    lr = params.dtype.type(hyper[H_LR])
    no_lr = params.dtype.type(0)
    alpha = hyper[H_ALPHA]
    last = spec.shape[0] - 1
    zo_last = spec[last, A_OFF]
    total = 0.0
    for start in range(0, n, batch_size):
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
        fused = fusable and fused_update_possible(spec, rows)
        # the batch: forward, fused loss and output delta, backward (and update)
        forward(xs, xo, params, spec, acts, rows, False, dropout, masks, rng)
        batch_loss = output_delta(acts, rows * zo_last, ys, yo, ws, wo, rows, n_out, 1.0 / norm,
                                  spec[last, ACT], loss, True) / norm
        backward(xs, xo, params, grad, spec, acts, tmp, rows, dropout, masks,
                 lr if fused else no_lr)
        counter[0] += 1
        if not fused:
            if alpha > 0.0:
                batch_loss += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm) / norm
            if np.isfinite(batch_loss):
                apply_update(opt, params, grad, state, hyper, counter[0])
        if not np.isfinite(batch_loss):
            return np.nan
        total += batch_loss * rows
    return total / n


@njit(**JIT)
def shard_gradient(X, Y, sw, order, start, rows, params, grad, spec, loss, xbuf, ybuf, wbuf,
                   acts, tmp, dropout, masks, rng):
    """Unnormalized gradient sum_r w_r dL_r of rows ``order[start:start+rows]`` of (X, Y)
    into ``grad``; returns (sum_r w_r L_r, sum_r w_r).  Zero rows give zeros.  This is one
    rank's share of a data-parallel step (:mod:`fastbp.distributed`), summed across ranks
    before the division by the total weight."""
    X, Y, sw, order, params, grad = borrow(X), borrow(Y), borrow(sw), borrow(order), \
        borrow(params), borrow(grad)
    spec, xbuf, ybuf, wbuf, acts, tmp, dropout, masks, rng = borrow(spec), borrow(xbuf), \
        borrow(ybuf), borrow(wbuf), borrow(acts), borrow(tmp), borrow(dropout), \
        borrow(masks), borrow(rng)
    if rows == 0:
        grad[:] = 0
        return 0.0, 0.0
    n_in = X.shape[1]
    n_out = Y.shape[1]
    Xf = X.reshape(X.size)
    Yf = Y.reshape(Y.size)
    xb = xbuf.reshape(xbuf.size)
    yb = ybuf.reshape(ybuf.size)
    weighted = sw.shape[0] > 0
    total_w = gather_rows(Xf, Yf, sw, order, start, rows, n_in, n_out, xb, yb, wbuf)
    w = wbuf if weighted else sw
    value = batch_gradient(xb, 0, yb, 0, w, 0, params, grad, spec, loss, acts, tmp, rows, 1.0,
                           dropout, masks, rng, params.dtype.type(0))
    return value, total_w


@njit(**JIT)
def loss_and_gradient(X, Y, sw, params, grad, spare, spec, loss, alpha, acts, tmp, chunk):
    """Mean loss (plus alpha/2 |W|^2 / N) over the whole data set and its gradient in ``grad``.

    Works through the data ``chunk`` rows at a time (``acts``/``tmp`` sized for ``chunk``),
    summing each chunk's gradient (computed into ``spare``) into ``grad``.
    """
    X, Y, sw, params, grad, spare = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(grad), borrow(spare)
    spec, acts, tmp = borrow(spec), borrow(acts), borrow(tmp)
    n, n_in = X.shape
    n_out = Y.shape[1]
    Xf = X.reshape(X.size)
    Yf = Y.reshape(Y.size)
    weighted = sw.shape[0] > 0
    norm = float(n)
    if weighted:
        norm = 0.0
        for k in range(n):
            norm += sw[k]
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    no_lr = params.dtype.type(0)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        target = grad if start == 0 else spare
        total += batch_gradient(Xf, start * n_in, Yf, start * n_out, sw, start, params,
                                target, spec, loss, acts, tmp, rows, 1.0 / norm, no_dropout,
                                acts, rng, no_lr)
        if start > 0:
            for k in range(grad.shape[0]):
                grad[k] += spare[k]
    value = total / norm
    if alpha > 0.0:
        value += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm) / norm
    return value


@njit(**JIT)
def all_finite(X):
    """True when no entry of X is NaN or infinite."""
    s = X.dtype.type(0)
    for v in X.reshape(X.size):
        s += v * 0  # stays 0 unless some v is NaN or +-inf
    return s == 0


@njit(**JIT)
def predict_into(X, params, spec, out):
    """Output activations of every row of ``X`` (N, n_in) into ``out`` (N, n_out).

    Returns False, without computing anything, when ``X`` holds a NaN or an infinity.
    """
    X, params, spec, out = borrow(X), borrow(params), borrow(spec), borrow(out)
    if not all_finite(X):
        return False
    n, n_in = X.shape
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    chunk = min(n, 256)
    acts = np.empty(chunk * (spec[last, A_OFF] + n_out), dtype=params.dtype)
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    Xf = X.reshape(X.size)
    of = out.reshape(out.size)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(Xf, start * n_in, params, spec, acts, rows, True, no_dropout, acts, rng)
        zo = rows * spec[last, A_OFF]
        of[start * n_out:(start + rows) * n_out] = acts[zo:zo + rows * n_out]
    return True


@njit(**JIT)
def evaluate(X, Y, sw, params, spec, loss, out, acts):
    """Mean loss over (X, Y) (no penalty) with the output activations written to ``out``."""
    X, Y, sw, params, spec, out, acts = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(spec), borrow(out), borrow(acts)
    n, n_in = X.shape
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    width = spec[last, A_OFF] + n_out
    chunk = acts.shape[0] // width
    weighted = sw.shape[0] > 0
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    Xf = X.reshape(X.size)
    Yf = Y.reshape(Y.size)
    of = out.reshape(out.size)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(Xf, start * n_in, params, spec, acts, rows, False, no_dropout, acts, rng)
        zo = rows * spec[last, A_OFF]
        total += output_delta(acts, zo, Yf, start * n_out, sw, start, rows, n_out, 1.0,
                              spec[last, ACT], loss, False)
        activate(acts, zo, rows * n_out, n_out, spec[last, ACT])
        of[start * n_out:(start + rows) * n_out] = acts[zo:zo + rows * n_out]
    norm = float(n)
    if weighted:
        norm = 0.0
        for k in range(n):
            norm += sw[k]
    return total / norm
