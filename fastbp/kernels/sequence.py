"""Networks that start with recurrent layers: batch, epoch, gradient, prediction and
evaluation kernels over sequences (the counterparts of :mod:`.epoch` for dense networks, kept
apart so that the dense kernels stay as they are).

Data.  A sequence sample is one row of a 2-D float array: its length, then its steps x
features values (``Network`` packs ``(n, steps, features)`` arrays and ``lengths`` so), so
shuffling, validation splits and MPI shards carry the lengths along.  Targets are one row per
sample: ``n_out`` values (many-to-one) or steps x ``n_out`` (when the last recurrent layer
returns sequences).

A batch of B samples of T steps is gathered *time-major* into the scratch vector (row (t, b)
at t*B + b), steps past a sample's length as zeros (so NaN there is ignored).  The recurrent
rows (a prefix of the layer table, :mod:`.layers.recurrent`) run over it; the rows after them
(the *tail*: dense rows and layer norms) see R rows: B (the last recurrent layer's last step,
each sample's own; for the reverse direction its final state, at step 0) or T*B (every step,
weighted 0 past a sample's length).  The tail's blocks in ``acts`` start at its first row,
whose ``A_OFF`` is 0.  The loss of a batch is the weighted mean over its valid steps (or its
samples).

Two cores for one batch.  From ``SPLIT_MIN_BATCH`` sequences a training batch is split in two
halves (its first ceil(B/2) samples and the rest), each gathered, run forward and back on its
own scratch vector into its own gradient, scaled by the whole batch's weight; the two
gradients are added and one update follows (:func:`train_epoch`).  ``fit`` runs the halves in
two threads at once, which meet at a barrier after the halves and after the update
(:mod:`.sync`); where the fit has one core (one CPU, or ``fit_many``'s workers) one thread
computes them in turn, the same sums in the same order, so the bits never depend on the
cores.  Dropout masks are keyed by the sample's position in the whole batch, so they do not
depend on the split either.

Scratch vector layout for B and T (all sizes linear in B: a vector sized for the largest
batch fits every smaller one): XB (T*B*I), YB (R*n_out), WB (R row weights), LENS (B), then
per recurrent row its output OUT, the gradient DOUT and dropout factors MASK ((T*B, D*H)
each), LAST (B, D*H), and per direction :func:`.layers.recurrent.direction_size` values.
"""
import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE, PREDICT_CHUNK
from .activations import U, activate, backprop_activation, keep_pre, undo_dropout
from .borrow import borrow, borrow_readonly
from .codes import (A_OFF, ACT, CELL_ACT, DENSE, DIRS, EVAL, KIND, LSTM, N_IN, N_OUT, RNN,
                    SEQ, T_OFF, W_OFF)
from .layers import dense, norm
from .layers.recurrent import (backward_direction, direction_size, forward_direction,
                               n_gates, zero_fill)
from .losses import loss_param, output_delta
from .model import add_l2
from .optimizers import clip_by_global_norm, update
from .rng import keyed, uniform_at
from .sync import meet

#: sequence steps per chunk of a prediction (bounds its scratch vector)
PREDICT_STEPS = 8192
from .rng import shuffle as shuffle_order


@njit(**JIT)
def n_recurrent(spec):
    """Number of recurrent rows (they come first)."""
    L = 0
    while L < spec.shape[0] and RNN <= spec[L, KIND] <= LSTM:
        L += 1
    return L


@njit(**JIT)
def tail_rows(spec, B, T):
    """Rows the tail works on: T*B when the last recurrent row returns sequences, else B."""
    L = n_recurrent(spec)
    return T * B if spec[L - 1, SEQ] == 1 else B


@njit(**JIT)
def _layer_size(spec, l, B, T):
    DH = spec[l, N_OUT]
    D = spec[l, DIRS]
    return 3 * T * B * DH + B * DH + D * direction_size(spec[l, KIND], DH // D, B, T,
                                                       spec[l, N_IN])


@njit(**JIT)
def data_offsets(spec, B, T):
    """(YB, WB, LENS, first layer) offsets of the scratch vector (XB is at 0)."""
    R = tail_rows(spec, B, T)
    yb = T * B * spec[0, N_IN]
    wb = yb + R * spec[spec.shape[0] - 1, N_OUT]
    lens = wb + R
    return yb, wb, lens, lens + B


@njit(**JIT)
def layer_offset(spec, l, B, T):
    """Offset of recurrent row ``l``'s scratch (its OUT block; DOUT, MASK, LAST follow)."""
    o = data_offsets(spec, B, T)[3]
    for k in range(l):
        o += _layer_size(spec, k, B, T)
    return o


@njit(**JIT)
def scratch_size(spec, B, T):
    """Length of the scratch vector for batches of up to B samples of T steps."""
    return layer_offset(spec, n_recurrent(spec), B, T)


@njit(**JIT)
def tail_width(spec):
    """Units per tail row of the activation buffer."""
    last = spec.shape[0] - 1
    return spec[last, A_OFF] + spec[last, N_OUT]


# --- gathering ---------------------------------------------------------------------------------
@njit(**JIT)
def gather(X, Y, sw, order, start, B, T, spec, s):
    """Samples ``order[start:start+B]`` (rows start.. when ``order`` is empty) of the packed
    data into the scratch vector, time-major, zeros past each length; row weights (0 past a
    length).  Returns the batch's total weight."""
    I = spec[0, N_IN]
    per_step = spec[n_recurrent(spec) - 1, SEQ] == 1
    n_out = Y.shape[1] // T if per_step else Y.shape[1]
    yb, wb, lo, _ = data_offsets(spec, B, T)
    in_place = order.shape[0] == 0
    weighted = sw.shape[0] > 0
    zero = s.dtype.type(0)
    total = 0.0
    for k in range(B):
        i = start + k if in_place else order[start + k]
        ln = int(X[i, 0])
        s[U(lo + k)] = ln
        w = sw[i] if weighted else s.dtype.type(1)
        for t in range(T):
            d = U((t * B + k) * I)
            if t < ln:
                src = U(1 + t * I)
                for p in range(I):
                    s[d + U(p)] = X[i, src + U(p)]
            else:
                for p in range(I):
                    s[d + U(p)] = zero
        if per_step:
            for t in range(T):
                d = U(yb + (t * B + k) * n_out)
                if t < ln:
                    for j in range(n_out):
                        s[d + U(j)] = Y[i, U(t * n_out + j)]
                    s[U(wb + t * B + k)] = w
                else:
                    for j in range(n_out):
                        s[d + U(j)] = zero
                    s[U(wb + t * B + k)] = zero
            total += float(w) * ln
        else:
            d = U(yb + k * n_out)
            for j in range(n_out):
                s[d + U(j)] = Y[i, j]
            s[U(wb + k)] = w
            total += float(w)
    return total


@njit(**JIT)
def gather_inputs(X, start, B, T, spec, s):
    """The inputs (and lengths) of rows start..start+B of the packed X, as :func:`gather`."""
    I = spec[0, N_IN]
    lo = data_offsets(spec, B, T)[2]
    zero = s.dtype.type(0)
    for k in range(B):
        i = start + k
        ln = int(X[i, 0])
        s[U(lo + k)] = ln
        for t in range(T):
            d = U((t * B + k) * I)
            if t < ln:
                src = U(1 + t * I)
                for p in range(I):
                    s[d + U(p)] = X[i, src + U(p)]
            else:
                for p in range(I):
                    s[d + U(p)] = zero


@njit(**JIT)
def drop(a, ao, m, mo, B, T, n, rate, key, t, l, pos0):
    """Inverted dropout of (T*B, n) time-major rows at ``a[ao:]`` (a recurrent layer's
    output, or a tail row's: between layers, never on the recurrent connection), the factors
    to ``m[mo:]``.  Sample b's factors are drawn from the stream keyed by (key, update t,
    layer row l, position pos0 + b in the global batch), step by step: the same masks
    whatever the batch's split into chunks or MPI ranks."""
    keep = 1.0 - rate
    scale = a.dtype.type(1.0 / keep)
    zero = a.dtype.type(0)
    for b in range(B):
        st = keyed(key, t * 1024 + l, pos0 + b)
        for q in range(T):
            o = U((q * B + b) * n)
            for k in range(n):
                f = scale if uniform_at(st, q * n + k) < keep else zero
                m[U(mo) + o + U(k)] = f
                a[U(ao) + o + U(k)] *= f


# --- forward and backward --------------------------------------------------------------------
@njit(**JIT)
def forward(params, bufs, spec, s, B, T, acts, pre, stats, mode, activate_output, dropout,
            masks, key, t_upd, pos0):
    """Forward pass of a gathered batch: recurrent rows over time, then the tail (see the
    module docstring); the output row's block of ``acts`` as in :func:`.model.forward`."""
    L = n_recurrent(spec)
    use_dropout = dropout.shape[0] > 0
    lo = data_offsets(spec, B, T)[2]
    TB = T * B
    xo = 0
    for l in range(L):
        base = layer_offset(spec, l, B, T)
        kind = spec[l, KIND]
        D = spec[l, DIRS]
        DH = spec[l, N_OUT]
        H = DH // D
        n_in = spec[l, N_IN]
        P = n_gates(kind) * H * (n_in + H + 2)
        first_dir = base + 3 * TB * DH + B * DH
        dsize = direction_size(kind, H, B, T, n_in)
        for d in range(D):
            db = first_dir + d * dsize
            forward_direction(kind, spec[l, CELL_ACT], d == 1, s, xo, n_in, params,
                              spec[l, W_OFF] + d * P, H, B, T, lo, db)
            for r in range(TB):  # states -> the layer's output columns
                src = U(db + r * H)
                dst = U(base + r * DH + d * H)
                for j in range(H):
                    s[dst + U(j)] = s[src + U(j)]
        if spec[l, SEQ] == 0:  # the last step of each sample (reverse: its final state)
            last = base + 3 * TB * DH
            for b in range(B):
                t_end = int(s[U(lo + b)]) - 1
                for d in range(D):
                    t = t_end if d == 0 else 0
                    src = U(base + (t * B + b) * DH + d * H)
                    dst = U(last + b * DH + d * H)
                    for j in range(H):
                        s[dst + U(j)] = s[src + U(j)]
            if use_dropout and dropout[l] > 0.0:
                drop(s, last, s, base + 2 * TB * DH, B, 1, DH, dropout[l], key, t_upd, l,
                     pos0)
        elif use_dropout and dropout[l] > 0.0:
            drop(s, base, s, base + 2 * TB * DH, B, T, DH, dropout[l], key, t_upd, l, pos0)
        xo = base
    # the tail
    R = tail_rows(spec, B, T)
    base = layer_offset(spec, L - 1, B, T)
    io = base if spec[L - 1, SEQ] == 1 else base + 3 * TB * spec[L - 1, N_OUT]
    n_layers = spec.shape[0]
    below = borrow_readonly(acts)  # what a dense row reads (one type with model.forward's)
    for l in range(L, n_layers):
        if l == L:
            dense.forward(borrow_readonly(s), io, params, spec, l, acts, R)
        elif spec[l, KIND] == DENSE:
            dense.forward(below, R * spec[l - 1, A_OFF], params, spec, l, acts, R)
        else:
            norm.forward(acts, R * spec[l - 1, A_OFF], params, bufs, spec, l, acts, stats, R,
                         mode)
        zo = R * spec[l, A_OFF]
        n = spec[l, N_OUT]
        if l < n_layers - 1:
            if pre.shape[0] > 0:
                keep_pre(acts, pre, zo, R * n)
            activate(acts, zo, R * n, n, spec[l, ACT])
            if use_dropout and dropout[l] > 0.0:
                drop(acts, zo, masks, zo, B, R // B, n, dropout[l], key, t_upd, l, pos0)
        elif activate_output:
            activate(acts, zo, R * n, n, spec[l, ACT])


@njit(**JIT)
def backward(params, grad, spec, s, B, T, acts, pre, stats, tmp, mode, dropout, masks,
             bptt):
    """Gradient of the batch loss w.r.t. every parameter into ``grad``; on entry the output
    row's block of ``acts`` holds the output delta (as :func:`.model.backward`)."""
    L = n_recurrent(spec)
    use_dropout = dropout.shape[0] > 0
    lo = data_offsets(spec, B, T)[2]
    TB = T * B
    R = tail_rows(spec, B, T)
    top = layer_offset(spec, L - 1, B, T)
    DHt = spec[L - 1, N_OUT]
    io = top if spec[L - 1, SEQ] == 1 else top + 3 * TB * DHt
    no_lr = params.dtype.type(0)
    below = borrow_readonly(acts)  # a dense row's input, read only (see forward)
    for l in range(spec.shape[0] - 1, L - 1, -1):
        if l == L:
            dense.backward(borrow_readonly(s), io, params, grad, spec, l, acts, tmp, R, no_lr)
            break
        so = R * spec[l - 1, A_OFF]
        if spec[l, KIND] == DENSE:
            dense.backward(below, so, params, grad, spec, l, acts, tmp, R, no_lr)
        else:
            norm.backward(acts, so, params, grad, spec, l, acts, tmp, stats, R, mode)
        count = R * spec[l, N_IN]
        if use_dropout and dropout[l - 1] > 0.0:
            undo_dropout(tmp, 0, acts, so, masks, count)
        backprop_activation(tmp, 0, acts, so, pre, count, spec[l - 1, ACT])
    # tmp: dLoss/d(output of the top recurrent row) -> its DOUT block
    dout = top + TB * DHt
    mask = top + 2 * TB * DHt
    drop_top = use_dropout and dropout[L - 1] > 0.0
    if spec[L - 1, SEQ] == 1:
        for k in range(TB * DHt):
            v = tmp[U(k)]
            s[U(dout + k)] = v * s[U(mask + k)] if drop_top else v
    else:
        zero_fill(s, dout, TB * DHt)
        D = spec[L - 1, DIRS]
        H = DHt // D
        for b in range(B):
            t_end = int(s[U(lo + b)]) - 1
            for d in range(D):
                t = t_end if d == 0 else 0
                dst = U(dout + (t * B + b) * DHt + d * H)
                src = U(b * DHt + d * H)
                for j in range(H):
                    v = tmp[src + U(j)]
                    s[dst + U(j)] = v * s[U(mask) + src + U(j)] if drop_top else v
    for l in range(L - 1, -1, -1):
        base = layer_offset(spec, l, B, T)
        kind = spec[l, KIND]
        D = spec[l, DIRS]
        DH = spec[l, N_OUT]
        H = DH // D
        n_in = spec[l, N_IN]
        P = n_gates(kind) * H * (n_in + H + 2)
        first_dir = base + 3 * TB * DH + B * DH
        dsize = direction_size(kind, H, B, T, n_in)
        below = layer_offset(spec, l - 1, B, T) if l > 0 else 0  # input: XB or OUT below
        dx = below + TB * n_in  # DOUT of the row below
        for d in range(D):
            backward_direction(kind, spec[l, CELL_ACT], d == 1, s, below, n_in, params, grad,
                               spec[l, W_OFF] + d * P, H, B, T, lo, first_dir + d * dsize,
                               base + TB * DH, DH, d * H, dx, l > 0, d > 0, bptt)
        if l > 0 and use_dropout and dropout[l - 1] > 0.0:
            m = below + 2 * TB * n_in
            for k in range(TB * n_in):
                s[U(dx + k)] *= s[U(m + k)]


@njit(**JIT)
def batch_gradient(params, bufs, grad, spec, loss, s, B, T, acts, pre, stats, tmp, inv_norm,
                   mode, dropout, masks, key, t_upd, pos0, bptt):
    """Forward, fused loss and output delta (each row scaled by its weight times
    ``inv_norm``), backward, for a gathered batch; returns sum_r w_r L_r."""
    forward(params, bufs, spec, s, B, T, acts, pre, stats, mode, False, dropout, masks, key,
            t_upd, pos0)
    last = spec.shape[0] - 1
    R = tail_rows(spec, B, T)
    yb, wb, _, _ = data_offsets(spec, B, T)
    total = output_delta(acts, R * spec[last, A_OFF], s, yb, s, wb, R,
                         spec[last, N_OUT], inv_norm, spec[last, ACT], loss, True,
                         loss_param(spec))
    backward(params, grad, spec, s, B, T, acts, pre, stats, tmp, mode, dropout, masks, bptt)
    return total


@njit(**JIT)
def steps_of(X, spec):
    return (X.shape[1] - 1) // spec[0, N_IN]


@njit(**JIT_INLINE)
def _finish_step(loss_sum, norm_, params, grad, state, spec, rule, hyper, alpha, clip, counter,
                 t):
    """The end of one update of :func:`train_epoch` (either loop): the batch's mean loss from
    its weighted sum and total weight ``norm_``, plus the L2 term; then, when it is finite,
    the step count, clipping and the update.  Returns the loss (NaN or inf: nothing
    updated)."""
    batch_loss = loss_sum / norm_
    if alpha > 0.0:
        batch_loss += 0.5 * alpha * add_l2(params, grad, spec, alpha / norm_) / norm_
    if not np.isfinite(batch_loss):
        return batch_loss
    counter[0] = t
    if clip > 0.0:
        clip_by_global_norm(grad, clip)
    update(rule, params, grad, state, hyper, t, batch_loss)
    return batch_loss


@njit(**JIT)
def _online(X, Y, sw, params, bufs, grad, state, spec, loss, rule, hyper, alpha, clip, counter,
            shuffle, order, first, stop, s, acts, pre, stats, tmp, dropout, masks, mode, bptt,
            key, T):
    """:func:`train_epoch`'s loop for batches of one sample, with the batch size a constant
    1 where the batch is gathered and its gradient computed, so that the compiled kernels
    are specialized for it (the batch loops folded away)."""
    total = 0.0
    for b in range(first, stop):
        norm_ = gather(X, Y, sw, order if shuffle else order[:0], b, 1, T, spec, s)
        if norm_ <= 0.0:  # nothing to learn from this sample (weight 0)
            continue
        t = counter[0] + 1
        batch_loss = _finish_step(
            batch_gradient(params, bufs, grad, spec, loss, s, 1, T, acts, pre, stats, tmp,
                           1.0 / norm_, mode, dropout, masks, key, t, 0, bptt),
            norm_, params, grad, state, spec, rule, hyper, alpha, clip, counter, t)
        if not np.isfinite(batch_loss):
            return np.nan
        total += batch_loss
    return total


@njit(**JIT)
def batch_weight(X, sw, order, start, B, T, spec):
    """The total weight :func:`gather` returns for the same samples, without gathering."""
    per_step = spec[n_recurrent(spec) - 1, SEQ] == 1
    in_place = order.shape[0] == 0
    weighted = sw.shape[0] > 0
    total = 0.0
    for k in range(B):
        i = start + k if in_place else order[start + k]
        w = float(sw[i]) if weighted else 1.0
        total += w * int(X[i, 0]) if per_step else w
    return total


@njit(**JIT)
def train_epoch(w, nw, sync, losses, X, Y, sw, params, bufs, grad, grad1, state, spec, loss,
                rule, hyper, alpha, clip, counter, batch_size, split, shuffle, rng, order,
                first, stop, s, acts, pre, stats, tmp, dropout, masks, mode, bptt):
    """:func:`.epoch.train_epoch` for packed sequences (``s``: the scratch vector): batches
    ``first`` .. ``stop`` - 1 of the epoch; each batch is gathered, and its loss is the
    weighted mean over its valid steps (samples).

    With ``split`` every batch is two halves, its first ceil(B/2) samples and the rest: the
    gradient of half h goes to ``grad`` (h = 0) or ``grad1`` (h = 1), both scaled by the
    whole batch's weight, then ``grad += grad1`` and one update.  With ``nw`` = 2 this runs
    in two threads at once, worker ``w`` computing half w with its own scratch (``s`` ...
    ``masks``) and meeting the other at :func:`.sync.meet` after the halves and after the
    update (``sync``: a zeroed :data:`.sync.SYNC_SIZE` array; ``losses``: 16 float64, the
    halves' loss sums at 0 and 8); with ``nw`` = 1 one thread computes both halves in turn:
    the same sums in the same order, so the same bits.  Without ``split`` (``nw`` = 1) the
    whole batch is half 0 and ``grad1`` is not used.

    Worker 0 returns the sum over batches of the batch loss times its size (NaN when an
    update diverged, nothing changed by that batch); worker 1 returns 0 (NaN likewise); both
    return -inf when ``sync[ABORT]`` ended a wait (the other thread could not run)."""
    X, Y, sw, params, bufs, grad, grad1, state = borrow(X), borrow(Y), borrow(sw), \
        borrow(params), borrow(bufs), borrow(grad), borrow(grad1), borrow(state)
    spec, hyper, counter, rng, order = borrow(spec), borrow(hyper), borrow(counter), \
        borrow(rng), borrow(order)
    s, acts, pre, stats, tmp, dropout, masks = borrow(s), borrow(acts), borrow(pre), \
        borrow(stats), borrow(tmp), borrow(dropout), borrow(masks)
    n = X.shape[0]
    T = steps_of(X, spec)
    if shuffle and first == 0 and w == 0:
        shuffle_order(order, rng[:1])
    key = rng[1]
    episode = 0
    if nw == 2:  # the other worker reads the shuffled order
        episode += 1
        if not meet(sync, episode, 2):
            return -np.inf
    use = order if shuffle else order[:0]
    total = 0.0
    for b in range(first, stop):
        start = b * batch_size
        rows = min(batch_size, n - start)
        norm_ = batch_weight(X, sw, use, start, rows, T, spec)
        if norm_ <= 0.0:  # nothing to learn from this batch (all weights 0)
            continue
        t = counter[0] + 1
        h0 = (rows + 1) // 2 if split else rows
        for h in range(2 if split else 1):
            if nw == 2 and h != w:
                continue
            target = grad if h == 0 else grad1
            hs = start if h == 0 else start + h0
            hr = h0 if h == 0 else rows - h0
            part = 0.0
            if hr > 0:
                gather(X, Y, sw, use, hs, hr, T, spec, s)
                part = batch_gradient(params, bufs, target, spec, loss, s, hr, T, acts, pre,
                                      stats, tmp, 1.0 / norm_, mode, dropout, masks, key, t,
                                      hs - start, bptt)
            else:
                zero_fill(target, 0, target.shape[0])
            losses[8 * h] = part
        if nw == 2:
            episode += 1
            if not meet(sync, episode, 2):
                return -np.inf
        if w == 0:
            if split:
                for k in range(grad.shape[0]):
                    grad[U(k)] += grad1[U(k)]
            batch_loss = _finish_step(losses[0] + losses[8] if split else losses[0], norm_,
                                      params, grad, state, spec, rule, hyper, alpha, clip,
                                      counter, t)
            losses[1] = batch_loss
            total += batch_loss * rows
        if nw == 2:
            episode += 1
            if not meet(sync, episode, 2):
                return -np.inf
        if not np.isfinite(losses[1]):
            return np.nan
    return total if w == 0 else 0.0


@njit(**JIT)
def train_epoch_online(w, nw, sync, losses, X, Y, sw, params, bufs, grad, grad1, state, spec,
                       loss, rule, hyper, alpha, clip, counter, batch_size, split, shuffle, rng,
                       order, first, stop, s, acts, pre, stats, tmp, dropout, masks, mode,
                       bptt):
    """:func:`train_epoch` for batches of one sequence (``batch_size`` 1, one thread: ``w``,
    ``nw``, ``sync``, ``losses``, ``grad1`` and ``split`` are not used), with the arguments
    of :func:`train_epoch`.  A kernel of its own, so that a fit compiles only the loop it
    runs: with both loops in one kernel, the first recurrent fit compiled both, the online
    one (:func:`_online`, specialized for one sequence) about half of the 128 s of an LSTM's
    first fit with an empty cache."""
    X, Y, sw, params, bufs, grad, state = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(bufs), borrow(grad), borrow(state)
    spec, hyper, counter, rng, order = borrow(spec), borrow(hyper), borrow(counter), \
        borrow(rng), borrow(order)
    s, acts, pre, stats, tmp, dropout, masks = borrow(s), borrow(acts), borrow(pre), \
        borrow(stats), borrow(tmp), borrow(dropout), borrow(masks)
    T = steps_of(X, spec)
    if shuffle and first == 0:
        shuffle_order(order, rng[:1])
    return _online(X, Y, sw, params, bufs, grad, state, spec, loss, rule, hyper, alpha, clip,
                   counter, shuffle, order, first, stop, s, acts, pre, stats, tmp, dropout,
                   masks, mode, bptt, rng[1], T)


@njit(**JIT)
def gradient_sums(X, Y, sw, order, start, count, params, bufs, grad, spare, spec, loss, s,
                  acts, pre, stats, tmp, chunk, mode, dropout, masks, key, t, pos0, bptt):
    """:func:`.epoch.gradient_sums` for packed sequences: (sum w L, sum w) over the valid
    steps (samples) of ``count`` samples from ``start``, the gradient sum into ``grad``."""
    X, Y, sw, order, params, bufs, grad, spare = borrow(X), borrow(Y), borrow(sw), \
        borrow(order), borrow(params), borrow(bufs), borrow(grad), borrow(spare)
    spec, s, acts, pre, stats, tmp, dropout, masks = borrow(spec), borrow(s), borrow(acts), \
        borrow(pre), borrow(stats), borrow(tmp), borrow(dropout), borrow(masks)
    grad[:] = 0
    T = steps_of(X, spec)
    total = 0.0
    total_w = 0.0
    for c in range(start, start + count, chunk):
        rows = min(chunk, start + count - c)
        total_w += gather(X, Y, sw, order, c, rows, T, spec, s)
        target = grad if c == start else spare
        total += batch_gradient(params, bufs, target, spec, loss, s, rows, T, acts, pre,
                                stats, tmp, 1.0, mode, dropout, masks, key, t,
                                pos0 + c - start, bptt)
        if c > start:
            for k in range(grad.shape[0]):
                grad[k] += spare[k]
    return total, total_w


@njit(**JIT)
def _outputs(spec, s, B, T, acts, out, start):
    """The tail's output rows of a batch into ``out`` (n, n_out) or (n, T*n_out) (zeros
    past each length)."""
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    R = tail_rows(spec, B, T)
    zo = R * spec[last, A_OFF]
    lo = data_offsets(spec, B, T)[2]
    zero = out.dtype.type(0)
    if R == B:
        for b in range(B):
            for j in range(n_out):
                out[start + b, j] = acts[U(zo + b * n_out + j)]
        return
    for b in range(B):
        ln = int(s[U(lo + b)])
        for t in range(T):
            for j in range(n_out):
                out[start + b, t * n_out + j] = (acts[U(zo + (t * B + b) * n_out + j)]
                                                 if t < ln else zero)


@njit(**JIT)
def predict_into(X, params, bufs, spec, out):
    """Output activations of every packed sequence of ``X`` into ``out`` ((n, n_out), or
    (n, T*n_out) for sequence outputs), ``PREDICT_CHUNK`` samples (at most
    ``PREDICT_STEPS`` steps) at a time.  Returns False,
    without computing anything, when a valid step holds a NaN or an infinity."""
    X, params, bufs, spec, out = borrow(X), borrow(params), borrow(bufs), borrow(spec), \
        borrow(out)
    n = X.shape[0]
    T = steps_of(X, spec)
    I = spec[0, N_IN]
    for i in range(n):
        ln = int(X[i, 0])
        acc = X.dtype.type(0)
        for k in range(1, 1 + ln * I):
            acc += X[i, k] * 0
        if acc != 0:
            return False
    chunk = max(1, min(PREDICT_CHUNK, n, PREDICT_STEPS // T))
    R = tail_rows(spec, chunk, T)
    width = tail_width(spec)
    stats_w = 0
    for l in range(spec.shape[0]):
        if spec[l, KIND] != DENSE and not (RNN <= spec[l, KIND] <= LSTM):
            stats_w = max(stats_w, spec[l, T_OFF] + 2 * spec[l, N_OUT])
    n_s = scratch_size(spec, chunk, T)
    buf = np.empty(n_s + R * width + R * stats_w, dtype=params.dtype)
    s = buf[:n_s]
    acts = buf[n_s:n_s + R * width]
    stats = buf[n_s + R * width:]
    none = acts[:0]
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        gather_inputs(X, start, rows, T, spec, s)
        forward(params, bufs, spec, s, rows, T, acts, none, stats, EVAL, True, none, none,
                np.uint64(0), 0, 0)
        _outputs(spec, s, rows, T, acts, out, start)
    return True


@njit(**JIT)
def evaluate(X, Y, sw, params, bufs, spec, loss, out, s, acts, stats, chunk):
    """(weighted loss sum, weight sum) over the valid steps (samples) of (X, Y), evaluation
    mode, with the output activations written to ``out`` as :func:`predict_into`."""
    X, Y, sw, params, bufs, spec, out = borrow(X), borrow(Y), borrow(sw), borrow(params), \
        borrow(bufs), borrow(spec), borrow(out)
    n = X.shape[0]
    T = steps_of(X, spec)
    last = spec.shape[0] - 1
    n_out = spec[last, N_OUT]
    none = acts[:0]
    no_order = np.empty(0, dtype=np.int64)
    total = 0.0
    total_w = 0.0
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        total_w += gather(X, Y, sw, no_order, start, rows, T, spec, s)
        forward(params, bufs, spec, s, rows, T, acts, none, stats, EVAL, False, none, none,
                np.uint64(0), 0, 0)
        R = tail_rows(spec, rows, T)
        yb, wb, _, _ = data_offsets(spec, rows, T)
        zo = R * spec[last, A_OFF]
        total += output_delta(acts, zo, s, yb, s, wb, R, n_out, 1.0,
                              spec[last, ACT], loss, False, loss_param(spec))
        activate(acts, zo, R * n_out, n_out, spec[last, ACT])
        _outputs(spec, s, rows, T, acts, out, start)
    return total, total_w


from .._cache import load_without_refresh  # noqa: E402  (see fastbp._cache)

load_without_refresh(globals())
