"""The NumPy BPTT reference of naive.py against PyTorch autograd, float64, with no fastbp in
the loop: proves the reference before fastbp's recurrent layers are compared with it.

Cases: RNN (tanh, relu), GRU and LSTM; one layer and stacked 2 deep; bidirectional;
return_sequences both ways, followed by one or two dense layers; variable lengths; every
loss; sample weights; both many-to-one conventions for a bidirectional last layer; truncated
BPTT against torch cells with the state detached at chunk boundaries.  Also central finite
differences, so the reference is checked against something that is not autograd.
"""
import numpy as np
import pytest

from naive import (RECURRENT_CELL_IDS, RECURRENT_CELLS, RECURRENT_TOPOLOGIES, flat_grads,
                   random_targets, recurrent_loss_and_grads, recurrent_net,
                   recurrent_numeric_gradient, recurrent_topology, rel_error)

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
from torch_recurrent import torch_loss_and_grads, torch_stepwise_loss_and_grads  # noqa: E402

CELLS, CELL_IDS = RECURRENT_CELLS, RECURRENT_CELL_IDS
TOPOLOGIES, topology = RECURRENT_TOPOLOGIES, recurrent_topology


def problem(topo, kind, opts, seed, n=6, T=7, n_in=3, n_out=3, lengths="varied"):
    rng = np.random.default_rng(seed)
    layers, loss = topology(topo, kind, opts, n_out)
    net = recurrent_net(rng, n_in, layers, scale=0.6)  # weights large enough to matter
    X = rng.normal(size=(n, T, n_in))
    L = None if lengths is None else np.array([T, 1, 4, T, 2, 5])[:n]
    last_recurrent = [opts for kind_, _, opts in layers if kind_ != "dense"][-1]
    seq = last_recurrent.get("return_sequences", False)
    if seq:
        Y = random_targets(rng, loss, n * T, n_out).reshape(n, T, n_out)
        if L is not None:  # targets of padded steps are ignored, even NaN
            Y[np.arange(T)[None, :] >= L[:, None]] = np.nan
    else:
        Y = random_targets(rng, loss, n, n_out)
    return net, loss, X, Y, L


def compare(net, loss, X, Y, L, nonzero=True, **kw):
    v_ref, g_ref = recurrent_loss_and_grads(net, loss, X, Y, L, **kw)
    v_t, g_t, _ = torch_loss_and_grads(net, loss, X, Y, L, **kw)
    assert abs(v_ref - v_t) <= 1e-12 * abs(v_t)
    assert rel_error(flat_grads(g_ref), flat_grads(g_t)) < 1e-9
    for a, b in zip(g_ref, g_t):  # and each tensor on its own (none may be all zero)
        for k in a:
            assert rel_error(a[k], b[k]) < 1e-9, k
            assert np.abs(b[k]).max() > 0 or not nonzero, k
    return v_ref, g_ref


@pytest.mark.parametrize("topo", TOPOLOGIES)
@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_reference_matches_torch_autograd(cell, topo):
    kind, opts = CELLS[cell]
    net, loss, X, Y, L = problem(topo, kind, opts, seed=10 * cell + TOPOLOGIES.index(topo))
    compare(net, loss, X, Y, L)


@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_reference_full_length_and_sample_weights(cell):
    kind, opts = CELLS[cell]
    for topo in ("stacked", "sequences"):
        net, loss, X, Y, _ = problem(topo, kind, opts, seed=50 + cell, lengths=None)
        compare(net, loss, X, Y, None)
        sw = np.random.default_rng(cell).uniform(0.2, 3.0, X.shape[0])
        net, loss, X, Y, L = problem(topo, kind, opts, seed=60 + cell)
        compare(net, loss, X, Y, L, sample_weight=sw)


@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_reference_bidirectional_last_step_convention(cell):
    kind, opts = CELLS[cell]
    net, loss, X, Y, L = problem("stacked_bidirectional", kind, opts, seed=70 + cell)
    v_state, _ = compare(net, loss, X, Y, L, many_to_one="state")
    # (there the top layer's reverse direction sees one step: its weight_hh gets no gradient)
    v_step, _ = compare(net, loss, X, Y, L, many_to_one="last_step", nonzero=False)
    assert v_state != v_step  # the two conventions are really different functions


@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_reference_matches_finite_differences(cell):
    kind, opts = CELLS[cell]
    for topo in ("stacked_bidirectional", "sequences"):
        net, loss, X, Y, L = problem(topo, kind, opts, seed=80 + cell, n=4, T=5)
        L = None if L is None else np.minimum(L, 5)
        _, g = recurrent_loss_and_grads(net, loss, X, Y, L)
        fd = recurrent_numeric_gradient(net, loss, X, Y, L)
        assert rel_error(flat_grads(g), flat_grads(fd)) < 1e-7


def test_stepwise_torch_equals_packed_torch():
    """The cell-by-cell torch model (used for truncation) is torch's packed model when
    nothing is truncated."""
    for cell, (kind, opts) in enumerate(CELLS):
        for topo in ("stacked_bidirectional", "stacked_bidirectional_sequences"):
            net, loss, X, Y, L = problem(topo, kind, opts, seed=90 + cell)
            v1, g1, _ = torch_loss_and_grads(net, loss, X, Y, L)
            v2, g2, _ = torch_stepwise_loss_and_grads(net, loss, X, Y, L)
            assert abs(v1 - v2) <= 1e-12 * abs(v1)
            assert rel_error(flat_grads(g1), flat_grads(g2)) < 1e-12


@pytest.mark.parametrize("k", [1, 2, 3, 7])
@pytest.mark.parametrize("topo", ["stacked", "sequences", "stacked_bidirectional_sequences"])
@pytest.mark.parametrize("cell", range(4), ids=CELL_IDS)
def test_truncated_reference_matches_torch_detach(cell, topo, k):
    kind, opts = CELLS[cell]
    net, loss, X, Y, L = problem(topo, kind, opts, seed=100 + cell)
    v_ref, g_ref = recurrent_loss_and_grads(net, loss, X, Y, L, bptt_steps=k)
    v_t, g_t, _ = torch_stepwise_loss_and_grads(net, loss, X, Y, L, bptt_steps=k)
    assert abs(v_ref - v_t) <= 1e-12 * abs(v_t)  # the forward pass is not truncated
    assert rel_error(flat_grads(g_ref), flat_grads(g_t)) < 1e-9
    _, g_full = recurrent_loss_and_grads(net, loss, X, Y, L)
    diff = rel_error(flat_grads(g_ref), flat_grads(g_full))
    if k >= X.shape[1]:
        assert diff < 1e-12  # a chunk as long as the sequence is full BPTT
    else:
        assert diff > 1e-3  # truncation really changed the gradient
