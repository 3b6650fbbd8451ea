"""Many models at once: :func:`fit_many` trains K networks over the machine's cores.

Each network is trained by the one trainer (:func:`fastbp.training.fit`), so every network
ends exactly as ``net.fit(X, y, **options)`` would have left it, bit for bit.  The networks
are spread over worker threads: the epoch kernels release the GIL (``nogil=True``), so while
one thread is inside a compiled epoch the others run theirs on the other cores; Python only
holds the GIL between epochs (validation, history, callbacks).  Each network's buffers
(workspace, optimizer state, gradient) are its own; the training data is shared read-only.

Why threads and not one compiled ``prange`` over the models: the same spread over cores
without ``parallel=True`` kernels (whose on-disk caching has crashed elsewhere), no new
specializations to compile, and every ``fit`` option works.

BLAS: OpenBLAS's thread count is one process-wide setting.  Networks whose products are big
enough for fastbp to give BLAS all its threads (``Layout.uses_all_blas_threads``, see
:mod:`fastbp._threads`) are trained one after another (each already uses every core);
the others run concurrently, each with BLAS on one thread as ``fit`` itself runs them, so
the bits do not depend on the spread.
"""
import copy
import os
import threading

import numpy as np

from ._config import CHUNK_ROWS
from ._threads import sharing_cores
from .optimizers import Optimizer, get_optimizer
from .schedules import Schedule

__all__ = ["fit_many", "cpu_count"]


def cpu_count():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _per_network(name, value, k):
    """``value`` as a list of k values: a list is one value per network (it must have k
    entries); anything else (including a tuple) is shared by all."""
    if isinstance(value, list):
        if len(value) != k:
            raise ValueError(f"{name} is a list, so it gives one value per network: it needs "
                             f"{k} entries (one per network), got {len(value)}; give a value "
                             f"shared by every network as a tuple or a scalar")
        return list(value)
    return [value] * k


def _own_copy(value):
    """Stateful option objects (an optimizer, a schedule) copied for each network, so that
    concurrent fits never share state."""
    if isinstance(value, (Optimizer, Schedule)):
        return copy.deepcopy(value)
    return value


def _uses_all_blas_threads(net, options):
    """Whether ``fit`` would run this network's products with every BLAS thread."""
    opt = get_optimizer(options.get("optimizer", "sgd"), options.get("learning_rate"))
    rows = CHUNK_ROWS if opt.full_batch else options.get("batch_size", 32)
    return net.layout.uses_all_blas_threads(max(1, min(int(rows), CHUNK_ROWS)))


def fit_many(nets, X, y, *, n_jobs=None, **options):
    """Train every network of ``nets`` in place, spread over the cores; returns their
    :class:`~fastbp.training.History` objects, in order.

    Each network ends bit-identical to ``net.fit(X, y, **options)``.  ``X`` and ``y`` are
    one data set for all, or lists with one per network (e.g. bootstrap samples).  Every
    option of :func:`fastbp.training.fit` is accepted; an option given as a *list* holds one
    value per network (``learning_rate=[0.1, 0.01]``, ``seed=[0, 1]``); give a value that is
    itself a sequence and shared by all (a per-layer ``dropout``, ``callbacks``) as a tuple.
    Optimizer and schedule objects are copied for each network.  ``n_jobs``: worker threads
    (default: the cores this process may use).  When a fit raises, the others stop at the
    end of their current epoch and the first error (in network order) is raised;
    ``KeyboardInterrupt`` stops them the same way.
    """
    from .network import Network

    nets = list(nets)
    k = len(nets)
    if k == 0:
        return []
    for i, net in enumerate(nets):
        if not isinstance(net, Network):
            raise TypeError(f"nets[{i}] is not a fastbp.Network: {net!r}")
    if len({id(n) for n in nets}) != k:
        raise ValueError("nets holds the same network more than once; fit_many trains each "
                         "network in place, so each must be its own object")
    if n_jobs is None:
        n_jobs = cpu_count()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int, got {n_jobs!r}")
    if "reducer" in options:
        raise TypeError("fit_many does not train over MPI (use fastbp.distributed.fit)")
    Xs = _per_network("X", X, k)
    ys = _per_network("y", y, k)
    per = {name: _per_network(name, value, k) for name, value in options.items()}
    jobs = []
    for i in range(k):
        opts = {name: _own_copy(values[i]) for name, values in per.items()}
        jobs.append((i, nets[i], Xs[i], ys[i], opts))
    # one conversion of shared data per dtype, instead of one per network
    converted = {}
    for job in jobs:
        i, net, Xi, yi, opts = job
        if Xi is X and not isinstance(X, list):
            key = np.dtype(net.dtype).name
            if key not in converted:
                try:
                    converted[key] = np.ascontiguousarray(X, dtype=net.dtype)
                except (TypeError, ValueError):
                    converted[key] = X  # fit raises the clear error
            jobs[i] = (i, net, converted[key], yi, opts)

    stop = threading.Event()

    def stopper(net, logs):
        return stop.is_set()

    def task(job):
        i, net, Xi, yi, opts = job
        opts = dict(opts)
        opts["callbacks"] = tuple(opts.get("callbacks", ())) + (stopper,)
        return lambda: net.fit(Xi, yi, **opts)

    results = run_concurrently([task(j) for j in jobs],
                               [_uses_all_blas_threads(j[1], j[4]) for j in jobs], n_jobs,
                               stop)
    return results


def run_concurrently(tasks, serial, n_jobs, stop=None):
    """Call every task (a callable without arguments) and return their results in order:
    those with ``serial[i]`` true one after another first, the others over ``n_jobs`` worker
    threads.  When a task raises, ``stop`` is set (so that tasks watching it end early), no
    new task starts, and the first error in task order is raised once all threads are done;
    ``KeyboardInterrupt`` in the caller sets ``stop`` and waits for the threads the same way."""
    stop = stop or threading.Event()
    k = len(tasks)
    results = [None] * k
    errors = [None] * k

    def run(i):
        if stop.is_set():
            return
        try:
            results[i] = tasks[i]()
        except BaseException as e:  # noqa: B902 - re-raised in the caller's thread
            errors[i] = e
            stop.set()

    pooled = [i for i in range(k) if not serial[i]]
    # Waiting is on an event the workers set, not on Thread.join: on CPython before 3.12 a
    # KeyboardInterrupt inside join() can mark a still running thread as stopped (the
    # interrupted wait releases the thread's own state lock), after which join() returns
    # at once and the caller would see networks still training.
    finished = threading.Event()
    lock = threading.Lock()
    running = [0]
    threads = []
    try:
        for i in range(k):
            if serial[i]:
                run(i)
        workers = min(n_jobs, len(pooled))
        if workers <= 1:
            for i in pooled:
                run(i)
        else:
            queue = list(reversed(pooled))

            def worker():
                sharing_cores()  # a recurrent fit here does not split its batches
                try:
                    while True:
                        with lock:
                            if not queue:
                                return
                            i = queue.pop()
                        run(i)
                finally:
                    with lock:
                        running[0] -= 1
                        if running[0] == 0:
                            finished.set()

            threads = [threading.Thread(target=worker, name=f"fastbp-worker-{w}",
                                        daemon=True) for w in range(workers)]
            running[0] = workers
            for t in threads:
                t.start()
            while not finished.wait(0.1):
                pass
    except KeyboardInterrupt:
        stop.set()  # every fit stops at the end of its current epoch
        with lock:  # threads the interrupt kept from starting will not count down
            running[0] -= sum(1 for t in threads if t.ident is None)
            if running[0] <= 0:
                finished.set()
        while not finished.wait(0.1):
            pass
        raise
    for e in errors:
        if e is not None:
            raise e
    return results
