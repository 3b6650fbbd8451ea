"""Ctrl-C during recurrent training and during ``fit_many``: a real SIGINT, sent to a fresh
process while it trains, stops training promptly, ``KeyboardInterrupt`` reaches the caller,
and every network is left exactly as at the end of an epoch it completed (its parameters, its
optimizer state and its history agree).  The dense trainer's interrupt between epoch slices
is tested in test_training_options.py; this covers the sequence kernels (which run in the
same slices) and the worker threads of fit_many (which see no signals themselves)."""
import ast
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastbp

HERE = os.path.dirname(os.path.abspath(__file__))


def _sequences(n, steps, features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, steps, features))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    return X, y


def test_an_interrupt_between_slices_of_a_recurrent_epoch_restores_the_last_epoch(
        monkeypatch):
    """As the dense test: the sequence epoch kernel raises KeyboardInterrupt (where Python
    sees a signal: between two slices) a few batches into epoch 3; the network, the optimizer
    state and the history then equal a run that stopped after epoch 2."""
    import fastbp.kernels.sequence as seq
    import fastbp.training as tr
    X, y = _sequences(48, 6, 3)
    monkeypatch.setattr(tr, "EPOCH_SLICE_MACS", 1)  # one batch per kernel call
    calls = {"n": 0}
    real = seq.train_epoch

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 2 * 6 + 3:  # epoch 3 (6 batches per epoch), a few batches in
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(seq, "train_epoch", interrupted)
    layers = [3, fastbp.GRU(5), 2]
    net = fastbp.Network(layers, output="softmax", seed=0)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, epochs=10, batch_size=8, optimizer="adam", seed=1)
    assert calls["n"] == 15
    assert "epoch 3" in "".join(getattr(info.value, "__notes__", []))
    monkeypatch.setattr(seq, "train_epoch", real)
    ref = fastbp.Network(layers, output="softmax", seed=0)
    ref.fit(X, y, epochs=2, batch_size=8, optimizer="adam", seed=1)
    assert net.history.epochs == 2 and net.history.stop_reason == "interrupted"
    assert net.optimizer.t == ref.optimizer.t == 12
    np.testing.assert_array_equal(net.params, ref.params)
    np.testing.assert_array_equal(net.optimizer.state, ref.optimizer.state)


# --- a real SIGINT to a process that trains ---------------------------------------------------
_CHILD = r"""
import sys, numpy as np, fastbp
mode = sys.argv[1]
rng = np.random.default_rng(0)
snapshots = {}
printed = []

def snapshot(net, logs):
    snapshots[id(net)] = (net.history.epochs, net.params.copy(), net.optimizer.state.copy())
    if len(snapshots) == n_nets and all(s[0] >= 1 for s in snapshots.values()):
        if not printed:  # every network has completed an epoch
            printed.append(True)
            print("training", flush=True)
    return False

if mode == "recurrent":
    X = rng.standard_normal((4000, 30, 4))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    # a float32 GRU with adam: the kernels the test above compiled (and cached)
    nets = [fastbp.Network([4, fastbp.GRU(24), 2], output="softmax", seed=0)]
    n_nets = 1
    fit = lambda: nets[0].fit(X, y, epochs=100000, batch_size=16, optimizer="adam",
                              callbacks=[snapshot])
else:
    X = rng.standard_normal((20000, 64))
    y = (X[:, 0] > 0).astype(np.int64)
    nets = [fastbp.Network([64, 32, 2], output="softmax", seed=s) for s in range(2)]  # one per worker thread
    n_nets = len(nets)
    fit = lambda: fastbp.fit_many(nets, X, y, epochs=100000, batch_size=1, n_jobs=2,
                                  callbacks=(snapshot,))
try:
    fit()
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    import traceback
    traceback.print_exc()
    for net in nets:
        epochs, params, state = snapshots[id(net)]
        assert net.history.epochs == epochs, (net.history.epochs, epochs)
        assert np.array_equal(net.params, params)
        assert np.array_equal(net.optimizer.state, state)
        assert np.isfinite(net.params).all()
    import threading
    assert threading.active_count() == 1, threading.enumerate()  # no fit left running
    print("CONSISTENT", [net.history.stop_reason for net in nets], flush=True)
"""


@pytest.mark.parametrize("mode", ["recurrent", "fit_many"])
def test_sigint_stops_training_promptly_and_consistently(mode, tmp_path):
    """The child would train for hours; after SIGINT it must report, within a bound far
    below that (a liveness bound, not a speed figure), that every network equals its
    snapshot at the end of its last completed epoch."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    proc = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE)
    try:
        watchdog = threading.Timer(600, proc.kill)  # a hung child fails instead of hanging
        watchdog.start()
        line = proc.stdout.readline()  # blocks until every network has finished an epoch
        watchdog.cancel()
        assert line.strip() == "training", (line, proc.stderr.read())
        time.sleep(0.5)  # well inside a later epoch
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out.startswith("CONSISTENT"), (out, err)
    assert "KeyboardInterrupt" in err
    # a recurrent fit is interrupted between two slices of an epoch and rolled back to the
    # last completed one; fit_many's worker threads see no signal: each stops at the end of
    # its current epoch
    reasons = ast.literal_eval(out.split(" ", 1)[1].strip())
    assert reasons == (["interrupted"] if mode == "recurrent" else ["callback"] * 2), out
