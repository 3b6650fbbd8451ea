"""Layer objects for :class:`fastbp.Network`'s list of layers (Keras-style).

``Network([64, Dense(32, activation="relu", normalization="batch"), 10])``: the first entry is
the number of inputs; each later one is an int (a dense layer of that many units) or a layer
object.  A network's ``layers`` are *bound* copies whose parameters are views into the
network's flat vectors.
"""
import numbers

import numpy as np

from ._config import MAX_UNITS

from .kernels.codes import W_OFF
from .registry import ACTIVATIONS, LAYER_KINDS


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if value > MAX_UNITS:
        raise ValueError(f"{name} = {value} is too large (at most {MAX_UNITS})")
    return int(value)


def _float_in(value, name, low, high, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got "
                         f"{value}")
    return float(value)


#: ``Dense(normalization=...)`` options -> layer-kind names
NORMALIZATIONS = {e.option: e.name for e in LAYER_KINDS if e.norm}


class Dense:
    """A fully connected layer of ``units`` units: z = a W + b, optionally normalized, then
    the activation.

    Parameters
    ----------
    units : int
    activation : str, optional
        A registered activation; default: the network's ``hidden_activation`` (hidden layers)
        or ``output`` (the last layer).
    normalization : None, "batch" or "layer"
        Batch normalization (Ioffe & Szegedy) or layer normalization (Ba et al.) of the
        pre-activations, with a learnable ``scale`` and ``shift`` per unit, placed as in
        ``torch.nn.Sequential(Linear, BatchNorm1d / LayerNorm, activation)``.
    eps, momentum : float
        The normalization's epsilon and (batch norm) running-statistics momentum; PyTorch's
        defaults.

    Bound to a network (``net.layers[i]``), a layer exposes views into ``net.params``:
    ``weights`` ((n_in, units), the matrix of ``z = a @ W + b``), ``weight`` ((units, n_in),
    as ``torch.nn.Linear.weight``; the stored block), ``bias``, and with normalization
    ``scale``, ``shift`` and (batch norm) ``running_mean``, ``running_var``, views into
    ``net.buffers``.
    """

    def __init__(self, units, activation=None, normalization=None, eps=1e-5, momentum=0.1):
        self.units = _positive_int(units, "units")
        if activation is not None:
            activation = ACTIVATIONS.get(activation).name
        self.activation = activation
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; choose one of "
                             f"{[None] + sorted(NORMALIZATIONS)}")
        self.normalization = normalization
        self.eps = _float_in(eps, "eps", 0.0, 1.0, low_open=True)
        self.momentum = _float_in(momentum, "momentum", 0.0, 1.0)

    # --- description ----------------------------------------------------------------------
    def config(self):
        """JSON-serializable constructor arguments (what model files store)."""
        return {"kind": "dense", "units": self.units, "activation": self.activation,
                "normalization": self.normalization, "eps": self.eps,
                "momentum": self.momentum}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.pop("kind", "dense") != "dense":
            raise ValueError(f"not a dense layer: {config!r}")
        return cls(**config)

    def resolved(self, activation):
        """A copy with the activation filled in (when not set)."""
        return Dense(self.units, self.activation or activation, self.normalization, self.eps,
                     self.momentum)

    @property
    def norm_kind(self):
        """The layer-kind name of the normalization row, or None."""
        return NORMALIZATIONS.get(self.normalization)

    def __eq__(self, other):
        return type(other) is type(self) and other.config() == self.config()

    def __repr__(self):
        args = [str(self.units)]
        if self.activation is not None:
            args.append(f"activation={self.activation!r}")
        if self.normalization is not None:
            args.append(f"normalization={self.normalization!r}")
        return f"Dense({', '.join(args)})"

    # --- parameters of a bound layer ------------------------------------------------------
    def _bind(self, net, rows):
        """A bound copy whose attributes are views into ``net``'s vectors; ``rows`` are the
        layer's row indices in the layer table (dense, then its norm row if any)."""
        bound = Dense(self.units, self.activation, self.normalization, self.eps,
                      self.momentum)
        layout = net.layout
        d = rows[0]
        bound.weight = net.params[layout.weight_slice(d)].reshape(layout.n_out(d),
                                                                  layout.n_in(d))
        bound.weights = bound.weight.T
        bound.bias = net.params[layout.bias_slice(d)]
        if len(rows) > 1:
            r = rows[1]
            bound.scale = net.params[layout.weight_slice(r)]
            bound.shift = net.params[layout.bias_slice(r)]
            if layout.buffer_slice(r) is not None:
                s = layout.buffer_slice(r)
                n = self.units
                bound.running_mean = net.buffers[s][:n]
                bound.running_var = net.buffers[s][n:]
        return bound


class Recurrent:
    """Base of the recurrent layers :class:`RNN`, :class:`GRU` and :class:`LSTM`: ``units``
    per direction, over the steps of (n_samples, n_steps, n_features) sequences, with
    PyTorch's equations, gate order and parameter shapes (see
    :mod:`fastbp.kernels.layers.recurrent`).

    ``return_sequences``: output every step (the next layer sees each step; the targets are
    then per step) instead of each sample's last valid step.  ``bidirectional``: a forward and
    a backward pass, concatenated (2 * units outputs); the last-step output of the backward
    pass is its final state (after step 0), as PyTorch's ``h_n``.

    Bound to a network, a layer exposes views into ``net.params`` shaped like PyTorch's:
    ``weight_ih`` (gates*units, inputs), ``weight_hh`` (gates*units, units), ``bias_ih``,
    ``bias_hh`` (gates*units,) and, when bidirectional, the same with ``_reverse``.
    """

    kind = None  #: the layer-kind name (registry.LAYER_KINDS)
    normalization = None

    def __init__(self, units, return_sequences=False, bidirectional=False):
        self.units = _positive_int(units, "units")
        for name, value in (("return_sequences", return_sequences),
                            ("bidirectional", bidirectional)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        self.return_sequences = bool(return_sequences)
        self.bidirectional = bool(bidirectional)
        self.activation = "tanh"

    @property
    def gates(self):
        return LAYER_KINDS.get(self.kind).gates

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    @property
    def width(self):
        """Outputs per step: units times directions."""
        return self.units * self.directions

    def config(self):
        return {"kind": self.kind, "units": self.units,
                "return_sequences": self.return_sequences,
                "bidirectional": self.bidirectional}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.pop("kind", None) != cls.kind:
            raise ValueError(f"not a {cls.kind} layer: {config!r}")
        return cls(**config)

    def resolved(self, activation):
        return self

    def _args(self):
        args = [str(self.units)]
        if self.return_sequences:
            args.append("return_sequences=True")
        if self.bidirectional:
            args.append("bidirectional=True")
        return args

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(self._args())})"

    def __eq__(self, other):
        return type(other) is type(self) and other.config() == self.config()

    def _bind(self, net, rows):
        bound = type(self).from_config(self.config())
        layout = net.layout
        r = rows[0]
        n_in = layout.n_in(r)
        H, GH = self.units, self.gates * self.units
        o = int(layout.spec[r, W_OFF])
        for suffix in ("", "_reverse")[:self.directions]:
            for name, shape in (("weight_ih", (GH, n_in)), ("weight_hh", (GH, H)),
                                ("bias_ih", (GH,)), ("bias_hh", (GH,))):
                size = int(np.prod(shape))
                setattr(bound, name + suffix, net.params[o:o + size].reshape(shape))
                o += size
        return bound


class RNN(Recurrent):
    """Elman recurrent layer: h' = activation(W_ih x + b_ih + W_hh h + b_hh), ``activation``
    tanh or relu (``torch.nn.RNN``'s ``nonlinearity``).  See :class:`Recurrent`."""

    kind = "rnn"

    def __init__(self, units, activation="tanh", return_sequences=False, bidirectional=False):
        super().__init__(units, return_sequences, bidirectional)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"unknown RNN activation {activation!r}; choose one of "
                             f"['tanh', 'relu']")
        self.activation = activation

    def config(self):
        return dict(super().config(), activation=self.activation)

    def _args(self):
        args = super()._args()
        if self.activation != "tanh":
            args.insert(1, f"activation={self.activation!r}")
        return args


class GRU(Recurrent):
    """Gated recurrent unit, PyTorch's ``torch.nn.GRU`` (gates r, z, n; the reset gate
    applied after the recurrent product).  See :class:`Recurrent`."""

    kind = "gru"


class LSTM(Recurrent):
    """Long short-term memory, PyTorch's ``torch.nn.LSTM`` (gates i, f, g, o).  See
    :class:`Recurrent`."""

    kind = "lstm"


#: layer-kind name -> class, for model files
LAYER_CLASSES = {"dense": Dense, "rnn": RNN, "gru": GRU, "lstm": LSTM}


def from_config(config):
    """A layer object from its ``config()`` dict (model files)."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer description must be a JSON object, got {config!r}")
    kind = config.get("kind")
    if not isinstance(kind, str) or kind not in LAYER_CLASSES:
        raise ValueError(f"unknown layer kind {kind!r}")
    return LAYER_CLASSES[kind].from_config(config)
