"""Layer objects for :class:`fastbp.Network`'s list of layers (Keras-style).

``Network([64, Dense(32, activation="relu", normalization="batch"), 10])``: the first entry is
the number of inputs; each later one is an int (a dense layer of that many units) or a layer
object.  A network's ``layers`` are *bound* copies whose parameters are views into the
network's flat vectors.
"""
import numbers

import numpy as np

from ._config import MAX_UNITS

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


def from_config(config):
    """A layer object from its ``config()`` dict (model files)."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer description must be a JSON object, got {config!r}")
    kind = config.get("kind")
    if kind == "dense":
        return Dense.from_config(config)
    raise ValueError(f"unknown layer kind {kind!r}")
