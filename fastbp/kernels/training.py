"""Whole-batch and whole-epoch kernels: everything between two Python calls.

- :func:`batch_gradient`: forward, fused loss/output delta, backward for one batch.
- :func:`train_epoch`: shuffle (seeded), then for every mini-batch: gather, gradient, L2,
  update.  Batch size 1 is FANN's online (incremental) training, batch size N full batch.
- :func:`loss_and_gradient`: loss and gradient over a whole data set, in chunks (L-BFGS, RPROP,
  gradient checks).
- :func:`predict_into` / :func:`evaluate`: outputs (and loss) of a data set, in chunks.

Nothing here allocates inside its loops; the buffers come from the caller (see
:mod:`fastbp.network`), except a few tiny fixed-size ones per call.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import activate
from .backward import backward
from .codes import ACT, H_ALPHA, N_OUT, A_OFF
from .forward import forward, layer_block
from .losses import output_delta
from .rng import shuffle as shuffle_order
from .updates import add_l2, apply_update


@njit(**JIT)
def batch_gradient(x, y, w, params, grad, spec, loss, acts, tmp, rows, inv_norm,
                   dropout, masks, rng):
    """Gradient of one batch's loss, written into ``grad``; returns sum_r w_r L_r."""
    forward(x, params, spec, acts, rows, False, dropout, masks, rng)
    last = spec.shape[0] - 1
    Z = layer_block(acts, spec, last, rows)
    total = output_delta(Z, y, w, inv_norm, spec[last, ACT], loss, True)
    backward(x, params, grad, spec, acts, tmp, rows, dropout, masks)
    return total


@njit(**JIT)
def _norm(sw, start, rows, weighted, order, shuffled):
    if not weighted:
        return float(rows)
    s = 0.0
    for k in range(start, start + rows):
        s += sw[order[k]] if shuffled else sw[k]
    return s


@njit(**JIT)
def train_epoch(X, Y, sw, params, grad, state, spec, loss, opt, hyper, counter,
                batch_size, shuffle, rng, order, xbuf, ybuf, wbuf, acts, tmp, dropout, masks):
    """One epoch of mini-batch training; returns the epoch's mean loss (NaN on divergence).

    ``order`` (int64, length N) is the visiting order, shuffled in place from ``rng`` when
    ``shuffle``; ``counter[0]`` counts updates (Adam's t).  The epoch loss is the mean over
    samples of each batch's loss at the time it was seen, including the L2 penalty, as
    scikit-learn reports it.  When a batch's loss is not finite the epoch stops before that
    batch's update and returns NaN.
    """
    n = X.shape[0]
    if shuffle:
        shuffle_order(order, rng)
    weighted = sw.shape[0] > 0
    alpha = hyper[H_ALPHA]
    total = 0.0
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        if not shuffle:
            x = X[start:start + rows]
            y = Y[start:start + rows]
            w = sw[start:start + rows] if weighted else sw
        elif rows == 1:
            i = order[start]
            x = X[i:i + 1]
            y = Y[i:i + 1]
            w = sw[i:i + 1] if weighted else sw
        else:
            for k in range(rows):
                i = order[start + k]
                xbuf[k, :] = X[i, :]
                ybuf[k, :] = Y[i, :]
                if weighted:
                    wbuf[k] = sw[i]
            x = xbuf[:rows]
            y = ybuf[:rows]
            w = wbuf[:rows] if weighted else sw
        norm = _norm(sw, start, rows, weighted, order, shuffle)
        if norm <= 0.0:  # every sample of the batch has weight 0: nothing to learn from
            continue
        batch_loss = batch_gradient(x, y, w, params, grad, spec, loss, acts, tmp, rows,
                                    1.0 / norm, dropout, masks, rng) / norm
        if alpha > 0.0:
            batch_loss += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm) / norm
        if not np.isfinite(batch_loss):
            return np.nan
        total += batch_loss * rows
        counter[0] += 1
        apply_update(opt, params, grad, state, hyper, counter[0])
    return total / n


@njit(**JIT)
def loss_and_gradient(X, Y, sw, params, grad, spare, spec, loss, alpha, acts, tmp, chunk):
    """Mean loss (plus alpha/2 |W|^2 / N) over the whole data set and its gradient in ``grad``.

    Works through the data ``chunk`` rows at a time (``acts``/``tmp`` sized for ``chunk``),
    summing each chunk's gradient (computed into ``spare``) into ``grad``.
    """
    n = X.shape[0]
    weighted = sw.shape[0] > 0
    norm = float(n)
    if weighted:
        norm = sw.sum()
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        w = sw[start:start + rows] if weighted else sw
        target = grad if start == 0 else spare
        total += batch_gradient(X[start:start + rows], Y[start:start + rows], w, params,
                                target, spec, loss, acts, tmp, rows, 1.0 / norm,
                                no_dropout, acts, rng)
        if start > 0:
            for k in range(grad.shape[0]):
                grad[k] += spare[k]
    value = total / norm
    if alpha > 0.0:
        value += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm) / norm
    return value


@njit(**JIT)
def all_finite(X):
    """True when no entry of the 2-D array X is NaN or infinite."""
    for r in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not np.isfinite(X[r, j]):
                return False
    return True


@njit(**JIT)
def predict_into(X, params, spec, out):
    """Output activations of every row of ``X`` into ``out`` (N, n_out).

    Returns False, without computing anything, when ``X`` holds a NaN or an infinity.
    """
    if not all_finite(X):
        return False
    n = X.shape[0]
    last = spec.shape[0] - 1
    chunk = min(n, 256)
    acts = np.empty(chunk * (spec[last, A_OFF] + spec[last, N_OUT]), dtype=params.dtype)
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(X[start:start + rows], params, spec, acts, rows, True, no_dropout, acts, rng)
        out[start:start + rows] = layer_block(acts, spec, last, rows)
    return True


@njit(**JIT)
def evaluate(X, Y, sw, params, spec, loss, out, acts):
    """Mean loss over (X, Y) (no penalty) with the output activations written to ``out``."""
    n = X.shape[0]
    last = spec.shape[0] - 1
    chunk = acts.shape[0] // (spec[last, A_OFF] + spec[last, N_OUT])
    weighted = sw.shape[0] > 0
    no_dropout = np.empty(0)
    rng = np.zeros(1, np.uint64)
    total = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        forward(X[start:start + rows], params, spec, acts, rows, False, no_dropout, acts, rng)
        Z = layer_block(acts, spec, last, rows)
        w = sw[start:start + rows] if weighted else sw
        total += output_delta(Z, Y[start:start + rows], w, 1.0, spec[last, ACT], loss, False)
        activate(Z, spec[last, ACT])
        out[start:start + rows] = Z
    return total / (sw.sum() if weighted else n)
