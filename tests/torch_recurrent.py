"""The recurrent networks of ``naive.py`` (lists of layer dicts) built from PyTorch modules,
so that torch autograd can check the NumPy reference and fastbp.  Needs torch (callers skip
where it is absent); float64 throughout.

``torch_loss_and_grads`` runs torch's own ``nn.RNN`` / ``nn.GRU`` /
``nn.LSTM`` on packed sequences (``pack_padded_sequence(enforce_sorted=False)``), one module
per layer; ``torch_stepwise_loss_and_grads`` runs ``nn.RNNCell`` / ``GRUCell`` / ``LSTMCell``
step by step with masks, and can detach the state at chunk boundaries (truncated BPTT as
defined in naive.py).  Both return (loss, grads in naive's structure, outputs).
"""
import numpy as np
import torch
import torch.nn.functional as F

from naive import recurrent_tensor_names

_MODULES = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
_CELLS = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


def _act(name, z):
    if name == "softmax":
        return torch.softmax(z, dim=-1)
    return {"identity": lambda v: v, "logistic": torch.sigmoid, "tanh": torch.tanh,
            "relu": torch.relu}[name](z)


def torch_module(layer, n_in):
    """A one-layer torch module holding ``layer``'s tensors (copied)."""
    H = layer["params"]["weight_hh"].shape[1]
    kw = dict(batch_first=True, bidirectional=layer["bidirectional"], dtype=torch.float64)
    if layer["kind"] == "rnn":
        kw["nonlinearity"] = layer["activation"]
    mod = _MODULES[layer["kind"]](n_in, H, **kw)
    with torch.no_grad():
        for name in recurrent_tensor_names(layer["bidirectional"]):
            tname = name.replace("_reverse", "") + "_l0" + ("_reverse" if "reverse" in name else "")
            getattr(mod, tname).copy_(torch.from_numpy(layer["params"][name]))
    return mod


def _module_grads(mod, bidirectional):
    out = {}
    for name in recurrent_tensor_names(bidirectional):
        tname = name.replace("_reverse", "") + "_l0" + ("_reverse" if "reverse" in name else "")
        out[name] = getattr(mod, tname).grad.numpy().copy()
    return out


def _loss(loss, z, p, y, w):
    """fastbp's per-row losses (naive.per_sample_loss), weighted mean with row weights w."""
    if loss == "squared_error":
        per = 0.5 * ((p - y) ** 2).sum(-1)
    elif loss == "binary_cross_entropy":
        per = (y * F.softplus(-z) + (1 - y) * F.softplus(z)).sum(-1)
    else:
        per = -(y * torch.log_softmax(z, dim=-1)).sum(-1)
    return (w * per).sum() / w.sum()


def _head(net, start, a, tensors):
    """Dense layers net[start:] on a; returns (logits, outputs)."""
    z = None
    for layer in net[start:]:
        W = torch.tensor(layer["params"]["weight"], requires_grad=True)
        b = torch.tensor(layer["params"]["bias"], requires_grad=True)
        tensors.append({"weight": W, "bias": b})
        z = F.linear(a, W, b)
        a = _act(layer["activation"], z)
    return z, a


def _finish(net, loss, z, p, Y, lengths, sample_weight, n, T, modules):
    w = torch.ones(n, dtype=torch.float64) if sample_weight is None else \
        torch.tensor(np.asarray(sample_weight, dtype=float))
    Yt = torch.tensor(np.asarray(Y, dtype=float))
    if p.dim() == 3:
        valid = torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]
        rw = (w[:, None] * valid).reshape(-1)
        Yt = torch.where(valid[:, :, None], Yt, torch.zeros(()))
        value = _loss(loss, z.reshape(-1, z.shape[-1]), p.reshape(-1, p.shape[-1]),
                      Yt.reshape(-1, Yt.shape[-1]), rw)
    else:
        value = _loss(loss, z, p, Yt, w)
    value.backward()
    grads = []
    for layer, m in zip(net, modules):
        if layer["kind"] == "dense":
            grads.append({k: v.grad.numpy().copy() for k, v in m.items()})
        elif isinstance(m, dict):  # stepwise: tensors by name
            grads.append({k: v.grad.numpy().copy() for k, v in m.items()})
        else:
            grads.append(_module_grads(m, layer["bidirectional"]))
    return float(value.detach()), grads, p.detach().numpy()


def _lengths(lengths, n, T):
    return np.full(n, T) if lengths is None else np.asarray(lengths)


def torch_loss_and_grads(net, loss, X, Y, lengths=None, sample_weight=None,
                         many_to_one="state"):
    """(loss, grads, outputs) by torch's nn.RNN/GRU/LSTM on packed sequences."""
    X = np.asarray(X, dtype=float)
    n, T, _ = X.shape
    lengths = _lengths(lengths, n, T)
    a = torch.tensor(X)
    modules = []
    rows = torch.arange(n)
    last = torch.as_tensor(lengths - 1)
    for li, layer in enumerate(net):
        if layer["kind"] == "dense":
            tensors = []
            z, p = _head(net, li, a, tensors)
            modules += tensors
            return _finish(net, loss, z, p, Y, lengths, sample_weight, n, T, modules)
        mod = torch_module(layer, a.shape[-1])
        modules.append(mod)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            a, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
        out, state = mod(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        if layer["return_sequences"]:
            a = out
        else:
            h_n = state[0] if layer["kind"] == "lstm" else state
            if many_to_one == "state":
                a = torch.cat(list(h_n), dim=1)
            else:
                a = out[rows, last]
    raise ValueError("the network must end with a dense layer")


def torch_stepwise_loss_and_grads(net, loss, X, Y, lengths=None, sample_weight=None,
                                  bptt_steps=None, many_to_one="state"):
    """(loss, grads, outputs) by torch cells stepped in Python with masks; with
    ``bptt_steps`` the state entering each chunk boundary is detached."""
    X = np.asarray(X, dtype=float)
    n, T, _ = X.shape
    lengths = _lengths(lengths, n, T)
    lt = torch.as_tensor(lengths)
    a = torch.tensor(X)
    modules = []
    rows = torch.arange(n)
    for li, layer in enumerate(net):
        if layer["kind"] == "dense":
            tensors = []
            z, p = _head(net, li, a, tensors)
            modules += tensors
            return _finish(net, loss, z, p, Y, lengths, sample_weight, n, T, modules)
        kind = layer["kind"]
        H = layer["params"]["weight_hh"].shape[1]
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in layer["params"].items()}
        modules.append(tensors)
        outs = []
        for suffix in ("", "_reverse") if layer["bidirectional"] else ("",):
            kw = {"nonlinearity": layer["activation"]} if kind == "rnn" else {}
            cell = _CELLS[kind](a.shape[-1], H, dtype=torch.float64, **kw)
            # the cell's parameters replaced by our leaf tensors (functional call)
            params = {t: tensors[t + suffix] for t in ("weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh")}
            h = torch.zeros(n, H, dtype=torch.float64)
            c = torch.zeros(n, H, dtype=torch.float64)
            out = [None] * T
            steps = range(T - 1, -1, -1) if suffix else range(T)
            for t in steps:
                boundary = bptt_steps is not None and ((t + 1) if suffix else t) % bptt_steps == 0
                if boundary:
                    h, c = h.detach(), c.detach()
                valid = (t < lt)[:, None]
                if kind == "lstm":
                    h_new, c_new = torch.func.functional_call(cell, params, (a[:, t], (h, c)))
                    c = torch.where(valid, c_new, c)
                else:
                    h_new = torch.func.functional_call(cell, params, (a[:, t], h))
                h = torch.where(valid, h_new, h)
                out[t] = torch.where(valid, h_new, torch.zeros(()))
            outs.append(torch.stack(out, dim=1))
        seq = torch.cat(outs, dim=2)
        if layer["return_sequences"]:
            a = seq
        else:
            parts = [outs[0][rows, lt - 1]]
            if layer["bidirectional"]:
                parts.append(outs[1][rows, 0] if many_to_one == "state"
                             else outs[1][rows, lt - 1])
            a = torch.cat(parts, dim=1)
    raise ValueError("the network must end with a dense layer")
