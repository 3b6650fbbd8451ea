"""Training: seconds per epoch, peak memory of an epoch, and the loss/accuracy it reaches."""
from .common import (W3_BENCH_SAMPLES, WORKLOADS, digits_split, fit_options, warm_training,
                     workload_data, workload_network)


def _samples(workload):
    return W3_BENCH_SAMPLES if workload == "W3" else None


class TrainEpoch:
    """One epoch of ``Network.fit`` from the shared initial weights.

    W1: 64-32-10 tanh, SGD, batch 1 (online), 1797 digits;
    W2: 784-256-128-10 relu, Adam, batch 64, 8192 synthetic samples;
    W3: 784-2048-2048-10 relu, SGD, batch 512, the first 1024 of the synthetic samples.
    Data is already in the network's dtype, so no conversion is timed.
    """

    params = (["W1", "W2", "W3"], ["float32", "float64"])
    param_names = ["workload", "dtype"]
    number = 1  # every timed call is one epoch of a freshly set-up network
    repeat = (3, 10, 10.0)  # at least 3, at most 10 samples, stop after ~10 s
    timeout = 180  # setup may have to compile the kernels (cold Numba cache: ~15-30 s)

    def setup(self, workload, dtype):
        warm_training(workload, dtype)  # compile/load once per process, never timed
        self.X, self.Y = workload_data(workload, dtype, _samples(workload))
        self.net = workload_network(workload, dtype)
        self.options = fit_options(WORKLOADS[workload])

    def time_epoch(self, workload, dtype):
        self.net.fit(self.X, self.Y, epochs=1, seed=0, **self.options)


class TrainEpochPenalty:
    """W1's epoch (online SGD) without and with scikit-learn's default L2 penalty,
    ``alpha=1e-4``: the penalty turns off the fused online step (a gradient pass, a penalty
    pass and an update pass per sample instead of one fused pass)."""

    params = ([0.0, 1e-4],)
    param_names = ["alpha"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180

    def setup(self, alpha):
        warm_training("W1", "float32")
        self.X, self.Y = workload_data("W1", "float32")
        self.net = workload_network("W1", "float32")
        self.options = fit_options(WORKLOADS["W1"])

    def time_epoch(self, alpha):
        self.net.fit(self.X, self.Y, epochs=1, seed=0, alpha=alpha, **self.options)


class PeakMemEpoch:
    """Peak resident memory of the process after one W3 float32 epoch (1024 samples).

    asv reports the whole process's peak (Python, NumPy, Numba/LLVM, data and network
    included), so this catches new large temporaries rather than measuring fastbp alone."""

    timeout = 180

    def setup(self):
        warm_training("W3", "float32")
        self.X, self.Y = workload_data("W3", "float32", W3_BENCH_SAMPLES)
        self.net = workload_network("W3", "float32")

    def peakmem_epoch_W3_float32(self):
        self.net.fit(self.X, self.Y, epochs=1, seed=0, **fit_options(WORKLOADS["W3"]))


class Learning:
    """What the training reaches, tracked next to its speed: the mean cross-entropy over the
    whole training set of the final weights (``Network.evaluate``) after W1 for 3 epochs
    (1797 digits, online SGD) and W2 for 1 epoch (8192 samples, Adam), float32, from the
    shared initial weights and shuffling seed 0.  Deterministic for a given build: a change
    means the math (or the RNG stream) changed."""

    params = (["W1", "W2"],)
    param_names = ["workload"]
    unit = "cross-entropy (nats)"
    timeout = 180
    EPOCHS = {"W1": 3, "W2": 1}

    def track_train_loss(self, workload):
        X, Y = workload_data(workload, "float32")
        net = workload_network(workload, "float32")
        net.fit(X, Y, epochs=self.EPOCHS[workload], seed=0, **fit_options(WORKLOADS[workload]))
        return float(net.evaluate(X, Y))


class DigitsAccuracy:
    """Test accuracy on the bundled digits (stratified 75/25 split, seed 0) of the W1 network
    (64-32-10 tanh, online SGD, learning rate 0.01) after 5 epochs, float32."""

    unit = "accuracy (fraction correct)"
    timeout = 180

    def track_test_accuracy(self):
        X_train, y_train, X_test, y_test = digits_split()
        net = workload_network("W1", "float32")
        net.fit(X_train, y_train, epochs=5, seed=0, **fit_options(WORKLOADS["W1"]))
        return float((net.predict(X_test) == y_test).mean())


class TrainEpochBlas:
    """One float32 epoch of W2 and W3 with each BLAS fastbp can call (``fastbp.set_blas``):
    SciPy's bundled OpenBLAS and, where PyPI's ``mkl`` is installed, Intel's oneMKL in its
    strict reproducible mode.  Skipped (NotImplementedError) for a BLAS that is not there."""

    params = (["W2", "W3"], ["scipy", "mkl"])
    param_names = ["workload", "blas"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180

    def setup(self, workload, blas):
        import fastbp
        try:
            self.before = fastbp.set_blas(blas)
        except ImportError as e:
            raise NotImplementedError(str(e)) from e
        warm_training(workload, "float32")
        self.X, self.Y = workload_data(workload, "float32", _samples(workload))
        self.net = workload_network(workload, "float32")
        self.options = fit_options(WORKLOADS[workload])

    def teardown(self, workload, blas):
        import fastbp
        fastbp.set_blas(self.before or "scipy")

    def time_epoch(self, workload, blas):
        self.net.fit(self.X, self.Y, epochs=1, seed=0, **self.options)
