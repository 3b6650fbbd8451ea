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

Recurrent networks: each recurrent layer becomes a :class:`RecurrentBlock` holding, as its
``rnn``, an ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (one layer, ``batch_first=True``, PyTorch's own
tensors: state_dict keys ``0.rnn.weight_ih_l0``, ``0.rnn.bias_hh_l0_reverse``, ...), and the
Sequential is a :class:`RecurrentSequential`, whose ``forward(x, lengths=None)`` takes
(batch, steps, features) sequences and optional lengths as ``net.predict_proba`` does
(packed with ``pack_padded_sequence``; sequence outputs are zero past each length).  Dense
layers after a sequence output apply per step (``nn.Linear`` on 3-D input).  ``from_torch``
reads these blocks and also plain ``nn.RNN``/``GRU``/``LSTM`` modules in a Sequential (any
``num_layers``: stacked fastbp layers; the weights do not depend on ``batch_first``, and the
fastbp network takes (n, steps, features)); a plain module is read as many-to-one (its
``h_n``), unless another recurrent module follows it.

Needs PyTorch, which fastbp does not install (it is large; install the build you want).
"""
import functools

import numpy as np

from ..layers import GRU, LSTM, RNN, Dense, Recurrent
from ._common import RECURRENT_MODULE, modules, rows, unsupported

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


class RecurrentBlock(nn.Module):
    """A recurrent layer as a module of a Sequential: ``rnn`` is the ``nn.RNN``/``GRU``/
    ``LSTM`` (``batch_first=True``); ``forward(x, lengths=None)`` returns its output at every
    step (batch, steps, directions*units) when ``return_sequences``, else ``h_n`` -- each
    direction's final state, forward then reverse -- as (batch, directions*units).  With
    ``lengths`` the sequences are packed (``pack_padded_sequence``): steps past a length
    are not computed and output zeros."""

    def __init__(self, rnn, return_sequences=False):
        super().__init__()
        self.rnn = rnn
        self.return_sequences = bool(return_sequences)

    def forward(self, x, lengths=None):
        packed, steps = lengths is not None, x.shape[1]
        if packed:
            x = nn.utils.rnn.pack_padded_sequence(x, _lengths(lengths), batch_first=True,
                                                  enforce_sorted=False)
        y, h = self.rnn(x)
        if self.return_sequences:
            if packed:
                y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True,
                                                        total_length=steps)
            return y
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        return h.transpose(0, 1).reshape(h.shape[1], -1)

    def extra_repr(self):
        return f"return_sequences={self.return_sequences}"


def _lengths(lengths):
    return torch.as_tensor(np.asarray(lengths), dtype=torch.int64).cpu()


class RecurrentSequential(nn.Sequential):
    """The Sequential of a recurrent network: ``forward(x, lengths=None)`` passes ``lengths``
    to every :class:`RecurrentBlock`; a per-step output is zero past each length, as
    fastbp's."""

    def forward(self, x, lengths=None):
        steps = x.shape[1]
        for m in self:
            x = m(x, lengths) if isinstance(m, RecurrentBlock) else m(x)
        if lengths is not None and x.dim() == 3:
            valid = torch.arange(steps)[None, :] < _lengths(lengths)[:, None]
            x = torch.where(valid[:, :, None], x, torch.zeros((), dtype=x.dtype))
        return x


_RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _recurrent(row):
    cell = row.cell
    kw = {"nonlinearity": cell.activation} if row.kind == "rnn" else {}
    return RecurrentBlock(_RNN_CLASSES[row.kind](row.n_in, cell.units, batch_first=True,
                                                 bidirectional=cell.bidirectional, **kw),
                          cell.return_sequences)


#: layer kind -> a function making the row's module (its tensors are then loaded by name)
ROW_MODULES = {"dense": _linear, "batch_norm": _batch_norm, "layer_norm": _layer_norm,
               "rnn": _recurrent, "gru": _recurrent, "lstm": _recurrent}


def _attr(module, name):
    """``module``'s tensor ``name`` (dotted: ``rnn.weight_ih_l0``), or None."""
    try:
        return functools.reduce(getattr, name.split("."), module)
    except AttributeError:
        return None


def to_torch(net):
    """A ``torch.nn.Sequential`` (eval mode, the network's dtype) computing
    ``net.predict_proba`` (a :class:`RecurrentSequential` for a recurrent network)."""
    layers = []
    for _, row, act in modules(net):
        if row is not None:
            if row.kind not in ROW_MODULES:
                raise unsupported(row.kind, "layer kind", ROW_MODULES)
            m = ROW_MODULES[row.kind](row).to(_TORCH_DTYPES[net.dtype])
            with torch.no_grad():
                for name, view in row.tensors.items():
                    _attr(m, name).copy_(_tensor(view))
            layers.append(m)
        else:
            if act not in ACTIVATION_MODULES:
                raise unsupported(act, "activation", ACTIVATION_MODULES)
            layers.append(ACTIVATION_MODULES[act]())
    cls = RecurrentSequential if net.layout.recurrent else nn.Sequential
    return cls(*layers).eval()


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


_RECURRENT_KINDS = {nn.RNN: RNN, nn.GRU: GRU, nn.LSTM: LSTM}


def _is_recurrent(m):
    return isinstance(m, RecurrentBlock) or type(m) in _RECURRENT_KINDS


def _width(layer):
    return layer.width if isinstance(layer, Recurrent) else layer.units


def _check_recurrent(name, m, rnn, dtype, n_in):
    """The parameters' dtype of a recurrent module fastbp can read, or a ValueError."""
    if type(rnn) not in _RECURRENT_KINDS:
        _fail(name, m, f"its rnn is a {type(rnn).__name__}, not an RNN, GRU or LSTM")
    if getattr(rnn, "proj_size", 0):
        _fail(name, m, "an LSTM with proj_size > 0 (fastbp's LSTM has no projection)")
    if rnn.num_layers > 1 and rnn.dropout > 0:
        _fail(name, m, "dropout between stacked layers (fastbp's dropout applies between "
                       "layers in training only, never inside a module: set dropout=0)")
    p = rnn.weight_ih_l0
    if p.dtype not in (torch.float32, torch.float64):
        _fail(name, m, f"parameters of dtype {p.dtype}; fastbp has float32 and float64")
    if dtype is not None and p.dtype != dtype:
        _fail(name, m, f"dtype {p.dtype} differs from the first layer's {dtype}")
    if n_in is not None and rnn.input_size != n_in:
        _fail(name, m, f"{rnn.input_size} inputs after a layer of {n_in} outputs")
    return p.dtype


def _recurrent_layers(rnn, return_sequences):
    """(fastbp layer, [tensor getter]) per layer of the torch module ``rnn``: its tensors
    ``weight_ih_l{k}`` ... under the names of the row (``rnn.weight_ih_l0`` ...)."""
    out = []
    for k in range(rnn.num_layers):
        seq = return_sequences if k == rnn.num_layers - 1 else True
        kw = {"activation": rnn.nonlinearity} if type(rnn) is nn.RNN else {}
        layer = _RECURRENT_KINDS[type(rnn)](rnn.hidden_size, return_sequences=seq,
                                            bidirectional=rnn.bidirectional, **kw)

        def get(tname, default, k=k):
            own = tname[len(RECURRENT_MODULE) + 1:].replace("_l0", f"_l{k}")
            return getattr(rnn, own, default)  # None: bias=False (zero biases)
        out.append((layer, [get]))
    return out


def from_torch(module, loss=None):
    """A :class:`fastbp.Network` with the function of ``module``: a ``torch.nn.Sequential``
    (nested Sequentials are flattened) of ``Linear`` layers, each optionally followed by a
    ``BatchNorm1d`` or ``LayerNorm`` and then by one activation module (see
    :data:`ACTIVATION_MODULES`; ``nn.Identity`` is skipped).  The dtype is the parameters'
    (float32 or float64); ``loss`` defaults as in ``Network``.  Parameters and running
    statistics are copied exactly.  Recurrent modules (a :class:`RecurrentBlock` or a plain
    ``nn.RNN``/``GRU``/``LSTM``) come first, as in fastbp; see the module docstring."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    items = [(n, m) for n, m in _flatten(module) if not isinstance(m, nn.Identity)]
    layers = []   # (layer object, [functions tensor name -> torch tensor or None])
    n_inputs = None
    dtype = None
    i = 0
    while i < len(items):
        name, m = items[i]
        if _is_recurrent(m):
            if layers and not isinstance(layers[-1][0], Recurrent):
                _fail(name, m, "a recurrent module after a Linear; fastbp's recurrent layers "
                               "come first")
            rnn = m.rnn if isinstance(m, RecurrentBlock) else m
            dtype = _check_recurrent(name, m, rnn, dtype,
                                     layers[-1][0].width if layers else None)
            if n_inputs is None:
                n_inputs = rnn.input_size
            if layers and not layers[-1][0].return_sequences:
                _fail(name, m, f"it follows {items[i - 1][0]!r}, which returns its last "
                               f"state only (return_sequences=False)")
            i += 1
            follows = i < len(items) and _is_recurrent(items[i][1])
            last_seq = m.return_sequences if isinstance(m, RecurrentBlock) else follows
            layers.extend(_recurrent_layers(rnn, last_seq))
            continue
        if not isinstance(m, nn.Linear):
            what = ("an activation fastbp has only with other settings"
                    if type(m) in (nn.LeakyReLU, nn.ELU, nn.Softplus, nn.GELU, nn.Softmax)
                    else "expected a Linear here" if _activation_name(m) or isinstance(
                        m, (nn.BatchNorm1d, nn.LayerNorm))
                    else f"{type(m).__name__} is not a module fastbp can read (it reads "
                         f"RNN, GRU, LSTM, RecurrentBlock, Linear, BatchNorm1d, LayerNorm "
                         f"and the activations {sorted(ACTIVATION_MODULES)})")
            _fail(name, m, what)
        if m.weight.dtype not in (torch.float32, torch.float64):
            _fail(name, m, f"parameters of dtype {m.weight.dtype}; fastbp has float32 and "
                           f"float64")
        if dtype is None:
            dtype, n_inputs = m.weight.dtype, m.in_features
        elif m.weight.dtype != dtype:
            _fail(name, m, f"dtype {m.weight.dtype} differs from the first layer's {dtype}")
        if layers and m.in_features != _width(layers[-1][0]):
            _fail(name, m, f"{m.in_features} inputs after a layer of "
                           f"{_width(layers[-1][0])} outputs")
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
        if i < len(items) and not (isinstance(items[i][1], nn.Linear)
                                   or _is_recurrent(items[i][1])):
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
                             eps=float(eps), momentum=float(momentum)),
                       [functools.partial(getattr, c) for c in carriers]))
    if not any(isinstance(layer, Dense) for layer, _ in layers):  # also: ends recurrent
        raise ValueError("the module has no Linear layer (a fastbp network ends with a dense "
                         "layer)")
    from ..network import Network
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    net = Network([n_inputs] + [d for d, _ in layers], loss=loss, dtype=np_dtype)
    by_layer = {}
    for row in rows(net):
        by_layer.setdefault(row.layer, []).append(row)
    for li, (_, carriers) in enumerate(layers):
        for row, get in zip(by_layer[li], carriers):
            for tname, view in row.tensors.items():
                t = get(tname, None)
                if t is None:  # Linear(bias=False), affine-free norms
                    view[:] = 1 if (tname == "weight") else 0
                else:
                    view[...] = t.detach().cpu().numpy().reshape(view.shape)
    if not (np.isfinite(net.params).all() and np.isfinite(net.buffers).all()):
        raise ValueError("the module's parameters or running statistics hold NaN or infinity")
    return net
