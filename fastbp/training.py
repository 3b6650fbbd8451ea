"""The training loop: epochs, validation, early stopping, schedules, callbacks, history.

Python runs *between* epochs only: each epoch of mini-batch training is one call of the
compiled :func:`fastbp.kernels.training.train_epoch`; full-batch optimizers (RPROP) make one
call of the compiled loss-and-gradient and one of the update per epoch; L-BFGS hands the
compiled loss-and-gradient to ``scipy.optimize.minimize``.
"""
import time

import numpy as np

from ._validation import (check_number, check_positive_int, check_sample_weight,
                          check_targets, check_X, per_hidden_layer)
from .datasets import stratified_split
from .errors import DivergenceError
from .kernels import codes
from .kernels.training import train_epoch
from .kernels.updates import apply_update
from .network import CHUNK_ROWS, Workspace
from .optimizers import LBFGS, get_optimizer
from .schedules import get_schedule
from ._threads import blas_threads_for

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


def _seed_state(seed):
    """The kernels' uint64 generator state from an int seed (fresh entropy for None)."""
    ss = np.random.SeedSequence(seed)
    return ss.generate_state(1, dtype=np.uint64).copy()


def _class_labels(net, Y):
    """Integer labels for a stratified split, or None when stratifying makes no sense."""
    code = net.layout.activation_codes[-1]
    if code == codes.SOFTMAX or (net.is_classifier and Y.shape[1] > 1
                                 and np.all(Y.sum(axis=1) == 1)):
        return Y.argmax(axis=1)
    if code == codes.LOGISTIC and Y.shape[1] == 1:
        return (Y[:, 0] > 0.5).astype(np.int64)
    return None


def split_validation(net, X, Y, sw, fraction, seed):
    """Hold out ``fraction`` of the rows, stratified by class for classifiers."""
    n = X.shape[0]
    labels = _class_labels(net, Y) if net.is_classifier else None
    train, val = stratified_split(labels, fraction, seed, n)
    if val.size == 0 or train.size == 0:
        raise ValueError(f"validation_fraction={fraction} leaves no validation or no training "
                         f"sample out of {n}")
    part = lambda a, idx: a[idx] if a.size else a  # noqa: E731
    return (part(X, train), part(Y, train), part(sw, train),
            part(X, val), part(Y, val), part(sw, val))


def score(net, P, Y, sw):
    """Accuracy (classifiers) or R^2 averaged over outputs (regression) of outputs P."""
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
    ss_res = (ww[:, None] * (Y64 - P) ** 2).sum(axis=0)
    ss_tot = (ww[:, None] * (Y64 - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res > 0, 0.0, 1.0))
    return float(r2.mean())


def _dropout_rates(net, dropout):
    rates = per_hidden_layer(dropout, net.layout.n_layers - 1, "dropout")
    rates = [check_number(r, "dropout", 0.0, 1.0, high_open=True) for r in rates]
    if not any(rates):
        return np.empty(0)
    return np.array(rates + [0.0])


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
        verbose=False, warm_start=False):
    """Train ``net`` in place and return its :class:`History`.

    Parameters
    ----------
    epochs : int
        Maximum number of passes over the training data (L-BFGS: iterations).
    batch_size : int
        Samples per update: 1 is online (incremental) training as in FANN, ``len(X)`` full
        batch.  Ignored by full-batch optimizers (``rprop``, ``lbfgs``).
    optimizer : str or Optimizer
        ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``rprop``, ``lbfgs`` or an object from
        :mod:`fastbp.optimizers`; ``learning_rate`` overrides a named optimizer's default.
    seed : int, optional
        Seeds shuffling, dropout and the validation split: the same seed (and the same
        starting weights) gives bit-identical weights after ``fit``.
    sample_weight : array, optional
        Per-sample weights; each batch's loss is their weighted mean (scikit-learn's rule).
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
    """
    epochs = check_positive_int(epochs, "epochs")
    alpha = check_number(alpha, "alpha", 0.0)
    if clip_norm is not None:
        clip_norm = check_number(clip_norm, "clip_norm", 0.0, low_open=True)
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

    X, Y, sw = net._check_data(X, y, sample_weight)
    if validation_data is not None:
        if validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        try:
            Xv, yv = validation_data[:2]
            swv = validation_data[2] if len(validation_data) > 2 else None
        except (TypeError, ValueError):
            raise TypeError("validation_data must be a tuple (X_val, y_val[, sample_weight])") \
                from None
        Xv = check_X(Xv, net.n_inputs, net.dtype, name="X_val")
        Yv = check_targets(yv, Xv.shape[0], net.n_outputs, net.loss_code, net.dtype, "y_val")
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
    if monitor is None:
        monitor = "val_loss" if Xv is not None else "loss"
    if monitor not in MONITORS:
        raise ValueError(f"unknown monitor {monitor!r}; choose one of {list(MONITORS)}")
    if monitor != "loss" and Xv is None:
        raise ValueError(f"monitor={monitor!r} needs validation data")

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
    progress = _Progress(verbose, epochs)
    rows = X.shape[0] if opt.full_batch else min(check_positive_int(batch_size, "batch_size"),
                                                 X.shape[0])
    try:
        with blas_threads_for(net.layout, min(rows, CHUNK_ROWS)):
            if isinstance(opt, LBFGS):
                _fit_lbfgs(net, X, Y, sw, opt, epochs, alpha, Xv, Yv, swv, callbacks, history,
                           progress)
            else:
                _fit_epochs(net, X, Y, sw, opt, sched, epochs, batch_size, shuffle, seed,
                            alpha, clip_norm, rates, Xv, Yv, swv, early_stopping, patience,
                            min_delta, monitor, restore_best, callbacks, history, progress)
    finally:
        progress.close()
    return history


def _validation_logs(net, Xv, Yv, swv, logs):
    if Xv is not None:
        val_loss, P = net._evaluate(Xv, Yv, swv)
        logs["val_loss"] = val_loss
        logs["val_score"] = score(net, P, Yv, swv)


def _fit_epochs(net, X, Y, sw, opt, sched, epochs, batch_size, shuffle, seed, alpha,
                clip_norm, rates, Xv, Yv, swv, early_stopping, patience, min_delta, monitor,
                restore_best, callbacks, history, progress):
    n = X.shape[0]
    params, spec = net.params, net.layout.spec
    full_batch = opt.full_batch
    grad = np.empty_like(params)
    if full_batch:
        rows = min(n, CHUNK_ROWS)
        spare = np.empty_like(params) if n > rows else grad
    else:
        rows = min(check_positive_int(batch_size, "batch_size"), n)
    ws = Workspace(net.layout, rows, net.dtype, dropout=rates.size > 0, n_inputs=net.n_inputs,
                   n_outputs=net.n_outputs)
    order = np.arange(n, dtype=np.int64)
    rng = _seed_state(seed)
    counter = np.array([opt.t], dtype=np.int64)
    good_params = np.empty_like(params)
    good_state = np.empty_like(opt.state)
    sign = -1.0 if monitor == "val_score" else 1.0
    best = np.inf
    best_params = None
    bad_epochs = 0
    sched.start(opt.learning_rate)
    for epoch in range(epochs):
        lr = sched.rate(epoch, epoch * n)
        hyper = opt.hyper(lr, alpha, clip_norm)
        np.copyto(good_params, params)
        np.copyto(good_state, opt.state)
        t0 = time.perf_counter()
        if full_batch:
            loss = net._loss_and_gradient(X, Y, sw, grad, alpha, ws, spare)
            if np.isfinite(loss):
                counter[0] += 1
                apply_update(opt.code, params, grad, opt.state, hyper, counter[0])
        else:
            loss = train_epoch(X, Y, sw, params, grad, opt.state, spec, net.loss_code,
                               opt.code, hyper, counter, rows, shuffle, rng, order, ws.xbuf,
                               ws.ybuf, ws.wbuf, ws.acts, ws.tmp, rates, ws.masks)
        seconds = time.perf_counter() - t0
        if not np.isfinite(loss) or not np.isfinite(params).all():
            np.copyto(params, good_params)
            np.copyto(opt.state, good_state)
            opt.t = int(counter[0])
            history.stop_reason = "diverged"
            raise DivergenceError(
                f"training diverged in epoch {epoch + 1}: the loss became {loss} (NaN or "
                f"infinite). The network keeps the weights of epoch {epoch} (the last finite "
                f"one). Try a smaller learning rate than {lr:g}, gradient clipping (clip_norm) "
                f"or scaled inputs.", epoch=epoch + 1, history=history)
        opt.t = int(counter[0])
        logs = {"epoch": epoch + 1, "loss": loss, "learning_rate": lr, "seconds": seconds}
        _validation_logs(net, Xv, Yv, swv, logs)
        history.append(logs)
        progress.update(logs)

        # scikit-learn's rule: an epoch improves when it beats the best so far by more than
        # min_delta; the best is tracked either way
        value = sign * logs.get(monitor, np.nan)
        bad_epochs = 0 if value < best - min_delta else bad_epochs + 1
        if value < best:
            best = value
            history.best_epoch = epoch + 1
            if restore_best:
                if best_params is None:
                    best_params = params.copy()
                else:
                    np.copyto(best_params, params)
        if early_stopping and bad_epochs >= patience:
            history.stop_reason = "early_stopping"
            history.stopped_early = True
            break
        if sched.end_epoch(logs):
            history.stop_reason = "learning_rate_floor"
            history.stopped_early = True
            break
        if any(bool(cb(net, logs)) for cb in callbacks):
            history.stop_reason = "callback"
            history.stopped_early = True
            break
    else:
        history.stop_reason = "max_epochs"
    if restore_best and best_params is not None:
        np.copyto(params, best_params)


def _fit_lbfgs(net, X, Y, sw, opt, epochs, alpha, Xv, Yv, swv, callbacks, history, progress):
    from scipy.optimize import minimize

    params = net.params
    grad = np.empty_like(params)
    ws = Workspace(net.layout, min(X.shape[0], CHUNK_ROWS), net.dtype)
    spare = np.empty_like(params)
    last = {"t": time.perf_counter()}

    def fun(p):
        params[:] = p
        loss = net._loss_and_gradient(X, Y, sw, grad, alpha, ws, spare)
        if not np.isfinite(loss):
            return np.inf, np.zeros(p.shape)
        return loss, grad.astype(np.float64)

    def callback(intermediate_result):
        now = time.perf_counter()
        params[:] = intermediate_result.x
        logs = {"epoch": history.epochs + 1, "loss": float(intermediate_result.fun),
                "learning_rate": np.nan, "seconds": now - last["t"]}
        _validation_logs(net, Xv, Yv, swv, logs)
        history.append(logs)
        progress.update(logs)
        opt.t += 1
        if any(bool(cb(net, logs)) for cb in callbacks):
            history.stop_reason = "callback"
            history.stopped_early = True
            raise StopIteration
        last["t"] = time.perf_counter()

    options = {"maxiter": epochs, "maxcor": opt.memory, "gtol": opt.gtol, "maxfun": opt.maxfun}
    if opt.ftol is not None:
        options["ftol"] = opt.ftol
    result = minimize(fun, params.astype(np.float64), jac=True, method="L-BFGS-B",
                      callback=callback, options=options)
    params[:] = result.x
    if not np.isfinite(params).all():
        raise DivergenceError("L-BFGS produced non-finite weights", history=history)
    if history.stop_reason is None:
        history.stop_reason = "max_epochs" if result.nit >= epochs else "converged"
