"""``fastbp.warmup()`` / ``python -m fastbp warmup``: compile the kernels ahead of time.

The first process that trains with a new fastbp (or a new Numba) compiles the kernels and
caches their machine code on disk (see :mod:`fastbp._cache`); every later process loads it.
``warmup`` does that first compilation on purpose, for example in a Docker build step or a CI
cache step, so that no user process or fresh joblib worker ever waits for it.

It drives the public API on tiny networks, so the kernels are compiled for exactly the
argument types that ``fit``, ``predict``, ``evaluate`` and ``gradient`` pass (one set per
dtype), with every layer kind (dense, batch and layer norm, and the recurrent kinds with
variable lengths), sparse (CSR) input and, for each optimizer asked for, its update rule.
"""
import time

import numpy as np

from ._validation import check_dtype

#: float dtypes the kernels are compiled for
DTYPES = ("float32", "float64")


def _dispatchers():
    """Every kernel dispatcher of :mod:`fastbp.kernels` (module attribute name -> dispatcher)."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels

    found = {}
    for info in pkgutil.walk_packages(kernels.__path__, kernels.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def kernel_statistics():
    """For every kernel that has run in this process, and every optimizer's update rule it
    has made: its cache hits and misses (a miss is a compilation), as
    ``{name: (hits, misses)}``."""
    from .kernels import optimizers

    stats = {}
    for name, d in _dispatchers().items():
        hits = sum(d.stats.cache_hits.values())
        misses = sum(d.stats.cache_misses.values())
        if hits or misses:
            stats[name] = (hits, misses)
    for (code, dtype), rule in optimizers.made_rules().items():  # each compiled once, if ever
        hits = rule.cache_hits
        stats[f"fastbp.kernels.optimizers.update_rule[{code}, {dtype}]"] = (hits, 1 - hits)
    return stats


def _optimizer_names(optimizers):
    from .registry import OPTIMIZERS
    from . import optimizers as _  # noqa: F401  (registers the optimizer classes)
    if optimizers is None:
        return OPTIMIZERS.names()
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    return [OPTIMIZERS.get(o, label="optimizer").name for o in optimizers]


def warmup(dtypes=DTYPES, optimizers=None, recurrent=True, sparse=True, verbose=False):
    """Compile (or load) every kernel that training and prediction use, for each dtype in
    ``dtypes`` and each optimizer in ``optimizers`` (names, default: every registered one),
    and cache them on disk.  Returns a dict: ``seconds``, ``cached`` (whether Numba had a
    writable cache directory; if not, the kernels were compiled for this process only, see
    :class:`fastbp.errors.KernelCacheWarning`), ``compiled`` and ``loaded`` (the number of
    kernel specializations compiled now and loaded from the cache)."""
    from ._config import JIT
    import scipy.sparse

    from .layers import GRU, LSTM, RNN, Dense
    from .network import Network
    from .registry import OPTIMIZERS

    if isinstance(dtypes, (str, type, np.dtype)):
        dtypes = [dtypes]
    dtypes = [check_dtype(d) for d in dtypes]
    names = _optimizer_names(optimizers)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.random((8, 3))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    Y = rng.random((8, 2))
    S = rng.random((8, 3, 3))  # 8 sequences of 3 steps of 3 features
    lengths = np.array([3, 2, 1, 3, 2, 1, 3, 3])
    for dtype in dtypes:
        Xd = X.astype(dtype)
        for opt in names:
            if verbose:
                print(f"fastbp warmup: {np.dtype(dtype).name}, {opt}", flush=True)
            # dense layers: online and mini-batch training, validation, prediction
            net = Network([3, 4, 3], hidden_activation="tanh", output="softmax", dtype=dtype,
                          seed=0)
            net.fit(Xd, y, epochs=1, batch_size=4, optimizer=opt, seed=0,
                    validation_data=(Xd[:4], y[:4]))
            # every layer kind (batch and layer norm), dropout and a regression output
            net = Network([3, Dense(4, activation="relu", normalization="batch"),
                           Dense(4, activation="gelu", normalization="layer"), 2],
                          output="identity", dtype=dtype, seed=0)
            net.fit(Xd, Y, epochs=1, batch_size=4, optimizer=opt, seed=0,
                    dropout=0.0 if OPTIMIZERS.get(opt).full_batch else 0.1)
            if sparse:  # sparse (CSR) input: the sparse first-layer kernels
                net = Network([3, 4, 3], output="softmax", dtype=dtype, seed=0)
                net.fit(scipy.sparse.csr_matrix(Xd), y, epochs=1, batch_size=4,
                        optimizer=opt, seed=0)
            if not recurrent:
                continue
            # recurrent layers (every cell runs in the same sequence kernels), with lengths
            net = Network([3, GRU(4, return_sequences=True),
                           LSTM(3, bidirectional=True, return_sequences=True), RNN(2), 3],
                          output="softmax", dtype=dtype, seed=0)
            net.fit(S.astype(dtype), y, epochs=1, batch_size=4, optimizer=opt, seed=0,
                    lengths=lengths, validation_data=(S[:4].astype(dtype), y[:4],
                                                      None, lengths[:4]))
        net = Network([3, 4, 3], hidden_activation="tanh", output="softmax", dtype=dtype,
                      seed=0)
        net.fit(Xd, y, epochs=1, batch_size=1, seed=0)
        for n in (net, Network([3, Dense(4, normalization="batch"), 3], dtype=dtype, seed=0)):
            n.predict(Xd)
            n.predict_proba(Xd[:1])
            n.evaluate(Xd, y)
            n.gradient(Xd, y)
        if sparse:
            csr = scipy.sparse.csr_matrix(Xd)
            net = Network([3, 4, 3], output="softmax", dtype=dtype, seed=0)
            net.predict(csr)
            net.evaluate(csr, y)
            net.gradient(csr, y)
        if not recurrent:
            continue
        net = Network([3, GRU(4), 3], output="softmax", dtype=dtype, seed=0)
        Sd = S.astype(dtype)
        net.fit(Sd, y, epochs=1, batch_size=1, seed=0)
        net.predict(Sd)
        net.predict_proba(Sd[:1])
        net.predict(Sd, lengths=lengths)
        net.evaluate(Sd, y, lengths=lengths)
        net.gradient(Sd, y, lengths=lengths)
    stats = kernel_statistics()
    return {"seconds": time.perf_counter() - t0, "cached": bool(JIT["cache"]),
            "compiled": sum(m for _, m in stats.values()),
            "loaded": sum(h for h, _ in stats.values()),
            "dtypes": [np.dtype(d).name for d in dtypes], "optimizers": names}


def main(args):
    """``python -m fastbp warmup``."""
    report = warmup(dtypes=args.dtypes, optimizers=args.optimizers,
                    recurrent=not args.no_recurrent, sparse=not args.no_sparse,
                    verbose=not args.quiet)
    where = ("cached on disk" if report["cached"] else
             "NOT cached: Numba has no writable cache directory (set NUMBA_CACHE_DIR)")
    print(f"fastbp warmup: {report['compiled']} kernel specializations compiled, "
          f"{report['loaded']} loaded from the cache, in {report['seconds']:.1f} s "
          f"({', '.join(report['dtypes'])}; {', '.join(report['optimizers'])}); {where}")
    return 0 if report["cached"] else 1
