"""Start-up, each timed in a fresh interpreter (asv ``timeraw_``): ``import fastbp``; import
plus one W1 epoch with a warm Numba kernel cache; and the same with an empty cache (the
first compilation a new user waits for).

A ``timeraw_`` benchmark returns source code; asv runs it under ``timeit`` in a new
``python`` process and times only that code (interpreter start-up is not included).  It may
return ``(code, setup_code)``, but ``setup_code`` runs in the *same* fresh process, so it
cannot warm the kernel cache without also importing fastbp before the timed part; the
cache is therefore warmed from the benchmark's ``setup`` method in a separate process.
"""
import subprocess
import sys
import textwrap

#: import fastbp, then one epoch of W1 on the bundled digits (as ``fastbp.bench.STARTUP``)
ONE_W1_EPOCH = textwrap.dedent("""
    import numpy as np
    import fastbp
    from fastbp.datasets import load_digits
    X, y = load_digits()
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                         dtype=np.float32, seed=0)
    net.fit(X, y, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01, seed=0)
""")

#: the same on the first 100 digits, with NUMBA_CACHE_DIR pointed at a new empty directory
#: before numba is imported: every kernel of the default training path is compiled (and
#: written to that cache, as a first run does); the directory is removed at exit, untimed
COLD_W1_EPOCH = textwrap.dedent("""
    import atexit, os, shutil, tempfile
    _cache_dir = tempfile.mkdtemp(prefix="fastbp-asv-numba-cache-")
    atexit.register(shutil.rmtree, _cache_dir, True)
    os.environ["NUMBA_CACHE_DIR"] = _cache_dir
    import numpy as np
    import fastbp
    from fastbp.datasets import load_digits
    X, y = load_digits()
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                         dtype=np.float32, seed=0)
    net.fit(X[:100], y[:100], epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01,
            seed=0)
""")


#: a fresh joblib process pool (2 workers, joblib's default loky backend) whose workers each
#: import fastbp and fit a small estimator: what every GridSearchCV(n_jobs=2) pays first
JOBLIB_WORKERS_FIRST_FIT = textwrap.dedent("""
    from joblib import Parallel, delayed

    def first_fit(seed):
        import numpy as np
        from fastbp import MLPClassifier
        from fastbp.datasets import load_digits
        X, y = load_digits()
        return MLPClassifier(hidden_layer_sizes=(32,), max_iter=1, random_state=seed).fit(
            X[:200], y[:200]).n_iter_

    Parallel(n_jobs=2)(delayed(first_fit)(s) for s in range(2))
""")

#: the same with scikit-learn's own MLP: fastbp's workers must not start slower than these
JOBLIB_WORKERS_FIRST_FIT_SKLEARN = JOBLIB_WORKERS_FIRST_FIT.replace(
    "from fastbp import MLPClassifier", "from sklearn.neural_network import MLPClassifier")


def _run_in_fresh_process(code):
    subprocess.run([sys.executable, "-c", code], check=True)


class Startup:
    # a timeraw sample is a whole interpreter; 2 rounds x up to 5 samples x ~0.5-1.5 s
    repeat = (3, 5, 10.0)
    timeout = 120

    def setup(self):
        # Load/compile the kernels of ONE_W1_EPOCH into the on-disk cache (a cold cache
        # compiles here, untimed); also warms the OS file cache for the imports.
        _run_in_fresh_process(ONE_W1_EPOCH)

    def timeraw_import_fastbp(self):
        return "import fastbp"

    def timeraw_import_and_one_W1_epoch_warm_cache(self):
        return ONE_W1_EPOCH


class JoblibWorkers:
    """Two fresh joblib worker processes, each importing the library and fitting one small
    MLP (one epoch on 200 digits); warm fastbp kernel cache."""

    repeat = (3, 5, 20.0)
    timeout = 120

    def setup(self):
        try:
            import joblib  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError:
            raise NotImplementedError("joblib/scikit-learn not installed")
        _run_in_fresh_process(JOBLIB_WORKERS_FIRST_FIT)  # fills the kernel cache, untimed

    def timeraw_fresh_workers_first_fit_fastbp(self):
        return JOBLIB_WORKERS_FIRST_FIT

    def timeraw_fresh_workers_first_fit_sklearn(self):
        return JOBLIB_WORKERS_FIRST_FIT_SKLEARN


class FirstCompile:
    """Import and one tiny W1 epoch (float32) with an empty Numba cache: the compile time
    of the default training path (~13 s on a quiet 2-core machine)."""

    number = 1
    repeat = (2, 3, 40.0)  # 2-3 samples of ~15-30 s each
    rounds = 1
    warmup_time = 0  # a warm-up run would be a whole discarded compilation
    timeout = 300  # asv's default (60 s) is too short for 2-3 cold compilations

    def timeraw_import_and_one_W1_epoch_cold_cache(self):
        return COLD_W1_EPOCH
