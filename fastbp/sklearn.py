"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in counterparts of ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` with the
same parameter names where the idea is the same, trained by fastbp's compiled kernels.  Extra
parameters: ``dtype`` (None: follow the input, as scikit-learn; or "float64"/"float32"),
``dropout`` (hidden-layer dropout rate), ``clip_norm`` (gradient clipping), ``class_weight``
(classifier), ``loss`` and ``huber_epsilon`` (regressor: every regression loss of the
registry), and every optimizer fastbp registers as a solver (beside ``sgd``, ``adam`` and
``lbfgs``: ``adamw``, ``nadam``, ``adagrad``, ``rmsprop``, and FANN's full-batch ``rprop``,
``quickprop``, ``sarprop``).  Initial weights are scikit-learn's (the same ``random_state``
gives the same draws); ``n_iter_`` counts the latest call; schedules continue across
``partial_fit`` calls; sparse CSR/CSC input is read by sparse first-layer kernels.

Requires scikit-learn (``pip install fastbp[sklearn]``); ``import fastbp`` does not.

Differences from scikit-learn, by design:

- weights live in one flat vector: ``coefs_``/``intercepts_`` are views into
  ``network_.params`` (assigning them writes into it);
- shuffling and validation splits are seeded from ``random_state`` through NumPy's
  ``SeedSequence``, not scikit-learn's ``RandomState`` stream;
- a warm-started ``fit`` continues the optimizer state and the learning-rate schedule
  (scikit-learn restarts its optimizer there);
- SGD momentum follows ``torch.optim.SGD`` (velocity v = mu v + g, step lr v), which equals
  scikit-learn's for a constant learning rate; Adam uses the bias-corrected form of the paper
  (scikit-learn folds the correction into the step size, a difference only in how ``epsilon``
  enters);
- ``loss_`` for several regression outputs is the mean over samples of 1/2 * the *sum* over
  outputs (scikit-learn divides by the number of outputs; the gradient is the same).
"""
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import (check_classification_targets, type_of_target,
                                      unique_labels)
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                      validate_data)

from .errors import DivergenceError
from .io import _fail, save_network
from .network import Network, read_network
from .registry import ACTIVATIONS, LOSSES, OPTIMIZERS
from .schedules import InvScaling, ReduceOnPlateau, Schedule
from .training import fit as train

_SCHEDULES = ("constant", "invscaling", "adaptive")


def _activations():
    """Hidden activations, from the registry (names and aliases)."""
    return ACTIVATIONS.choices(hidden=True)


def _solvers():
    """Solvers: every registered optimizer."""
    return OPTIMIZERS.names()


def _full_batch(solver):
    return OPTIMIZERS.get(solver).full_batch


#: JSON has no NaN or infinities (n_iter_no_change=inf, a NaN validation score): model files
#: spell them as these strings
_NON_FINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def _to_json(value):
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_json(v) for v in value)
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return str(float(value))
    return value


def _from_json(value):
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


class _BestWeights:
    """A callback keeping the weights of the best validation score so far: what early
    stopping puts back when a later epoch diverges."""

    def __init__(self):
        self.best = -np.inf
        self.saved = None

    def __call__(self, net, logs):
        score = logs.get("val_score", np.nan)
        if score > self.best:
            self.best = score
            self.saved = (net.params.copy(), net.buffers.copy())

    def restore(self, net):
        if self.saved is not None:
            np.copyto(net.params, self.saved[0])
            np.copyto(net.buffers, self.saved[1])


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation, training and persistence."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, clip_norm=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.clip_norm = clip_norm

    # --- parameters --------------------------------------------------------------------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if np.isscalar(sizes):
            sizes = [sizes]
        sizes = list(sizes)
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                                 f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    #: scikit-learn's parameter validation; the activation and solver choices come from
    #: fastbp's registry, so a newly registered activation or optimizer is accepted here
    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_activations()))],
        "solver": [StrOptions(set(_solvers()))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(_SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [None, StrOptions({"float32", "float64"}),
                  Options(type, {np.float32, np.float64})],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "clip_norm": [None, Interval(Real, 0, None, closed="neither")],
    }

    def _check_params(self):
        self._validate_params()
        self._hidden_sizes()

    #: scikit-learn's parameter -> the optimizer classes' keyword (where a class takes it)
    _OPTIMIZER_KEYWORDS = {"learning_rate_init": "learning_rate", "momentum": "momentum",
                           "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
                           "tol": "gtol", "max_fun": "maxfun"}

    def _make_optimizer(self):
        """The registered optimizer named by ``solver``, given the estimator's parameters
        that its constructor takes (scikit-learn's names mapped to fastbp's)."""
        cls = OPTIMIZERS.get(self.solver).cls
        accepted = set(cls._param_names())
        kwargs = {dst: getattr(self, src) for src, dst in self._OPTIMIZER_KEYWORDS.items()
                  if dst in accepted}
        if "nesterov" in accepted:
            kwargs["nesterov"] = bool(self.nesterovs_momentum and self.momentum > 0)
        if "learning_rate" in kwargs:
            kwargs["learning_rate"] = float(kwargs["learning_rate"])
        return cls(**kwargs)

    # --- training ----------------------------------------------------------------------------
    def _validate_targets(self, y, first):
        raise NotImplementedError

    def _network_for(self, n_features, n_outputs, dtype):
        out, loss = self._output_layer()
        return Network([n_features] + self._hidden_sizes() + [n_outputs],
                       hidden_activation=self.activation, output=out, loss=loss,
                       dtype=dtype, seed=0, **self._loss_options())

    def _loss_options(self):
        return {}

    def _init_weights(self, net, rng):
        """scikit-learn's initialization: per layer, weights then biases uniform in
        +-sqrt(factor / (fan_in + fan_out)), factor 2 for logistic hidden layers and 6
        otherwise, drawn from ``rng`` (a RandomState from ``random_state``) in scikit-learn's
        order: the same ``random_state`` gives scikit-learn's initial weights."""
        factor = 2.0 if ACTIVATIONS.get(self.activation).name == "logistic" else 6.0
        for W, b in zip(net.weights, net.biases):
            fan_in, fan_out = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[:] = rng.uniform(-bound, bound, (fan_in, fan_out))
            b[:] = rng.uniform(-bound, bound, fan_out)

    def _sample_weight(self, X, y, sample_weight, incremental):
        return sample_weight

    def _schedule_for(self, continuing, monitor):
        """The learning-rate schedule: kept across ``partial_fit`` calls and warm starts, so
        that invscaling and adaptive continue where they stopped (as scikit-learn's
        ``partial_fit`` does)."""
        kind = self.learning_rate if self.solver == "sgd" else "constant"
        if not np.isfinite(self.n_iter_no_change) and kind == "adaptive":
            kind = "constant"  # no plateau is ever detected: the rate stays
        key = (kind, self.power_t, self.n_iter_no_change, float(self.tol), monitor)
        old = getattr(self, "_schedule", None)
        if continuing and old is not None and getattr(self, "_schedule_key", None) == key:
            return old
        if kind == "invscaling":
            schedule = InvScaling(self.power_t)
        elif kind == "adaptive":
            schedule = ReduceOnPlateau(factor=0.2, patience=self.n_iter_no_change,
                                       min_delta=float(self.tol), min_lr=1e-6, monitor=monitor)
        else:
            schedule = Schedule()
        self._schedule, self._schedule_key = schedule, key
        return schedule

    def _fit(self, X, y, sample_weight, incremental):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        continuing = (incremental or self.warm_start) and hasattr(self, "network_")
        X, y = validate_data(self, X, y, reset=not continuing, multi_output=True,
                             dtype=(np.float64, np.float32), accept_sparse=["csr", "csc"],
                             y_numeric=isinstance(self, RegressorMixin))
        Y = self._validate_targets(y, first=not continuing, incremental=incremental)
        sample_weight = self._sample_weight(X, y, sample_weight, incremental)
        n = X.shape[0]
        if not continuing:
            # scikit-learn's random_state: one RandomState draws the initial weights (as
            # scikit-learn's do), then the seeds of shuffling and validation splits
            self._rng = check_random_state(self.random_state)
            dtype = X.dtype if self.dtype is None else np.dtype(self.dtype)
            self.network_ = self._network_for(X.shape[1], Y.shape[1], dtype)
            self._init_weights(self.network_, self._rng)
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self._schedule = None
        elif not hasattr(self, "_rng"):
            self._rng = check_random_state(self.random_state)
        net = self.network_
        if Y.shape[1] != net.n_outputs:
            raise ValueError(f"y has {Y.shape[1]} outputs but the fitted network has "
                             f"{net.n_outputs}")
        X = X.astype(net.dtype, copy=False)  # a warm start keeps the network's dtype
        Y = np.ascontiguousarray(Y, dtype=net.dtype)
        stochastic = not _full_batch(self.solver)
        lbfgs = self.solver == "lbfgs"
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            batch = int(self.batch_size)
            if batch > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
                batch = n
        opt = self._make_optimizer()
        early = bool(self.early_stopping) and stochastic
        stops = np.isfinite(self.n_iter_no_change)  # n_iter_no_change=inf: never stop
        monitor = "val_score" if early else "loss"
        options = dict(min_delta=float(self.tol), restore_best=early, monitor=monitor)
        schedule = self._schedule_for(continuing, monitor)
        if isinstance(schedule, ReduceOnPlateau):
            options["early_stopping"] = False  # the schedule stops at its floor
        else:
            # scikit-learn stops when the monitored value has not improved by tol for more
            # than n_iter_no_change epochs in a row
            options["early_stopping"] = stochastic and not incremental and stops
            options["patience"] = self.n_iter_no_change + 1 if stops else 1
        keeper = _BestWeights()
        if early:
            options["validation_fraction"] = float(self.validation_fraction)
            options["callbacks"] = [keeper]
        epochs = 1 if incremental else int(self.max_iter)
        seed = int(self._rng.randint(np.iinfo(np.int32).max))
        diverged = False
        try:
            history = train(net, X, Y, epochs=epochs, batch_size=batch, optimizer=opt,
                            seed=seed, shuffle=bool(self.shuffle),
                            sample_weight=sample_weight, alpha=float(self.alpha),
                            clip_norm=self.clip_norm,
                            dropout=self.dropout if stochastic else 0.0, schedule=schedule,
                            verbose=bool(self.verbose), warm_start=continuing, **options)
        except DivergenceError as e:
            if not early:  # scikit-learn's error (a ValueError), with fastbp's diagnosis
                raise DivergenceError(
                    f"Solver produced non-finite parameter weights. The input data may "
                    f"contain large values and need to be preprocessed. ({e})",
                    epoch=e.epoch, history=e.history) from e
            # scikit-learn: with early stopping the fit ends with the best weights and a
            # NaN validation score for the epoch that diverged
            history, diverged = e.history, True
            keeper.restore(net)
        if lbfgs:
            result = history.optimizer_result
            self.n_iter_ = int(min(result.nit, self.max_iter))
            self.loss_ = float(result.fun)
            self.loss_curve_.extend(history.loss)
        else:
            self.n_iter_ = history.epochs + diverged  # scikit-learn: the latest call's
            self.loss_curve_.extend(history.loss + [np.nan] * diverged)
            self.loss_ = self.loss_curve_[-1]
        self.t_ += self.n_iter_ * n
        if early:
            self.validation_scores_ = (self.validation_scores_ or []) + list(
                history.val_score) + [np.nan] * diverged
            self.validation_loss_curve_ = (self.validation_loss_curve_ or []) + list(
                history.val_loss) + [np.nan] * diverged
            finite = [v for v in self.validation_scores_ if np.isfinite(v)]
            self.best_validation_score_ = max(finite) if finite else -np.inf
            self.best_loss_ = None
        elif history.loss:
            self.best_loss_ = min(self.best_loss_ if self.best_loss_ is not None else np.inf,
                                  min(history.loss))
        if lbfgs and result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={result.status}):\n{result.message}\n\nIncrease the "
                          f"number of iterations to improve the convergence (max_iter="
                          f"{self.max_iter}).", ConvergenceWarning, stacklevel=3)
        if not incremental and history.stop_reason == "max_epochs" and stochastic \
                and not diverged:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=3)
        return self

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y (``sample_weight``: each batch's loss
        is the weighted mean, as in scikit-learn)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if _full_batch(self.solver):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # --- fitted attributes -------------------------------------------------------------------
    @property
    def coefs_(self):
        """Weight matrices (n_in, n_out): views into ``network_.params``.  Assigning a list
        of arrays of the same shapes writes them into the parameters."""
        check_is_fitted(self, "network_")
        return self.network_.weights

    @coefs_.setter
    def coefs_(self, value):
        self._assign("coefs_", value, self.network_.weights if hasattr(self, "network_")
                     else None)

    @property
    def intercepts_(self):
        """Bias vectors: views into ``network_.params``; assignable as ``coefs_``."""
        check_is_fitted(self, "network_")
        return self.network_.biases

    @intercepts_.setter
    def intercepts_(self, value):
        self._assign("intercepts_", value, self.network_.biases if hasattr(self, "network_")
                     else None)

    @staticmethod
    def _assign(name, value, targets):
        """Write a list of arrays into the network's views (shapes and finiteness checked
        first, so a bad assignment changes nothing)."""
        if targets is None:
            raise AttributeError(f"{name} can be assigned only after fit: it is written into "
                                 f"the network's parameter vector (network_.params)")
        try:
            arrays = [np.asarray(v, dtype=np.float64) for v in value]
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a list of {len(targets)} numeric arrays") from None
        want = [t.shape for t in targets]
        if [a.shape for a in arrays] != want:
            raise ValueError(f"{name} must be arrays of shapes {want}, got "
                             f"{[a.shape for a in arrays]}")
        if not all(np.isfinite(a).all() for a in arrays):
            raise ValueError(f"{name} contains NaN or infinity")
        for t, a in zip(targets, arrays):
            t[...] = a

    @property
    def n_outputs_(self):
        check_is_fitted(self, "network_")
        return self.network_.n_outputs

    @property
    def n_layers_(self):
        check_is_fitted(self, "network_")
        return len(self.network_.sizes)

    @property
    def out_activation_(self):
        check_is_fitted(self, "network_")
        return self.network_.output_activation

    def hidden_activations(self, X, layer=-1):
        """The outputs of hidden layer ``layer`` (0-based; -1, the default, is the last) for
        every row of X: the learned features, e.g. for another model.  Shape (n_samples,
        hidden_layer_sizes[layer])."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32),
                          accept_sparse=["csr", "csc"])
        return self.network_.hidden_activations(X, layer)

    def _forward(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32),
                          accept_sparse=["csr", "csc"])
        return self.network_.predict_proba(X)

    # --- persistence -------------------------------------------------------------------------
    _FITTED = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
               "validation_loss_curve_", "best_validation_score_", "n_features_in_")

    def to_onnx(self, path=None, opset=None):
        """The fitted model as ONNX (outputs as skl2onnx's converters of scikit-learn's MLP:
        ``label`` and ``probabilities``, or ``variable``), saved to ``path`` when given; see
        :mod:`fastbp.formats.onnx`.  Needs ``pip install fastbp[onnx]``."""
        from .formats.onnx import estimator_to_onnx
        return estimator_to_onnx(self, path, opset=opset)

    def _fitted_state(self):
        state = {k: _to_json(getattr(self, k)) for k in self._FITTED if hasattr(self, k)}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(v) for v in self.feature_names_in_]
        return state

    def save(self, path):
        """Write the fitted estimator to a fastbp model file (see :mod:`fastbp.io`); read it
        back with :func:`fastbp.load` or ``type(self).load``."""
        check_is_fitted(self, "network_")
        return save_network(self.network_, path, kind=type(self).__name__,
                            estimator={"params": _to_json(self._saved_params()),
                                       "fitted": self._fitted_state()})

    def _saved_params(self):
        """get_params() for a model file: a class_weight dict becomes [label, weight] pairs
        (JSON object keys are strings, labels need not be)."""
        params = self.get_params()
        cw = params.get("class_weight")
        if isinstance(cw, dict):
            params["class_weight"] = {"pairs": [[k.item() if isinstance(k, np.generic) else k,
                                                 float(v)] for k, v in cw.items()]}
        return params

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`."""
        header, net = read_network(path)
        if header["kind"] != cls.__name__:
            _fail(path, f"holds a {header['kind']}, not a {cls.__name__}")
        return cls._from_file(net, header.get("estimator"), path)

    @classmethod
    def _from_file(cls, net, info, path):
        if not isinstance(info, dict) or not isinstance(info.get("params"), dict):
            _fail(path, "no estimator parameters in the header")
        params = _from_json(dict(info["params"]))
        cw = params.get("class_weight")
        if isinstance(cw, dict) and set(cw) == {"pairs"}:  # see _saved_params
            try:
                params["class_weight"] = {(k if isinstance(k, (str, int, float)) else None): v
                                          for k, v in cw["pairs"]}
            except (TypeError, ValueError):
                _fail(path, "invalid class_weight")
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        try:
            est = cls(**params)
            est._check_params()
        except (TypeError, ValueError) as e:
            _fail(path, f"invalid estimator parameters ({e})")
        fitted = info.get("fitted") or {}
        for k in cls._FITTED:
            if k in fitted:
                setattr(est, k, _from_json(fitted[k]))
        if "feature_names_in_" in fitted:
            est.feature_names_in_ = np.array(fitted["feature_names_in_"], dtype=object)
        if getattr(est, "n_features_in_", net.n_inputs) != net.n_inputs:
            _fail(path, "n_features_in_ does not match the network")
        est.n_features_in_ = net.n_inputs
        est.network_ = net
        est._restore(fitted, path)
        return est

    def _restore(self, fitted, path):
        pass


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (binary, multi-class and multi-label), trained with
    fastbp's kernels; parameters as ``sklearn.neural_network.MLPClassifier`` plus ``dtype``,
    ``dropout``, ``clip_norm``, ``class_weight`` and every registered optimizer as a
    solver.

    ``class_weight``: None, a dict {label: weight} or "balanced" (n_samples / (n_classes *
    np.bincount(y)), scikit-learn's ``compute_class_weight``); each sample's class weight
    multiplies its ``sample_weight``.  Not for multi-label targets; "balanced" not in
    ``partial_fit`` (the class frequencies of all the data are unknown there).
    """

    _parameter_constraints = {**_BaseMLP._parameter_constraints,
                              "class_weight": [None, dict, StrOptions({"balanced"})]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, clip_norm=None, class_weight=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            dropout=dropout, clip_norm=clip_norm)
        self.class_weight = class_weight

    def _sample_weight(self, X, y, sample_weight, incremental):
        """``sample_weight`` times each sample's class weight (scikit-learn's rule)."""
        cw = self.class_weight
        if cw is None:
            return sample_weight
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multi-label targets; give "
                             "sample_weight")
        if incremental and isinstance(cw, str):
            raise ValueError("class_weight='balanced' is not supported for partial_fit: the "
                             "class frequencies of all the data are unknown. Pass a dict, "
                             "e.g. from sklearn.utils.class_weight.compute_class_weight on "
                             "all labels.")
        y = np.asarray(y)
        if isinstance(cw, str):
            present = unique_labels(y)
            weights = np.ones(len(self.classes_))
            weights[np.searchsorted(self.classes_, present)] = compute_class_weight(
                cw, classes=present, y=y)
        else:
            weights = compute_class_weight(cw, classes=self.classes_, y=y)
        w = weights[np.searchsorted(self.classes_, y)]
        if sample_weight is not None:
            w = w * _check_sample_weight(sample_weight, X, dtype=np.float64)
        return w

    def _output_layer(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "cross_entropy"
        return "logistic", "binary_cross_entropy"

    def _validate_targets(self, y, first, incremental=False):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        from_classes = first and hasattr(self, "_partial_classes")
        if first and not from_classes:
            self._label_binarizer = LabelBinarizer().fit(y)
        elif type_of_target(y) == "multilabel-indicator" != self._label_binarizer.y_type_:
            raise ValueError("y is multi-label, but the model was fitted on another kind of "
                             "target")
        if not first and self.warm_start \
                and self._label_binarizer.y_type_ != "multilabel-indicator":
            # scikit-learn's rule, for fit and partial_fit alike
            classes = unique_labels(y)
            if set(classes) != set(self.classes_):  # scikit-learn's rule and message
                raise ValueError(f"warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {classes}")
        if first:
            self.classes_ = self._label_binarizer.classes_
        if not first or from_classes:  # labels fixed beforehand: y may only use them
            unseen = np.setdiff1d(np.unique(y) if np.ndim(y) == 1 else [], self.classes_)
            if unseen.size:
                where = ("passed to partial_fit as classes" if from_classes else
                         "seen in the first fit")
                raise ValueError(f"y contains classes not {where}: {unseen.tolist()}; "
                                 f"known classes are {self.classes_.tolist()}")
        return self._label_binarizer.transform(y)

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y).  ``classes`` (all labels that will ever appear) is required
        on the first call."""
        if not hasattr(self, "network_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y) == "multilabel-indicator":
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(np.asarray(classes))
            self._partial_classes = True
            try:
                return self._fit(X, y, sample_weight, incremental=True)
            finally:
                del self._partial_classes
        elif classes is not None and not np.array_equal(np.sort(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} is not the same as on the first call "
                             f"to partial_fit: {self.classes_.tolist()}")
        return self._fit(X, y, sample_weight, incremental=True)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        P = self._forward(X)
        if P.shape[1] == 1 and self._label_binarizer.y_type_ == "binary":
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels (an indicator matrix for multi-label targets)."""
        P = self._forward(X)
        if self._label_binarizer.y_type_ == "multiclass":
            return self.classes_[P.argmax(axis=1)]
        return self._label_binarizer.inverse_transform((P > 0.5).astype(np.int64))

    def _fitted_state(self):
        state = super()._fitted_state()
        lb = self._label_binarizer
        state["classes"] = {"values": self.classes_.tolist(), "dtype": self.classes_.dtype.str,
                            "y_type": lb.y_type_}
        return state

    def _restore(self, fitted, path):
        info = fitted.get("classes")
        if not isinstance(info, dict):
            _fail(path, "no class labels in the header")
        try:
            dtype = np.dtype(info["dtype"])
            if dtype.kind == "O" or dtype.kind not in "biufU":
                dtype = None
            classes = np.array(info["values"], dtype=dtype)
        except (TypeError, ValueError, KeyError) as e:
            _fail(path, f"invalid class labels ({e})")
        lb = LabelBinarizer()
        if info.get("y_type") == "multilabel-indicator":
            lb.fit(np.eye(len(classes), dtype=int)[:max(2, len(classes))])
        else:
            lb.fit(classes)
        if not np.array_equal(lb.classes_, classes) or lb.y_type_ != info.get("y_type"):
            _fail(path, "class labels do not match the label type")
        expected = 1 if lb.y_type_ == "binary" else len(classes)
        if expected != self.network_.n_outputs:
            _fail(path, f"{len(classes)} classes do not fit {self.network_.n_outputs} outputs")
        self._label_binarizer = lb
        self.classes_ = lb.classes_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (one or several outputs), trained with fastbp's
    kernels; parameters as ``sklearn.neural_network.MLPRegressor`` plus ``dtype``,
    ``dropout``, ``clip_norm`` and every registered optimizer as a solver.

    ``loss``: every regression loss of the registry: ``squared_error``, ``poisson`` (exp
    output, the log link, half the Poisson deviance: scikit-learn's ``loss="poisson"``),
    ``absolute_error`` and ``huber`` (threshold ``huber_epsilon``; scikit-learn's
    ``epsilon`` is Adam's, as here).
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(LOSSES.names(regression=True)))],
        "huber_epsilon": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, clip_norm=None, loss="squared_error",
                 huber_epsilon=1.0):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            dropout=dropout, clip_norm=clip_norm)
        self.loss = loss
        self.huber_epsilon = huber_epsilon

    def _output_layer(self):
        entry = LOSSES.get(self.loss)
        return entry.output or "identity", entry.name

    def _loss_options(self):
        if LOSSES.get(self.loss).param is None:
            return {}
        return {"huber_epsilon": float(self.huber_epsilon)}

    def _validate_targets(self, y, first, incremental=False):
        y = np.asarray(y)
        if first:
            self._y_ndim = y.ndim
        return y.reshape(len(y), -1)

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        P = self._forward(X)
        return P[:, 0] if P.shape[1] == 1 else P

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags


def register_skl2onnx():
    """Register MLPClassifier and MLPRegressor with skl2onnx, so that ``skl2onnx.to_onnx``
    converts pipelines that end in them (see :mod:`fastbp.formats.onnx`)."""
    from .formats.onnx import register_skl2onnx as register
    register()
