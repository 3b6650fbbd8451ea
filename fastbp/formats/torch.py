"""PyTorch: ``net.to_torch()`` and ``Network.from_torch(module)``.

``to_torch`` builds a ``torch.nn.Sequential`` in eval mode with the same function as
``net.predict_proba``: per row of the layer table one module (``Linear``, ``BatchNorm1d``
with the running statistics, ``LayerNorm``), each followed by its activation's module unless
it is the identity; a softmax output is an ``nn.Softmax(dim=-1)`` module (to train the copy
with ``nn.CrossEntropyLoss``, which takes logits, use ``seq[:-1]``; likewise drop a final
``nn.Sigmoid`` for ``nn.BCEWithLogitsLoss``).  Parameters and buffers are copies in the
network's dtype.  ``from_torch`` reads such a Sequential back (``Linear``, the activations in
:data:`ACTIVATION_MODULES`, ``BatchNorm1d``/``LayerNorm`` right after a ``Linear``); anything
else is a ``ValueError`` naming the module.

Needs PyTorch, which fastbp does not install (it is large; install the build you want).
"""
import numpy as np

from ..layers import Dense
from ._common import modules, rows, unsupported

try:
    import torch
    from torch import nn
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("PyTorch is needed for to_torch/from_torch (fastbp does not install "
                      "it: see https://pytorch.org)") from e

#: fastbp activation name -> a function making the equivalent module
ACTIVATION_MODULES = {
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": lambda: nn.ELU(1.0),
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "gelu": lambda: nn.GELU(approximate="tanh"),
    "softmax": lambda: nn.Softmax(dim=-1),
}

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _tensor(view):
    return torch.from_numpy(np.array(view))  # a copy: the module owns its parameters


def _linear(row):
    m = nn.Linear(row.n_in, row.n_out)
    return m


def _batch_norm(row):
    return nn.BatchNorm1d(row.n_out, eps=row.eps, momentum=row.momentum)


def _layer_norm(row):
    return nn.LayerNorm(row.n_out, eps=row.eps)


#: layer kind -> a function making the row's module (its tensors are then loaded by name)
ROW_MODULES = {"dense": _linear, "batch_norm": _batch_norm, "layer_norm": _layer_norm}


def to_torch(net):
    """A ``torch.nn.Sequential`` (eval mode, the network's dtype) computing
    ``net.predict_proba``."""
    layers = []
    for _, row, act in modules(net):
        if row is not None:
            if row.kind not in ROW_MODULES:
                raise unsupported(row.kind, "layer kind", ROW_MODULES)
            m = ROW_MODULES[row.kind](row).to(_TORCH_DTYPES[net.dtype])
            with torch.no_grad():
                for name, view in row.tensors.items():
                    getattr(m, name).copy_(_tensor(view))
            layers.append(m)
        else:
            if act not in ACTIVATION_MODULES:
                raise unsupported(act, "activation", ACTIVATION_MODULES)
            layers.append(ACTIVATION_MODULES[act]())
    return nn.Sequential(*layers).eval()


# --- reading --------------------------------------------------------------------------------
def _activation_name(m):
    """The fastbp activation of module ``m``, or None when it is not one fastbp has."""
    checks = {
        nn.Sigmoid: lambda m: "logistic",
        nn.Tanh: lambda m: "tanh",
        nn.ReLU: lambda m: "relu",
        nn.LeakyReLU: lambda m: "leaky_relu" if m.negative_slope == 0.01 else None,
        nn.ELU: lambda m: "elu" if m.alpha == 1.0 else None,
        nn.Softplus: lambda m: "softplus" if m.beta == 1.0 else None,
        nn.SiLU: lambda m: "silu",
        nn.GELU: lambda m: "gelu" if m.approximate == "tanh" else None,
        nn.Softmax: lambda m: "softmax" if m.dim in (-1, 1) else None,
        nn.Identity: lambda m: "identity",
    }
    f = checks.get(type(m))
    return f(m) if f else None


def _flatten(module):
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out.extend((f"{name}.{n}" if n else name, m) for n, m in _flatten(child))
        return out
    return [("", module)]


def _fail(name, module, why):
    raise ValueError(f"cannot read module {name!r} ({module!r}) into a fastbp Network: {why}")


def _norm_of(name, m, units):
    """(normalization option, eps, momentum) of a BatchNorm1d/LayerNorm after a Linear."""
    if isinstance(m, nn.BatchNorm1d):
        if m.num_features != units:
            _fail(name, m, f"{m.num_features} features after a Linear of {units} outputs")
        if not m.track_running_stats or m.momentum is None:
            _fail(name, m, "fastbp's batch norm keeps running statistics with a fixed "
                           "momentum (track_running_stats=True, momentum not None)")
        return "batch", m.eps, m.momentum
    if tuple(m.normalized_shape) != (units,):
        _fail(name, m, f"normalized_shape {tuple(m.normalized_shape)} is not ({units},)")
    return "layer", m.eps, 0.1


def from_torch(module, loss=None):
    """A :class:`fastbp.Network` with the function of ``module``: a ``torch.nn.Sequential``
    (nested Sequentials are flattened) of ``Linear`` layers, each optionally followed by a
    ``BatchNorm1d`` or ``LayerNorm`` and then by one activation module (see
    :data:`ACTIVATION_MODULES`; ``nn.Identity`` is skipped).  The dtype is the parameters'
    (float32 or float64); ``loss`` defaults as in ``Network``.  Parameters and running
    statistics are copied exactly."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    items = [(n, m) for n, m in _flatten(module) if not isinstance(m, nn.Identity)]
    layers = []   # (Dense, [modules carrying its tensors])
    n_inputs = None
    dtype = None
    i = 0
    while i < len(items):
        name, m = items[i]
        if not isinstance(m, nn.Linear):
            what = ("an activation fastbp has only with other settings"
                    if type(m) in (nn.LeakyReLU, nn.ELU, nn.Softplus, nn.GELU, nn.Softmax)
                    else "expected a Linear here" if _activation_name(m) or isinstance(
                        m, (nn.BatchNorm1d, nn.LayerNorm))
                    else f"{type(m).__name__} is not a module fastbp can read (it reads "
                         f"Linear, BatchNorm1d, LayerNorm and the activations "
                         f"{sorted(ACTIVATION_MODULES)})")
            _fail(name, m, what)
        if m.weight.dtype not in (torch.float32, torch.float64):
            _fail(name, m, f"parameters of dtype {m.weight.dtype}; fastbp has float32 and "
                           f"float64")
        if dtype is None:
            dtype, n_inputs = m.weight.dtype, m.in_features
        elif m.weight.dtype != dtype:
            _fail(name, m, f"dtype {m.weight.dtype} differs from the first layer's {dtype}")
        if layers and m.in_features != layers[-1][0].units:
            _fail(name, m, f"{m.in_features} inputs after a layer of "
                           f"{layers[-1][0].units} outputs")
        carriers = [m]
        norm, eps, momentum = None, 1e-5, 0.1
        activation = "identity"
        i += 1
        if i < len(items) and isinstance(items[i][1], (nn.BatchNorm1d, nn.LayerNorm)):
            nname, nm = items[i]
            norm, eps, momentum = _norm_of(nname, nm, m.out_features)
            for p in nm.parameters(recurse=False):
                if p.dtype != dtype:
                    _fail(nname, nm, f"dtype {p.dtype} differs from the Linear's {dtype}")
            carriers.append(nm)
            i += 1
        if i < len(items) and not isinstance(items[i][1], nn.Linear):
            aname, am = items[i]
            activation = _activation_name(am)
            if activation is None:
                if type(am) in (nn.LeakyReLU, nn.ELU, nn.Softplus, nn.GELU, nn.Softmax):
                    _fail(aname, am, "fastbp has this activation only as leaky_relu(0.01), "
                                     "ELU(alpha=1), Softplus(beta=1), "
                                     "GELU(approximate='tanh') or Softmax over the last dim")
                _fail(aname, am, f"{type(am).__name__} is not a module fastbp can read (it "
                                 f"reads Linear, BatchNorm1d, LayerNorm and the activations "
                                 f"{sorted(ACTIVATION_MODULES)})")
            i += 1
        layers.append((Dense(m.out_features, activation=activation, normalization=norm,
                             eps=float(eps), momentum=float(momentum)), carriers))
    if not layers:
        raise ValueError("the module has no Linear layer")
    from ..network import Network
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    net = Network([n_inputs] + [d for d, _ in layers], loss=loss, dtype=np_dtype)
    by_layer = {}
    for row in rows(net):
        by_layer.setdefault(row.layer, []).append(row)
    for li, (_, carriers) in enumerate(layers):
        for row, m in zip(by_layer[li], carriers):
            for tname, view in row.tensors.items():
                t = getattr(m, tname, None)
                if t is None:  # Linear(bias=False), affine-free norms
                    view[:] = 1 if (tname == "weight") else 0
                else:
                    view[...] = t.detach().cpu().numpy().reshape(view.shape)
    if not (np.isfinite(net.params).all() and np.isfinite(net.buffers).all()):
        raise ValueError("the module's parameters or running statistics hold NaN or infinity")
    return net
