"""Dropout, early stopping, schedules, validation, callbacks, history and progress."""
import numpy as np
import pytest

import fastbp
import naive
from fastbp.kernels import codes
from fastbp.kernels.epoch import batch_gradient
from fastbp.workspace import Workspace


def toy(seed=0, n=60, n_in=5, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, np.minimum(y, classes - 1)


# --- dropout ---------------------------------------------------------------------------------
def test_dropout_masks_and_gradient_match_reference():
    rate = 0.4
    rng = np.random.default_rng(0)
    net = fastbp.Network([6, 50, 40, 3], hidden_activation=["tanh", "relu"], output="softmax",
                         dtype=np.float64, seed=0)
    X = rng.normal(size=(16, 6))
    Y = np.eye(3)[rng.integers(0, 3, 16)]
    ws = Workspace(net.layout, 16, net.dtype, dropout=True)
    grad = np.empty_like(net.params)
    rates = np.array([rate, rate, 0.0])
    total = batch_gradient(X.ravel(), 0, Y.ravel(), 0, np.empty(0), 0, net.params,
                           net.buffers, grad, net.layout.spec, net.loss_code, ws.acts, ws.pre,
                           ws.stats, ws.tmp, 16, 1 / 16, codes.TRAIN, rates, ws.masks,
                           np.uint64(7), 1, 0, 0.0)
    spec = net.layout.spec
    A, N = codes.A_OFF, codes.N_OUT
    masks = [ws.masks[16 * spec[l, A]:16 * (spec[l, A] + spec[l, N])].reshape(16, -1).copy()
             for l in range(2)]
    for m in masks:
        assert set(np.unique(m)) == {0.0, 1 / (1 - rate)}
        assert abs(np.mean(m == 0) - rate) < 0.1
    value, dW, db = naive.loss_and_grads(net.weights, net.biases, net.activations, net.loss,
                                         X, Y, masks=masks)
    assert total / 16 == pytest.approx(value, rel=1e-12)
    assert naive.rel_error(grad, naive.flatten(dW, db)) < 1e-12


def test_dropout_zero_is_bit_identical_to_no_dropout(digits):
    X, _, y, _ = digits
    runs = []
    for dropout in (None, 0.0, [0.0, 0.0]):
        net = fastbp.Network([64, 20, 20, 10], dtype=np.float32, seed=0)
        kw = {} if dropout is None else {"dropout": dropout}
        net.fit(X[:300], y[:300], epochs=2, batch_size=10, learning_rate=0.05, seed=0, **kw)
        runs.append(net.params.copy())
    assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes()


def test_dropout_changes_training_but_not_prediction(digits):
    X, X_test, y, _ = digits
    plain = fastbp.Network([64, 32, 10], dtype=np.float64, seed=0)
    dropped = fastbp.Network([64, 32, 10], dtype=np.float64, seed=0)
    h0 = plain.fit(X, y, epochs=3, batch_size=16, learning_rate=0.05, seed=0)
    h1 = dropped.fit(X, y, epochs=3, batch_size=16, learning_rate=0.05, seed=0, dropout=0.5)
    assert h1.loss != h0.loss
    p1 = dropped.predict_proba(X_test)
    np.testing.assert_array_equal(p1, dropped.predict_proba(X_test))
    _, A = naive.forward(dropped.weights, dropped.biases, dropped.activations, X_test)
    np.testing.assert_allclose(p1, A[-1], rtol=1e-12, atol=1e-15)  # no dropout at prediction


def test_dropout_is_rejected_for_full_batch_optimizers():
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64)
    with pytest.raises(ValueError, match="dropout needs a mini-batch optimizer"):
        net.fit(X, y, optimizer="rprop", dropout=0.2)


# --- early stopping and validation -------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 10))
    y = (X[:, 0] > 0).astype(int)
    flip = rng.random(80) < 0.3  # noisy labels: a wide net memorizes them and overfits
    y[flip] = 1 - y[flip]
    Xv = rng.normal(size=(200, 10))
    yv = (Xv[:, 0] > 0).astype(int)
    net = fastbp.Network([10, 128, 128, 2], dtype=np.float64, seed=0)
    snapshots = []
    h = net.fit(X, y, epochs=400, batch_size=8, optimizer="adam", learning_rate=3e-3, seed=0,
                validation_data=(Xv, yv), early_stopping=True, patience=10,
                callbacks=[lambda n, logs: snapshots.append(n.params.copy())])
    assert h.stop_reason == "early_stopping" and h.stopped_early
    assert h.epochs < 400
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best + 1
    assert h.epochs == h.best_epoch + 10
    np.testing.assert_array_equal(net.params, snapshots[best])
    assert net.evaluate(Xv, yv) == pytest.approx(h.val_loss[best], rel=1e-12)


def test_validation_fraction_is_stratified_and_logged():
    X, y = toy(1, n=200)
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    h = net.fit(X, y, epochs=3, batch_size=16, learning_rate=0.05, seed=0,
                validation_fraction=0.25)
    assert len(h.val_loss) == 3 and np.isfinite(h.val_loss).all()
    assert all(0.0 <= s <= 1.0 for s in h.val_score)
    from fastbp.datasets import stratified_split
    train, val = stratified_split(y, 0.25, seed=0)
    assert len(train) + len(val) == 200 and not set(train) & set(val)
    for c in np.unique(y):
        assert abs(np.mean(y[val] == c) - np.mean(y == c)) < 0.02


def test_regression_validation_score_is_r2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    Y = np.c_[X[:, 0] - X[:, 1], X[:, 2] ** 2]
    net = fastbp.Network([3, 32, 2], hidden_activation="tanh", output="identity",
                         dtype=np.float64, seed=0)
    h = net.fit(X[:200], Y[:200], epochs=30, batch_size=10, optimizer="adam",
                learning_rate=0.01, validation_data=(X[200:], Y[200:]))
    P = net.predict(X[200:])
    Yv = Y[200:]
    r2 = np.mean(1 - ((Yv - P) ** 2).sum(0) / ((Yv - Yv.mean(0)) ** 2).sum(0))
    assert h.val_score[-1] == pytest.approx(r2, rel=1e-10)
    assert r2 > 0.8


# --- schedules --------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule,expected", [
    ("constant", lambda e, n: 0.1),
    (fastbp.StepDecay(step_size=2, gamma=0.5), lambda e, n: 0.1 * 0.5 ** (e // 2)),
    (fastbp.ExponentialDecay(gamma=0.9), lambda e, n: 0.1 * 0.9 ** e),
    ("invscaling", lambda e, n: 0.1 / (e * n + 1) ** 0.5),
])
def test_schedules_set_each_epochs_rate(schedule, expected):
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    h = net.fit(X, y, epochs=5, batch_size=10, learning_rate=0.1, schedule=schedule)
    assert h.learning_rate == pytest.approx([expected(e, len(X)) for e in range(5)])


def test_schedule_rate_reaches_the_update():
    """Epoch 2 of a step schedule updates with half the rate: checked against NumPy SGD."""
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    p = net.params.copy()
    Y = np.eye(3)[y]
    for lr in (0.1, 0.05):
        _, dW, db = naive.loss_and_grads(net.layout.weights(p), net.layout.biases(p),
                                         net.activations, net.loss, X, Y)
        p = p - lr * naive.flatten(dW, db)
    net.fit(X, y, epochs=2, batch_size=len(X), shuffle=False, learning_rate=0.1,
            schedule=fastbp.StepDecay(step_size=1, gamma=0.5))
    np.testing.assert_allclose(net.params, p, rtol=1e-12)


def test_plateau_schedule_divides_the_rate_and_stops_at_the_floor():
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    # min_delta larger than any change: every epoch counts as "no improvement" after the first
    sched = fastbp.ReduceOnPlateau(factor=0.5, patience=1, min_delta=1e9, min_lr=0.02)
    h = net.fit(X, y, epochs=50, batch_size=10, learning_rate=0.1, schedule=sched)
    assert h.learning_rate[:6] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])
    assert h.stop_reason == "learning_rate_floor" and h.epochs < 50


def test_adaptive_is_the_plateau_schedule():
    assert isinstance(fastbp.schedules.get_schedule("adaptive"), fastbp.ReduceOnPlateau)
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        fastbp.schedules.get_schedule("cosine")


# --- callbacks, history, progress ---------------------------------------------------------------
def test_callback_stops_training_and_sees_logs():
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    seen = []

    def stop_at_three(n, logs):
        seen.append(dict(logs))
        return logs["epoch"] == 3

    h = net.fit(X, y, epochs=20, batch_size=10, learning_rate=0.1, callbacks=[stop_at_three],
                validation_fraction=0.2, seed=0)
    assert h.epochs == 3 and h.stop_reason == "callback"
    assert [s["epoch"] for s in seen] == [1, 2, 3]
    assert seen[-1]["loss"] == h.loss[-1] and seen[-1]["val_loss"] == h.val_loss[-1]
    assert all(s["seconds"] > 0 for s in seen)
    assert h.as_dict()["loss"] == h.loss and h["val_score"] == h.val_score


def test_verbose_shows_a_progress_bar_and_silent_by_default(capsys):
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    net.fit(X, y, epochs=3, batch_size=10)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    net.fit(X, y, epochs=3, batch_size=10, verbose=True)
    err = capsys.readouterr().err
    assert "fastbp" in err and "3/3" in err and "loss" in err


def test_option_errors():
    X, y = toy()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="needs validation data"):
        net.fit(X, y, monitor="val_loss")
    with pytest.raises(ValueError, match="not both"):
        net.fit(X, y, validation_data=(X, y), validation_fraction=0.1)
    with pytest.raises(ValueError, match="dropout lists 2 values"):
        net.fit(X, y, dropout=[0.1, 0.2])
    with pytest.raises(ValueError, match="dropout must be < 1"):
        net.fit(X, y, dropout=1.0)
    with pytest.raises(TypeError, match="callbacks must be callables"):
        net.fit(X, y, callbacks=[1])
    with pytest.raises(ValueError, match="X_val has 4 features"):
        net.fit(X, y, validation_data=(X[:, :4], y))


# --- interrupts and divergence leave one consistent state ------------------------------------
def test_an_interrupt_between_epoch_slices_restores_the_last_completed_epoch(monkeypatch):
    """Ctrl-C arrives between two compiled slices of an epoch (Python sees signals only
    there): the network, its optimizer state, the step count and the history then all describe
    the end of the last completed epoch, exactly as a run that stopped there."""
    import fastbp.training as tr
    X, y = toy(n=120)
    monkeypatch.setattr(tr, "EPOCH_SLICE_MACS", 1)  # one batch per kernel call
    calls = {"n": 0}
    real = tr.train_epoch

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 2 * 15 + 4:  # epoch 3 (15 batches per epoch), a few batches in
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(tr, "train_epoch", interrupted)
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, epochs=10, batch_size=8, optimizer="adam", seed=1)
    assert "epoch 3" in "".join(getattr(info.value, "__notes__", []))
    monkeypatch.setattr(tr, "train_epoch", real)
    ref = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    ref.fit(X, y, epochs=2, batch_size=8, optimizer="adam", seed=1)
    assert net.history.epochs == 2 and net.history.stop_reason == "interrupted"
    assert net.optimizer.t == ref.optimizer.t == 30
    np.testing.assert_array_equal(net.params, ref.params)
    np.testing.assert_array_equal(net.optimizer.state, ref.optimizer.state)


def test_a_long_epoch_runs_in_bounded_slices(monkeypatch):
    """The epoch kernel is called in slices of about EPOCH_SLICE_MACS multiply-adds, so a
    signal is seen within one slice; a small epoch is still one call."""
    import fastbp.training as tr
    counts = []
    real = tr.train_epoch
    monkeypatch.setattr(tr, "train_epoch", lambda *a: counts.append(1) or real(*a))
    X, y = toy(n=600)
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    net.fit(X, y, epochs=1, batch_size=1, seed=0)
    assert len(counts) == 1
    counts.clear()
    monkeypatch.setattr(tr, "EPOCH_SLICE_MACS", 20 * net.n_params)
    net.fit(X, y, epochs=1, batch_size=1, seed=0)
    assert len(counts) == 30  # 600 rows, 20 per slice


def test_divergence_restores_the_step_count_with_the_weights():
    X, y = toy(n=60)
    net = fastbp.Network([5, 8, 3], hidden_activation="relu", output="identity",
                         dtype=np.float64, seed=0)
    Y = np.eye(3)[y] * 1e3
    net.fit(X, Y, epochs=1, batch_size=10, optimizer="sgd", learning_rate=1e-6, seed=0)
    good, t = net.params.copy(), net.optimizer.t
    with pytest.raises(fastbp.DivergenceError):
        net.fit(X, Y, epochs=5, batch_size=10, optimizer="sgd", learning_rate=1e3, seed=0,
                warm_start=True)
    assert net.history.epochs == 0 and net.optimizer.t == t
    np.testing.assert_array_equal(net.params, good)
