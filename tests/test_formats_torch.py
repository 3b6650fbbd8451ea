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
