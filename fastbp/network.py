"""The network: a layout, one flat parameter vector, and the calls that run the kernels."""
import numpy as np

from ._validation import (check_dtype, check_sample_weight, check_targets, check_X, choice,
                          per_hidden_layer)
from .kernels import codes
from .kernels.training import evaluate, loss_and_gradient, predict_into
from ._threads import blas_threads_for
from .layout import Layout

#: which loss each output activation gets when ``loss`` is not given
DEFAULT_LOSS = {codes.SOFTMAX: "cross_entropy", codes.LOGISTIC: "binary_cross_entropy"}

#: rows per chunk when a whole data set goes through the kernels (evaluation, full batch)
CHUNK_ROWS = 1024
#: rows per chunk of the prediction kernel (kernels.training.predict_into)
PREDICT_CHUNK = 256


def _init_bound(code, fan_in, fan_out):
    """Half-width of the uniform initial weights: He for (leaky) relu, Glorot otherwise."""
    if code in (codes.RELU, codes.LEAKY_RELU):
        return np.sqrt(6.0 / fan_in)
    return np.sqrt(6.0 / (fan_in + fan_out))


class Workspace:
    """The buffers a kernel call needs for batches of up to ``rows`` rows."""

    def __init__(self, layout, rows, dtype, dropout=False, n_inputs=None, n_outputs=None):
        self.rows = rows
        self.acts = np.empty(rows * layout.activation_width, dtype=dtype)
        self.tmp = np.empty(rows * layout.hidden_width, dtype=dtype)
        self.masks = np.empty(self.acts.shape if dropout else 0, dtype=dtype)
        if n_inputs is not None:
            self.xbuf = np.empty((rows, n_inputs), dtype=dtype)
            self.ybuf = np.empty((rows, n_outputs), dtype=dtype)
            self.wbuf = np.empty(rows, dtype=dtype)


class Network:
    """A dense feed-forward network whose parameters live in one flat vector.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first: ``[64, 32, 10]`` is 64 inputs, one hidden layer of 32,
        10 outputs.
    hidden_activation : str or sequence of str
        ``identity``, ``logistic`` (alias ``sigmoid``), ``tanh``, ``relu`` or ``leaky_relu``;
        one name for every hidden layer or one per hidden layer.
    output : str
        The output layer's activation: any of the above or ``softmax``.
    loss : str, optional
        ``squared_error``, ``binary_cross_entropy`` (logistic output) or ``cross_entropy``
        (softmax output).  Default: cross_entropy for softmax, binary_cross_entropy for
        logistic, squared_error otherwise.
    dtype : float32 or float64
        Precision of the parameters and of every computation; inputs are converted to it.
    seed : int, optional
        Seed of the initial weights (uniform Glorot, He for relu layers; zero biases).
    """

    def __init__(self, layer_sizes, hidden_activation="relu", output="softmax", loss=None,
                 dtype=np.float32, seed=None):
        sizes = self._check_sizes(layer_sizes)
        hidden = per_hidden_layer(hidden_activation, len(sizes) - 2, "hidden_activation")
        act_codes = [choice(a, codes.ACTIVATIONS, "activation") for a in hidden]
        if codes.SOFTMAX in act_codes:
            raise ValueError("softmax can only be the output activation, not a hidden one")
        out_code = choice(output, codes.ACTIVATIONS, "output activation")
        act_codes.append(out_code)
        if loss is None:
            loss = DEFAULT_LOSS.get(out_code, "squared_error")
        loss_code = choice(loss, codes.LOSSES, "loss")
        if loss_code == codes.CROSS_ENTROPY and out_code != codes.SOFTMAX:
            raise ValueError("cross_entropy needs a softmax output; use binary_cross_entropy "
                             "with a logistic output or squared_error")
        if loss_code == codes.BINARY_CROSS_ENTROPY and out_code != codes.LOGISTIC:
            raise ValueError("binary_cross_entropy needs a logistic output")
        if out_code == codes.SOFTMAX and loss_code != codes.CROSS_ENTROPY:
            raise ValueError("a softmax output is trained with cross_entropy only")
        if out_code == codes.SOFTMAX and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units")
        self.dtype = check_dtype(dtype)
        self.layout = Layout(sizes, act_codes)
        # looked up on every prediction: kept as plain attributes
        self._spec, self._n_in, self._n_out = self.layout.spec, sizes[0], sizes[-1]
        self.loss_code = loss_code
        self._params = np.zeros(self.layout.n_params, dtype=self.dtype)
        self._weights = self.layout.weights(self._params)
        self._biases = self.layout.biases(self._params)
        #: the optimizer of the last ``fit`` (its state survives for ``warm_start``)
        self.optimizer = None
        #: the :class:`History` of the last ``fit``
        self.history = None
        #: free-form JSON-serializable facts saved with the model (e.g. class names)
        self.metadata = {}
        self.init_params(seed)

    @staticmethod
    def _check_sizes(layer_sizes):
        try:
            sizes = list(layer_sizes)
        except TypeError:
            raise TypeError("layer_sizes must be a sequence of ints such as [64, 32, 10]") \
                from None
        if len(sizes) < 2:
            raise ValueError("layer_sizes needs at least an input and an output size")
        for s in sizes:
            if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
                raise TypeError(f"layer sizes must be integers, got {s!r}")
            if s < 1:
                raise ValueError(f"layer sizes must be >= 1, got {s}")
        return [int(s) for s in sizes]

    # --- parameters ------------------------------------------------------------------------
    def init_params(self, seed=None):
        """(Re)draw the initial weights from ``seed``; biases start at zero."""
        rng = np.random.default_rng(seed)
        self._params[:] = 0
        for l, W in enumerate(self._weights):
            n_in, n_out = W.shape
            bound = _init_bound(self.layout.activation_codes[l], n_in, n_out)
            W[:] = rng.uniform(-bound, bound, size=W.shape)
        self.optimizer = None

    @property
    def params(self):
        """The flat parameter vector; ``weights`` and ``biases`` are views into it."""
        return self._params

    @params.setter
    def params(self, value):
        value = np.asarray(value)
        if value.shape != self._params.shape:
            raise ValueError(f"params must have shape {self._params.shape}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError("params contains NaN or infinity")
        self._params[:] = value

    @property
    def weights(self):
        """The (n_in, n_out) weight matrices: views into ``params``."""
        return list(self._weights)

    @property
    def biases(self):
        """The bias vectors: views into ``params``."""
        return list(self._biases)

    @property
    def sizes(self):
        return self.layout.sizes

    @property
    def n_params(self):
        return self.layout.n_params

    @property
    def n_inputs(self):
        return self.layout.sizes[0]

    @property
    def n_outputs(self):
        return self.layout.sizes[-1]

    @property
    def activations(self):
        """Activation names per layer (hidden layers, then the output)."""
        return [codes.ACTIVATION_NAMES[c] for c in self.layout.activation_codes]

    @property
    def output_activation(self):
        return self.activations[-1]

    @property
    def loss(self):
        return codes.LOSS_NAMES[self.loss_code]

    @property
    def is_classifier(self):
        """True for softmax and logistic outputs: ``predict`` returns labels."""
        return self.layout.activation_codes[-1] in (codes.SOFTMAX, codes.LOGISTIC)

    def copy(self):
        """An independent copy (parameters and optimizer state)."""
        import copy
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        new = Network.__new__(Network)
        new.__dict__.update(self.__dict__)
        new._params = self._params.copy()
        new._weights = new.layout.weights(new._params)
        new._biases = new.layout.biases(new._params)
        import copy
        new.optimizer = copy.deepcopy(self.optimizer, memo)
        new.history = copy.deepcopy(self.history, memo)
        new.metadata = copy.deepcopy(self.metadata, memo)
        return new

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_weights"], state["_biases"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._weights = self.layout.weights(self._params)
        self._biases = self.layout.biases(self._params)

    def __repr__(self):
        hidden = self.activations[:-1]
        h = hidden[0] if len(set(hidden)) == 1 else hidden
        return (f"Network({list(self.sizes)}, hidden_activation={h!r}, "
                f"output={self.output_activation!r}, loss={self.loss!r}, "
                f"dtype={self.dtype.name})")

    # --- input handling --------------------------------------------------------------------
    def _check_X(self, X, finite=True):
        return check_X(X, self.n_inputs, self.dtype, finite=finite)

    def _check_data(self, X, y, sample_weight=None):
        X = self._check_X(X)
        Y = check_targets(y, X.shape[0], self.n_outputs, self.loss_code, self.dtype)
        sw = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, sw

    # --- computation -----------------------------------------------------------------------
    def predict_proba(self, X):
        """Output activations for every row of X: class probabilities for softmax and logistic
        outputs, the network's outputs otherwise.  Shape (n_samples, n_outputs)."""
        # fast path first (this is the per-call latency of online prediction): an array that
        # already has the right dtype, shape and layout goes straight to the kernel, which
        # checks for NaN/inf itself
        dtype = self.dtype
        if not (type(X) is np.ndarray and X.dtype is dtype and X.ndim == 2
                and X.shape[1] == self._n_in and X.shape[0] > 0 and X.flags.c_contiguous):
            X = self._check_X(X, finite=False)
        n = X.shape[0]
        out = np.empty((n, self._n_out), dtype=dtype)
        if n == 1:  # one row never uses BLAS: no thread policy needed
            ok = predict_into(X, self._params, self._spec, out)
        else:
            with blas_threads_for(self.layout, min(n, PREDICT_CHUNK)):
                ok = predict_into(X, self._params, self._spec, out)
        if not ok:
            raise ValueError("X contains NaN or infinity")
        return out

    def predict(self, X):
        """Class labels (0..n_outputs-1) for a softmax output; 0/1 for a logistic output (a
        vector for one output, a matrix for several: multi-label); outputs otherwise."""
        P = self.predict_proba(X)
        code = self.layout.activation_codes[-1]
        if code == codes.SOFTMAX:
            return P.argmax(axis=1)
        if code == codes.LOGISTIC:
            labels = (P > 0.5).astype(np.int64)
            return labels[:, 0] if labels.shape[1] == 1 else labels
        return P

    def gradient(self, X, y, sample_weight=None, alpha=0.0):
        """Mean loss over (X, y) and its gradient, a new flat vector in the layout of ``params``.

        ``alpha`` adds scikit-learn's L2 penalty alpha/2 * sum(W**2) / n_samples.
        """
        X, Y, sw = self._check_data(X, y, sample_weight)
        grad = np.empty_like(self._params)
        loss = self._loss_and_gradient(X, Y, sw, grad, alpha)
        return loss, grad

    def _loss_and_gradient(self, X, Y, sw, grad, alpha=0.0, ws=None, spare=None):
        """Kernel call on checked data; ``ws``/``spare`` let a training loop reuse buffers."""
        if ws is None:
            ws = Workspace(self.layout, min(X.shape[0], CHUNK_ROWS), self.dtype)
        if spare is None:
            spare = grad if X.shape[0] <= ws.rows else np.empty_like(grad)
        with blas_threads_for(self.layout, ws.rows):
            return loss_and_gradient(X, Y, sw, self._params, grad, spare, self.layout.spec,
                                     self.loss_code, float(alpha), ws.acts, ws.tmp, ws.rows)

    def evaluate(self, X, y, sample_weight=None):
        """Mean loss over (X, y), without any penalty."""
        X, Y, sw = self._check_data(X, y, sample_weight)
        return self._evaluate(X, Y, sw)[0]

    def _evaluate(self, X, Y, sw):
        """(mean loss, output activations) of checked data."""
        rows = min(X.shape[0], CHUNK_ROWS)
        acts = np.empty(rows * self.layout.activation_width, dtype=self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        with blas_threads_for(self.layout, rows):
            loss = evaluate(X, Y, sw, self._params, self.layout.spec, self.loss_code, out,
                            acts)
        return loss, out

    def save(self, path):
        """Write the network (and its optimizer state) to ``path`` as a fastbp model file
        (a validated ``.npz``, written atomically; see :mod:`fastbp.io`)."""
        from .io import save_network
        return save_network(self, path)

    def fit(self, X, y, epochs=10, batch_size=32, learning_rate=None, optimizer="sgd",
            seed=None, **options):
        """Train on (X, y); returns the :class:`~fastbp.training.History`.

        ``y``: integer class labels (one-hot encoded here) or a float target matrix.  See
        :func:`fastbp.training.fit` for every option (validation, early stopping, schedules,
        regularization, callbacks, progress).
        """
        from .training import fit
        return fit(self, X, y, epochs=epochs, batch_size=batch_size,
                   learning_rate=learning_rate, optimizer=optimizer, seed=seed, **options)
