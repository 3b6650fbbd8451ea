"""Synchronous data-parallel training over MPI (mpi4py): one Allreduce of the flat gradient
per step.

Each rank holds its own shard of the data and starts from rank 0's parameters (broadcast).
Every step each rank computes, with the compiled kernels, the gradient *sum* over its next
``batch_size`` rows; one in-place ``Allreduce`` adds the gradient sums of all ranks, their
loss sums and their sample-weight sums (one buffer: the flat gradient plus two numbers), and
every rank divides by the total weight and applies the same optimizer step.  So a step of
P ranks with b rows each equals one step on the P*b rows of the global mini-batch, whatever
the ranks' shares are (a rank whose shard is used up contributes zeros).

Install with ``pip install fastbp[mpi]`` (mpi4py and the ``mpich`` wheel, which brings
``mpiexec``), then run ``mpiexec -n 2 python examples/distributed_train.py``.

When it pays (measured in the README): a step moves 4 bytes (float32) per parameter twice
through the network (reduce and broadcast halves of the Allreduce) and computes about 6
FLOPs per parameter per row.  With P parameters, B rows per step in total, R ranks,
per-rank speed F (FLOP/s) and link bandwidth W (bytes/s), a step takes about
6 P B / (R F) + 2 * 4 P (R - 1) / (R W) + latency, against 6 P B / F on one rank: more
ranks help when the batch is big enough that 6 B / F >> 8 / W, i.e. B >> 4 F / (3 W) rows.
"""
import sys
import time

import numpy as np

from .errors import DivergenceError
from .kernels.training import shard_gradient
from .kernels.updates import add_l2, apply_update
from .network import Workspace
from .optimizers import LBFGS, get_optimizer
from .training import History, _dropout_rates, _Progress, score


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - exercised where mpi4py is missing
        raise ImportError("fastbp.distributed needs mpi4py and an MPI library: "
                          "pip install 'fastbp[mpi]'") from e
    return MPI


def abort_on_error(comm=None):
    """Make an uncaught exception on any rank abort the whole job (``MPI_Abort``) instead of
    leaving the other ranks waiting forever in a collective.  ``fit`` installs it."""
    MPI = _mpi()
    comm = comm or MPI.COMM_WORLD
    if comm.size == 1 or getattr(sys.excepthook, "_fastbp_abort", False):
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        comm.Abort(1)

    hook._fastbp_abort = True
    sys.excepthook = hook


def _signature(net, opt, batch_size, epochs, X, Y, alpha, clip_norm, rates, shuffle):
    return {"layer_sizes": list(net.sizes), "activations": net.activations, "loss": net.loss,
            "dtype": net.dtype.name, "optimizer": [opt.name, sorted(opt.get_params().items())],
            "batch_size": batch_size, "epochs": epochs, "n_features": int(X.shape[1]),
            "n_outputs": int(Y.shape[1]), "alpha": alpha, "clip_norm": clip_norm,
            "dropout": rates.tolist(), "shuffle": bool(shuffle)}


def _check_agreement(comm, sig):
    """Every rank must train the same network the same way: a clear error on every rank
    (from one collective, so no rank is left waiting) when they differ."""
    sigs = comm.allgather(sig)
    differ = sorted({k for s in sigs for k in s if s.get(k) != sigs[0].get(k)})
    if differ:
        details = "; ".join(f"{k}: " + ", ".join(f"rank {r}={s.get(k)!r}"
                                                for r, s in enumerate(sigs)) for k in differ)
        raise ValueError(f"MPI ranks disagree on {', '.join(differ)} ({details})")


def fit(net, X, y, *, comm=None, epochs=10, batch_size=32, optimizer="sgd",
        learning_rate=None, seed=0, shuffle=True, sample_weight=None, alpha=0.0,
        clip_norm=None, dropout=0.0, validation_data=None, early_stopping=False, patience=10,
        min_delta=0.0, checkpoint=None, verbose=False):
    """Data-parallel training of ``net`` on this rank's shard (X, y); call it on every rank.

    ``batch_size`` is the number of rows each rank contributes per step (a step's global
    batch is the sum over ranks).  ``seed`` seeds every rank's shuffling (rank r shuffles
    its shard with the stream (seed, r)).  ``validation_data`` is used on rank 0, which
    decides early stopping and broadcasts the decision; at the end every rank holds the same
    weights (the best epoch's when early stopping).  ``checkpoint``: rank 0 saves the network
    there after every epoch (atomically).  Returns the same :class:`History` on every rank.
    Optimizers: the SGD and Adam families, RMSprop (mini-batch), RPROP and L-BFGS (their
    full-batch gradient is the sum over all shards).
    """
    MPI = _mpi()
    comm = comm or MPI.COMM_WORLD
    abort_on_error(comm)
    rank = comm.rank
    X, Y, sw = net._check_data(X, y, sample_weight)
    opt = get_optimizer(optimizer, learning_rate)
    rates = _dropout_rates(net, dropout)
    batch_size = int(batch_size)
    _check_agreement(comm, _signature(net, opt, batch_size, epochs, X, Y, float(alpha),
                                      clip_norm, rates, shuffle))
    comm.Bcast(net.params, root=0)  # every rank starts from rank 0's weights
    opt.init_state(net.n_params, net.dtype)
    net.optimizer = opt
    mpi_dtype = MPI.FLOAT if net.dtype == np.float32 else MPI.DOUBLE
    if rank == 0 and validation_data is not None:
        Xv, Yv, swv = net._check_data(*validation_data)
    else:
        Xv = Yv = swv = None
    has_val = comm.bcast(Xv is not None, root=0)
    if early_stopping and not has_val:
        raise ValueError("early_stopping needs validation_data on rank 0")

    history = History()
    net.history = history
    progress = _Progress(verbose and rank == 0, epochs)
    n_local = X.shape[0]
    full_batch = opt.full_batch
    rows = n_local if full_batch else min(batch_size, max(n_local, 1))
    ws = Workspace(net.layout, max(rows, 1), net.dtype, dropout=rates.size > 0,
                   n_inputs=net.n_inputs, n_outputs=net.n_outputs)
    # [gradient sum | loss sum | weight sum]: the one buffer of each step's Allreduce
    buf = np.zeros(net.n_params + 2, dtype=net.dtype)
    grad = buf[:net.n_params]
    steps = comm.allreduce(-(-n_local // rows) if rows else 0, op=MPI.MAX)
    # Compile (or load) the kernels on rank 0 first: ranks that write Numba's on-disk cache
    # index at the same time can corrupt it (seen with different signatures at once).
    for turn in (0, 1):
        if (rank == 0) == (turn == 0):
            _warm_kernels(net, ws, X, Y, sw, opt, rates)
        comm.Barrier()
    order = np.arange(n_local, dtype=np.int64)
    shuffler = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(rank,)))
    kernel_rng = np.random.SeedSequence(seed, spawn_key=(rank, 1)).generate_state(
        1, dtype=np.uint64).copy()
    params = net.params
    hyper_alpha = float(alpha)
    good = np.empty_like(params)
    good_state = np.empty_like(opt.state)
    best_params = None
    best = np.inf
    bad_epochs = 0

    def global_step(start, count):
        loss_sum, w_sum = shard_gradient(X, Y, sw, order, start, count, params, grad,
                                         net.layout.spec, net.loss_code, ws.xbuf, ws.ybuf,
                                         ws.wbuf, ws.acts, ws.tmp, rates, ws.masks,
                                         kernel_rng)
        buf[-2] = loss_sum
        buf[-1] = w_sum
        comm.Allreduce(MPI.IN_PLACE, [buf, mpi_dtype], op=MPI.SUM)
        total_w = float(buf[-1])
        if total_w <= 0:
            return 0.0, 0.0
        np.multiply(grad, buf.dtype.type(1.0 / total_w), out=grad)
        loss = float(buf[-2]) / total_w
        if hyper_alpha > 0:
            loss += 0.5 * hyper_alpha * add_l2(params, grad, net.layout.spec,
                                               hyper_alpha / total_w) / total_w
        return loss, total_w

    if isinstance(opt, LBFGS):
        return _fit_lbfgs(net, opt, epochs, global_step, grad, n_local, history, progress)

    stop_reason = "max_epochs"
    for epoch in range(epochs):
        hyper = opt.hyper(None, 0.0, clip_norm)
        np.copyto(good, params)
        np.copyto(good_state, opt.state)
        t0 = time.perf_counter()
        if shuffle and not full_batch:
            shuffler.shuffle(order)
        total, weight = 0.0, 0.0
        for k in range(steps):
            start = min(k * rows, n_local)
            count = min(rows, n_local - start)
            loss, w = global_step(start, count)
            if w == 0:
                continue
            if not np.isfinite(loss):
                total = np.nan
                break
            opt.t += 1
            apply_update(opt.code, params, grad, opt.state, hyper, opt.t)
            total += loss * w
            weight += w
        epoch_loss = total / weight if weight else np.nan
        seconds = time.perf_counter() - t0
        if not np.isfinite(epoch_loss) or not np.isfinite(params).all():
            np.copyto(params, good)
            np.copyto(opt.state, good_state)
            history.stop_reason = "diverged"
            raise DivergenceError(f"training diverged in epoch {epoch + 1} (the loss became "
                                  f"{epoch_loss}); every rank keeps the weights of epoch "
                                  f"{epoch}. Try a smaller learning rate.",
                                  epoch=epoch + 1, history=history)
        logs = {"epoch": epoch + 1, "loss": epoch_loss, "learning_rate": opt.learning_rate,
                "seconds": seconds}
        stop = False
        if rank == 0:
            if Xv is not None:
                val_loss, P = net._evaluate(Xv, Yv, swv)
                logs["val_loss"] = val_loss
                logs["val_score"] = score(net, P, Yv, swv)
            value = logs.get("val_loss", epoch_loss)
            bad_epochs = 0 if value < best - min_delta else bad_epochs + 1
            if value < best:
                best = value
                history.best_epoch = epoch + 1
                if early_stopping:
                    best_params = params.copy()
            stop = early_stopping and bad_epochs >= patience
            if checkpoint is not None:
                net.save(checkpoint)
        logs, stop = comm.bcast((logs, stop), root=0)
        history.best_epoch = comm.bcast(history.best_epoch, root=0)
        history.append(logs)
        progress.update(logs)
        if stop:
            stop_reason = "early_stopping"
            history.stopped_early = True
            break
    progress.close()
    if early_stopping:
        if rank == 0 and best_params is not None:
            np.copyto(params, best_params)
        comm.Bcast(params, root=0)
    history.stop_reason = stop_reason
    return history


def _warm_kernels(net, ws, X, Y, sw, opt, rates):
    """Load or compile this rank's kernels before the ranks start to run together."""
    grad = np.zeros_like(net.params)
    order = np.arange(X.shape[0], dtype=np.int64)
    rng = np.zeros(1, np.uint64)
    shard_gradient(X, Y, sw, order, 0, 0, net.params, grad, net.layout.spec, net.loss_code,
                   ws.xbuf, ws.ybuf, ws.wbuf, ws.acts, ws.tmp, rates, ws.masks, rng)
    if not isinstance(opt, LBFGS):
        state = np.zeros_like(opt.state)
        hyper = opt.hyper(0.0, 0.0, None)
        apply_update(opt.code, net.params.copy(), grad, state, hyper, 1)
    add_l2(net.params, grad, net.layout.spec, 0.0)


def _fit_lbfgs(net, opt, epochs, global_step, grad, n_local, history, progress):
    """Every rank runs the same L-BFGS iterations on the globally summed loss and gradient
    (the function values are identical on all ranks, so are SciPy's decisions)."""
    from scipy.optimize import minimize
    params = net.params

    def fun(p):
        params[:] = p
        loss, _ = global_step(0, n_local)
        return loss, grad.astype(np.float64)

    def callback(intermediate_result):
        logs = {"epoch": history.epochs + 1, "loss": float(intermediate_result.fun),
                "learning_rate": np.nan, "seconds": np.nan}
        history.append(logs)
        progress.update(logs)

    result = minimize(fun, params.astype(np.float64), jac=True, method="L-BFGS-B",
                      callback=callback, options={"maxiter": epochs, "maxcor": opt.memory,
                                                  "gtol": opt.gtol, "maxfun": opt.maxfun})
    params[:] = result.x
    progress.close()
    history.stop_reason = "max_epochs" if result.nit >= epochs else "converged"
    return history
