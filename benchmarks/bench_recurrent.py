"""Recurrent networks (issue 10): seconds per epoch of R1-R3 and the latency of predicting
one R1 sequence.  The workloads, their data and initial weights are those of the peer
comparison (``benchmarks/peers/recurrent.py``, ``compare.py --recurrent``):

R1: GRU 8 -> 64, 50 steps, dense softmax 10, Adam, batch 32, 2048 sequences;
R2: Elman RNN (tanh) 8 -> 32, 20 steps, plain SGD, batch 1 (online), 1024 sequences;
R3: LSTM 16 -> 128, 100 steps, Adam, batch 64, the first 256 of its 1024 sequences.

float32, data already in the network's dtype.  Needs fastbp's recurrent layers: with a
fastbp without them, setup raises NotImplementedError and asv reports the benchmarks as
skipped (n/a), with the reason.
"""
import functools

import numpy as np

from .peers import recurrent

#: sequences of R3 per timed epoch (its full 1024 take a few seconds per epoch)
R3_BENCH_SAMPLES = 256


def _require_recurrent():
    ok, reason = recurrent.available("fastbp")
    if not ok:
        raise NotImplementedError(reason)  # asv: skipped (n/a)


@functools.lru_cache(maxsize=None)
def _data(name):
    X, Y = recurrent.workload_data(name)
    if name == "R3":
        X, Y = X[:R3_BENCH_SAMPLES], Y[:R3_BENCH_SAMPLES]
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


@functools.lru_cache(maxsize=None)
def _warm(name):
    """Compile (or load) the training kernels once per process, with the timed call's
    argument types, never timed."""
    wl = recurrent.WORKLOADS[name]
    X, Y = _data(name)
    rows = 2 * wl["batch_size"] + 1
    net = recurrent.fastbp_network(wl, recurrent.workload_init(name))
    net.fit(X[:rows], Y[:rows], epochs=1, seed=0, **recurrent.fit_options(wl))
    net.predict_proba(X[:1])
    return True


class TrainEpochRecurrent:
    """One epoch of ``Network.fit`` from the shared initial weights."""

    params = (["R1", "R2", "R3"],)
    param_names = ["workload"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 240  # setup may compile the recurrent kernels

    def setup(self, workload):
        _require_recurrent()
        _warm(workload)
        self.X, self.Y = _data(workload)
        wl = recurrent.WORKLOADS[workload]
        self.net = recurrent.fastbp_network(wl, recurrent.workload_init(workload))
        self.options = recurrent.fit_options(wl)

    def time_epoch(self, workload):
        self.net.fit(self.X, self.Y, epochs=1, seed=0, **self.options)


class PredictRecurrent:
    """``predict_proba`` of one R1 sequence (1, 50, 8): the per-call latency."""

    repeat = (3, 10, 5.0)
    timeout = 240

    def setup(self):
        _require_recurrent()
        _warm("R1")
        self.net = recurrent.fastbp_network(recurrent.WORKLOADS["R1"],
                                            recurrent.workload_init("R1"))
        self.x = _data("R1")[0][:1].copy()
        self.net.predict_proba(self.x)

    def time_predict_proba_one_sequence_R1(self):
        self.net.predict_proba(self.x)

    time_predict_proba_one_sequence_R1.number = 1000


class LearningRecurrent:
    """Mean cross-entropy over R1's sequences (shared NumPy forward pass) of the weights after
    2 epochs of R1 from the shared initial weights, shuffling seed 0: deterministic for a
    build; a change means the math (or the RNG stream) changed."""

    unit = "cross-entropy (nats)"
    timeout = 240

    def setup(self):
        _require_recurrent()
        _warm("R1")

    def track_train_loss_R1(self):
        wl = recurrent.WORKLOADS["R1"]
        X, Y = _data("R1")
        net = recurrent.fastbp_network(wl, recurrent.workload_init("R1"))
        net.fit(X, Y, epochs=2, seed=0, **recurrent.fit_options(wl))
        return float(recurrent.cross_entropy(wl, recurrent.fastbp_params(net), X, Y))
