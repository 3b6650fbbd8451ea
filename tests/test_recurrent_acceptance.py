"""Acceptance tests of issue 10 (recurrent networks), against the public API only.

- Gradients of fastbp's RNN (tanh, relu), GRU and LSTM networks -- one layer, stacked 2 deep,
  bidirectional, return_sequences both ways, variable lengths, every loss, sample weights --
  against PyTorch autograd, the independent NumPy BPTT of naive.py and central finite
  differences: float64, relative error < 1e-9 (finite differences: < 1e-6).
- Truncated BPTT (``bptt_steps``) against naive.py's truncation, through one SGD step.
- torch's tensors copied into the layers' views give torch's function.
- The adding problem (50 steps) learned to test MSE < 0.01 by a GRU and by an LSTM;
  sequential digits (8 steps of 8 pixels) to >= 0.95 held-out accuracy by a GRU.

Conventions assumed (see naive.py): many-to-one output = each direction's final state
(torch's h_n: forward at step length-1, reverse at step 0); loss over a sequence output =
fastbp's per-row loss summed over valid (sample, step) pairs weighted by the sample's weight,
divided by the sum of those weights; truncation chunks [0, k), [k, 2k), ... with the state
entering a chunk a constant in the backward pass, one update per batch.

The gradients are float64; every training run is float32 (the default), so that the suite
compiles the sequence-training kernel once (about 80 s), not once per dtype.  Where a float32
fit is compared with a float64 reference the bar is float32 rounding (rel. error < 1e-4).
"""
import numpy as np
import pytest

import fastbp
from fastbp.datasets import load_digits, stratified_split
from naive import (RECURRENT_CELL_IDS, RECURRENT_CELLS, RECURRENT_TOPOLOGIES, flat_grads,
                   numeric_gradient, random_targets, recurrent_loss_and_grads, recurrent_net,
                   recurrent_predict, recurrent_tensor_names, recurrent_topology, rel_error)

CELLS, CELL_IDS = RECURRENT_CELLS, RECURRENT_CELL_IDS
LAYER_CLASSES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
TOPOLOGIES, topology = RECURRENT_TOPOLOGIES, recurrent_topology


def fastbp_network(ref, loss, n_in, dtype=np.float64):
    """The fastbp network of a naive.py network, with its tensors copied into the views."""
    layers = []
    for layer in ref:
        units = layer["params"]["weight" if layer["kind"] == "dense" else "weight_hh"].shape[0]
        if layer["kind"] == "dense":
            layers.append(fastbp.Dense(units, activation=layer["activation"]))
            continue
        kw = dict(return_sequences=layer["return_sequences"],
                  bidirectional=layer["bidirectional"])
        if layer["kind"] == "rnn":
            kw["activation"] = layer["activation"]
        units = layer["params"]["weight_hh"].shape[1]
        layers.append(getattr(fastbp, LAYER_CLASSES[layer["kind"]])(units, **kw))
    net = fastbp.Network([n_in] + layers, output=ref[-1]["activation"], loss=loss,
                         dtype=dtype, seed=0)
    copy_into(net, ref)
    return net


def tensor_names(layer):
    if layer["kind"] == "dense":
        return ["weight", "bias"]
    return recurrent_tensor_names(layer["bidirectional"])


def copy_into(net, ref):
    bound = net.layers
    assert len(bound) == len(ref)
    for b, layer in zip(bound, ref):
        for name in tensor_names(layer):
            view = getattr(b, name)
            assert view.shape == layer["params"][name].shape, name
            view[...] = layer["params"][name]


def tensor_index(net, ref):
    """For every tensor of every layer, the positions of its entries in ``net.params`` (the
    layers' attributes are views into it); checks that they cover params exactly once."""
    saved = net.params.copy()
    net.params[:] = np.arange(net.n_params, dtype=net.params.dtype)
    index = [{name: getattr(b, name).astype(np.int64) for name in tensor_names(layer)}
             for b, layer in zip(net.layers, ref)]
    net.params[:] = saved
    everything = np.sort(np.concatenate([i.ravel() for d in index for i in d.values()]))
    assert np.array_equal(everything, np.arange(net.n_params))
    return index


def split_grad(grad, index):
    return [{name: grad[i] for name, i in d.items()} for d in index]


def problem(topo, kind, opts, seed, n=6, T=7, n_in=3, n_out=3, lengths=True):
    rng = np.random.default_rng(seed)
    layers, loss = topology(topo, kind, opts, n_out)
    ref = recurrent_net(rng, n_in, layers, scale=0.6)
    X = rng.normal(size=(n, T, n_in))
    L = np.array([T, 1, 4, T, 2, 5])[:n] if lengths else None
    seq = [o for k, _, o in layers if k != "dense"][-1].get("return_sequences", False)
    if seq:
        Y = random_targets(rng, loss, n * T, n_out).reshape(n, T, n_out)
    else:
        Y = random_targets(rng, loss, n, n_out)
    if L is not None:  # padded steps hold garbage that must be ignored
        X[np.arange(T)[None, :] >= L[:, None]] = rng.normal(0, 50.0, n_in)
    return ref, loss, X, Y, L


def check_gradient(ref, loss, X, Y, L, sample_weight=None, fd=False):
    net = fastbp_network(ref, loss, X.shape[2])
    index = tensor_index(net, ref)
    value, grad = net.gradient(X, Y, lengths=L, sample_weight=sample_weight)
    v_ref, g_ref = recurrent_loss_and_grads(ref, loss, X, Y, L, sample_weight)
    assert value == pytest.approx(v_ref, rel=1e-10)
    mine = split_grad(grad, index)
    assert rel_error(flat_grads(mine), flat_grads(g_ref)) < 1e-9
    for a, b in zip(mine, g_ref):
        for k in a:
            assert rel_error(a[k], b[k]) < 1e-9, k
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None
    if torch is not None:
        from torch_recurrent import torch_loss_and_grads
        v_t, g_t, _ = torch_loss_and_grads(ref, loss, X, Y, L, sample_weight)
        assert value == pytest.approx(v_t, rel=1e-10)
        assert rel_error(flat_grads(mine), flat_grads(g_t)) < 1e-9
    if fd:
        def f(p):
            net.params[:] = p
            return net.gradient(X, Y, lengths=L, sample_weight=sample_weight)[0]

        p0 = net.params.copy()
        num = numeric_gradient(f, p0.copy())
        net.params[:] = p0
        assert rel_error(grad, num) < 1e-6
    return net


@pytest.mark.parametrize("topo", TOPOLOGIES)
@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_gradient_matches_torch_naive_and_finite_differences(cell, topo):
    kind, opts = CELLS[cell]
    ref, loss, X, Y, L = problem(topo, kind, opts, seed=10 * cell + TOPOLOGIES.index(topo))
    check_gradient(ref, loss, X, Y, L, fd=topo in ("stacked_bidirectional", "sequences"))


@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_gradient_full_length_sample_weights_and_labels(cell):
    kind, opts = CELLS[cell]
    ref, loss, X, Y, _ = problem("stacked", kind, opts, seed=50 + cell, lengths=False)
    check_gradient(ref, loss, X, Y, None)
    sw = np.random.default_rng(cell).uniform(0.2, 3.0, X.shape[0])
    ref, loss, X, Y, L = problem("sequences", kind, opts, seed=60 + cell)
    check_gradient(ref, loss, X, Y, L, sample_weight=sw)
    # a sequence classifier given integer labels (n, steps) and one-hot targets agrees
    ref, loss, X, Y, L = problem("stacked_bidirectional_sequences", kind, opts, seed=70 + cell)
    net = check_gradient(ref, loss, X, Y, L)
    v1, g1 = net.gradient(X, Y, lengths=L)
    v2, g2 = net.gradient(X, Y.argmax(axis=2), lengths=L)
    assert v1 == pytest.approx(v2, rel=1e-12) and rel_error(g1, g2) < 1e-12


def test_nan_in_excluded_padded_steps_is_ignored():
    ref, loss, X, Y, L = problem("stacked_bidirectional_sequences", "gru", {}, seed=3)
    X[np.arange(X.shape[1])[None, :] >= L[:, None]] = np.nan
    check_gradient(ref, loss, X, Y, L)
    net = fastbp_network(ref, loss, X.shape[2])
    P = net.predict_proba(X, lengths=L)
    valid = np.arange(X.shape[1])[None, :] < L[:, None]
    assert np.isfinite(P[valid]).all()


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("topo", ["stacked", "sequences"])
@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_truncated_bptt_matches_naive_truncation(cell, topo, k):
    """``gradient(bptt_steps=k)`` is naive.py's truncated gradient, and one plain-SGD step
    (learning rate 1) of ``fit(bptt_steps=k)`` on one batch holding all samples moves the
    parameters by minus it (one update per batch, gradients summed over the chunks)."""
    kind, opts = CELLS[cell]
    ref, loss, X, Y, L = problem(topo, kind, opts, seed=100 + cell)
    net = fastbp_network(ref, loss, X.shape[2])
    index = tensor_index(net, ref)
    _, g_ref = recurrent_loss_and_grads(ref, loss, X, Y, L, bptt_steps=k)
    _, grad = net.gradient(X, Y, lengths=L, bptt_steps=k)
    assert rel_error(flat_grads(split_grad(grad, index)), flat_grads(g_ref)) < 1e-9
    net32 = fastbp_network(ref, loss, X.shape[2], dtype=np.float32)
    p0 = net32.params.astype(np.float64)
    net32.fit(X, Y, epochs=1, batch_size=X.shape[0], optimizer="sgd", learning_rate=1.0,
              lengths=L, bptt_steps=k, shuffle=False, seed=0)
    step = split_grad(p0 - net32.params, index)
    assert rel_error(flat_grads(step), flat_grads(g_ref)) < 1e-4
    if k < X.shape[1]:  # truncation changed something
        _, g_full = recurrent_loss_and_grads(ref, loss, X, Y, L)
        assert rel_error(flat_grads(g_ref), flat_grads(g_full)) > 1e-3


@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_torch_tensors_copied_into_the_views_give_torch_function(cell):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    kind, opts = CELLS[cell]
    H, n, T, n_in = 6, 5, 9, 4
    kw = {"nonlinearity": opts["activation"]} if kind == "rnn" else {}
    torch.manual_seed(cell)
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](
        n_in, H, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64, **kw)
    lin = torch.nn.Linear(2 * H, 3, dtype=torch.float64)
    cls = getattr(fastbp, LAYER_CLASSES[kind])
    args = {"activation": opts["activation"]} if kind == "rnn" else {}
    net = fastbp.Network([n_in, cls(H, return_sequences=True, bidirectional=True, **args),
                          cls(H, return_sequences=True, bidirectional=True, **args),
                          fastbp.Dense(3, activation="identity")], output="identity",
                         dtype=np.float64, seed=0)
    layers = net.layers
    for l in range(2):
        for name in recurrent_tensor_names(True):
            tname = name.replace("_reverse", "") + f"_l{l}" + \
                ("_reverse" if name.endswith("_reverse") else "")
            getattr(layers[l], name)[...] = getattr(mod, tname).detach().numpy()
    layers[2].weight[...] = lin.weight.detach().numpy()
    layers[2].bias[...] = lin.bias.detach().numpy()
    rng = np.random.default_rng(cell)
    X = rng.normal(size=(n, T, n_in))
    L = np.array([9, 3, 1, 7, 9])
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), torch.from_numpy(L),
                                                     batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, _ = mod(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        expected = lin(out).numpy()
    got = net.predict_proba(X, lengths=L)
    valid = np.arange(T)[None, :] < L[:, None]
    assert got.shape == (n, T, 3)
    assert rel_error(got[valid], expected[valid]) < 1e-12
    # without lengths: every step valid
    with torch.no_grad():
        expected_full = lin(mod(torch.from_numpy(X))[0]).numpy()
    assert rel_error(net.predict_proba(X), expected_full) < 1e-12
    # float32 parameters compute the same function to float32 precision
    net32 = fastbp.Network([n_in, cls(H, return_sequences=True, bidirectional=True, **args),
                            cls(H, return_sequences=True, bidirectional=True, **args),
                            fastbp.Dense(3, activation="identity")], output="identity",
                           dtype=np.float32, seed=0)
    net32.params[:] = net.params
    assert rel_error(net32.predict_proba(X, lengths=L)[valid], expected[valid]) < 1e-5


def test_views_initialized_like_torch():
    """uniform(+-1/sqrt(units)) for every recurrent tensor, from the seed."""
    net = fastbp.Network([3, fastbp.LSTM(50, return_sequences=True, bidirectional=True),
                          fastbp.GRU(40), 2], output="softmax", dtype=np.float64, seed=1)
    again = fastbp.Network([3, fastbp.LSTM(50, return_sequences=True, bidirectional=True),
                            fastbp.GRU(40), 2], output="softmax", dtype=np.float64, seed=1)
    assert np.array_equal(net.params, again.params)
    for layer, units, shapes in ((net.layers[0], 50, {"weight_ih": (200, 3)}),
                                 (net.layers[1], 40, {"weight_ih": (120, 100)})):
        bound = 1 / np.sqrt(units)
        names = recurrent_tensor_names(units == 50)
        for name in names:
            v = getattr(layer, name)
            assert np.abs(v).max() <= bound
            assert np.abs(v).max() > 0.9 * bound and abs(v.mean()) < 0.2 * bound
        for name, shape in shapes.items():
            assert getattr(layer, name).shape == shape


def test_model_file_round_trip(tmp_path):
    ref, loss, X, Y, L = problem("stacked_bidirectional_sequences", "lstm", {}, seed=5)
    net = fastbp_network(ref, loss, X.shape[2], dtype=np.float32)
    net.fit(X, Y, epochs=2, batch_size=3, optimizer="adam", lengths=L, seed=0)
    net.save(tmp_path / "rnn.npz")
    back = fastbp.load(tmp_path / "rnn.npz")
    assert np.array_equal(back.params, net.params)
    assert np.array_equal(back.predict_proba(X, lengths=L), net.predict_proba(X, lengths=L))
    v = np.arange(X.shape[1])[None, :] < L[:, None]
    assert rel_error(net.predict_proba(X, lengths=L)[v],
                     recurrent_predict(_tensors_from(net, ref), X, L)[v]) < 1e-5


def _tensors_from(net, ref):
    """A copy of the naive network ``ref`` holding ``net``'s current tensors."""
    out = []
    for b, layer in zip(net.layers, ref):
        d = dict(layer)
        d["params"] = {name: np.array(getattr(b, name)) for name in tensor_names(layer)}
        out.append(d)
    return out


def test_bad_input_is_a_clear_error():
    net = fastbp.Network([3, fastbp.GRU(4), 2], output="softmax", dtype=np.float64, seed=0)
    X = np.zeros((5, 6, 3))
    y = np.zeros(5, dtype=np.int64)
    with pytest.raises(ValueError):
        net.predict(X[:, 0])  # 2-D data for a recurrent network
    dense = fastbp.Network([3, 4, 2], dtype=np.float64, seed=0)
    with pytest.raises(ValueError):
        dense.predict(X)  # 3-D data for a dense network
    for bad in ([6, 6, 6, 6], [6, 6, 6, 6, 0], [6, 6, 6, 6, 7], [6, 6, 6, 6, -1]):
        with pytest.raises(ValueError, match="lengths"):
            net.predict(X, lengths=np.array(bad))
        with pytest.raises(ValueError, match="lengths"):
            net.gradient(X, y, lengths=np.array(bad))
    with pytest.raises((TypeError, ValueError), match="lengths"):
        net.predict(X, lengths=np.full(5, 2.5))
    for k in (0, -1):
        with pytest.raises(ValueError, match="bptt_steps"):
            net.fit(X, y, epochs=1, bptt_steps=k)


# --- learning ---------------------------------------------------------------------------------
def adding_problem(n, steps, rng):
    """Hochreiter & Schmidhuber's adding problem: a value channel uniform in [0, 1] and a
    marker channel with two ones, one in each half; the target is the sum of the two marked
    values.  Predicting the mean (1) scores an MSE of 1/6 ~ 0.17."""
    X = np.zeros((n, steps, 2))
    X[:, :, 0] = rng.random((n, steps))
    a = rng.integers(0, steps // 2, n)
    b = rng.integers(steps // 2, steps, n)
    X[np.arange(n), a, 1] = 1.0
    X[np.arange(n), b, 1] = 1.0
    y = X[np.arange(n), a, 0] + X[np.arange(n), b, 0]
    return X, y[:, None]


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_adding_problem_50_steps(cell):
    """Settings found with torch first (same sizes, Adam 0.01, clip 1, batch 32): a GRU(32)
    gets there in 2-5 epochs of 4000 sequences, an LSTM(32) after a plateau of 3-8 epochs;
    training stops once a validation set (not the test set) is at MSE < 0.004."""
    rng = np.random.default_rng(0)
    X, y = adding_problem(4000, 50, rng)
    X_val, y_val = adding_problem(500, 50, rng)
    X_test, y_test = adding_problem(1000, 50, rng)
    net = fastbp.Network([2, getattr(fastbp, cell)(32), 1], output="identity", seed=0)

    def learned(net, logs):
        return float(((net.predict(X_val) - y_val) ** 2).mean()) < 0.004

    net.fit(X, y, epochs=20, batch_size=32, optimizer="adam", learning_rate=0.01,
            clip_norm=1.0, seed=0, callbacks=[learned])
    mse = float(((net.predict(X_test) - y_test) ** 2).mean())
    assert mse < 0.01, mse


def test_sequential_digits_gru():
    """Each 8x8 digit read as 8 steps (pixel rows) of 8 pixels; settings checked with torch
    first (GRU(64), Adam 0.003, batch 32: >= 0.96 held-out from epoch 12 on, two seeds)."""
    X, y = load_digits()
    train, test = stratified_split(y, 0.25, seed=0)
    X = X.reshape(-1, 8, 8)
    net = fastbp.Network([8, fastbp.GRU(64), 10], output="softmax", seed=0)
    net.fit(X[train], y[train], epochs=25, batch_size=32, optimizer="adam",
            learning_rate=0.003, seed=0)
    accuracy = float((net.predict(X[test]) == y[test]).mean())
    assert accuracy >= 0.95, accuracy


# --- the trainer's options on recurrent networks ------------------------------------------
def _small_sequence_task(seed=0, n=96, T=6):
    """A learnable many-to-one task: the class is the sign pattern of the first and last
    steps' first feature."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 3))
    L = rng.integers(2, T + 1, n)
    y = 2 * (X[:, 0, 0] > 0) + (X[np.arange(n), L - 1, 0] > 0)
    return X, y.astype(np.int64), L


def test_every_optimizer_trains_a_recurrent_network():
    from fastbp.registry import OPTIMIZERS
    X, y, L = _small_sequence_task()
    for name in OPTIMIZERS.names():
        net = fastbp.Network([3, fastbp.GRU(8, return_sequences=True), fastbp.LSTM(6), 4],
                             output="softmax", seed=0)
        before = net.evaluate(X, y, lengths=L)
        net.fit(X, y, epochs=5, batch_size=16, optimizer=name, lengths=L, seed=0)
        after = net.evaluate(X, y, lengths=L)
        assert np.isfinite(after) and after < before, name


def test_validation_early_stopping_restore_best_and_callbacks():
    """restore_best leaves the weights of the best validation epoch: evaluating them gives
    that epoch's recorded validation loss."""
    X, y, L = _small_sequence_task(1, n=160)
    Xv, yv, Lv = _small_sequence_task(2, n=64)
    net = fastbp.Network([3, fastbp.GRU(8, bidirectional=True), 4], output="softmax", seed=0)
    seen = []
    history = net.fit(X, y, epochs=40, batch_size=16, optimizer="adam", learning_rate=0.05,
                      lengths=L, validation_data=(Xv, yv, None, Lv), early_stopping=True,
                      patience=3, restore_best=True, schedule="step", clip_norm=1.0,
                      sample_weight=np.linspace(0.5, 1.5, len(X)), seed=0,
                      callbacks=[lambda net, logs: seen.append(logs["epoch"])])
    assert seen == list(range(1, history.epochs + 1))
    best = min(history.val_loss)
    assert net.evaluate(Xv, yv, lengths=Lv) == pytest.approx(best, rel=1e-10)


def test_dropout_between_layers_trains_and_predicts_deterministically():
    X, y, L = _small_sequence_task(3)
    net = fastbp.Network([3, fastbp.LSTM(8, return_sequences=True), fastbp.GRU(8), 16, 4],
                         output="softmax", seed=0)
    before = net.evaluate(X, y, lengths=L)
    net.fit(X, y, epochs=10, batch_size=16, optimizer="adam", lengths=L, dropout=0.2, seed=0)
    assert net.evaluate(X, y, lengths=L) < before
    assert np.array_equal(net.predict_proba(X, lengths=L), net.predict_proba(X, lengths=L))
