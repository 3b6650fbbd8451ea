"""PyTorch: net.to_torch() computes what the network computes (within 1e-6 in float64, in
eval mode, with running statistics), Network.from_torch reads it back bit-identically, and
modules fastbp cannot read are errors naming them."""
import numpy as np
import pytest

import fastbp
from fastbp import Dense

torch = pytest.importorskip("torch", reason="PyTorch is not installed (fastbp does not "
                                            "install it)")
nn = torch.nn


def _every_kind_net(dtype, output="softmax"):
    """Every layer kind and every activation fastbp has, with nontrivial running stats."""
    net = fastbp.Network(
        [5, Dense(8, activation="relu", normalization="batch"),
         Dense(7, activation="gelu", normalization="layer"), Dense(6, activation="silu"),
         Dense(6, activation="elu"), Dense(5, activation="softplus"),
         Dense(5, activation="leaky_relu"), Dense(5, activation="tanh"),
         Dense(4, activation="logistic"), Dense(4, activation="identity"), 3],
        output=output, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    net.params[:] = rng.normal(size=net.n_params)
    net.buffers[:] = rng.uniform(0.5, 1.5, size=net.buffers.size)
    return net


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_to_torch_computes_the_same_function(output):
    net = _every_kind_net(np.float64, output)
    seq = net.to_torch()
    assert not seq.training
    assert [type(m).__name__ for m in seq][:3] == ["Linear", "BatchNorm1d", "ReLU"]
    X = np.random.default_rng(1).normal(size=(64, 5))
    with torch.no_grad():
        got = seq(torch.from_numpy(X)).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-6)


def test_to_torch_float32():
    net = _every_kind_net(np.float32)
    seq = net.to_torch()
    assert seq[0].weight.dtype == torch.float32
    X = np.random.default_rng(1).normal(size=(32, 5)).astype(np.float32)
    with torch.no_grad():
        got = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_fastbp_torch_fastbp_is_bit_identical(dtype):
    net = _every_kind_net(dtype)
    back = fastbp.Network.from_torch(net.to_torch())
    assert back.dtype == net.dtype and back.layout == net.layout
    assert back.loss == net.loss and back.activations == net.activations
    assert [l.config() for l in back.layers] == [l.config() for l in net.layers]
    assert back.params.tobytes() == net.params.tobytes()
    assert back.buffers.tobytes() == net.buffers.tobytes()


def test_trained_network_round_trips_and_matches(digits):
    X_train, X_test, y_train, _ = digits
    net = fastbp.Network([64, Dense(32, activation="relu", normalization="batch"), 10],
                         dtype=np.float64, seed=0)
    net.fit(X_train, y_train, epochs=3, batch_size=32, optimizer="adam", seed=0)
    seq = net.to_torch()
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.from_numpy(X_test)).numpy(),
                                   net.predict_proba(X_test), rtol=0, atol=1e-6)
    back = fastbp.Network.from_torch(seq)
    assert back.params.tobytes() == net.params.tobytes()
    assert back.buffers.tobytes() == net.buffers.tobytes()


def test_from_torch_reads_a_module_made_in_torch():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Tanh(),
                        nn.Sequential(nn.Linear(6, 5, bias=False), nn.BatchNorm1d(5),
                                      nn.GELU(approximate="tanh")),
                        nn.Identity(), nn.Linear(5, 2)).double()
    seq.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from 0 and 1
            seq(torch.randn(16, 4, dtype=torch.float64) * 3 + 1)
    seq.eval()
    net = fastbp.Network.from_torch(seq)
    assert net.activations == ["tanh", "gelu", "identity"] and net.loss == "squared_error"
    assert net.layers[1].normalization == "batch" and np.all(net.layers[1].bias == 0)
    X = np.random.default_rng(0).normal(size=(40, 4))
    with torch.no_grad():
        np.testing.assert_allclose(net.predict_proba(X), seq(torch.from_numpy(X)).numpy(),
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("module,message", [
    (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)),
     r"module '1' \(Dropout.*Dropout is not a module fastbp can read"),
    (nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Conv1d(1, 1, 1)), nn.Linear(4, 2)),
     r"module '1.0' \(Conv1d"),
    (nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)),
     "GELU.*approximate='tanh'"),
    (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 2)), "leaky_relu"),
    (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5), nn.Linear(5, 2)), "5 features"),
    (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None), nn.Linear(4, 2)),
     "momentum"),
    (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "5 inputs after a layer of 4"),
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "expected a Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 2)),
     r"module '2' \(Tanh\(\)\).*expected a Linear"),
    (nn.Sequential(nn.Linear(3, 4).half()), "float16"),
    (nn.Sequential(), "no Linear"),
])
def test_modules_fastbp_cannot_read_are_errors_naming_them(module, message):
    with pytest.raises(ValueError, match=message):
        fastbp.Network.from_torch(module)


def test_from_torch_needs_a_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fastbp.Network.from_torch([1, 2])


# --- recurrent layers -----------------------------------------------------------------------
CELLS = {"gru": lambda **kw: fastbp.GRU(4, **kw), "lstm": lambda **kw: fastbp.LSTM(4, **kw),
         "rnn_tanh": lambda **kw: fastbp.RNN(4, **kw),
         "rnn_relu": lambda **kw: fastbp.RNN(4, activation="relu", **kw)}
SHAPES = {  # many-to-one; stacked bidirectional; sequence output through per-step dense layers
    "last": lambda c: [3, c(), 2],
    "stacked_bidirectional": lambda c: [3, c(return_sequences=True, bidirectional=True),
                                        c(bidirectional=True), 2],
    "sequences": lambda c: [3, c(return_sequences=True, bidirectional=True),
                            Dense(5, activation="tanh", normalization="layer"), 3],
}
LENGTHS = np.array([6, 1, 3, 5, 6, 2, 4])


def _recurrent_net(cell, shape, dtype=np.float64):
    output = "identity" if shape == "last" else "softmax"
    net = fastbp.Network(SHAPES[shape](CELLS[cell]), output=output, dtype=dtype, seed=0)
    net.params[:] = np.random.default_rng(1).normal(scale=0.6, size=net.n_params)
    return net


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_to_torch_and_back(cell, shape):
    from fastbp.formats.torch import RecurrentBlock, RecurrentSequential
    net = _recurrent_net(cell, shape)
    seq = net.to_torch()
    assert isinstance(seq, RecurrentSequential) and isinstance(seq[0], RecurrentBlock)
    rnn = seq[0].rnn
    assert rnn.batch_first and rnn.num_layers == 1 and rnn.weight_ih_l0.dtype == torch.float64
    X = np.random.default_rng(2).normal(size=(7, 6, 3))
    with torch.no_grad():
        for L in (None, LENGTHS):
            got = seq(torch.from_numpy(X), None if L is None else torch.from_numpy(L)).numpy()
            np.testing.assert_allclose(got, net.predict_proba(X, lengths=L), rtol=0,
                                       atol=1e-6)
    back = fastbp.Network.from_torch(seq)
    assert back.layout == net.layout and repr(back) == repr(net)
    assert back.params.tobytes() == net.params.tobytes()


def test_recurrent_state_dict_keys_are_torchs():
    net = _recurrent_net("lstm", "stacked_bidirectional")
    keys = list(net.to_torch().state_dict())
    layer = [f"{n}_l0{s}" for s in ("", "_reverse")
             for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert keys[:8] == [f"0.rnn.{k}" for k in layer] and keys[8:16] == [f"1.rnn.{k}"
                                                                        for k in layer]
    assert keys[16:] == ["2.weight", "2.bias"]
    sd = net.to_torch().state_dict()
    np.testing.assert_array_equal(sd["1.rnn.weight_hh_l0_reverse"].numpy(),
                                  net.layers[1].weight_hh_reverse)


def test_from_torch_reads_plain_stacked_modules():
    """A plain nn.GRU of two bidirectional layers (batch_first) and a Linear, as a torch user
    writes them: fastbp reads two stacked GRU layers, many-to-one from h_n."""
    torch.manual_seed(0)
    gru = nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    lin = nn.Linear(10, 2).double()
    net = fastbp.Network.from_torch(nn.Sequential(gru, lin))
    assert repr(net) == ("Network([3, GRU(5, return_sequences=True, bidirectional=True), "
                         "GRU(5, bidirectional=True), Dense(2, activation='identity')], "
                         "loss='squared_error', dtype=float64)")
    X = np.random.default_rng(3).normal(size=(6, 4, 3))
    with torch.no_grad():
        _, h = gru(torch.from_numpy(X))
        want = lin(torch.cat([h[-2], h[-1]], dim=1)).numpy()
    np.testing.assert_allclose(net.predict_proba(X), want, rtol=0, atol=1e-6)


def test_from_torch_bias_free_recurrent_module_has_zero_biases():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, bias=False, batch_first=True)
    lin = nn.Linear(4, 1)
    net = fastbp.Network.from_torch(nn.Sequential(lstm, lin))
    assert np.all(net.layers[0].bias_ih == 0) and np.all(net.layers[0].bias_hh == 0)
    X = np.random.default_rng(3).normal(size=(5, 4, 3)).astype(np.float32)
    with torch.no_grad():
        _, (h, _) = lstm(torch.from_numpy(X))
        want = lin(h[-1]).numpy()
    np.testing.assert_allclose(net.predict_proba(X), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("module,message", [
    (nn.Sequential(nn.LSTM(3, 4, proj_size=2), nn.Linear(2, 1)), "proj_size"),
    (nn.Sequential(nn.GRU(3, 4, num_layers=2, dropout=0.5), nn.Linear(4, 1)),
     "dropout between stacked layers"),
    (nn.Sequential(nn.Linear(3, 3), nn.GRU(3, 4), nn.Linear(4, 1)),
     r"module '1' \(GRU.*recurrent module after a Linear"),
    (nn.Sequential(nn.GRU(3, 4)), "no Linear layer"),
    (nn.Sequential(nn.GRU(3, 4), nn.Tanh(), nn.Linear(4, 1)), "expected a Linear"),
    (nn.Sequential(nn.GRU(3, 4), nn.LSTM(5, 4), nn.Linear(4, 1)),
     "5 inputs after a layer of 4"),
    (nn.Sequential(nn.GRU(3, 4), nn.Linear(8, 1)), "8 inputs after a layer of 4"),
    (nn.Sequential(nn.GRU(3, 4).half(), nn.Linear(4, 1)), "float16"),
])
def test_recurrent_modules_fastbp_cannot_read_are_errors(module, message):
    with pytest.raises(ValueError, match=message):
        fastbp.Network.from_torch(module)


def test_block_after_a_last_state_block_is_an_error():
    from fastbp.formats.torch import RecurrentBlock
    seq = nn.Sequential(RecurrentBlock(nn.GRU(3, 4, batch_first=True)),
                        RecurrentBlock(nn.GRU(4, 4, batch_first=True)), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="return_sequences=False"):
        fastbp.Network.from_torch(seq)
