"""The one place that names every activation, loss, optimizer and layer kind.

Each registry maps names (and aliases) to an :class:`Entry`: the integer ``code`` the kernels
dispatch on, plus the traits the Python layer needs.  Everything that offers a choice -- the
:class:`~fastbp.Network` constructor, the estimators' ``_parameter_constraints``, the command
line, model files -- derives it from here, so adding an activation means one entry below and
its formulas in :mod:`fastbp.kernels.activations`; adding an optimizer means its class in
:mod:`fastbp.optimizers` (which registers itself) and its rule in
:mod:`fastbp.kernels.optimizers`.

The module-level integer constants are what the kernels import: Numba treats them as
compile-time constants.  This module imports nothing heavy, so asking for choices is cheap.
"""

# --- activations -------------------------------------------------------------------------
IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5
ELU = 6
SOFTPLUS = 7
SILU = 8
GELU = 9
EXP = 10

#: slope of leaky_relu for negative inputs (PyTorch's default)
LEAKY_SLOPE = 0.01

# --- losses --------------------------------------------------------------------------------
SQUARED_ERROR = 0
BINARY_CROSS_ENTROPY = 1
CROSS_ENTROPY = 2
POISSON = 3
ABSOLUTE_ERROR = 4
HUBER = 5

# --- layer kinds (one row of the layer table each) ----------------------------------------
DENSE = 0
BATCH_NORM = 1
LAYER_NORM = 2
RNN = 3
GRU = 4
LSTM = 5


class Entry:
    """A registered name: its kernel ``code``, its ``aliases`` and free-form traits
    (available as attributes)."""

    def __init__(self, name, code, aliases=(), **traits):
        self.name = name
        self.code = code
        self.aliases = tuple(aliases)
        self.traits = traits
        self.__dict__.update(traits)

    def __repr__(self):
        return f"Entry({self.name!r}, code={self.code})"


class Registry:
    """Names -> entries, with one error message for every unknown name."""

    def __init__(self, what, entries=()):
        self.what = what
        self._by_name = {}
        self._by_code = {}
        self._entries = []
        for e in entries:
            self.add(e)

    def add(self, entry):
        for n in (entry.name,) + entry.aliases:
            if n in self._by_name and self._by_name[n] is not entry:
                raise ValueError(f"{self.what} name {n!r} is registered twice")
            self._by_name[n] = entry
        if entry.code is not None:
            if entry.code in self._by_code:
                raise ValueError(f"{self.what} code {entry.code} is registered twice")
            self._by_code[entry.code] = entry
        self._entries.append(entry)
        return entry

    def __iter__(self):
        return iter(list(self._entries))

    def __contains__(self, name):
        return name in self._by_name

    def names(self, **traits):
        """Canonical names of the entries whose traits equal the given values."""
        return [e.name for e in self if all(e.traits.get(k) == v for k, v in traits.items())]

    def choices(self, **traits):
        """Canonical names and aliases (what a user may type), filtered like :meth:`names`."""
        return [n for e in self if all(e.traits.get(k) == v for k, v in traits.items())
                for n in (e.name,) + e.aliases]

    def get(self, name, *, label=None, **traits):
        """The entry called ``name`` (case-sensitive), or a TypeError/ValueError that lists
        the valid choices (restricted to entries with the given traits)."""
        label = label or self.what
        if not isinstance(name, str):
            raise TypeError(f"{label} must be a string, one of {self.choices(**traits)}, got "
                            f"{name!r}")
        e = self._by_name.get(name)
        if e is None or any(e.traits.get(k) != v for k, v in traits.items()):
            raise ValueError(f"unknown {label} {name!r}; choose one of "
                             f"{self.choices(**traits)}")
        return e

    def code(self, name, **kw):
        return self.get(name, **kw).code

    def by_code(self, code):
        return self._by_code[int(code)]

    def name_of(self, code):
        return self.by_code(code).name


#: ``needs_pre``: the derivative needs the pre-activation z (not only f(z)), so the forward
#: pass keeps z for these layers; ``hidden``: usable on a hidden layer; ``init``: the
#: initial-weight rule for a dense layer feeding it (He for rectifiers, Glorot otherwise).
ACTIVATIONS = Registry("activation", [
    Entry("identity", IDENTITY, aliases=("linear",), hidden=True, needs_pre=False,
          init="glorot"),
    Entry("logistic", LOGISTIC, aliases=("sigmoid",), hidden=True, needs_pre=False,
          init="glorot"),
    Entry("tanh", TANH, hidden=True, needs_pre=False, init="glorot"),
    Entry("relu", RELU, hidden=True, needs_pre=False, init="he"),
    Entry("leaky_relu", LEAKY_RELU, hidden=True, needs_pre=False, init="he"),
    Entry("softmax", SOFTMAX, hidden=False, needs_pre=False, init="glorot"),
    Entry("elu", ELU, hidden=True, needs_pre=False, init="he"),
    Entry("softplus", SOFTPLUS, hidden=True, needs_pre=False, init="he"),
    Entry("silu", SILU, aliases=("swish",), hidden=True, needs_pre=True, init="he"),
    Entry("gelu", GELU, hidden=True, needs_pre=True, init="he"),
    Entry("exp", EXP, hidden=False, needs_pre=False, init="glorot"),
])

#: ``output``: the output activation the loss is fused with (None: any element-wise one);
#: ``default_for``: output activations that get this loss when none is named;
#: ``regression``: offered by MLPRegressor; ``param``: the name of the loss's one
#: hyperparameter (a keyword of Network and MLPRegressor) and its default, or None.
LOSSES = Registry("loss", [
    Entry("squared_error", SQUARED_ERROR, output=None, default_for=(), regression=True,
          param=None),
    Entry("binary_cross_entropy", BINARY_CROSS_ENTROPY, output="logistic",
          default_for=("logistic",), regression=False, param=None),
    Entry("cross_entropy", CROSS_ENTROPY, output="softmax", default_for=("softmax",),
          regression=False, param=None),
    Entry("poisson", POISSON, output="exp", default_for=("exp",), regression=True,
          param=None),
    Entry("absolute_error", ABSOLUTE_ERROR, output=None, default_for=(), regression=True,
          param=None),
    Entry("huber", HUBER, output=None, default_for=(), regression=True,
          param=("huber_epsilon", 1.0)),
])

#: ``norm``: a normalization of the previous dense layer's pre-activations (its parameters
#: are a scale and a shift per unit); ``running_stats``: keeps running mean and variance in
#: the network's non-trainable buffer; ``option``: its name in ``Dense(normalization=...)``;
#: ``recurrent``: a recurrent layer over the steps of a sequence, with ``gates`` blocks of
#: units in its weight matrices (PyTorch's layout: GRU r, z, n; LSTM i, f, g, o).
LAYER_KINDS = Registry("layer kind", [
    Entry("dense", DENSE, norm=False, running_stats=False, option=None, recurrent=False,
          gates=0),
    Entry("batch_norm", BATCH_NORM, norm=True, running_stats=True, option="batch",
          recurrent=False, gates=0),
    Entry("layer_norm", LAYER_NORM, norm=True, running_stats=False, option="layer",
          recurrent=False, gates=0),
    Entry("rnn", RNN, norm=False, running_stats=False, option=None, recurrent=True, gates=1),
    Entry("gru", GRU, norm=False, running_stats=False, option=None, recurrent=True, gates=3),
    Entry("lstm", LSTM, norm=False, running_stats=False, option=None, recurrent=True,
          gates=4),
])


#: filled by the classes of :mod:`fastbp.optimizers` as they are defined (``import fastbp``
#: imports that module); traits: ``cls`` (the class), ``full_batch`` (needs the whole data
#: set's gradient per step)
OPTIMIZERS = Registry("optimizer")


def default_loss(output):
    """The loss an output activation gets when none is named."""
    for e in LOSSES:
        if output in e.default_for:
            return e.name
    return "squared_error"
