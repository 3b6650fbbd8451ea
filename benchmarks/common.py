"""Workloads, data and warm-up shared by the benchmark modules.

The workload definitions mirror ``fastbp.bench.WORKLOADS`` (``python -m fastbp bench``) but
are kept here on purpose: asv runs the *same* benchmark code against many commits, so what a
benchmark measures must not change when the package under test does (and older commits have
no ``fastbp.bench``).  Change a definition here only together with the benchmark's
``version`` attribute (or accept that its history restarts).

Everything here uses only fastbp's public API, numpy and the data that installs with fastbp.
Results are memoized per process: asv re-runs ``setup`` before every timed sample, so setup
must be cheap after its first call.
"""
import functools

import numpy as np

import fastbp
from fastbp.datasets import load_digits, stratified_split

#: W1 online, W2 mini-batch, W3 wide: as in ``fastbp.bench`` (softmax + cross-entropy).
#: ``samples`` None means the bundled digits (1797 x 64).
WORKLOADS = {
    "W1": dict(name="W1", sizes=(64, 32, 10), hidden="tanh", optimizer="sgd",
               learning_rate=0.01, batch_size=1, samples=None),
    "W2": dict(name="W2", sizes=(784, 256, 128, 10), hidden="relu", optimizer="adam",
               learning_rate=1e-3, batch_size=64, samples=8192),
    "W3": dict(name="W3", sizes=(784, 2048, 2048, 10), hidden="relu", optimizer="sgd",
               learning_rate=0.01, batch_size=512, samples=4096),
}

#: Rows of W3 used by the timed benchmarks (the full 4096 take ~2.5 s/epoch on 2 cores).
W3_BENCH_SAMPLES = 1024

DTYPES = {"float32": np.float32, "float64": np.float64}


def fit_options(wl):
    return dict(batch_size=wl["batch_size"], optimizer=wl["optimizer"],
                learning_rate=wl["learning_rate"])


@functools.lru_cache(maxsize=None)
def _raw_data(name, seed=0):
    wl = WORKLOADS[name]
    if wl["samples"] is None:
        X, y = load_digits()
    else:  # a random linear teacher with noise, as in fastbp.bench
        rng = np.random.default_rng(seed)
        n_in, n_out = wl["sizes"][0], wl["sizes"][-1]
        X = rng.random((wl["samples"], n_in))
        teacher = rng.normal(size=(n_in, n_out))
        y = (X @ teacher + rng.normal(scale=2.0, size=(wl["samples"], n_out))).argmax(axis=1)
    X = np.ascontiguousarray(X, dtype=np.float32)
    Y = np.eye(wl["sizes"][-1], dtype=np.float32)[y]
    return X, Y, y


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
def workload_init(name, seed=42):
    """Glorot-uniform (W, b) float32 pairs every network of a workload starts from."""
    rng = np.random.default_rng(seed)
    sizes = WORKLOADS[name]["sizes"]
    init = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        init.append((rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
                     np.zeros(n_out, np.float32)))
    return tuple(init)


def workload_network(name, dtype="float32"):
    """A fresh network of a workload with the shared initial weights."""
    wl = WORKLOADS[name]
    net = fastbp.Network(list(wl["sizes"]), hidden_activation=wl["hidden"], output="softmax",
                         dtype=DTYPES[dtype], seed=0)
    for W, b, (W0, b0) in zip(net.weights, net.biases, workload_init(name)):
        W[:] = W0
        b[:] = b0
    return net


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
