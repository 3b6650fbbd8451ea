"""Recurrent training with every batch split in two halves (``SPLIT_MIN_BATCH`` sequences or
more), computed at once on two cores or in turn on one: the same bits either way, the same
training as the whole-batch kernel to float32 rounding, a clean stop on divergence, and no
hang when the second thread cannot run.  float32 throughout (the training kernels' one
specialization in the suite)."""
import threading

import numpy as np
import pytest

import fastbp
import fastbp._threads as threads_mod
import fastbp.many
import fastbp.training as training
from fastbp._config import SPLIT_MIN_BATCH
from naive import rel_error


def _data(n=150, T=9, seed=0, per_step=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 3)).astype(np.float32)
    lens = rng.integers(2, T + 1, n)
    y = rng.integers(0, 4, (n, T) if per_step else n)
    return X, y, lens, rng.uniform(0.5, 1.5, n)


def _net(per_step=False):
    return fastbp.Network([3, fastbp.GRU(12, return_sequences=True, bidirectional=True),
                           fastbp.LSTM(8, return_sequences=per_step),
                           fastbp.Dense(6, normalization="layer"), 4],
                          output="softmax", seed=0)


OPTIONS = dict(epochs=2, batch_size=2 * SPLIT_MIN_BATCH + 1, optimizer="adam", dropout=0.2,
               clip_norm=1.0, bptt_steps=4, seed=1)


class _CountingThread(threading.Thread):
    started = []

    def start(self):
        _CountingThread.started.append(self.name)
        super().start()


@pytest.mark.parametrize("per_step", [False, True], ids=["last", "seq"])
def test_two_cores_and_one_core_give_the_same_bits(monkeypatch, per_step):
    """Halves at once (a helper thread per slice) and halves in turn (a thread that shares
    the machine, as fit_many's workers do): identical weights, optimizer state and losses."""
    X, y, lens, sw = _data(per_step=per_step)
    monkeypatch.setattr(training.threading, "Thread", _CountingThread)
    _CountingThread.started.clear()
    if fastbp.many.cpu_count() < 2:
        pytest.skip("one core: the halves always run in turn here")
    a = _net(per_step)
    a.fit(X, y, lengths=lens, sample_weight=sw, **OPTIONS)
    assert "fastbp-half" in _CountingThread.started  # the halves ran at once
    _CountingThread.started.clear()
    out = {}

    def one_core():
        threads_mod.sharing_cores()
        b = _net(per_step)
        b.fit(X, y, lengths=lens, sample_weight=sw, **OPTIONS)
        out["b"] = b

    t = threading.Thread(target=one_core)
    t.start()
    t.join()
    b = out["b"]
    assert "fastbp-half" not in _CountingThread.started  # ... and in turn
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.optimizer.state, b.optimizer.state)
    assert a.history.loss == b.history.loss


def test_the_halves_train_as_the_whole_batch_does(monkeypatch):
    """Against the whole-batch kernel (the split switched off): the same updates with
    lengths, per-step targets, sample weights, dropout, clipping and truncation, to float32
    rounding (the halves' gradients are summed in another order): measured 3e-7."""
    X, y, lens, sw = _data(per_step=True)
    a = _net(True)
    a.fit(X, y, lengths=lens, sample_weight=sw, **OPTIONS)
    monkeypatch.setattr(training, "SPLIT_MIN_BATCH", 10 ** 9)
    b = _net(True)
    b.fit(X, y, lengths=lens, sample_weight=sw, **OPTIONS)
    assert rel_error(a.params, b.params) < 1e-5
    assert np.abs(a.params - _net(True).params).max() > 1e-3  # it did train
    np.testing.assert_allclose(a.history.loss, b.history.loss, rtol=1e-5)


def test_one_sgd_step_is_minus_the_gradient_of_the_batch():
    """One batch of all samples, plain SGD with learning rate 1: the update is exactly the
    batch gradient of ``Network.gradient`` (another kernel), both halves scaled by the whole
    batch's weight."""
    X, y, lens, sw = _data(n=SPLIT_MIN_BATCH + 5, per_step=True)
    net = _net(True)
    p0 = net.params.copy()
    _, g = net.gradient(X, y, lengths=lens, sample_weight=sw)
    net.fit(X, y, lengths=lens, sample_weight=sw, epochs=1, batch_size=X.shape[0],
            optimizer="sgd", learning_rate=1.0, shuffle=False, seed=0)
    assert rel_error(p0 - net.params, g) < 1e-5


def test_divergence_keeps_the_last_good_weights():
    """A loss that overflows in a split batch stops the fit with DivergenceError, leaving the
    weights and the step count of the last good epoch (both threads stop at that batch)."""
    X, _, lens, _ = _data()
    Y = np.random.default_rng(1).normal(size=(X.shape[0], 1)).astype(np.float32) * 1e3
    net = fastbp.Network([3, fastbp.GRU(12), 1], output="identity", seed=0)
    net.fit(X, Y, lengths=lens, epochs=1, batch_size=32, optimizer="sgd", learning_rate=1e-9,
            seed=0)
    good, t = net.params.copy(), net.optimizer.t
    with pytest.raises(fastbp.DivergenceError):
        net.fit(X, Y, lengths=lens, epochs=3, batch_size=32, optimizer="sgd",
                learning_rate=1e3, seed=0, warm_start=True)
    assert net.optimizer.t == t
    np.testing.assert_array_equal(net.params, good)


def test_a_second_thread_that_cannot_run_is_an_error_not_a_hang(monkeypatch):
    """If the helper thread's call fails before it reaches the kernel, the fitting thread's
    wait ends (the abort flag) and its error is raised."""
    from fastbp.kernels import sequence
    if fastbp.many.cpu_count() < 2:
        pytest.skip("one core: no helper thread")
    real = sequence.train_epoch

    def failing(w, *args):
        if w == 1:
            raise MemoryError("no room for the second half")
        return real(w, *args)

    monkeypatch.setattr(sequence, "train_epoch", failing)
    X, y, lens, _ = _data()
    net = _net()
    before = net.params.copy()
    result = {}

    def fit():
        try:
            net.fit(X, y, lengths=lens, epochs=1, batch_size=32, seed=0)
        except MemoryError as e:
            result["error"] = e

    t = threading.Thread(target=fit, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the fit hangs waiting for the second half"
    assert "no room" in str(result.get("error"))
    np.testing.assert_array_equal(net.params, before)


def test_fit_many_of_split_networks_equals_their_own_fits():
    """fit_many's workers compute the halves in turn; each network still ends bit for bit
    as its own fit (halves at once) leaves it."""
    X, y, lens, sw = _data()
    nets = [_net() for _ in range(2)]
    refs = [_net() for _ in range(2)]
    options = dict(OPTIONS, lengths=lens, sample_weight=sw)
    fastbp.fit_many(nets, X, y, seed=[1, 2], **{k: v for k, v in options.items()
                                                 if k != "seed"})
    for ref, seed in zip(refs, (1, 2)):
        ref.fit(X, y, **dict(options, seed=seed))
    for net, ref in zip(nets, refs):
        assert np.array_equal(net.params, ref.params)
