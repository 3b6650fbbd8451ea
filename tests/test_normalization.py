"""Batch and layer normalization end to end: against PyTorch (outputs, gradients, running
statistics after training steps), folding into the dense layers, training on digits, model
files."""
import numpy as np
import pytest

import fastbp
from fastbp.kernels import codes
from naive import norm_predict, rel_error
from test_layers import naive_layers

N_IN, H1, H2, N_OUT = 6, 8, 7, 4


def torch_pair(seed=0, lr=0.1):
    """torch.nn.Sequential(Linear, BatchNorm1d, ReLU, Linear, LayerNorm, Tanh, Linear) in
    float64 with random (non-default) affine parameters and running statistics, and the
    fastbp network with the same tensors copied in."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(N_IN, H1), nn.BatchNorm1d(H1), nn.ReLU(),
                          nn.Linear(H1, H2), nn.LayerNorm(H2), nn.Tanh(),
                          nn.Linear(H2, N_OUT)).double()
    with torch.no_grad():
        for m in (model[1], model[4]):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.3)
        model[1].running_mean.normal_(0, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    net = fastbp.Network([N_IN, fastbp.Dense(H1, "relu", normalization="batch"),
                          fastbp.Dense(H2, "tanh", normalization="layer"),
                          fastbp.Dense(N_OUT, "softmax")], dtype=np.float64)
    L = net.layers
    for layer, lin in zip(L, (model[0], model[3], model[6])):
        layer.weight[:] = lin.weight.detach().numpy()
        layer.bias[:] = lin.bias.detach().numpy()
    for layer, norm in ((L[0], model[1]), (L[1], model[4])):
        layer.scale[:] = norm.weight.detach().numpy()
        layer.shift[:] = norm.bias.detach().numpy()
    L[0].running_mean[:] = model[1].running_mean.numpy()
    L[0].running_var[:] = model[1].running_var.numpy()
    return torch, model, net


def torch_params(model):
    """torch's parameters in fastbp's flat layout (Linear: weight row by row, bias; norm:
    weight = scale, bias = shift): Sequential order is the layout's order."""
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def torch_grads(model):
    return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])


def data(seed=1, rows=24):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, N_IN))
    y = rng.integers(0, N_OUT, rows)
    return X, y


def test_copied_parameters_line_up():
    _, model, net = torch_pair()
    np.testing.assert_array_equal(net.params, torch_params(model))


def test_outputs_match_torch_in_train_and_eval_mode():
    torch, model, net = torch_pair()
    X, y = data()
    F = torch.nn.functional
    Xt = torch.tensor(X)
    model.eval()
    with torch.no_grad():
        eval_p = F.softmax(model(Xt), dim=1).numpy()
        eval_loss = F.cross_entropy(model(Xt), torch.tensor(y)).item()
    np.testing.assert_allclose(net.predict_proba(X), eval_p, rtol=1e-12, atol=1e-15)
    assert net.evaluate(X, y) == pytest.approx(eval_loss, rel=1e-12)
    model.train()
    with torch.no_grad():
        logits = model(Xt)
        train_p = F.softmax(logits, dim=1).numpy()
        train_loss = F.cross_entropy(logits, torch.tensor(y)).item()
    assert not np.allclose(train_p, eval_p, atol=1e-3)  # the modes really differ here
    assert net.evaluate(X, y, training=True) == pytest.approx(train_loss, rel=1e-12)
    # fastbp has no train-mode predict; the NumPy reference, checked against fastbp's
    # gradients in test_layers, gives the train-mode outputs
    np.testing.assert_allclose(norm_predict(naive_layers(net), X, training=True), train_p,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_torch_autograd(training):
    torch, model, net = torch_pair()
    X, y = data(rows=37)
    model.train(training)
    loss = torch.nn.functional.cross_entropy(model(torch.tensor(X)), torch.tensor(y))
    loss.backward()
    value, grad = net.gradient(X, y, training=training)
    assert value == pytest.approx(loss.item(), rel=1e-12)
    assert rel_error(grad, torch_grads(model)) < 1e-12


@pytest.mark.parametrize("epochs,batch_size", [(3, 60), (1, 20)])
def test_three_sgd_steps_match_torch(epochs, batch_size):
    """Three SGD steps over the same batches in the same order: the same parameters
    (linear, batch norm and layer norm) and the same running statistics (momentum 0.1,
    unbiased variance) as three torch optimizer steps."""
    lr = 0.2
    torch, model, net = torch_pair(lr=lr)
    X, y = data(rows=60)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        for s in range(0, 60, batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[s:s + batch_size]),
                                              yt[s:s + batch_size]).backward()
            opt.step()
    net.fit(X, y, epochs=epochs, batch_size=batch_size, learning_rate=lr, optimizer="sgd",
            shuffle=False)
    bn = net.layers[0]
    np.testing.assert_allclose(bn.running_mean, model[1].running_mean.numpy(), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(bn.running_var, model[1].running_var.numpy(), rtol=1e-12)
    assert rel_error(net.params, torch_params(model)) < 1e-12
    # the layer norm's scale and shift moved, and moved as torch's
    ln = net.layers[1]
    np.testing.assert_allclose(ln.scale, model[4].weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ln.shift, model[4].bias.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
    model.eval()
    with torch.no_grad():
        p = torch.nn.functional.softmax(model(Xt), dim=1).numpy()
    np.testing.assert_allclose(net.predict_proba(X), p, rtol=1e-10, atol=1e-14)


def test_layer_norm_matches_torch_functional():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    rng = np.random.default_rng(3)
    net = fastbp.Network([5, fastbp.Dense(9, "identity", normalization="layer", eps=1e-3)],
                         output="identity", dtype=np.float64)
    net.params[:] = rng.normal(size=net.n_params)
    X = rng.normal(size=(11, 5))
    L = net.layers[0]
    z = torch.tensor(X @ L.weights + L.bias)
    expected = torch.nn.functional.layer_norm(z, (9,), torch.tensor(L.scale),
                                              torch.tensor(L.shift), eps=1e-3).numpy()
    np.testing.assert_allclose(net.predict_proba(X), expected, rtol=1e-12, atol=1e-14)


def trained_batch_norm_net(dtype=np.float64, layer_norm_too=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 2.0, size=(300, 6))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    layers = [fastbp.Dense(12, "relu", normalization="batch"),
              fastbp.Dense(9, "gelu", normalization="layer" if layer_norm_too else "batch"),
              fastbp.Dense(3, normalization="batch")]
    net = fastbp.Network([6] + layers, dtype=dtype, seed=seed)
    net.fit(X, y, epochs=5, batch_size=25, learning_rate=0.1, seed=seed)
    return net, X


@pytest.mark.parametrize("layer_norm_too", [False, True])
def test_folded_predicts_as_the_unfolded_eval_mode(layer_norm_too):
    net, X = trained_batch_norm_net(layer_norm_too=layer_norm_too)
    for layer in net.layers:  # training moved the running statistics away from (0, 1)
        if layer.normalization == "batch":
            assert np.abs(layer.running_mean).max() > 0.1
            assert np.abs(layer.running_var - 1).max() > 0.1
    folded = net.folded()
    assert not folded.layout.has_batch_norm
    kinds = set(folded.layout.spec[:, codes.KIND])
    assert kinds == ({codes.DENSE, codes.LAYER_NORM} if layer_norm_too else {codes.DENSE})
    assert folded.buffers.size == 0
    P = net.predict_proba(X)
    np.testing.assert_allclose(folded.predict_proba(X), P, rtol=0, atol=1e-6)
    assert rel_error(folded.predict_proba(X), P) < 1e-12
    assert folded.activations == net.activations and folded.loss == net.loss


def test_digits_with_batch_norm(digits):
    X_train, X_test, y_train, y_test = digits
    net = fastbp.Network([64, 64, 10], normalization="batch", seed=0)
    net.fit(X_train, y_train, epochs=40, batch_size=32, learning_rate=0.05, seed=0)
    accuracy = (net.predict(X_test) == y_test).mean()
    assert accuracy >= 0.96, accuracy  # 0.980 here; 0.964-0.980 over seeds 0-7
    assert (net.folded().predict(X_test) == net.predict(X_test)).mean() > 0.99


def test_digits_with_layer_norm_online(digits):
    """Online training (batch_size=1) is what layer norm allows and batch norm does not;
    bar: 94% held-out (0.958-0.978 over seeds 0-7; chance is 10%)."""
    X_train, X_test, y_train, y_test = digits
    net = fastbp.Network([64, fastbp.Dense(32, "tanh", normalization="layer"), 10], seed=0)
    net.fit(X_train, y_train, epochs=10, batch_size=1, learning_rate=0.01, seed=0)
    accuracy = (net.predict(X_test) == y_test).mean()
    assert accuracy >= 0.94, accuracy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, dtype):
    net, X = trained_batch_norm_net(dtype=dtype, layer_norm_too=True)
    # non-default eps and momentum must survive too
    net2 = fastbp.Network([6, fastbp.Dense(5, "silu", normalization="batch", eps=1e-3,
                                           momentum=0.3), 3], dtype=dtype, seed=1)
    for n in (net, net2):
        path = tmp_path / "model.npz"
        n.save(path)
        back = fastbp.load(path)
        assert back.dtype == n.dtype
        np.testing.assert_array_equal(back.params, n.params)
        np.testing.assert_array_equal(back.buffers, n.buffers)
        assert [l.config() for l in back.layers] == [l.config() for l in n.layers]
        for a, b in zip(back.layers, n.layers):
            if b.normalization == "batch":
                np.testing.assert_array_equal(a.running_mean, b.running_mean)
                np.testing.assert_array_equal(a.running_var, b.running_var)
        np.testing.assert_array_equal(back.predict_proba(X.astype(dtype)),
                                      n.predict_proba(X.astype(dtype)))


def test_init_params_resets_running_statistics():
    """Re-initializing a trained network gives the freshly built one: running mean 0 (not
    the trained one) and variance 1."""
    net, X = trained_batch_norm_net()
    net.init_params(7)
    fresh = fastbp.Network([6] + [fastbp.Dense(l.units, l.activation, l.normalization)
                                  for l in net.layers], dtype=np.float64, seed=7)
    np.testing.assert_array_equal(net.params, fresh.params)
    np.testing.assert_array_equal(net.buffers, fresh.buffers)
    np.testing.assert_array_equal(net.predict_proba(X), fresh.predict_proba(X))
