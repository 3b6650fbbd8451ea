"""``python -m fastbp bench``: fastbp's own speed report, in one process.

Workloads (softmax + cross-entropy, the same data and initial weights every run):

- W1 online:     64-32-10 tanh, plain SGD, batch 1, on the bundled digits (1797 samples);
- W2 mini-batch: 784-256-128-10 relu, Adam, batch 64, 8192 synthetic 784-dim samples;
- W3 wide:       784-2048-2048-10 relu, plain SGD, batch 512, 4096 such samples.

fastbp trains each in float32 and float64: a warm-up first (compilation excluded), then
``epochs`` timed epochs, repeated for ``rounds`` rounds that interleave the two.  The table
gives the median epoch's samples per second, the ratio to float32 and the final loss.  For
W3 also the GFLOP/s fastbp reaches beside the GEMM peak of the BLAS it calls; then the
latency of predicting one row, start-up time and the BLAS in use.

Everything here is in the package.  The comparison with NumPy, scikit-learn, PyTorch, JAX
and FANN on the same workloads runs from a checkout, ``python benchmarks/peers/compare.py``:
it passes its implementations to :func:`run` as ``peers``.  That comparison and the asv
suite (``benchmarks/common.py``) take the workload definitions from this module.

OpenBLAS reads ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` at start-up; to compare both
settings run the command twice, once under ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from .datasets import load_digits
from .network import Network

#: The workloads of this report, of the peer comparison (benchmarks/peers) and of the asv
#: suite (benchmarks/common.py), in one place.  asv does not see a change here in a
#: benchmark's version: changing a definition restarts the history of what measures it.
WORKLOADS = {
    "W1": dict(name="W1", sizes=[64, 32, 10], hidden="tanh", optimizer="sgd",
               learning_rate=0.01, batch_size=1, epochs=10, samples=None),
    "W2": dict(name="W2", sizes=[784, 256, 128, 10], hidden="relu", optimizer="adam",
               learning_rate=1e-3, batch_size=64, epochs=5, samples=8192),
    "W3": dict(name="W3", sizes=[784, 2048, 2048, 10], hidden="relu", optimizer="sgd",
               learning_rate=0.01, batch_size=512, epochs=3, samples=4096),
}


#: seconds of rest before each implementation runs, so that the worker threads of the one
#: before (OpenBLAS, OpenMP, XLA spin a while after their last task) are idle again
PAUSE = 1.0


def workload_data(wl, seed=0):
    """(X, Y one-hot) float32 for a workload: digits for W1, a random teacher otherwise."""
    if wl["samples"] is None:
        X, y = load_digits()
    else:
        rng = np.random.default_rng(seed)
        n_in, n_out = wl["sizes"][0], wl["sizes"][-1]
        X = rng.random((wl["samples"], n_in))
        teacher = rng.normal(size=(n_in, n_out))
        y = (X @ teacher + rng.normal(scale=2.0, size=(wl["samples"], n_out))).argmax(axis=1)
    X = np.ascontiguousarray(X, dtype=np.float32)
    return X, np.eye(wl["sizes"][-1], dtype=np.float32)[y]


def workload_init(wl, seed=42):
    """Glorot-uniform (W (n_in, n_out), b) pairs every implementation starts from."""
    rng = np.random.default_rng(seed)
    init = []
    for n_in, n_out in zip(wl["sizes"][:-1], wl["sizes"][1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        init.append((rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
                     np.zeros(n_out, np.float32)))
    return init


def workload_network(wl, init, dtype=np.float32):
    """A fresh network of a workload with the initial weights ``init``."""
    net = Network(wl["sizes"], hidden_activation=wl["hidden"], output="softmax",
                  dtype=dtype, seed=0)
    for W, b, (W0, b0) in zip(net.weights, net.biases, init):
        W[:] = W0
        b[:] = b0
    return net


def cross_entropy(params, X, Y, hidden, chunk=1024):
    """Mean softmax cross-entropy of the MLP ``params`` ((W, b) pairs) over all of X, Y: one
    NumPy forward pass (float64 log-softmax), the same for fastbp and every peer."""
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        h = X[s:s + chunk]
        for W, b in params[:-1]:
            z = h @ W + b
            h = np.tanh(z) if hidden == "tanh" else np.maximum(z, 0)
        z = (h @ params[-1][0] + params[-1][1]).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= float((Y[s:s + chunk] * logp).sum())
    return total / X.shape[0]


def run_fastbp(wl, X, Y, init, epochs, dtype=np.float32, blas=None):
    """fastbp on a workload: {"seconds" (per epoch), "samples_per_epoch", "final_loss",
    "note"}, the result format of the peers.  ``blas``: the BLAS for this run only."""
    if blas is not None:
        from ._blas import set_blas
        before = set_blas(blas)
        try:
            result = run_fastbp(wl, X, Y, init, epochs, dtype)
        finally:
            set_blas(before)
        result["note"] += f", {blas}'s gemm"
        return result
    fit = dict(batch_size=wl["batch_size"], optimizer=wl["optimizer"],
               learning_rate=wl["learning_rate"])
    warm = workload_network(wl, init, dtype)  # loads (or compiles) the kernels
    warm.fit(X[:4 * wl["batch_size"]], Y[:4 * wl["batch_size"]], epochs=1, seed=0, **fit)
    net = workload_network(wl, init, dtype)
    history = net.fit(X, Y, epochs=epochs, seed=0, **fit)
    params = [(W.astype(np.float32), b.astype(np.float32))
              for W, b in zip(net.weights, net.biases)]
    return {"seconds": history.seconds, "samples_per_epoch": X.shape[0],
            "final_loss": cross_entropy(params, X, Y, wl["hidden"]),
            "note": f"fastbp, {np.dtype(dtype).name}, one compiled call per epoch"}


def _median_rate(result):
    return result["samples_per_epoch"] / statistics.median(result["seconds"])


# --- prediction latency ------------------------------------------------------------------
def _per_call(fn, calls=2000, repeats=9):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def prediction_latency(peers=None, peer_names=(), rounds=3):
    """Seconds per call to predict one row with the W1 network (64-32-10 tanh/softmax),
    median over interleaved rounds; with ``peers``, also their ``latency_calls``."""
    wl = WORKLOADS["W1"]
    init = workload_init(wl)
    x = workload_data(wl)[0][:1].copy()
    predict = workload_network(wl, init).predict_proba
    calls = {"fastbp": (lambda: predict(x), 2000)}
    if peers is not None:
        calls.update(peers.latency_calls(x, init, peer_names))
    time.sleep(PAUSE)
    samples = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (fn, n) in calls.items():
            samples[name].append(_per_call(fn, calls=n, repeats=5))
    return {name: statistics.median(v) for name, v in samples.items()}


# --- BLAS peak ------------------------------------------------------------------------------
_DOT = []

#: timed GEMMs per peak measurement: a peak is the best of them, never a median (a busy
#: machine slows some calls down, none up)
GEMM_TRIES = 15


def gemm_peak(dtype=np.float32, size=(512, 2048, 2048), tries=GEMM_TRIES):
    """GFLOP/s of the BLAS that fastbp's kernels call (Numba's np.dot: SciPy's BLAS): the
    fastest of ``tries`` timed products."""
    if not _DOT:
        from numba import njit

        @njit
        def dot(a, b, c):
            np.dot(a, b, c)

        _DOT.append(dot)
    dot = _DOT[0]
    m, k, n = size
    a = np.random.default_rng(0).random((m, k)).astype(dtype)
    b = np.random.default_rng(1).random((k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    dot(a, b, c)
    times = []
    for _ in range(tries):
        t0 = time.perf_counter()
        dot(a, b, c)
        times.append(time.perf_counter() - t0)
    return 2.0 * m * k * n / min(times) / 1e9


def gemm_report(rate, sizes, peaks):
    """fastbp's GFLOP/s at ``rate`` samples/s on a network of ``sizes`` beside the BLAS's
    GEMM peak, the best of the ``gemm_peak`` measurements ``peaks``: (report dict, line to
    print).

    fastbp cannot compute faster than the GEMM it calls, so a rate above the peak means the
    peak was measured low (the machine was busy while it ran): that is said as a failed
    measurement and no fraction of peak is given."""
    peak = max(peaks)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    n_weights = sum(a * b for a, b in pairs)
    nominal = rate * 6 * n_weights / 1e9
    # what the kernels really multiply: no delta for the input layer
    actual = rate * (6 * n_weights - 2 * pairs[0][0] * pairs[0][1]) / 1e9
    row = {"peak_gflops": peak, "peak_measurements": len(peaks),
           "fastbp_gflops_nominal": nominal, "fastbp_gflops_actual": actual}
    line = (f"fastbp {nominal:.0f} GFLOP/s counted as 6 FLOPs per weight per sample "
            f"({actual:.0f} GFLOP/s actually computed: the input layer needs no delta); "
            f"float32 GEMM peak of the BLAS it calls, the fastest of "
            f"{len(peaks)} x {GEMM_TRIES} products timed after its rounds: {peak:.0f} GFLOP/s")
    if actual <= peak:
        row["fraction_of_peak"] = actual / peak
        line += f", so {100 * actual / peak:.0f}% of peak"
    else:
        row["fraction_of_peak"] = None
        row["peak_measurement_failed"] = True
        line += (f". MEASUREMENT PROBLEM: fastbp cannot compute {actual:.0f} GFLOP/s on a "
                 f"BLAS whose peak is {peak:.0f}, so the peak was measured low (a busy "
                 f"machine?); no fraction of peak is given. Rerun on a quiet machine")
    return row, line


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                f"{i.get('num_threads')} threads ({os.path.basename(i['filepath'])})"
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        return ["threadpoolctl not installed"]


# --- start-up -------------------------------------------------------------------------------
STARTUP = ("import numpy as np, fastbp; from fastbp.datasets import load_digits; "
           "X, y = load_digits(); net = fastbp.Network([64, 32, 10], "
           "hidden_activation='tanh', dtype=np.float32, seed=0); "
           "net.fit(X, y, epochs=1, batch_size=1, learning_rate=0.01, seed=0)")


def startup_seconds(code, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- the whole report -----------------------------------------------------------------------
def run(workloads=("W1", "W2", "W3"), epochs=None, float64=True, latency=True, startup=True,
        rounds=3, out=print, peers=None, peer_names=()):
    """Print the report; return it as a dict.

    ``peers`` (optional): other implementations to time in the same rounds, a module with
    the interface of ``benchmarks/peers`` in a checkout (``available``, ``run``,
    ``latency_calls``, ``startup_imports``), and ``peer_names`` the ones to run."""
    env = {k: os.environ.get(k, "(unset)") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out(f"fastbp bench on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}")
    out("OpenBLAS environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    from ._blas import current_blas, mkl_installed
    out(f"fastbp's matrix products call: {current_blas()} (fastbp.set_blas / FASTBP_BLAS)")
    for line in blas_info():
        out("  BLAS: " + line)
    report = {"env": env, "workloads": {}}
    for name in workloads:
        wl = WORKLOADS[name]
        X, Y = workload_data(wl)
        init = workload_init(wl)
        n_epochs = epochs or wl["epochs"]
        out(f"\n{name}: {'-'.join(map(str, wl['sizes']))} {wl['hidden']}/softmax, "
            f"{wl['optimizer']}, batch {wl['batch_size']}, {X.shape[0]} samples, "
            f"median of {rounds} rounds x {n_epochs} epochs")
        results = {}
        skipped = set()
        peaks = []
        for _ in range(rounds):
            # rounds interleave the implementations, so that a slow spell of a shared
            # machine does not land on one of them only
            # "fastbp mkl": the same float32 run with MKL's gemm, where MKL is installed and
            # the workload's products go to BLAS (W1's never do)
            mkl = ["fastbp mkl"] if name != "W1" and mkl_installed() else []
            for impl in (["fastbp"] + mkl + (["fastbp float64"] if float64 else [])
                         + list(peer_names)):
                if impl in skipped:
                    continue
                if not impl.startswith("fastbp"):
                    ok, reason = peers.available(impl, wl)
                    if not ok:
                        out(f"  {impl:15s} skipped: {reason}")
                        skipped.add(impl)
                        continue
                time.sleep(PAUSE)
                try:
                    if impl == "fastbp":
                        r = run_fastbp(wl, X, Y, init, n_epochs)
                    elif impl == "fastbp mkl":
                        r = run_fastbp(wl, X, Y, init, n_epochs, blas="mkl")
                    elif impl == "fastbp float64":
                        r = run_fastbp(wl, X, Y, init, n_epochs, np.float64)
                    else:
                        r = peers.run(impl, wl, X, Y, init, n_epochs)
                except Exception as e:  # a broken peer install must not end the comparison
                    if impl.startswith("fastbp"):
                        raise
                    out(f"  {impl:15s} failed: {type(e).__name__}: {e}")
                    skipped.add(impl)
                    continue
                if impl in results:
                    results[impl]["seconds"] += r["seconds"]
                    results[impl]["final_loss"] = r["final_loss"]
                else:
                    results[impl] = r
                if name == "W3" and impl == "fastbp":
                    peaks.append(gemm_peak())  # the BLAS's peak right now, same conditions
        base = _median_rate(results["fastbp"])
        out(f"  {'implementation':15s} {'samples/s':>12s} {'fastbp/this':>12s} "
            f"{'final loss':>11s}")
        rows = {}
        for impl, r in results.items():
            rate = _median_rate(r)
            rows[impl] = {"samples_per_s": rate, "ratio": base / rate,
                          "final_loss": r["final_loss"], "note": r["note"]}
            loss = "n/a" if np.isnan(r["final_loss"]) else f"{r['final_loss']:.5f}"
            out(f"  {impl:15s} {rate:12,.0f} {base / rate:12.2f} {loss:>11s}")
        if peaks:
            rows["gemm"], line = gemm_report(base, wl["sizes"], peaks)
            out("  " + line)
        report["workloads"][name] = rows
    if latency:
        lat = prediction_latency(peers, peer_names)
        out("\nPredicting one row, 64-32-10 tanh/softmax (median per call):")
        for impl, s in lat.items():
            out(f"  {impl:15s} {s * 1e6:8.2f} us   fastbp is {s / lat['fastbp']:.1f}x faster"
                if impl != "fastbp" else f"  {impl:15s} {s * 1e6:8.2f} us")
        report["latency_s"] = lat
    if startup:
        bare = startup_seconds("pass")
        ours = startup_seconds(STARTUP)
        out(f"\nStart-up (warm kernel cache, median of 5 processes): bare Python {bare:.2f} s, "
            f"import fastbp + one W1 epoch {ours:.2f} s: +{ours - bare:.2f} s")
        report["startup_s"] = {"bare": bare, "fastbp_one_epoch": ours}
        if peers is not None:
            for label, code in peers.startup_imports(peer_names).items():
                seconds = startup_seconds(code)
                out(f"  ({code} alone: +{seconds - bare:.2f} s)")
                report["startup_s"][label] = seconds
    return report


def _workloads(text):
    import argparse
    names = tuple(w.strip() for w in text.split(",") if w.strip())
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown workload {unknown[0] if unknown else text!r}"
                                         f"; known: {', '.join(WORKLOADS)}")
    return names


def add_arguments(parser):
    """The options of ``fastbp bench`` (also those of benchmarks/peers/compare.py), their
    values checked as they are parsed (one-line usage errors)."""
    from .cli import POSITIVE_INT
    parser.add_argument("--workloads", default=("W1", "W2", "W3"), type=_workloads,
                        help="comma-separated subset of W1,W2,W3")
    parser.add_argument("--epochs", type=POSITIVE_INT, default=None,
                        help="timed epochs per round")
    parser.add_argument("--rounds", type=POSITIVE_INT, default=3,
                        help="rounds over all implementations (median over all their epochs)")
    parser.add_argument("--no-float64", action="store_true", help="skip the float64 rows")
    parser.add_argument("--no-latency", action="store_true", help="skip prediction latency")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")


def main(args, peers=None, peer_names=()):
    """Run the report for parsed ``args`` (see :func:`add_arguments`)."""
    workloads = args.workloads
    report = run(workloads, epochs=args.epochs, float64=not args.no_float64,
                 latency=not args.no_latency, startup=not args.no_startup, rounds=args.rounds,
                 peers=peers, peer_names=peer_names)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
    return 0
