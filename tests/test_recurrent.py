"""Recurrent layers (RNN, GRU, LSTM): the kernels against PyTorch autograd (same equations,
same parameter layout), central finite differences, truncated BPTT against an unrolled
PyTorch reference, training, model files and bad input."""
import numpy as np
import pytest

import fastbp
from naive import numeric_gradient, rel_error

torch = pytest.importorskip("torch", reason="the recurrent kernels are checked against PyTorch")

TORCH = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
HIDDEN_ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def _suffixes(layer):
    return ("", "_reverse") if layer.bidirectional else ("",)


def torch_twin(net):
    """PyTorch modules holding copies of ``net``'s parameters, and the pairs (fastbp view
    name path, torch parameter) to compare gradients by."""
    mods, pairs = [], []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, fastbp.layers.Recurrent):
            kw = {"nonlinearity": layer.activation} if layer.kind == "rnn" else {}
            m = TORCH[layer.kind](net.sizes[i], layer.units, batch_first=True,
                                  bidirectional=layer.bidirectional, **kw).double()
            with torch.no_grad():
                for suf in _suffixes(layer):
                    for name in NAMES:
                        p = getattr(m, f"{name}_l0{suf}")
                        p.copy_(torch.from_numpy(getattr(layer, name + suf).copy()))
                        pairs.append(((i, name + suf), p))
        else:
            m = torch.nn.Linear(net.sizes[i], layer.units).double()
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(layer.weight.copy()))
                m.bias.copy_(torch.from_numpy(layer.bias.copy()))
            pairs += [((i, "weight"), m.weight), ((i, "bias"), m.bias)]
        mods.append(m)
    return mods, pairs


def torch_loss(net, mods, X, Y, lens):
    """The loss of ``net`` (cross-entropy on labels or mean squared error) in PyTorch, with
    packed sequences for the lengths."""
    x = torch.from_numpy(X)
    L = torch.from_numpy(np.asarray(lens, dtype=np.int64))
    seq = torch.nn.utils.rnn.pack_padded_sequence(x, L, batch_first=True, enforce_sorted=False)
    layers = net.layers
    h = None
    for layer, m in zip(layers, mods):
        if isinstance(layer, fastbp.layers.Recurrent):
            out, hn = m(seq)
            if isinstance(hn, tuple):
                hn = hn[0]
            if layer.return_sequences:
                seq = out
                h, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                             total_length=X.shape[1])
            else:
                h = torch.cat([hn[0], hn[1]], 1) if layer.bidirectional else hn[0]
        else:
            h = m(h)
            if layer is not layers[-1]:
                h = HIDDEN_ACT[layer.activation](h)
    valid = torch.arange(X.shape[1])[None, :] < L[:, None]
    if net.loss == "cross_entropy":
        y = torch.from_numpy(np.asarray(Y, dtype=np.int64))
        if h.dim() == 3:
            ce = torch.nn.functional.cross_entropy(h.reshape(-1, h.shape[-1]), y.reshape(-1),
                                                   reduction="none").reshape(y.shape)
            return (ce * valid).sum() / valid.sum()
        return torch.nn.functional.cross_entropy(h, y)
    y = torch.from_numpy(Y)
    se = 0.5 * ((h - y) ** 2).sum(-1)
    if h.dim() == 3:
        return (se * valid).sum() / valid.sum()
    return se.mean()


def torch_gradient(net, X, Y, lens):
    mods, pairs = torch_twin(net)
    loss = torch_loss(net, mods, X, Y, lens)
    loss.backward()
    return float(loss.detach()), pairs


def compare(net, X, Y, lens, tol=1e-9):
    value, grad = net.gradient(X, Y, lengths=lens)
    ref_value, pairs = torch_gradient(net, X, Y, lens)
    assert value == pytest.approx(ref_value, rel=1e-12)
    twin = net.copy()
    twin.params[:] = grad
    layers = twin.layers
    ours = np.concatenate([getattr(layers[i], name).ravel() for (i, name), _ in pairs])
    theirs = np.concatenate([p.grad.numpy().ravel() for _, p in pairs])
    assert ours.size == net.n_params
    assert rel_error(ours, theirs) < tol
    return grad


def problem(layers, n_in=3, n=6, steps=7, seed=0, output="softmax", n_out=3, lengths=True):
    rng = np.random.default_rng(seed)
    net = fastbp.Network([n_in] + layers + [n_out], output=output, hidden_activation="tanh",
                         dtype=np.float64, seed=seed)
    X = rng.normal(size=(n, steps, n_in))
    lens = rng.integers(1, steps + 1, n) if lengths else np.full(n, steps)
    lens[0] = steps
    seq = [l for l in layers if isinstance(l, fastbp.layers.Recurrent)][-1].return_sequences
    if output == "softmax":
        Y = rng.integers(0, n_out, (n, steps) if seq else n)
    else:
        Y = rng.normal(size=(n, steps, n_out) if seq else (n, n_out))
    return net, X, Y, lens


CELLS = [lambda **kw: fastbp.RNN(4, **kw), lambda **kw: fastbp.RNN(4, activation="relu", **kw),
         lambda **kw: fastbp.GRU(4, **kw), lambda **kw: fastbp.LSTM(4, **kw)]
CELL_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_one_layer_matches_torch(cell, return_sequences, bidirectional):
    layer = cell(return_sequences=return_sequences, bidirectional=bidirectional)
    output = "softmax" if return_sequences != bidirectional else "identity"
    net, X, Y, lens = problem([layer], output=output, seed=1)
    compare(net, X, Y, lens)


@pytest.mark.parametrize("cells", [(2, 3), (3, 0), (0, 1)], ids=["gru_lstm", "lstm_rnn",
                                                                   "rnn_relu_tanh"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
def test_stacked_bidirectional_with_hidden_dense_matches_torch(cells, return_sequences):
    a, b = cells
    layers = [CELLS[a](return_sequences=True, bidirectional=True),
              CELLS[b](return_sequences=return_sequences, bidirectional=a == 3), 5]
    net, X, Y, lens = problem(layers, output="identity", n=5, steps=6, seed=2)
    compare(net, X, Y, lens)


def test_batch_sizes_use_blas_and_loops_alike():
    """A batch big enough for BLAS products, and one sequence (the loops): same results as
    PyTorch, and the gradient of a batch is the weighted sum of its samples' gradients."""
    net, X, Y, lens = problem([fastbp.GRU(24, return_sequences=True)], n=40, steps=12,
                              n_in=8, seed=3, output="identity")
    grad = compare(net, X, Y, lens)
    parts = [net.gradient(X[i:i + 1], Y[i:i + 1], lengths=lens[i:i + 1])[1] * lens[i]
             for i in range(X.shape[0])]
    assert rel_error(grad, sum(parts) / lens.sum()) < 1e-10


@pytest.mark.parametrize("cell", [lambda: fastbp.LSTM(40, bidirectional=True),
                                  lambda: fastbp.GRU(36, return_sequences=True)],
                         ids=["lstm40_bi", "gru36_seq"])
def test_register_blocks_of_a_batch_match_torch(cell):
    """Layers wide enough for every kind of block of ``rowvec.rows_times`` (4-row blocks of
    4 x 512-bit vectors, leftover rows, the columns past the last block) in the per-step
    products, and of ``tn_times`` (4 x 512-bit strips, single vectors, scalar columns) in the
    weight gradients, over 9 sequences and 33 inputs: PyTorch's gradient to 1e-9."""
    net, X, Y, lens = problem([cell()], n=9, steps=5, n_in=33, seed=4, output="identity")
    compare(net, X, Y, lens)


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
def test_online_epoch_is_one_sgd_step_per_sample(return_sequences):
    """batch_size=1 (its own loop in the sequence kernels): one epoch of plain SGD is, sample
    by sample, params -= lr * the sample's gradient from ``Network.gradient`` (another
    kernel, here in float64); a sample of weight 0 is skipped.  The epoch runs in float32
    (the one sequence-training specialization the suite compiles), so the two agree to
    float32 rounding; a step missed, repeated or mis-weighted would be off by about 1/9."""
    net, X, Y, lens = problem([fastbp.GRU(5, return_sequences=return_sequences)], n=9,
                              steps=6, n_in=3, seed=7)
    sw = np.random.default_rng(7).uniform(0.5, 2.0, X.shape[0])
    sw[4] = 0.0
    net32 = fastbp.Network([3, fastbp.GRU(5, return_sequences=return_sequences), 3],
                           output="softmax", hidden_activation="tanh",
                           dtype=np.float32, seed=7)
    net32.params[:] = net.params
    start = net32.params.astype(np.float64)
    p = start.copy()
    for i in range(X.shape[0]):
        if sw[i] > 0:
            net.params[:] = p
            p = p - 0.1 * net.gradient(X[i:i + 1], Y[i:i + 1], sample_weight=sw[i:i + 1],
                                       lengths=lens[i:i + 1])[1]
    net32.fit(X, Y, epochs=1, batch_size=1, shuffle=False, optimizer="sgd",
              learning_rate=0.1, sample_weight=sw, lengths=lens, seed=0)
    assert rel_error(net32.params - start, p - start) < 1e-4
    assert np.abs(p - start).max() > 1e-3


def test_finite_differences():
    layers = [fastbp.LSTM(3, return_sequences=True, bidirectional=True),
              fastbp.GRU(3, return_sequences=True), fastbp.Dense(4, normalization="layer")]
    net, X, Y, lens = problem(layers, output="softmax", n=4, steps=5, seed=4)
    rng = np.random.default_rng(4)
    net.params[:] = rng.normal(0, 0.5, net.n_params)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    value, grad = net.gradient(X, Y, sample_weight=sw, lengths=lens, alpha=0.1)

    def f(p):
        net.params[:] = p
        mean = net.evaluate(X, Y, sample_weight=sw, lengths=lens)
        lstm, gru = net.layers[:2]
        mats = [lstm.weight_ih, lstm.weight_hh, lstm.weight_ih_reverse,
                lstm.weight_hh_reverse, gru.weight_ih, gru.weight_hh] + net.weights
        W = sum(float((w ** 2).sum()) for w in mats)
        total_w = float((sw * lens).sum())
        return mean + 0.5 * 0.1 * W / total_w

    p0 = net.params.copy()
    fd = numeric_gradient(f, p0.copy())
    net.params[:] = p0
    assert value == pytest.approx(f(p0), rel=1e-12)
    assert rel_error(grad, fd) < 1e-6


def truncated_reference(net, X, Y, k):
    """Truncated BPTT in PyTorch, unrolled with the cells: the state is detached where a
    chunk of k steps begins (one unidirectional layer, full lengths, per-step squared error)."""
    layer, dense = net.layers
    cell_cls = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}
    kw = {"nonlinearity": layer.activation} if layer.kind == "rnn" else {}
    cell = cell_cls[layer.kind](X.shape[2], layer.units, **kw).double()
    lin = torch.nn.Linear(layer.units, dense.units).double()
    with torch.no_grad():
        for name in NAMES:
            getattr(cell, name).copy_(torch.from_numpy(getattr(layer, name).copy()))
        lin.weight.copy_(torch.from_numpy(dense.weight.copy()))
        lin.bias.copy_(torch.from_numpy(dense.bias.copy()))
    x = torch.from_numpy(X)
    n, T = X.shape[:2]
    h = torch.zeros(n, layer.units, dtype=torch.float64)
    c = torch.zeros_like(h)
    loss = 0.0
    for t in range(T):
        if t % k == 0:
            h, c = h.detach(), c.detach()
        if layer.kind == "lstm":
            h, c = cell(x[:, t], (h, c))
        else:
            h = cell(x[:, t], h)
        loss = loss + 0.5 * ((lin(h) - torch.from_numpy(Y[:, t])) ** 2).sum()
    loss = loss / (n * T)
    loss.backward()
    return np.concatenate([getattr(cell, name).grad.numpy().ravel() for name in NAMES]
                          + [lin.weight.grad.numpy().ravel(), lin.bias.grad.numpy()])


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("cell", [2, 3, 0], ids=["gru", "lstm", "rnn"])
def test_truncated_bptt_matches_unrolled_reference(cell, k):
    net, X, Y, lens = problem([CELLS[cell](return_sequences=True)], output="identity",
                              n=5, steps=9, seed=5, lengths=False)
    _, grad = net.gradient(X, Y, bptt_steps=k)
    assert rel_error(grad, truncated_reference(net, X, Y, k)) < 1e-9
    _, full = net.gradient(X, Y)
    assert rel_error(grad, full) > 1e-3  # the truncation does something
    _, same = net.gradient(X, Y, bptt_steps=X.shape[1])
    assert rel_error(same, full) < 1e-12


def test_padded_steps_are_ignored():
    net, X, Y, lens = problem([fastbp.GRU(4, return_sequences=True, bidirectional=True)],
                              output="identity", seed=6)
    P = net.predict(X, lengths=lens)
    value, grad = net.gradient(X, Y, lengths=lens)
    pad = np.arange(X.shape[1])[None, :] >= lens[:, None]
    Xn, Yn = X.copy(), Y.copy()
    Xn[pad] = np.nan
    Yn[pad] = np.inf
    assert np.array_equal(net.predict(Xn, lengths=lens), P)
    assert np.all(P[pad] == 0)
    value2, grad2 = net.gradient(Xn, Yn, lengths=lens)
    assert value2 == value and np.array_equal(grad, grad2)
    # and a sequence cut to its length gives the same outputs
    i = int(np.argmin(lens))
    short = net.predict(X[i:i + 1, :lens[i]])
    assert np.allclose(short[0], P[i, :lens[i]], rtol=1e-12, atol=1e-14)


def test_float32_close_to_float64():
    net, X, Y, lens = problem([fastbp.LSTM(8, return_sequences=True), fastbp.GRU(8)],
                              seed=7, n=20)
    net32 = fastbp.Network([3, fastbp.LSTM(8, return_sequences=True), fastbp.GRU(8), 3],
                           dtype=np.float32)
    net32.params[:] = net.params
    assert np.allclose(net32.predict_proba(X, lengths=lens), net.predict_proba(X, lengths=lens),
                       atol=1e-5)
    g64 = net.gradient(X, Y, lengths=lens)[1]
    g32 = net32.gradient(X, Y, lengths=lens)[1]
    assert rel_error(g32, g64) < 1e-4


def test_views_and_initialization():
    net = fastbp.Network([5, fastbp.LSTM(6, return_sequences=True, bidirectional=True),
                          fastbp.GRU(7), 2], seed=3)
    lstm, gru, _ = net.layers
    assert lstm.weight_ih.shape == (24, 5) and lstm.weight_hh_reverse.shape == (24, 6)
    assert gru.weight_ih.shape == (21, 12) and gru.bias_hh.shape == (21,)
    assert not hasattr(gru, "weight_ih_reverse")
    assert np.shares_memory(gru.weight_hh, net.params)
    for layer, units in ((lstm, 6), (fastbp.Network([5, fastbp.GRU(7), 2], seed=3).layers[0],
                                     7)):
        w = np.concatenate([getattr(layer, n).ravel() for n in NAMES])
        assert np.abs(w).max() <= 1 / np.sqrt(units) and np.abs(w).max() > 0.9 / np.sqrt(units)
    same = fastbp.Network([5, fastbp.LSTM(6, return_sequences=True, bidirectional=True),
                           fastbp.GRU(7), 2], seed=3)
    assert np.array_equal(same.params, net.params)
    assert net.sizes == (5, 12, 7, 2)
    gru.bias_hh[:] = 7
    assert np.all(net.layers[1].bias_hh == 7)


def test_sequence_outputs_and_labels_shapes():
    net = fastbp.Network([2, fastbp.RNN(5, return_sequences=True), 3], seed=0)
    X = np.random.default_rng(0).normal(size=(4, 6, 2))
    assert net.predict_proba(X).shape == (4, 6, 3)
    assert net.predict(X).shape == (4, 6)
    net1 = fastbp.Network([2, fastbp.RNN(5), 3], seed=0)
    assert net1.predict_proba(X).shape == (4, 3) and net1.predict(X).shape == (4,)


# --- training -------------------------------------------------------------------------------
def sign_task(n, steps=12, seed=0):
    """Class 1 when the sum of the sequence's first feature over its valid steps is positive."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, steps, 2))
    lens = rng.integers(3, steps + 1, n)
    valid = np.arange(steps)[None, :] < lens[:, None]
    y = ((X[:, :, 0] * valid).sum(1) > 0).astype(int)
    return X, y, lens


@pytest.mark.parametrize("cell", [2, 3], ids=["gru", "lstm"])
def test_learns_a_sequence_task_with_lengths(cell):
    X, y, lens = sign_task(600, seed=1)
    Xt, yt, lt = sign_task(300, seed=2)
    net = fastbp.Network([2, CELLS[cell](), 2], seed=0)
    net.fit(X, y, epochs=30, batch_size=16, optimizer="adam", learning_rate=0.01,
            lengths=lens, seed=0, validation_data=(Xt, yt, None, lt))
    acc = np.mean(net.predict(Xt, lengths=lt) == yt)
    assert acc >= 0.9
    assert net.history.val_score[-1] == pytest.approx(acc)


@pytest.mark.parametrize("optimizer", fastbp.registry.OPTIMIZERS.names())
def test_every_optimizer_trains_a_recurrent_network(optimizer):
    X, y, lens = sign_task(80, steps=6, seed=3)
    net = fastbp.Network([2, fastbp.GRU(4), 2], seed=0)
    before = net.evaluate(X, y, lengths=lens)
    h = net.fit(X, y, epochs=5, batch_size=16, optimizer=optimizer, lengths=lens, seed=0)
    assert h.epochs >= 1 and np.isfinite(h.loss).all()
    assert net.evaluate(X, y, lengths=lens) < before


def test_fit_options_on_sequence_outputs():
    """Per-step targets with lengths, sample weights, L2, clipping, dropout between layers,
    truncated BPTT, a schedule, early stopping on a validation fraction and callbacks."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10, 1))
    lens = rng.integers(2, 11, 120)
    Y = np.cumsum(X, axis=1) * 0.3  # a running sum per step
    seen = []
    net = fastbp.Network([1, fastbp.LSTM(8, return_sequences=True),
                          fastbp.GRU(8, return_sequences=True), 1], output="identity", seed=0)
    before = net.evaluate(X, Y, lengths=lens)
    h = net.fit(X, Y, epochs=8, batch_size=8, optimizer="adam", learning_rate=0.01,
                lengths=lens, bptt_steps=5, sample_weight=rng.uniform(0.5, 1.5, 120),
                alpha=1e-4, clip_norm=1.0, dropout=0.1, schedule="step", early_stopping=True,
                patience=3, callbacks=[lambda net, logs: seen.append(logs["epoch"])], seed=0)
    assert seen == list(range(1, h.epochs + 1))
    assert np.isfinite(h.val_loss).all() and np.isfinite(h.val_score).all()
    assert net.evaluate(X, Y, lengths=lens) < before


def test_same_seed_same_weights_and_dropout_masks():
    X, y, lens = sign_task(50, steps=5, seed=4)
    nets = []
    for _ in range(2):
        net = fastbp.Network([2, fastbp.GRU(4, return_sequences=True), fastbp.LSTM(4), 5, 2],
                             seed=0)
        net.fit(X, y, epochs=2, batch_size=8, dropout=0.3, lengths=lens, seed=1)
        nets.append(net.params.copy())
    assert np.array_equal(nets[0], nets[1])


def test_model_file_round_trip(tmp_path):
    net, X, Y, lens = problem([fastbp.LSTM(4, return_sequences=True, bidirectional=True),
                               fastbp.RNN(3, activation="relu")], seed=8)
    net = fastbp.Network([3, fastbp.LSTM(4, return_sequences=True, bidirectional=True),
                          fastbp.RNN(3, activation="relu"), 3], output="softmax",
                         hidden_activation="tanh", dtype=np.float32, seed=8)
    net.fit(X, Y, epochs=2, batch_size=2, optimizer="adam", lengths=lens)
    net.save(tmp_path / "rnn.npz")
    back = fastbp.load(tmp_path / "rnn.npz")
    assert repr(back.layers[0]) == "LSTM(4, return_sequences=True, bidirectional=True)"
    assert back.layers[1].activation == "relu" and back.params.dtype == np.float32
    assert np.array_equal(back.params, net.params)
    assert np.array_equal(back.predict_proba(X, lengths=lens), net.predict_proba(X, lengths=lens))
    back.fit(X, Y, epochs=1, lengths=lens, optimizer="adam", warm_start=True)


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_is_named():
    net = fastbp.Network([2, fastbp.GRU(3), 2], seed=0)
    X = np.zeros((4, 5, 2))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="X must be a 3-D array"):
        net.predict(X[:, 0])
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        fastbp.Network([2, 2]).predict(X)
    with pytest.raises(ValueError, match="lengths is only for networks with recurrent"):
        fastbp.Network([2, 2]).fit(X[:, 0], y, lengths=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="bptt_steps is only"):
        fastbp.Network([2, 2]).fit(X[:, 0], y, bptt_steps=2)
    for lens, what in (([1, 2, 3], "one length per sample"), ([0, 1, 1, 1], "1..5"),
                       ([1, 6, 1, 1], "1..5"), ([1.5, 1, 1, 1], "integers"),
                       ([[1, 1, 1, 1]], "one length per sample")):
        with pytest.raises(ValueError, match=f"lengths.*{what}"):
            net.fit(X, y, lengths=lens)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="bptt_steps"):
            net.fit(X, y, bptt_steps=k)
    Xn = X.copy()
    Xn[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN.*\[1, 2, 0\]"):
        net.fit(Xn, y)
    net.fit(Xn, y, lengths=[5, 2, 5, 5], epochs=1)  # NaN in a padded step: fine
    with pytest.raises(ValueError, match="3 features per step, but the network expects 2"):
        net.predict(np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="class label 2"):
        net.fit(X, [0, 1, 2, 0])
    seq = fastbp.Network([2, fastbp.GRU(3, return_sequences=True), 2], seed=0)
    with pytest.raises(ValueError, match=r"y must be \(4, 5\) labels"):
        seq.fit(X, y)


def test_bad_layer_stacks_are_named():
    with pytest.raises(ValueError, match="must return sequences"):
        fastbp.Network([2, fastbp.GRU(3), fastbp.GRU(3), 2])
    with pytest.raises(ValueError, match="recurrent layers must come first"):
        fastbp.Network([2, 4, fastbp.GRU(3), 2])
    with pytest.raises(ValueError, match="cannot be the output layer"):
        fastbp.Network([2, fastbp.GRU(3)])
    with pytest.raises(ValueError, match="batch normalization"):
        fastbp.Network([2, fastbp.GRU(3), fastbp.Dense(3, normalization="batch"), 2])
    with pytest.raises(ValueError, match="RNN activation"):
        fastbp.RNN(3, activation="gelu")
    with pytest.raises(TypeError, match="return_sequences"):
        fastbp.GRU(3, return_sequences="yes")


def test_predict_checks_nan_on_the_fast_path_and_public_kernels_refuse_recurrent_specs():
    net = fastbp.Network([2, fastbp.LSTM(3), 2], seed=0)
    X = np.zeros((3, 4, 2), dtype=np.float32)
    X[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.predict(X)
    assert net.predict(X, lengths=[4, 4, 3]).shape == (3,)
    params, buffers, spec, loss = fastbp.kernels.network_arrays(net)
    with pytest.raises(ValueError, match="recurrent layers"):
        fastbp.kernels.predict_proba(np.ascontiguousarray(X[:, 0]), params, buffers, spec)
