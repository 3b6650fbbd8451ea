"""The training loop: one loop for every optimizer, locally and under MPI.

Python runs *between* slices of compiled work only.  How an epoch's gradients come about is
a *stepper*:

- local mini-batches: :func:`fastbp.kernels.epoch.train_epoch` runs whole slices of the
  epoch (shuffle, batches, forward, backward, update) in one call;
- full batch (RPROP and every full-batch rule): one gradient over all rows per epoch, then
  the update;
- L-BFGS: ``scipy.optimize.minimize`` on the same full-batch loss and gradient;
- under MPI (:mod:`fastbp.distributed`), mini-batches step in Python, one ``Allreduce`` of
  [gradient sum | loss sum | weight sum | rows] per step: MPI is only how a batch gradient is
  reduced (the ``reducer``).

Everything else -- snapshots and divergence, validation, schedules, early stopping,
callbacks, checkpoints, warm starts -- is the same code for all of them.
"""
import threading
import time

import numpy as np

from ._config import CHUNK_ROWS, EPOCH_SLICE_MACS, SPLIT_MIN_BATCH
from ._blas import blas_threads_local
from ._threads import _ONE_THREAD, blas_threads_for, cores_for_one_fit
from ._validation import (check_number, check_positive_int, check_sample_weight,
                          check_targets, check_X, per_hidden_layer, read_only)
from .datasets import stratified_split
from .errors import DivergenceError
from .kernels import codes
from .kernels.epoch import finish_gradient, train_epoch
from .kernels.optimizers import clip_by_global_norm, update
from .kernels.rng import shuffle as shuffle_order
from .optimizers import LBFGS, get_optimizer
from .schedules import get_schedule
from .sparse import SparseRows
from .sequences import check_bptt
from .workspace import Workspace

MONITORS = ("loss", "val_loss", "val_score")


class History:
    """Per-epoch record of a ``fit``.

    Lists with one entry per epoch: ``loss`` (training loss, including the L2 penalty),
    ``val_loss`` and ``val_score`` (accuracy for classifiers, R^2 otherwise; NaN without
    validation data), ``learning_rate`` and ``seconds``.  ``stop_reason`` says why training
    ended; ``best_epoch`` (1-based) is the epoch whose weights the network kept when early
    stopping restored them.
    """

    KEYS = ("loss", "val_loss", "val_score", "learning_rate", "seconds")

    def __init__(self):
        for k in self.KEYS:
            setattr(self, k, [])
        self.stop_reason = None
        self.optimizer_result = None  # L-BFGS: SciPy's OptimizeResult
        self.best_epoch = None
        self.stopped_early = False

    def append(self, logs):
        for k in self.KEYS:
            getattr(self, k).append(float(logs.get(k, np.nan)))

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(self.loss)

    def __len__(self):
        return self.epochs

    def __getitem__(self, key):
        if key not in self.KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def as_dict(self):
        return {k: list(getattr(self, k)) for k in self.KEYS}

    def __repr__(self):
        last = f", loss={self.loss[-1]:.6g}" if self.loss else ""
        return f"History(epochs={self.epochs}{last}, stop_reason={self.stop_reason!r})"



class LocalReducer:
    """The reducer of a single process: sums and gathers are identities."""

    size = 1
    rank = 0

    def sum(self, buf):
        """Add ``buf`` across ranks, in place."""

    def gather(self, obj):
        """The list of every rank's ``obj``, in rank order."""
        return [obj]

    def any(self, flag):
        return bool(flag)

    def bcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        return obj

    def bcast_array(self, arr):
        """Rank 0's values of ``arr`` on every rank, in place."""

    def start(self, net, signature):
        """Check that every rank trains the same way (``signature()``: a dict) and give all
        rank 0's weights."""

    def warm(self, compile_kernels):
        """Compile the kernels before ranks run together (one process: on first use)."""


def _seed_states(seed, reducer):
    """(shuffle state, dropout key) from ``seed``: the key is the same on every rank, the
    shuffling stream is the rank's own (rank 0's is the single-process one).  ``seed=None``
    draws fresh entropy (rank 0's)."""
    if seed is None:
        seed = reducer.bcast(int(np.random.SeedSequence().entropy))
    states = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    if reducer.rank > 0:
        states[0] = np.random.SeedSequence(seed, spawn_key=(reducer.rank,)).generate_state(
            1, dtype=np.uint64)[0]
    return states, seed


def _class_labels(net, Y):
    """Integer labels for a stratified split, or None when stratifying makes no sense."""
    if Y.shape[1] != net.n_outputs:  # targets per step: no stratification
        return None
    code = net.layout.activation_codes[-1]
    if code == codes.SOFTMAX or (net.is_classifier and Y.shape[1] > 1
                                 and np.all(Y.sum(axis=1) == 1)):
        return Y.argmax(axis=1)
    if code == codes.LOGISTIC and Y.shape[1] == 1:
        return (Y[:, 0] > 0.5).astype(np.int64)
    return None


def class_sample_weight(net, Y, sw, class_weight, reducer=None):
    """``sw`` (empty: all ones) times each row's class weight, scikit-learn's rule.

    ``class_weight``: None, a dict {class index: weight} (classes not named weigh 1) or
    "balanced": n_samples / (n_classes * count of the class), counted over the rows of every
    rank, with n_classes the classes present.  Classes are the columns of a softmax output,
    or 0/1 for one logistic output."""
    if class_weight is None:
        return sw
    if not net.is_classifier:
        raise ValueError("class_weight needs a classifier (a softmax or logistic output)")
    if net.layout.activation_codes[-1] == codes.SOFTMAX:
        labels, n_classes = Y.argmax(axis=1), Y.shape[1]
    elif Y.shape[1] == 1:
        labels, n_classes = (Y[:, 0] > 0.5).astype(np.int64), 2
    else:
        raise ValueError("class_weight is not supported for multi-label targets (several "
                         "logistic outputs); give sample_weight")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got "
                             f"{class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        counts = sum(reducer.gather(counts)) if reducer is not None else counts
        present = counts > 0
        weights = np.ones(n_classes)
        weights[present] = counts.sum() / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        weights = np.ones(n_classes)
        for k, v in class_weight.items():
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) \
                    or not 0 <= k < n_classes:
                raise ValueError(f"class_weight has a key {k!r} that is not a class index "
                                 f"0..{n_classes - 1}")
            weights[int(k)] = check_number(v, f"class_weight[{k!r}]", 0.0)
    else:
        raise TypeError(f"class_weight must be a dict, 'balanced' or None, got "
                        f"{type(class_weight).__name__}")
    w = weights[labels]
    if sw.size:
        w = w * sw
    return np.ascontiguousarray(w, dtype=net.dtype)


def split_validation(net, X, Y, sw, fraction, seed):
    """Hold out ``fraction`` of the rows, stratified by class for classifiers."""
    n = X.shape[0]
    labels = _class_labels(net, Y) if net.is_classifier else None
    train, val = stratified_split(labels, fraction, seed, n)
    if val.size == 0 or train.size == 0:
        raise ValueError(f"validation_fraction={fraction} leaves no validation or no training "
                         f"sample out of {n}")
    part = lambda a, idx: a[idx] if a.shape[0] else a  # noqa: E731
    return (part(X, train), part(Y, train), part(sw, train),
            part(X, val), part(Y, val), part(sw, val))



def _score_stats(net, P, Y, sw):
    """Score statistics of outputs P against targets Y: the (weighted) accuracy for
    classifiers; per output (mean, sum of squared deviations, sum of squared residuals) for
    regression, which :func:`_combine_validation` turns into R^2 (also across ranks)."""
    w = sw if sw.size else None
    if net.is_classifier:
        if net.layout.activation_codes[-1] == codes.SOFTMAX:
            hit = P.argmax(axis=1) == Y.argmax(axis=1)
        else:
            hit = np.all((P > 0.5) == (Y > 0.5), axis=1)
        return float(np.average(hit, weights=w))
    Y64 = Y.astype(np.float64)
    mean = np.average(Y64, axis=0, weights=w)
    ww = np.ones(Y.shape[0]) if w is None else w
    m2 = (ww[:, None] * (Y64 - mean) ** 2).sum(axis=0)
    ss_res = (ww[:, None] * (Y64 - P) ** 2).sum(axis=0)
    return mean, m2, ss_res


def _validation_stats(net, Xv, Yv, swv):
    """Sufficient statistics of one rank's validation rows: (weight, mean loss, score
    statistics), combined across ranks by :func:`_combine_validation`."""
    if Xv is None or Xv.shape[0] == 0:
        return None
    loss, P = net._evaluate(Xv, Yv, swv)
    if net.layout.recurrent:  # score per valid step
        P, Yv, swv = net._valid_steps(Xv, P, Yv, swv)
    W = float(swv.sum()) if swv.size else float(P.shape[0])  # samples, or valid steps
    return W, loss, _score_stats(net, P, Yv, swv)


def _combine_validation(parts, classifier):
    """(val_loss, val_score) from every rank's :func:`_validation_stats`, in rank order:
    the weighted mean loss, and accuracy or R^2 (averaged over outputs) of all rows."""
    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        W, loss, s = parts[0]
        if classifier:
            return loss, s
        mean, m2, ss_res = s
    else:
        W = sum(p[0] for p in parts)
        loss = sum(p[0] * p[1] for p in parts) / W
        if classifier:
            return loss, sum(p[0] * p[2] for p in parts) / W
        mean = sum(p[0] * p[2][0] for p in parts) / W
        m2 = sum(p[2][1] + p[0] * (p[2][0] - mean) ** 2 for p in parts)  # Chan et al.
        ss_res = sum(p[2][2] for p in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(m2 > 0, 1.0 - ss_res / np.where(m2 > 0, m2, 1.0),
                      np.where(ss_res > 0, 0.0, 1.0))
    return loss, float(r2.mean())


def score(net, P, Y, sw):
    """Accuracy (classifiers) or R^2 averaged over outputs (regression) of outputs P."""
    return _combine_validation([(1.0, np.nan, _score_stats(net, P, Y, sw))],
                               net.is_classifier)[1]


def _dropout_rates(net, dropout):
    """Per-row dropout rates of the layer table (an empty array when off)."""
    rates = per_hidden_layer(dropout, net.layout.n_layers - 1, "dropout")
    rates = [check_number(r, "dropout", 0.0, 1.0, high_open=True) for r in rates]
    if not any(rates):
        return np.empty(0, dtype=net.dtype)
    return net.layout.row_rates(rates).astype(net.dtype)


class _Progress:
    """A tqdm bar over epochs when verbose, nothing otherwise."""

    def __init__(self, verbose, epochs):
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=epochs, unit="epoch", desc="fastbp", leave=True)

    def update(self, logs):
        if self.bar is not None:
            post = {"loss": f"{logs['loss']:.4g}"}
            if not np.isnan(logs.get("val_loss", np.nan)):
                post["val_loss"] = f"{logs['val_loss']:.4g}"
                post["val_score"] = f"{logs['val_score']:.4f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()



def fit(net, X, y, *, epochs=10, batch_size=32, learning_rate=None, optimizer="sgd",
        seed=None, shuffle=True, sample_weight=None, alpha=0.0, clip_norm=None, dropout=0.0,
        schedule=None, validation_data=None, validation_fraction=None, early_stopping=False,
        patience=10, min_delta=0.0, monitor=None, restore_best=None, callbacks=(),
        verbose=False, warm_start=False, checkpoint=None, reducer=None, class_weight=None,
        lengths=None, bptt_steps=None):
    """Train ``net`` in place and return its :class:`History`.

    Parameters
    ----------
    epochs : int
        Maximum number of passes over the training data (L-BFGS: iterations).
    batch_size : int
        Samples per update: 1 is online (incremental) training as in FANN, ``len(X)`` full
        batch.  Ignored by full-batch optimizers (``rprop``, ``lbfgs``).
    optimizer : str or Optimizer
        A registered name (``fastbp.registry.OPTIMIZERS``: sgd, adam, adamw, nadam, adagrad,
        rmsprop, and the full-batch rprop, quickprop, sarprop, lbfgs) or an object from
        :mod:`fastbp.optimizers`; ``learning_rate`` overrides a named optimizer's default.
    seed : int, optional
        Seeds shuffling, dropout and the validation split: the same seed (and the same
        starting weights) gives bit-identical weights after ``fit`` on the same machine with
        the same BLAS thread count.  A dropout mask depends only on the seed, the update
        number, the layer and the sample's position in the (global) batch.
    sample_weight : array, optional
        Per-sample weights; each batch's loss is their weighted mean (scikit-learn's rule).
    class_weight : dict or "balanced", optional
        Weight of each class (a dict {class index: weight}), or "balanced" (n_samples /
        (n_classes * class count), scikit-learn's formula); multiplied into
        ``sample_weight`` as scikit-learn does.  Classifiers with one label per row only.
    alpha : float
        L2 penalty on the weights (not the biases), scikit-learn's convention: each batch
        adds ``alpha / 2 * sum(W**2) / batch_size`` to its loss (``/ sum of the batch's
        sample weights`` when weighted).
    clip_norm : float, optional
        Rescale every batch gradient to at most this Euclidean norm.
    dropout : float or list of float
        Inverted-dropout rate of each hidden layer's outputs during training (0 = off);
        prediction never drops.
    schedule : str or Schedule
        Learning-rate schedule, see :mod:`fastbp.schedules`.
    validation_data : (X_val, y_val), optional
        Held-out data evaluated after every epoch.
    validation_fraction : float, optional
        Hold out this fraction of (X, y) instead (stratified by class for classifiers).
    early_stopping : bool
        Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
        epochs in a row.  Without validation data (and unless ``monitor="loss"``), 10 % of
        the training data is held out.
    monitor : str
        ``val_loss`` (default with validation data), ``val_score`` (higher is better) or
        ``loss``.
    restore_best : bool, optional
        At the end, put back the weights of the epoch with the best ``monitor`` value.
        Default: ``early_stopping``.
    callbacks : sequence of callables
        Each is called as ``callback(net, logs)`` after every epoch; a true return value stops
        training.  ``logs`` holds ``epoch`` (1-based) and the History keys.
    verbose : bool
        Show a progress bar (tqdm).
    warm_start : bool
        Continue with the optimizer state (moments, velocities, steps) of the previous
        ``fit`` instead of fresh state.  The weights always continue from their current values.
    checkpoint : path, optional
        Save the network there (atomically) after every epoch; under MPI, rank 0 does.
    comm : mpi4py communicator, optional
        Train data-parallel over MPI: use :func:`fastbp.distributed.fit`, which passes it.
    lengths : int array, optional
        Recurrent networks: each sequence's number of valid steps (1..n_steps; default: all).
        ``validation_data`` then takes ``(X_val, y_val, sample_weight_or_None, lengths_val)``.
    bptt_steps : int, optional
        Recurrent networks: truncated backpropagation through time, k steps (see the
        README); default None: full BPTT.

    Ctrl-C stops within a slice of an epoch: the network, its buffers, the optimizer state
    and its step count are put back to the end of the last completed epoch, which
    ``net.history`` records, and ``KeyboardInterrupt`` propagates.  A NaN or infinite loss
    stops with :class:`~fastbp.DivergenceError` in the same consistent state.
    """
    reducer = reducer or LocalReducer()
    epochs = check_positive_int(epochs, "epochs")
    alpha = check_number(alpha, "alpha", 0.0)
    clip = 0.0 if clip_norm is None else check_number(clip_norm, "clip_norm", 0.0,
                                                     low_open=True)
    patience = check_positive_int(patience, "patience")
    if restore_best is None:
        restore_best = early_stopping
    min_delta = check_number(min_delta, "min_delta", 0.0)
    opt = get_optimizer(optimizer, learning_rate)
    sched = get_schedule(schedule)
    rates = _dropout_rates(net, dropout)
    if rates.size and opt.full_batch:
        raise ValueError(f"dropout needs a mini-batch optimizer, not {opt.name!r}")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {cb!r}")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not net.layout.recurrent:
        net._no_lengths(lengths, bptt_steps)
    bptt = check_bptt(bptt_steps)
    rng, seed = _seed_states(seed, reducer)

    X, Y, sw = net._check_data(X, y, sample_weight, allow_empty=reducer.size > 1,
                               lengths=lengths)
    sw = class_sample_weight(net, Y, sw, class_weight, reducer)
    if validation_data is not None:
        if validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        try:
            Xv, yv = validation_data[:2]
            swv = validation_data[2] if len(validation_data) > 2 else None
            lv = validation_data[3] if len(validation_data) > 3 else None
        except (TypeError, ValueError):
            raise TypeError("validation_data must be a tuple (X_val, y_val[, sample_weight"
                            "[, lengths]])") from None
        if net.layout.recurrent:
            Xv, Yv, swv = net._check_sequences(Xv, yv, swv, lengths=lv,
                                               names=("X_val", "y_val", "validation lengths"))
        else:
            net._no_lengths(lv)
            Xv = check_X(Xv, net.n_inputs, net.dtype, name="X_val")
            Yv = check_targets(yv, Xv.shape[0], net.n_outputs, net.loss_code, net.dtype,
                               "y_val")
            swv = check_sample_weight(swv, Xv.shape[0], net.dtype)
    else:
        if validation_fraction is None and early_stopping and monitor != "loss":
            validation_fraction = 0.1
        if validation_fraction is not None:
            validation_fraction = check_number(validation_fraction, "validation_fraction",
                                               0.0, 1.0, low_open=True, high_open=True)
            X, Y, sw, Xv, Yv, swv = split_validation(net, X, Y, sw, validation_fraction, seed)
        else:
            Xv = Yv = swv = None
    has_val = reducer.any(Xv is not None)
    if monitor is None:
        monitor = "val_loss" if has_val else "loss"
    if monitor not in MONITORS:
        raise ValueError(f"unknown monitor {monitor!r}; choose one of {list(MONITORS)}")
    if monitor != "loss" and not has_val:
        raise ValueError(f"monitor={monitor!r} needs validation data")
    if isinstance(X, SparseRows) and reducer.size > 1:
        raise ValueError("sparse input is not supported under MPI; give dense shards")
    n_local = X.shape[0]
    n_total = int(sum(reducer.gather(n_local)))
    if n_total == 0:
        raise ValueError("no training rows on any rank")
    # rows per step: under MPI every rank counts steps of batch_size rows (a rank whose shard
    # is used up, or empty, contributes nothing to a step)
    rows = n_local if opt.full_batch else (batch_size if reducer.size > 1
                                           else min(batch_size, n_local))
    net._check_training_rows(min(batch_size, n_total) if not opt.full_batch else n_total)

    reducer.start(net, lambda: {
        "layer_sizes": list(net.sizes), "layers": net.layout.spec.tolist(), "loss": net.loss,
        "dtype": net.dtype.name, "optimizer": [opt.name, sorted(opt.get_params().items())],
        "batch_size": batch_size, "epochs": epochs, "alpha": alpha, "clip_norm": clip,
        "dropout": rates.tolist(), "shuffle": bool(shuffle), "n_outputs": int(Y.shape[1]),
        "bptt_steps": bptt})
    if warm_start and net.optimizer is not None:
        prev = net.optimizer
        if type(prev) is not type(opt):
            raise ValueError(f"warm_start continues the previous optimizer "
                             f"({prev.name}); got {opt.name}")
        if prev.has_state_for(net.n_params, net.dtype):
            opt.state, opt.t = prev.state, prev.t
    if not (warm_start and opt.has_state_for(net.n_params, net.dtype)):
        opt.init_state(net.n_params, net.dtype)
    net.optimizer = opt

    history = History()
    net.history = history
    progress = _Progress(verbose and reducer.rank == 0, epochs)
    train = _Trainer(net, opt, reducer, X, Y, sw, rows, shuffle, rng, alpha, clip, rates,
                     n_total, bptt)
    train.warm_start = bool(warm_start)
    # two threads splitting every batch: each keeps its products on one BLAS thread
    threads = _ONE_THREAD if train.nw == 2 else blas_threads_for(
        net.layout, min(max(rows, 1), CHUNK_ROWS))
    try:
        with threads:
            reducer.warm(train.compile)
            if isinstance(opt, LBFGS):
                train.lbfgs(epochs, (Xv, Yv, swv), callbacks, history, progress)
            else:
                train.epochs(epochs, sched, (Xv, Yv, swv), early_stopping, patience,
                             min_delta, monitor, restore_best, callbacks, checkpoint, history,
                             progress)
    finally:
        progress.close()
    return history


class _Trainer:
    """The state of one ``fit``: data, buffers, and the steps that produce an epoch."""

    def __init__(self, net, opt, reducer, X, Y, sw, rows, shuffle, rng, alpha, clip, rates,
                 n_total, bptt=0):
        self.net, self.opt, self.reducer = net, opt, reducer
        self.X, self.Y, self.sw = read_only(X), read_only(Y), read_only(sw)
        self.rows, self.shuffle, self.rng = rows, shuffle, rng
        self.alpha, self.clip, self.rates, self.n_total = alpha, clip, rates, n_total
        self.bptt = bptt
        n = X.shape[0]
        self.mpi = reducer.size > 1
        self.steps = net._steps(X)
        if opt.full_batch:
            ws_rows = max(n, 1) if net.layout.has_batch_norm else \
                net._chunk(max(n, 1), self.steps)
        else:
            ws_rows = max(min(rows, n), 1)
        self.sparse = isinstance(X, SparseRows)  # the sparse first-layer kernels
        self.ws = Workspace(net.layout, ws_rows, net.dtype, dropout=rates.size > 0,
                            n_inputs=1 if self.sparse else net.n_inputs,
                            n_outputs=net.n_outputs, steps=self.steps)
        # [gradient sum | loss sum | weight sum | rows]: what a step reduces across ranks
        self.buf = np.zeros(net.n_params + 3, dtype=np.float64 if net.dtype == np.float64
                            else net.dtype)
        self.grad = self.buf[:net.n_params]
        self.spare = np.empty_like(self.grad) if n > ws_rows else self.grad
        self.order = np.arange(n, dtype=np.int64)
        self.counter = np.array([opt.t], dtype=np.int64)
        self.mode = codes.TRAIN
        # a recurrent network's batches of SPLIT_MIN_BATCH sequences or more: two halves,
        # on two cores at once where this fit may use two (kernels.sequence.train_epoch)
        self.split = (self.steps is not None and not opt.full_batch and not self.mpi
                      and rows >= SPLIT_MIN_BATCH)
        self.nw = 2 if self.split and cores_for_one_fit() >= 2 else 1
        if self.steps is not None:
            from .kernels.sync import SYNC_SIZE
            self.grad1 = np.zeros_like(self.grad) if self.split else self.grad
            self.sync = np.zeros(SYNC_SIZE, dtype=np.int64)
            self.losses = np.zeros(16, dtype=np.float64)
            self.ws1 = (Workspace(net.layout, (ws_rows + 1) // 2, net.dtype,
                                  dropout=rates.size > 0, n_inputs=net.n_inputs,
                                  n_outputs=net.n_outputs, steps=self.steps)
                        if self.nw == 2 else None)
        if self.mpi:  # every rank's rows per step, for the dropout masks' positions
            self.shard_rows = reducer.gather(n)

    # --- one gradient, reduced ------------------------------------------------------------
    def reduced_gradient(self, start, count, order, t, pos0):
        """Mean loss (with L2) and gradient (in ``self.grad``) of rows of this rank's shard
        and the other ranks' (their sums are added), or (nan, 0) when no rank has a row."""
        net = self.net
        loss_sum, w_sum = net._gradient_sums(
            self.X, self.Y, self.sw, self.grad, self.ws, self.mode, order=order, start=start,
            count=count, spare=self.spare, dropout=self.rates, key=self.rng[1], t=t,
            pos0=pos0, bptt=self.bptt)
        self.buf[-3:] = loss_sum, w_sum, count
        self.reducer.sum(self.buf)
        total_w = float(self.buf[-2])
        if not total_w > 0:
            return np.nan, 0.0
        return float(finish_gradient(net.params, self.grad, net.layout.spec,
                                     float(self.buf[-3]), total_w, self.alpha)), \
            float(self.buf[-1])

    def update(self, hyper, loss):
        """Apply the optimizer to ``self.grad``; ``loss`` is the mean loss at the weights the
        gradient was taken at (a rule may use it, e.g. SARPROP)."""
        if self.clip > 0.0:
            clip_by_global_norm(self.grad, self.clip)
        self.counter[0] += 1
        update(self.opt.rule, self.net.params, self.grad, self.opt.state, hyper,
               int(self.counter[0]), loss)

    def compile(self):
        """Load (or compile) the kernels this fit needs, before ranks run together."""
        net = self.net
        hyper = self.opt.hyper(0.0)
        state = np.zeros_like(self.opt.state)
        params = net.params.copy()
        net._gradient_sums(self.X, self.Y, self.sw, self.grad, self.ws, codes.TRAIN_PURE,
                           order=self.order, count=0, spare=self.spare, dropout=self.rates)
        finish_gradient(params, self.grad, net.layout.spec, 0.0, 1.0, 0.0)
        if not isinstance(self.opt, LBFGS):
            update(self.opt.rule, params, self.grad, state, hyper, 1, 0.0)
        self.grad[:] = 0

    # --- an epoch ---------------------------------------------------------------------------
    def epoch(self, hyper):
        """One epoch; returns its mean loss (NaN on divergence)."""
        net, opt = self.net, self.opt
        if opt.full_batch:
            loss, _ = self.reduced_gradient(0, self.X.shape[0], np.empty(0, np.int64),
                                            int(self.counter[0]) + 1, 0)
            if np.isfinite(loss):
                self.update(hyper, loss)
            return loss
        if self.mpi:
            return self._mpi_epoch(hyper)
        n = self.X.shape[0]
        n_batches = -(-n // self.rows)
        # bounded slices of the epoch, so that Ctrl-C is seen within a fraction of a second
        per_call = max(1, EPOCH_SLICE_MACS // max(1, self.rows * net.n_params
                                                  * (self.steps or 1)))
        total = 0.0
        ws = self.ws
        for first in range(0, n_batches, per_call):
            if self.sparse:
                from .kernels import sparse as sparse_kernels
                X = self.X
                total += sparse_kernels.train_epoch(
                    X.indptr, X.indices, X.data, self.Y, self.sw, net.params, net.buffers,
                    self.grad, opt.state, net.layout.spec, net.loss_code, opt.code, opt.rule,
                    hyper, self.alpha, self.clip, self.counter, self.rows, self.shuffle, self.rng,
                    self.order, first, min(first + per_call, n_batches), ws.ybuf, ws.wbuf,
                    ws.acts, ws.pre, ws.stats, ws.tmp, self.rates, ws.masks, self.mode)
                if not np.isfinite(total):
                    return np.nan
                continue
            if self.steps is not None:
                total += self._sequence_slice(hyper, first, min(first + per_call, n_batches))
                if not np.isfinite(total):
                    return np.nan
                continue
            total += train_epoch(self.X, self.Y, self.sw, net.params, net.buffers, self.grad,
                                 opt.state, net.layout.spec, net.loss_code, opt.code,
                                 opt.rule, hyper, self.alpha, self.clip, self.counter,
                                 self.rows, self.shuffle, self.rng, self.order, first,
                                 min(first + per_call, n_batches), ws.xbuf, ws.ybuf, ws.wbuf,
                                 ws.acts, ws.pre, ws.stats, ws.tmp, self.rates, ws.masks,
                                 self.mode)
            if not np.isfinite(total):
                return np.nan
        return total / n

    def _sequence_slice(self, hyper, first, stop):
        """Batches first..stop-1 of a recurrent network: in this thread alone (``nw`` = 1),
        or, with every batch split in two halves, half 0 here and half 1 in a helper thread
        at once (see :func:`fastbp.kernels.sequence.train_epoch`)."""
        from .kernels import sequence
        from .kernels.sync import ABORT
        net, opt = self.net, self.opt

        def run(w, ws):
            # two halves at once: each thread's products on one BLAS thread (MKL's setting
            # is per thread; OpenBLAS's process-wide one is already 1, see fit)
            saved = blas_threads_local(1) if self.nw == 2 else None
            try:
                return kernel(w, ws)
            finally:
                if saved is not None:
                    blas_threads_local(saved)

        def kernel(w, ws):
            # batches of one sequence have a kernel of their own (compiled only when used)
            epoch = sequence.train_epoch_online if self.rows == 1 else sequence.train_epoch
            return epoch(
                w, self.nw, self.sync, self.losses, self.X, self.Y, self.sw, net.params,
                net.buffers, self.grad, self.grad1, opt.state, net.layout.spec, net.loss_code,
                opt.rule, hyper, self.alpha, self.clip, self.counter, self.rows, self.split,
                self.shuffle, self.rng, self.order, first, stop, ws.scratch, ws.acts, ws.pre,
                ws.stats, ws.tmp, self.rates, ws.masks, self.mode, self.bptt)

        if self.nw == 1:
            return run(0, self.ws)
        self.sync[:] = 0
        failed = []
        done = threading.Event()

        def helper():
            try:
                run(1, self.ws1)
            except BaseException as e:  # noqa: B902 - re-raised in the fitting thread
                failed.append(e)
                self.sync[ABORT] = 1  # ends worker 0's wait
            finally:
                done.set()

        threading.Thread(target=helper, name="fastbp-half", daemon=True).start()
        interrupted = False
        try:
            total = run(0, self.ws)
        except BaseException:
            self.sync[ABORT] = 1  # ends the helper's wait
            raise
        finally:
            # an Event, not Thread.join (see fastbp.many._run): wait for the helper even
            # through Ctrl-C, so that no half is still running when fit returns
            while True:
                try:
                    if done.wait(0.1):
                        break
                except KeyboardInterrupt:
                    interrupted = True
        if failed:
            raise failed[0]
        if interrupted:
            raise KeyboardInterrupt
        return total

    def _mpi_epoch(self, hyper):
        n = self.X.shape[0]
        rows = self.rows
        if self.shuffle:
            shuffle_order(self.order, self.rng[:1])
        steps = max(-(-m // rows) for m in self.shard_rows)
        total = 0.0
        for k in range(steps):
            start = min(k * rows, n)
            count = min(rows, n - start)
            pos0 = sum(min(rows, max(m - k * rows, 0))
                       for m in self.shard_rows[:self.reducer.rank])
            loss, step_rows = self.reduced_gradient(start, count, self.order,
                                                    int(self.counter[0]) + 1, pos0)
            if step_rows == 0:
                continue
            if not np.isfinite(loss):
                return np.nan
            self.update(hyper, loss)
            total += loss * step_rows
        return total / self.n_total

    # --- the loops ------------------------------------------------------------------------
    def _snapshot(self):
        net, opt = self.net, self.opt
        return (net.params.copy(), net.buffers.copy(), opt.state.copy(), int(self.counter[0]))

    def _restore(self, snap):
        net, opt = self.net, self.opt
        np.copyto(net.params, snap[0])
        np.copyto(net.buffers, snap[1])
        np.copyto(opt.state, snap[2])
        self.counter[0] = snap[3]
        opt.t = snap[3]

    def _validate(self, val, logs):
        parts = self.reducer.gather(_validation_stats(self.net, *val))
        if any(p is not None for p in parts):
            logs["val_loss"], logs["val_score"] = _combine_validation(
                parts, self.net.is_classifier)

    def _end_epoch(self, logs, val, callbacks, checkpoint, history, progress):
        """Validation, history, progress, checkpoint and callbacks of a finished epoch;
        returns True when a callback asks to stop."""
        if self.mpi and self.net.buffers.size:  # rank 0's running statistics, as DDP
            self.reducer.bcast_array(self.net.buffers)
        self._validate(val, logs)
        history.append(logs)
        progress.update(logs)
        if checkpoint is not None and self.reducer.rank == 0:
            self.net.save(checkpoint)
        return self.reducer.any(any([bool(cb(self.net, logs)) for cb in callbacks]))

    def epochs(self, epochs, sched, val, early_stopping, patience, min_delta, monitor,
               restore_best, callbacks, checkpoint, history, progress):
        net, opt = self.net, self.opt
        sign = -1.0 if monitor == "val_score" else 1.0
        best = np.inf
        best_params = None
        bad_epochs = 0
        sched.start(opt.learning_rate, resume=self.warm_start)
        history.stop_reason = "max_epochs"
        for epoch in range(epochs):
            # a schedule counts epochs and samples across warm-started fits
            lr = sched.rate(sched.epochs_seen, sched.samples_seen)
            hyper = opt.hyper(lr)
            snap = self._snapshot()
            t0 = time.perf_counter()
            try:
                loss = self.epoch(hyper)
            except KeyboardInterrupt as e:
                self._restore(snap)
                history.stop_reason = "interrupted"
                e.add_note(f"fastbp: interrupted in epoch {epoch + 1}; the network and its "
                           f"optimizer are as after epoch {epoch} (net.history)")
                raise
            seconds = time.perf_counter() - t0
            if not np.isfinite(loss) or not np.isfinite(net.params).all():
                self._restore(snap)
                history.stop_reason = "diverged"
                raise DivergenceError(
                    f"training diverged in epoch {epoch + 1}: the loss became {loss} (NaN or "
                    f"infinite). The network keeps the weights of epoch {epoch} (the last "
                    f"finite one). Try a smaller learning rate than {lr:g}, gradient clipping "
                    f"(clip_norm) or scaled inputs.", epoch=epoch + 1, history=history)
            opt.t = int(self.counter[0])
            sched.advance(self.n_total)
            logs = {"epoch": epoch + 1, "loss": loss, "learning_rate": lr, "seconds": seconds}
            stop = self._end_epoch(logs, val, callbacks, checkpoint, history, progress)

            # scikit-learn's rule: an epoch improves when it beats the best so far by more
            # than min_delta; the best is tracked either way
            value = sign * logs.get(monitor, np.nan)
            bad_epochs = 0 if value < best - min_delta else bad_epochs + 1
            if value < best:
                best = value
                history.best_epoch = epoch + 1
                if restore_best:
                    best_params = (net.params.copy(), net.buffers.copy())
            if early_stopping and bad_epochs >= patience:
                history.stop_reason = "early_stopping"
                history.stopped_early = True
                break
            if sched.end_epoch(logs):
                history.stop_reason = "learning_rate_floor"
                history.stopped_early = True
                break
            if stop:
                history.stop_reason = "callback"
                history.stopped_early = True
                break
        if restore_best and best_params is not None:
            np.copyto(net.params, best_params[0])
            np.copyto(net.buffers, best_params[1])

    def lbfgs(self, epochs, val, callbacks, history, progress):
        """scikit-learn's ``lbfgs`` solver: SciPy's L-BFGS-B on the compiled full-batch loss
        and gradient (reduced across ranks: every rank takes the same iterations)."""
        from scipy.optimize import minimize

        net, opt = self.net, self.opt
        params = net.params
        last = {"t": time.perf_counter()}
        start = self._snapshot()

        def fun(p):
            params[:] = p
            loss, _ = self.reduced_gradient(0, self.X.shape[0], np.empty(0, np.int64), 0, 0)
            if not np.isfinite(loss):
                return np.inf, np.zeros(p.shape)
            return loss, self.grad.astype(np.float64)

        def callback(intermediate_result):
            now = time.perf_counter()
            params[:] = intermediate_result.x
            opt.t += 1
            logs = {"epoch": history.epochs + 1, "loss": float(intermediate_result.fun),
                    "learning_rate": np.nan, "seconds": now - last["t"]}
            if self._end_epoch(logs, val, callbacks, None, history, progress):
                history.stop_reason = "callback"
                history.stopped_early = True
                raise StopIteration
            last["t"] = time.perf_counter()

        options = {"maxiter": epochs, "maxcor": opt.memory, "gtol": opt.gtol,
                   "maxfun": opt.maxfun}
        if opt.ftol is not None:
            options["ftol"] = opt.ftol
        try:
            result = minimize(fun, params.astype(np.float64), jac=True, method="L-BFGS-B",
                              callback=callback, options=options)
        except KeyboardInterrupt as e:
            self._restore(start)
            history.stop_reason = "interrupted"
            e.add_note("fastbp: L-BFGS interrupted; the network is as before this fit")
            raise
        params[:] = result.x
        if not np.isfinite(params).all():
            self._restore(start)
            raise DivergenceError("L-BFGS produced non-finite weights", history=history)
        if history.stop_reason is None:
            history.stop_reason = "max_epochs" if result.nit >= epochs else "converged"
        #: SciPy's OptimizeResult (status, message, fun, nit): the estimators report it
        history.optimizer_result = result
        self.result = result
