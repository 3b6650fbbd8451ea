"""Workloads, data and warm-up shared by the benchmark modules.

The workload definitions, their data and their initial weights come from ``fastbp.bench``
(``python -m fastbp bench``), the one place that defines them for that report, this suite
and the peer comparison (``benchmarks/peers``).  asv runs this benchmark code against the
fastbp of each commit it measures, so a commit whose ``fastbp.bench`` defines a workload
differently measures that definition (and commits without ``fastbp.bench.workload_data``
cannot be measured): change a definition there only together with the ``version`` of the
benchmarks that use it (or accept that their history restarts).

Everything here uses fastbp, numpy and the data that installs with fastbp.  Results are
memoized per process: asv re-runs ``setup`` before every timed sample, so setup must be
cheap after its first call.
"""
import functools

import numpy as np

from fastbp import bench
from fastbp.bench import WORKLOADS
from fastbp.datasets import stratified_split

#: Rows of W3 used by the timed benchmarks (the full 4096 take ~2.5 s/epoch on 2 cores).
W3_BENCH_SAMPLES = 1024

DTYPES = {"float32": np.float32, "float64": np.float64}


def fit_options(wl):
    return dict(batch_size=wl["batch_size"], optimizer=wl["optimizer"],
                learning_rate=wl["learning_rate"])


@functools.lru_cache(maxsize=None)
def _raw_data(name):
    """(X float32, Y one-hot float32, integer labels) of a workload."""
    X, Y = bench.workload_data(WORKLOADS[name])
    return X, Y, Y.argmax(axis=1)


@functools.lru_cache(maxsize=None)
def workload_data(name, dtype="float32", samples=None):
    """(X, Y one-hot) of a workload, C-contiguous in ``dtype`` (so fit converts nothing),
    optionally only the first ``samples`` rows.  Cached and shared: do not modify
    (left writeable: a read-only array is another Numba type, another compilation)."""
    X, Y, _ = _raw_data(name)
    if samples is not None:
        X, Y = X[:samples], Y[:samples]
    X = np.ascontiguousarray(X, dtype=DTYPES[dtype])
    Y = np.ascontiguousarray(Y, dtype=DTYPES[dtype])
    return X, Y


@functools.lru_cache(maxsize=None)
def workload_init(name):
    """Glorot-uniform (W, b) float32 pairs every network of a workload starts from."""
    return tuple(bench.workload_init(WORKLOADS[name]))


def workload_network(name, dtype="float32"):
    """A fresh network of a workload with the shared initial weights."""
    return bench.workload_network(WORKLOADS[name], workload_init(name), DTYPES[dtype])


@functools.lru_cache(maxsize=None)
def warm_training(name, dtype="float32"):
    """Run a tiny fit with exactly the argument types of the benchmark, once per process:
    the epoch kernel is then compiled (or loaded from Numba's disk cache) before any timed
    call."""
    wl = WORKLOADS[name]
    X, Y = workload_data(name, dtype)
    rows = wl["batch_size"] + 1  # a full and a partial batch
    net = workload_network(name, dtype)
    net.fit(X[:rows], Y[:rows], epochs=1, seed=0, **fit_options(wl))
    net.predict_proba(X[:2])
    return True


@functools.lru_cache(maxsize=None)
def digits_split(seed=0, test_fraction=0.25):
    """Stratified train/test split of the bundled digits: (X_train, y_train, X_test, y_test)
    with float32 X and int labels."""
    X, _, y = _raw_data("W1")
    train, test = stratified_split(y, test_fraction, seed=seed)
    return X[train], y[train], X[test], y[test]
