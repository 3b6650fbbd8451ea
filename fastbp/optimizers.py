"""Optimizers: hyperparameters plus state in flat twins of the parameter vector.

An optimizer object holds its hyperparameters and, once training starts, its state: a
(slots, n_params) array (``state``) in the parameter layout and the update count ``t``.
The update rules themselves are compiled kernels in :mod:`fastbp.kernels.optimizers`; this
module only packs hyperparameters into the float64 vector those kernels read (the learning
rate, then ``hyper_names`` in order).  Each class registers itself in
:data:`fastbp.registry.OPTIMIZERS` by its ``name``: adding an optimizer is a class here and a
rule in the kernels, nothing else.

Pass an optimizer to ``fit`` by name (``optimizer="adam"``) or as an object
(``optimizer=fastbp.Adam(learning_rate=1e-3)``).
"""
import numpy as np

from ._validation import check_number, check_positive_int
from .kernels import optimizers as rules
from .registry import OPTIMIZERS, Entry

#: what ``from fastbp.optimizers import *`` (and so the ``fastbp`` package) exports: add a new
#: optimizer's class name here
__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "RPROP", "LBFGS", "Adagrad", "NAdam", "Quickprop",
           "SARPROP"]


class Optimizer:
    """Base class.  Subclasses set ``code`` (kernel update rule) and ``name``."""

    code = None
    name = None
    #: True when the rule needs the gradient of the whole data set (RPROP, L-BFGS)
    full_batch = False
    #: attributes that follow the learning rate in the kernels' hyperparameter vector
    hyper_names = ()
    #: number of flat state twins of the parameter vector the rule keeps
    slots = 0

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name is not None and cls.name not in OPTIMIZERS:
            OPTIMIZERS.add(Entry(cls.name, None, cls=cls, full_batch=cls.full_batch))

    def __init__(self, learning_rate):
        self.learning_rate = check_number(learning_rate, "learning_rate", low=0.0,
                                          low_open=True)
        self.state = None
        self.t = 0

    # --- hyperparameters -------------------------------------------------------------------
    def get_params(self):
        """Hyperparameters as a dict (the constructor's keyword arguments)."""
        return {k: getattr(self, k) for k in self._param_names()}

    @classmethod
    def _param_names(cls):
        """The constructor's keyword arguments (looked up once per class: ``fit`` asks)."""
        names = cls.__dict__.get("_PARAM_NAMES")
        if names is None:
            import inspect
            names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
            cls._PARAM_NAMES = names
        return names

    def hyper(self, learning_rate=None):
        """The float64 vector the kernels read: the learning rate, then ``hyper_names``."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        return np.array([lr] + [float(getattr(self, k)) for k in self.hyper_names])

    @property
    def rule(self):
        """The address of the compiled update rule for this optimizer's state (parameters of
        its dtype), which the training kernels call: compiled, or loaded from the cache, on
        first use."""
        return rules.update_rule(self.code, self.state.dtype).address

    # --- state ------------------------------------------------------------------------------
    @property
    def n_slots(self):
        return self.slots

    def init_state(self, n_params, dtype):
        """Fresh state for a network with ``n_params`` parameters: ``n_slots`` flat twins
        (an optimizer without state gets one empty row, which the kernels never read)."""
        slots = self.n_slots
        self.state = np.zeros((slots, n_params) if slots else (1, 0), dtype=dtype)
        self.t = 0

    def has_state_for(self, n_params, dtype):
        return (self.state is not None and self.state.dtype == dtype
                and self.state.shape == ((self.n_slots, n_params) if self.n_slots else (1, 0)))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    code = rules.SGD
    name = "sgd"
    hyper_names = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = check_number(momentum, "momentum", 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")

    @property
    def n_slots(self):
        return 1 if self.momentum > 0 else 0  # the velocity, only with momentum


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``.  For weight decay use :class:`AdamW` (or
    the L2 penalty ``alpha`` of ``fit``, which is the coupled kind)."""

    code = rules.ADAM
    name = "adam"
    hyper_names = ("beta1", "beta2", "eps", "weight_decay")
    slots = 2
    weight_decay = 0.0

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(learning_rate)
        self.beta1 = check_number(beta1, "beta1", 0.0, 1.0, high_open=True)
        self.beta2 = check_number(beta2, "beta2", 0.0, 1.0, high_open=True)
        self.eps = check_number(eps, "eps", 0.0, low_open=True)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``: each
    step first shrinks every parameter by ``learning_rate * weight_decay``."""

    name = "adamw"

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(learning_rate, beta1, beta2, eps)
        self.weight_decay = check_number(weight_decay, "weight_decay", 0.0)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (its ``alpha`` is ``rho`` here)."""

    code = rules.RMSPROP
    name = "rmsprop"
    hyper_names = ("rho", "eps")
    slots = 1

    def __init__(self, learning_rate=1e-3, rho=0.99, eps=1e-8):
        super().__init__(learning_rate)
        self.rho = check_number(rho, "rho", 0.0, 1.0, high_open=True)
        self.eps = check_number(eps, "eps", 0.0, low_open=True)


class RPROP(Optimizer):
    """iRPROP- (Igel & Huesken 2000), FANN's default training algorithm; full batch.

    Each weight has its own step, grown by ``eta_plus`` while its gradient keeps its sign and
    shrunk by ``eta_minus`` when it flips; the learning rate is not used.  Defaults are FANN's
    (delta_zero 0.1, delta_max 50), with a small positive ``step_min``.
    """

    code = rules.RPROP
    name = "rprop"
    full_batch = True
    hyper_names = ("eta_plus", "eta_minus", "step_min", "step_max")
    slots = 2

    def __init__(self, eta_plus=1.2, eta_minus=0.5, step_init=0.1, step_min=1e-6,
                 step_max=50.0):
        super().__init__(1.0)
        self.eta_plus = check_number(eta_plus, "eta_plus", 1.0, low_open=True)
        self.eta_minus = check_number(eta_minus, "eta_minus", 0.0, 1.0, low_open=True,
                                      high_open=True)
        self.step_init = check_number(step_init, "step_init", 0.0, low_open=True)
        self.step_min = check_number(step_min, "step_min", 0.0)
        self.step_max = check_number(step_max, "step_max", self.step_min, low_open=True)

    def init_state(self, n_params, dtype):
        super().init_state(n_params, dtype)
        self.state[1] = self.step_init  # slot 0: previous gradient, slot 1: step sizes


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad``: each parameter's step is the
    learning rate over the root of its summed squared gradients (started at
    ``initial_accumulator_value``); the learning rate decays as lr / (1 + (t-1) lr_decay)."""

    code = rules.ADAGRAD
    name = "adagrad"
    hyper_names = ("lr_decay", "eps")
    slots = 1

    def __init__(self, learning_rate=0.01, lr_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10):
        super().__init__(learning_rate)
        self.lr_decay = check_number(lr_decay, "lr_decay", 0.0)
        self.initial_accumulator_value = check_number(
            initial_accumulator_value, "initial_accumulator_value", 0.0)
        self.eps = check_number(eps, "eps", 0.0, low_open=True)

    def init_state(self, n_params, dtype):
        super().init_state(n_params, dtype)
        self.state[0] = self.initial_accumulator_value  # the sum of squared gradients


class NAdam(Optimizer):
    """NAdam (Dozat 2016, with the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t
    momentum_decay))), as ``torch.optim.NAdam``; ``weight_decay`` is an L2 term added to the
    gradient, or with ``decoupled_weight_decay`` AdamW's shrinking of the weights.

    The step uses the product of every mu_1 ... mu_t so far.  It is kept in the state (third
    row, first element; the rows before are the moments) rather than recomputed from ``t``:
    recomputing costs t multiplications per step, and the product of past steps must not
    change when ``warm_start`` continues with another ``beta1`` or ``momentum_decay`` (it
    does not in torch either).  So it is saved with the model like the moments."""

    code = rules.NADAM
    name = "nadam"
    hyper_names = ("beta1", "beta2", "eps", "momentum_decay", "weight_decay",
                   "decoupled_weight_decay")
    slots = 3

    def __init__(self, learning_rate=2e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 momentum_decay=4e-3, weight_decay=0.0, decoupled_weight_decay=False):
        super().__init__(learning_rate)
        self.beta1 = check_number(beta1, "beta1", 0.0, 1.0, high_open=True)
        self.beta2 = check_number(beta2, "beta2", 0.0, 1.0, high_open=True)
        self.eps = check_number(eps, "eps", 0.0, low_open=True)
        self.momentum_decay = check_number(momentum_decay, "momentum_decay", 0.0)
        self.weight_decay = check_number(weight_decay, "weight_decay", 0.0)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def init_state(self, n_params, dtype):
        super().init_state(n_params, dtype)
        self.state[2, :1] = 1.0  # the product of the mu_t so far (rows 0, 1: the moments)


class Quickprop(Optimizer):
    """Quickprop (Fahlman 1988) as FANN 2.2 implements it (``fann_update_weights_quickprop``),
    with FANN's defaults; full batch.

    Each weight jumps to the minimum of the parabola through its last two slopes, at most
    ``mu`` times its previous step, plus a gradient step while the slope keeps its sign; a
    weight whose previous step was (nearly) zero takes the plain gradient step.  The slope
    includes the weight-decay term ``decay * w`` (FANN's ``quickprop_decay``, negative: it
    pulls weights towards zero).  Weights are clamped to +-1500 as in FANN.

    Scaling: FANN sums the slopes over the samples and steps ``learning_rate / num_data``
    times that sum; fastbp's gradient is that of the *mean* loss, so ``learning_rate`` is per
    mean gradient and the steps are FANN's for the same ``learning_rate`` (FANN's squared
    error is fastbp's ``squared_error``: 1/2 sum of squares per sample; FANN's default
    training error function is its ``tanh`` one, not replicated here).  ``decay`` is added
    to the mean slope, whereas FANN adds it to the sum: FANN's ``decay`` on N samples is
    ``decay / N`` here.
    """

    code = rules.QUICKPROP
    name = "quickprop"
    full_batch = True
    hyper_names = ("decay", "mu")
    slots = 2  # previous steps, previous slopes (both start at 0, as in FANN)

    def __init__(self, learning_rate=0.7, decay=-0.0001, mu=1.75):
        super().__init__(learning_rate)
        self.decay = check_number(decay, "decay")
        self.mu = check_number(mu, "mu", 0.0, low_open=True)


class SARPROP(Optimizer):
    """SARPROP (Treadgold & Gedeon 1998) as FANN 2.2 implements it
    (``fann_update_weights_sarprop``), with FANN's defaults; full batch; no learning rate.

    iRPROP- with two annealed terms, both fading as 2^(-temperature * epoch) (epoch = number
    of previous updates, ``t - 1``):

    - the slope is dE/dw - w 2^(weight_decay_shift - temperature epoch) -- FANN's sign: the
      term enlarges weights rather than decaying them (the SARPROP paper adds the gradient of
      a penalty); it is kept as FANN has it;
    - when the slope changes sign and the step is below
      ``step_error_threshold_factor * MSE``, the halved step gets a random
      u * RMSE * 2^(step_error_shift - temperature epoch) added, u uniform in [0, 1).

    MSE: the rule receives the mean training loss of the epoch at the weights before the
    update (the loss ``apply_update`` is given) and takes MSE = 2 * loss, the mean over
    samples of sum_j (p_j - y_j)^2 for ``squared_error``: FANN's MSE for one output (FANN
    divides by the number of outputs too, and halves the differences of symmetric outputs
    such as tanh).  With ``alpha`` the L2 penalty is part of that loss; with another loss
    function that loss stands in for the squared error.

    The random numbers are fastbp's counter-based generator keyed by the update number and
    the weight's index (FANN calls ``rand()``), so training is reproducible.  Steps start at
    0, floored at ``step_min`` (FANN's rprop_delta_zero applies to RPROP only and its
    SARPROP floors at a fixed 1e-6).  After a sign change FANN keeps a stale step from the
    weight before in its memory order; here the weight keeps its own step, as in RPROP.

    Scaling: as for :class:`Quickprop`, fastbp's gradient is the mean, FANN's the sum over N
    samples; only the gradient's sign matters, except against the weight term, which is N
    times stronger here: ``weight_decay_shift - log2(N)`` reproduces FANN on N samples.
    """

    code = rules.SARPROP
    name = "sarprop"
    full_batch = True
    hyper_names = ("eta_plus", "eta_minus", "step_min", "step_max", "weight_decay_shift",
                   "step_error_threshold_factor", "step_error_shift", "temperature")
    slots = 2  # steps, previous slopes (both start at 0, as in FANN)

    def __init__(self, eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50.0,
                 weight_decay_shift=-6.644, step_error_threshold_factor=0.1,
                 step_error_shift=1.385, temperature=0.015):
        super().__init__(1.0)
        self.eta_plus = check_number(eta_plus, "eta_plus", 1.0, low_open=True)
        self.eta_minus = check_number(eta_minus, "eta_minus", 0.0, 1.0, low_open=True,
                                      high_open=True)
        self.step_min = check_number(step_min, "step_min", 0.0, low_open=True)
        self.step_max = check_number(step_max, "step_max", self.step_min, low_open=True)
        self.weight_decay_shift = check_number(weight_decay_shift, "weight_decay_shift")
        self.step_error_threshold_factor = check_number(
            step_error_threshold_factor, "step_error_threshold_factor", 0.0)
        self.step_error_shift = check_number(step_error_shift, "step_error_shift")
        self.temperature = check_number(temperature, "temperature", 0.0)


class LBFGS(Optimizer):
    """L-BFGS-B through ``scipy.optimize.minimize`` on the compiled loss and gradient, as
    scikit-learn's ``lbfgs`` solver; full batch.  ``fit``'s ``epochs`` is the maximum number
    of iterations; ``memory`` is the number of correction pairs kept, ``gtol``/``ftol`` are
    SciPy's stopping tolerances and ``maxfun`` its budget of function evaluations.  Its state lives inside SciPy, so ``warm_start`` continues
    from the current weights only."""

    name = "lbfgs"
    full_batch = True

    def __init__(self, memory=10, gtol=1e-5, ftol=None, maxfun=15000):
        super().__init__(1.0)
        self.memory = check_positive_int(memory, "memory")
        self.maxfun = check_positive_int(maxfun, "maxfun")
        self.gtol = check_number(gtol, "gtol", 0.0)
        self.ftol = None if ftol is None else check_number(ftol, "ftol", 0.0)




def get_optimizer(optimizer, learning_rate=None):
    """An optimizer object from a name or an object (returned as is)."""
    if isinstance(optimizer, Optimizer):
        if learning_rate is not None:
            raise ValueError("give learning_rate to the optimizer object, not to fit, when "
                             "passing an optimizer object")
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")
    cls = OPTIMIZERS.get(optimizer.lower()).cls
    if learning_rate is None:
        return cls()
    if "learning_rate" not in cls._param_names():
        raise ValueError(f"optimizer {cls.name!r} takes no learning_rate")
    return cls(learning_rate=learning_rate)
