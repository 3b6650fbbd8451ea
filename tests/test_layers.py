"""Gradients of every layer kind (plain dense, batch norm, layer norm) x every hidden
activation x every output/loss pairing, against the independent NumPy reference
(naive.norm_loss_and_grads) and central finite differences of ``evaluate``."""
import itertools

import numpy as np
import pytest

import fastbp
from fastbp.registry import ACTIVATIONS
from naive import random_targets, norm_loss_and_grads, norm_predict, numeric_gradient, rel_error

HIDDEN = ACTIVATIONS.names(hidden=True)
# (output activation, loss): every pairing the library accepts
OUTPUTS = [("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy")] + [
    (a, "squared_error") for a in HIDDEN]
KINDS = [None, "batch", "layer"]
DEPTHS = [1, 2, 3]
BATCHES = [1, 7, 64]


def make_problem(kind, hidden, out_act, loss, depth, batch, seed=0, n_in=4, n_out=3,
                 width=5, running=False):
    rng = np.random.default_rng(seed)
    layers = [fastbp.Dense(width, hidden, normalization=kind) for _ in range(depth)]
    net = fastbp.Network([n_in] + layers + [fastbp.Dense(n_out, out_act)], loss=loss,
                         dtype=np.float64, seed=seed)
    # every parameter away from its initial value (biases, shifts nonzero; scales not 1)
    net.params[:] = rng.normal(0, 0.6, net.n_params)
    for layer in net.layers:
        if layer.normalization is not None:
            layer.scale[:] = rng.uniform(0.5, 1.5, width) * rng.choice([-1, 1], width)
    if running:
        for layer in net.layers:
            if layer.normalization == "batch":
                layer.running_mean[:] = rng.normal(0, 1, width)
                layer.running_var[:] = rng.uniform(0.2, 3.0, width)
    X = rng.normal(size=(batch, n_in))
    return net, X, random_targets(rng, loss, batch, n_out)


def naive_layers(net):
    """The network's parameters as the reference's list of layer dicts (copies)."""
    out = []
    for l in net.layers:
        d = dict(W=l.weights.copy(), b=l.bias.copy(), act=l.activation,
                 norm=l.normalization, eps=l.eps, momentum=l.momentum)
        if l.normalization is not None:
            d.update(scale=l.scale.copy(), shift=l.shift.copy())
        if l.normalization == "batch":
            d.update(running_mean=l.running_mean.copy(), running_var=l.running_var.copy())
        out.append(d)
    return out


def fd_of_evaluate(net, X, Y, training):
    def f(p):
        net.params[:] = p
        return net.evaluate(X, Y, training=training)

    p0 = net.params.copy()
    fd = numeric_gradient(f, p0.copy())
    net.params[:] = p0
    return fd


def cases():
    for kind, hidden, (out_act, loss), depth, batch in itertools.product(
            KINDS, HIDDEN, OUTPUTS, DEPTHS, BATCHES):
        if kind == "batch" and batch == 1:
            continue
        yield kind, hidden, out_act, loss, depth, batch


def case_id(c):
    kind, hidden, out_act, loss, depth, batch = c
    return f"{kind or 'plain'}-{hidden}-{out_act}-{loss}-d{depth}-n{batch}"


ALL = list(cases())


@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_gradient_matches_reference(case):
    """The whole product against the NumPy reference (cheap)."""
    kind, hidden, out_act, loss, depth, batch = case
    net, X, Y = make_problem(kind, hidden, out_act, loss, depth, batch,
                             seed=depth * 100 + batch)
    before = net.buffers.copy()
    value, grad = net.gradient(X, Y)
    ref_value, ref_grad = norm_loss_and_grads(naive_layers(net), loss, X, Y, training=True)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-14)
    assert rel_error(grad, ref_grad) < 1e-9
    assert net.evaluate(X, Y, training=True) == pytest.approx(ref_value, rel=1e-10,
                                                              abs=1e-14)
    np.testing.assert_array_equal(net.buffers, before)  # gradient(): running stats untouched


def fd_cases():
    """Finite differences are ~2 n_params evaluations each, so not for the whole product: every
    (kind, hidden, output) triple once, its (depth, batch) rotating so that each (kind,
    hidden) pair and each (kind, output) pair meets every depth and batch size."""
    shapes = [(d, b) for d in DEPTHS for b in BATCHES]
    for kind in KINDS:
        ok = [s for s in shapes if not (kind == "batch" and s[1] == 1)]
        for i, hidden in enumerate(HIDDEN):
            for j, (out_act, loss) in enumerate(OUTPUTS):
                depth, batch = ok[(i + j) % len(ok)]
                yield kind, hidden, out_act, loss, depth, batch


@pytest.mark.parametrize("case", list(fd_cases()), ids=case_id)
def test_gradient_matches_finite_differences(case):
    kind, hidden, out_act, loss, depth, batch = case
    net, X, Y = make_problem(kind, hidden, out_act, loss, depth, batch,
                             seed=depth * 100 + batch + 1)
    _, grad = net.gradient(X, Y)
    assert rel_error(grad, fd_of_evaluate(net, X, Y, training=True)) < 1e-6


def test_fd_cases_cover_every_pair():
    fd = list(fd_cases())
    for kind in KINDS:
        mine = [c for c in fd if c[0] == kind]
        assert {c[1] for c in mine} == set(HIDDEN)
        assert {c[2:4] for c in mine} == set(OUTPUTS)
        assert {c[4] for c in mine} == set(DEPTHS)
        assert {c[5] for c in mine} == set(BATCHES) - ({1} if kind == "batch" else set())


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("out_act,loss", [("softmax", "cross_entropy"),
                                          ("tanh", "squared_error")])
def test_eval_mode_gradient_with_running_statistics(hidden, out_act, loss):
    """gradient(training=False): batch norm as the affine map of nontrivial running stats."""
    net, X, Y = make_problem("batch", hidden, out_act, loss, 2, 7, seed=7, running=True)
    value, grad = net.gradient(X, Y, training=False)
    ref_value, ref_grad = norm_loss_and_grads(naive_layers(net), loss, X, Y, training=False)
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert value == pytest.approx(net.evaluate(X, Y), rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-9
    assert rel_error(grad, fd_of_evaluate(net, X, Y, training=False)) < 1e-6
    # and it differs from the train-mode gradient: the running stats are really used
    assert rel_error(grad, net.gradient(X, Y)[1]) > 1e-3


@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_predict_matches_reference_in_eval_mode(kind, rng):
    net, X, _ = make_problem(kind, "gelu", "softmax", "cross_entropy", 3, 64, seed=4,
                             running=True)
    X = rng.normal(size=(3000, 4))  # more rows than one prediction chunk
    np.testing.assert_allclose(net.predict_proba(X), norm_predict(naive_layers(net), X),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["batch", "layer"])
@pytest.mark.parametrize("out_act,loss", [("softmax", "cross_entropy"),
                                          ("identity", "squared_error")])
def test_normalized_output_layer(kind, out_act, loss):
    """A normalization on the output layer itself (its norm row carries the output activation
    and the fused loss)."""
    rng = np.random.default_rng(2)
    net = fastbp.Network([4, fastbp.Dense(5, "silu", normalization=kind),
                          fastbp.Dense(3, out_act, normalization=kind)], loss=loss,
                         dtype=np.float64, seed=1)
    net.params[:] = rng.normal(0, 0.6, net.n_params)
    X = rng.normal(size=(9, 4))
    Y = np.eye(3)[rng.integers(0, 3, 9)] if loss == "cross_entropy" else rng.normal(size=(9, 3))
    value, grad = net.gradient(X, Y)
    ref_value, ref_grad = norm_loss_and_grads(naive_layers(net), loss, X, Y)
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert rel_error(grad, ref_grad) < 1e-9
    assert rel_error(grad, fd_of_evaluate(net, X, Y, training=True)) < 1e-6


def test_training_forward_matches_reference_and_updates_running_stats():
    """One fit step over one batch: the running statistics move as PyTorch's (unbiased
    variance, momentum), computed from the pre-step parameters."""
    from naive import updated_running_stats
    net, X, Y = make_problem("batch", "tanh", "softmax", "cross_entropy", 2, 64, seed=5,
                             running=True)
    expected = updated_running_stats(naive_layers(net), X)
    net.fit(X, Y, epochs=1, batch_size=64, learning_rate=0.1, shuffle=False)
    for layer, e in zip(net.layers, expected):
        if e is not None:
            np.testing.assert_allclose(layer.running_mean, e[0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(layer.running_var, e[1], rtol=1e-12, atol=1e-14)


def test_one_row_last_batch_leaves_running_stats_alone():
    """33 rows in batches of 32: the last batch has one row, no variance, and its mean is one
    sample; the running statistics are those after the first batch only."""
    from naive import updated_running_stats
    net, X, Y = make_problem("batch", "tanh", "softmax", "cross_entropy", 1, 33, seed=5,
                             running=True)
    (mean, var), _ = updated_running_stats(naive_layers(net), X[:32])
    net.fit(X, Y, epochs=1, batch_size=32, learning_rate=0.1, shuffle=False)
    np.testing.assert_allclose(net.layers[0].running_mean, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.layers[0].running_var, var, rtol=1e-12)


@pytest.mark.parametrize("kind,training", [("batch", True), ("batch", False),
                                           ("layer", True)])
def test_gradient_over_many_chunks_matches_reference(kind, training):
    """More rows than one kernel chunk: batch statistics over all of them (train mode), or
    chunk by chunk (eval mode, layer norm)."""
    net, X, Y = make_problem(kind, "gelu", "softmax", "cross_entropy", 2, 2500, seed=3,
                             running=True)
    value, grad = net.gradient(X, Y, training=training)
    ref_value, ref_grad = norm_loss_and_grads(naive_layers(net), "cross_entropy", X, Y,
                                              training=training)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-12


def test_batch_norm_rejects_a_single_row():
    net, X, Y = make_problem("batch", "relu", "softmax", "cross_entropy", 1, 7)
    for call in (lambda: net.gradient(X[:1], Y[:1]),
                 lambda: net.evaluate(X[:1], Y[:1], training=True),
                 lambda: net.fit(X, Y, epochs=1, batch_size=1)):
        with pytest.raises(ValueError, match="normalization='layer'"):
            call()
    # eval mode works on one row (running statistics)
    assert np.isfinite(net.gradient(X[:1], Y[:1], training=False)[0])
    assert net.predict_proba(X[:1]).shape == (1, 3)
