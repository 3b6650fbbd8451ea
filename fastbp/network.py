"""The network: a list of layers, one flat parameter vector, and the calls that run the
kernels."""
import copy

import numpy as np

from ._config import CHUNK_ROWS, PREDICT_CHUNK
from ._threads import blas_threads_for
from ._validation import (check_dtype, check_number, check_sample_weight, check_targets,
                          check_X, per_hidden_layer, read_only)
from .kernels import codes
from .kernels.epoch import (evaluate, finish_gradient, gradient_sums, predict_into,
                            predict_into_buffered)
from .layers import Dense, Recurrent, from_config
from .layout import Layout
from .registry import ACTIVATIONS, LOSSES, OPTIMIZERS, default_loss
from .sparse import SparseRows
from .sequences import check_bptt, pack_inputs, pack_targets, valid_mask
from .training import fit as _fit
from .workspace import Workspace

_NO_ORDER = np.empty(0, dtype=np.int64)


class Network:
    """A feed-forward network whose parameters live in one flat vector.

    Parameters
    ----------
    layer_sizes : sequence
        The number of inputs, then one entry per layer: an int (a dense layer of that many
        units) or a layer object such as :class:`fastbp.Dense`.  ``[64, 32, 10]`` is 64
        inputs, one hidden layer of 32, 10 outputs.
    hidden_activation : str or sequence of str
        Activation of the hidden layers that do not name their own: one name for all, or one
        per hidden layer.  Any of ``fastbp.registry.ACTIVATIONS`` but softmax: identity,
        logistic (sigmoid), tanh, relu, leaky_relu, elu, softplus, silu, gelu.
    output : str
        The output layer's activation (unless the last layer object names one): any of the
        above or softmax.
    loss : str, optional
        ``squared_error``, ``binary_cross_entropy`` (logistic output), ``cross_entropy``
        (softmax output), ``poisson`` (exp output: the log link), ``absolute_error`` or
        ``huber``.  Default: cross_entropy for softmax, binary_cross_entropy for logistic,
        poisson for exp, squared_error otherwise.
    dtype : float32 or float64
        Precision of the parameters and of every computation; inputs are converted to it.
    seed : int, optional
        Seed of the initial weights (uniform Glorot, He for rectifiers; zero biases; unit
        scales and zero shifts for normalizations).
    normalization : None, "batch" or "layer"
        Normalize every hidden layer given as an int (see :class:`fastbp.Dense`).
    huber_epsilon : float, optional
        The huber loss's threshold: residuals beyond it are penalized linearly (default 1.0,
        PyTorch's ``HuberLoss(delta=1.0)``).  Only for ``loss="huber"``.
    """

    def __init__(self, layer_sizes, hidden_activation="relu", output="softmax", loss=None,
                 dtype=np.float32, seed=None, normalization=None, huber_epsilon=None):
        n_inputs, layers = self._resolve_layers(layer_sizes, hidden_activation, output,
                                                normalization)
        out = ACTIVATIONS.get(layers[-1].activation, label="output activation")
        if loss is None:
            loss = default_loss(out.name)
        loss_entry = LOSSES.get(loss)
        if loss_entry.output is not None and out.name != loss_entry.output:
            raise ValueError(f"{loss_entry.name} needs a {loss_entry.output} output, not "
                             f"{out.name}")
        if not out.hidden and loss_entry.output != out.name:  # softmax: not element-wise
            raise ValueError(f"a {out.name} output is trained with "
                             f"{[e.name for e in LOSSES if e.output == out.name]} only")
        if out.name == "softmax" and layers[-1].units < 2:
            raise ValueError("a softmax output needs at least 2 units")
        #: the loss's parameter (the registry's ``param`` trait), None for losses without one
        self.huber_epsilon = self._loss_param(loss_entry, huber_epsilon)
        self.dtype = check_dtype(dtype)
        self._layers = tuple(layers)
        self.layout = Layout(n_inputs, layers, self.huber_epsilon or 0.0)
        self._n_params_guard()
        # looked up on every prediction: kept as plain attributes
        self._spec, self._n_in, self._n_out = self.layout.spec, n_inputs, layers[-1].units
        self.loss_code = loss_entry.code
        self._params = np.zeros(self.layout.n_params, dtype=self.dtype)
        self._buffers = np.zeros(self.layout.n_buffers, dtype=self.dtype)
        self._has_buffers = self.layout.n_buffers > 0
        self._recurrent = self.layout.recurrent
        self._bind()
        #: the optimizer of the last ``fit`` (its state survives for ``warm_start``)
        self.optimizer = None
        #: the :class:`History` of the last ``fit``
        self.history = None
        #: free-form JSON-serializable facts saved with the model (e.g. class names)
        self.metadata = {}
        self.init_params(seed)

    @staticmethod
    def _resolve_layers(layer_sizes, hidden_activation, output, normalization):
        if isinstance(layer_sizes, (str, bytes)):
            raise TypeError("layer_sizes must be a sequence such as [64, 32, 10]")
        try:
            entries = list(layer_sizes)
        except TypeError:
            raise TypeError("layer_sizes must be a sequence such as [64, 32, 10] (ints or "
                            "layer objects)") from None
        if len(entries) < 2:
            raise ValueError("layer_sizes needs at least an input and an output layer")
        first = entries[0]
        if isinstance(first, (Dense, Recurrent)):
            raise TypeError("the first entry of layer_sizes is the number of inputs, an int")
        n_inputs = Dense(first).units if not isinstance(first, Dense) else None
        hidden = per_hidden_layer(hidden_activation, len(entries) - 2, "hidden_activation")
        layers = []
        for i, e in enumerate(entries[1:]):
            last = i == len(entries) - 2
            if isinstance(e, Recurrent):
                if last:
                    raise ValueError(f"a recurrent layer cannot be the output layer; add a "
                                     f"dense output layer after {e!r}")
                if layers and not isinstance(layers[-1], Recurrent):
                    raise ValueError(f"recurrent layers must come first (right after the "
                                     f"inputs), but {e!r} follows a dense layer")
                if layers and not layers[-1].return_sequences:
                    raise ValueError(f"{layers[-1]!r} feeds another recurrent layer, so it "
                                     f"must return sequences (return_sequences=True)")
                layers.append(e)
                continue
            if isinstance(e, Dense):
                layer = e
            elif isinstance(e, (bool, np.bool_)) or not isinstance(e, (int, np.integer)):
                raise TypeError(f"layer sizes must be integers or layer objects such as "
                                f"fastbp.Dense, got {e!r}")
            else:
                layer = Dense(e, normalization=None if last else normalization)
            act = output if last else hidden[i]
            entry = ACTIVATIONS.get(layer.activation or act,
                                    label="output activation" if last else "activation")
            if not last and not entry.hidden:
                raise ValueError(f"{entry.name} can only be the output activation, not a "
                                 f"hidden one")
            layers.append(layer.resolved(entry.name))
        if isinstance(layers[0], Recurrent) and any(
                l.normalization == "batch" for l in layers if isinstance(l, Dense)):
            raise ValueError("batch normalization is not available after recurrent layers "
                             "(its statistics would mix padded steps); use "
                             "normalization='layer'")
        return n_inputs, layers

    @staticmethod
    def _loss_param(entry, value):
        if entry.param is None:
            if value is not None:
                raise ValueError(f"huber_epsilon applies to the huber loss, not {entry.name}")
            return None
        name, default = entry.param
        return check_number(default if value is None else value, name, 0.0, low_open=True)

    def _n_params_guard(self):
        # a model whose vectors could not be allocated is a clear error, not a MemoryError
        if self.layout.n_params > 2 ** 34:
            raise ValueError(f"this network has {self.layout.n_params} parameters; more than "
                             f"2**34 is not supported")

    def _bind(self):
        self._weights = self.layout.weights(self._params)
        self._biases = self.layout.biases(self._params)

    # --- parameters ------------------------------------------------------------------------
    def init_params(self, seed=None):
        """(Re)draw the initial weights from ``seed``: uniform Glorot (He for rectifiers),
        zero biases, unit scales, zero shifts, running mean 0 and variance 1."""
        self.layout.initialize(self._params, self._buffers, np.random.default_rng(seed))
        self.optimizer = None

    @property
    def params(self):
        """The flat parameter vector; ``weights``, ``biases`` and the layers' parameters are
        views into it."""
        return self._params

    @params.setter
    def params(self, value):
        self._set_flat(self._params, value, "params")

    @property
    def buffers(self):
        """The flat vector of non-trainable state (batch norm's running statistics)."""
        return self._buffers

    @buffers.setter
    def buffers(self, value):
        self._set_flat(self._buffers, value, "buffers")

    @staticmethod
    def _set_flat(target, value, name):
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinity")
        target[:] = value

    @property
    def layers(self):
        """The layer objects, bound: their parameters are views into ``params``/``buffers``."""
        return [layer._bind(self, rows) for layer, rows in zip(self._layers,
                                                                self.layout.layer_rows)]

    @property
    def weights(self):
        """The (n_in, n_out) weight matrices of the dense layers: views into ``params``."""
        return list(self._weights)

    @property
    def biases(self):
        """The bias vectors of the dense layers: views into ``params``."""
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
        return [layer.activation for layer in self._layers]

    @property
    def output_activation(self):
        return self.activations[-1]

    @property
    def loss(self):
        return LOSSES.name_of(self.loss_code)

    @property
    def is_classifier(self):
        """True for softmax and logistic outputs: ``predict`` returns labels."""
        return self.layout.activation_codes[-1] in (codes.SOFTMAX, codes.LOGISTIC)

    def copy(self):
        """An independent copy (parameters, buffers and optimizer state)."""
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        new = Network.__new__(Network)
        new.__dict__.update(self.__dict__)
        new._params = self._params.copy()
        new._buffers = self._buffers.copy()
        new._bind()
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
        # a network owns writable vectors (unpickled from a read-only memory map, they are
        # not): the kernels write buffers and parameters
        for name in ("_params", "_buffers"):
            arr = getattr(self, name, None)
            if arr is not None and not arr.flags.writeable:
                setattr(self, name, np.array(arr))
        if getattr(self.optimizer, "state", None) is not None \
                and not self.optimizer.state.flags.writeable:
            self.optimizer.state = np.array(self.optimizer.state)
        self._bind()

    def __repr__(self):
        plain = all(type(l) is Dense and l.normalization is None for l in self._layers)
        if plain:
            hidden = self.activations[:-1]
            h = hidden[0] if len(set(hidden)) == 1 else hidden
            return (f"Network({list(self.sizes)}, hidden_activation={h!r}, "
                    f"output={self.output_activation!r}, loss={self.loss!r}, "
                    f"dtype={self.dtype.name})")
        return (f"Network([{self.n_inputs}, {', '.join(map(repr, self._layers))}], "
                f"loss={self.loss!r}, dtype={self.dtype.name})")

    # --- input handling --------------------------------------------------------------------
    def _check_X(self, X, finite=True):
        return check_X(X, self.n_inputs, self.dtype, finite=finite)

    @property
    def sequence_output(self):
        """True when the network outputs every step (its last recurrent layer returns
        sequences)."""
        return self._recurrent and bool(self._spec[self.layout.n_recurrent - 1, codes.SEQ])

    def _no_lengths(self, lengths, bptt_steps=None):
        if lengths is not None:
            raise ValueError("lengths is only for networks with recurrent layers")
        if bptt_steps is not None:
            raise ValueError("bptt_steps is only for networks with recurrent layers")

    def _check_sequences(self, X, y, sample_weight=None, allow_empty=False, lengths=None,
                         names=("X", "y", "lengths")):
        """Packed sequence data (see :mod:`fastbp.sequences`): (X rows, Y rows, weights)."""
        X, lens, steps = pack_inputs(X, self.n_inputs, self.dtype, lengths, names[0], names[2],
                                     allow_empty=allow_empty)
        Y = pack_targets(y, lens, steps, self.n_outputs, self.loss_code, self.dtype,
                         self.sequence_output, names[1], allow_empty=allow_empty)
        sw = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, sw

    def _check_data(self, X, y, sample_weight=None, allow_empty=False, lengths=None):
        if self._recurrent:
            return self._check_sequences(X, y, sample_weight, allow_empty, lengths)
        self._no_lengths(lengths)
        X = check_X(X, self.n_inputs, self.dtype, allow_empty=allow_empty)
        Y = check_targets(y, X.shape[0], self.n_outputs, self.loss_code, self.dtype,
                          allow_empty=allow_empty)
        sw = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, sw

    def _check_training_rows(self, rows, what="batch_size"):
        if rows < 2 and self.layout.has_batch_norm:
            raise ValueError(f"batch normalization needs batches of at least 2 rows "
                             f"({what} gives {rows}); use normalization='layer', which works "
                             f"on single samples (online training)")

    # --- computation -----------------------------------------------------------------------
    def predict_proba(self, X, lengths=None):
        """Output activations for every row of X: class probabilities for softmax and logistic
        outputs, the network's outputs otherwise.  Shape (n_samples, n_outputs).

        Recurrent networks take X of shape (n_samples, n_steps, n_features) and optional
        ``lengths``; a network that outputs every step returns (n_samples, n_steps,
        n_outputs), zeros past each sample's length."""
        if self._recurrent or lengths is not None:
            return self._predict_sequences(X, lengths)
        # fast path first (this is the per-call latency of online prediction): an array that
        # already has the right dtype, shape and layout goes straight to the kernel, which
        # checks for NaN/inf itself
        dtype = self.dtype
        if not (type(X) is np.ndarray and X.dtype is dtype and X.ndim == 2
                and X.shape[1] == self._n_in and X.shape[0] > 0 and X.flags.c_contiguous):
            X = self._check_X(X, finite=False)
            if isinstance(X, SparseRows):  # CSR input: the sparse first-layer kernel
                from .kernels import sparse as sparse_kernels
                out = np.empty((X.shape[0], self._n_out), dtype=dtype)
                with blas_threads_for(self.layout, min(X.shape[0], PREDICT_CHUNK)):
                    sparse_kernels.predict_into(X.indptr, X.indices, X.data, self._params,
                                                self._buffers, self._spec, out)
                return out
        n = X.shape[0]
        out = np.empty((n, self._n_out), dtype=dtype)
        if n == 1:  # one row never uses BLAS: no thread policy needed
            if self._has_buffers:
                ok = predict_into_buffered(X, self._params, self._buffers, self._spec, out)
            else:
                ok = predict_into(X, self._params, self._spec, out)
        else:
            with blas_threads_for(self.layout, min(n, PREDICT_CHUNK)):
                ok = self._predict_into(X, out)
        if not ok:
            raise ValueError("X contains NaN or infinity")
        return out

    def _predict_into(self, X, out):
        if self._has_buffers:
            return predict_into_buffered(X, self._params, self._buffers, self._spec, out)
        return predict_into(X, self._params, self._spec, out)

    def hidden_activations(self, X, layer=-1, lengths=None):
        """The outputs of hidden layer ``layer`` (0-based over the hidden layers; -1, the
        default, is the last) for every row of X, as prediction computes them (running
        statistics, no dropout): features for another model.  Shape (n_samples, units).

        Recurrent networks take ``lengths`` as ``predict_proba`` does.  A recurrent hidden
        layer gives (n_samples, directions * units) -- each sample's last valid step, the
        reverse direction's final state, as ``predict_proba`` -- or, when it returns
        sequences, (n_samples, n_steps, directions * units), zeros past each length; a
        dense layer after a sequence output gives (n_samples, n_steps, units)."""
        n_hidden = len(self._layers) - 1
        if n_hidden == 0:
            raise ValueError("this network has no hidden layer")
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {layer!r}")
        if not -n_hidden <= layer < n_hidden:
            raise ValueError(f"layer must be in {-n_hidden}..{n_hidden - 1} (this network "
                             f"has {n_hidden} hidden layers), got {layer}")
        sub = self._first_layers(int(layer) % n_hidden + 1)
        if not self._recurrent:
            self._no_lengths(lengths)
            return sub.predict_proba(X)
        return sub.predict_proba(X, lengths=lengths)

    def _first_layers(self, count):
        """A network of the first ``count`` layers sharing nothing with this one: its
        parameters and buffers are the prefixes of ours (the layout is row after row).  When
        the last of them is recurrent (it cannot be an output layer) an identity dense layer
        follows it, whose identity weights and zero biases pass its outputs through exactly
        (x * 1 plus exact zeros)."""
        layers = list(self._layers[:count])
        through = isinstance(layers[-1], Recurrent)
        if through:
            width = layers[-1].width
            layers.append(Dense(width, activation="identity"))
        sub = Network([self.n_inputs] + layers, dtype=self.dtype)
        n = sub.n_params - (width * width + width if through else 0)
        sub.params[:n] = self._params[:n]
        if through:
            sub.layers[-1].weight[:] = np.eye(width, dtype=self.dtype)
            sub.layers[-1].bias[:] = 0
        sub.buffers[:] = self._buffers[:sub.buffers.size]
        return sub

    def _predict_sequences(self, X, lengths):
        from .kernels import sequence as seqk
        if not self._recurrent:
            self._no_lengths(lengths)
        if (lengths is None and type(X) is np.ndarray and X.dtype is self.dtype
                and X.ndim == 3 and X.shape[2] == self._n_in and X.shape[0] > 0
                and X.shape[1] > 0):  # fast path: the kernel checks for NaN/inf itself
            n, steps = X.shape[:2]
            packed = np.empty((n, 1 + steps * self._n_in), dtype=self.dtype)
            packed[:, 0] = steps
            packed[:, 1:] = X.reshape(n, -1)
            X = packed
        else:
            X, lens, steps = pack_inputs(X, self.n_inputs, self.dtype, lengths)
        n = X.shape[0]
        cols = steps * self._n_out if self.sequence_output else self._n_out
        out = np.empty((n, cols), dtype=self.dtype)
        if n == 1:  # one sequence never uses BLAS: no thread policy needed
            ok = seqk.predict_into(X, self._params, self._buffers, self._spec, out)
        else:
            with blas_threads_for(self.layout, min(n, PREDICT_CHUNK)):
                ok = seqk.predict_into(X, self._params, self._buffers, self._spec, out)
        if not ok:
            raise ValueError("X contains NaN or infinity within the sequences' lengths")
        return out.reshape(n, steps, self._n_out) if self.sequence_output else out

    def predict(self, X, lengths=None):
        """Class labels (0..n_outputs-1) for a softmax output; 0/1 for a logistic output (a
        vector for one output, a matrix for several: multi-label); outputs otherwise.  For a
        network that outputs every step, per step: (n_samples, n_steps[, ...])."""
        P = self.predict_proba(X, lengths) if lengths is not None else self.predict_proba(X)
        code = self.layout.activation_codes[-1]
        if code == codes.SOFTMAX:
            return P.argmax(axis=-1)
        if code == codes.LOGISTIC:
            labels = (P > 0.5).astype(np.int64)
            return labels[..., 0] if labels.shape[-1] == 1 else labels
        return P

    def gradient(self, X, y, sample_weight=None, alpha=0.0, training=True, lengths=None,
                 bptt_steps=None):
        """Mean loss over (X, y) and its gradient, a new flat vector in the layout of ``params``.

        ``alpha`` adds scikit-learn's L2 penalty alpha/2 * sum(W**2) / n_samples.  With
        ``training`` (the default) normalization layers use the statistics of (X, y) as one
        batch, as ``fit`` does (the running statistics are not changed); with
        ``training=False`` they use the running statistics, as ``predict`` does.  Recurrent
        networks: ``lengths`` as in ``fit``, and ``bptt_steps`` for the truncated gradient.
        """
        alpha = check_number(alpha, "alpha", 0.0)
        bptt = check_bptt(bptt_steps)
        if not self._recurrent:
            self._no_lengths(lengths, bptt_steps)
        X, Y, sw = self._check_data(X, y, sample_weight, lengths=lengths)
        mode = codes.TRAIN_PURE if training else codes.EVAL
        if training:
            self._check_training_rows(X.shape[0], "X")
        grad = np.empty_like(self._params)
        ws = self._workspace(X.shape[0], mode, steps=self._steps(X))
        loss_sum, total_w = self._gradient_sums(X, Y, sw, grad, ws, mode, bptt=bptt)
        if not total_w > 0:
            raise ValueError("sample_weight sums to 0: the mean loss is undefined")
        return float(finish_gradient(self._params, grad, self._spec, loss_sum, total_w,
                                     alpha)), grad

    def _steps(self, X):
        """Steps of packed sequence rows (None for a dense network)."""
        return (X.shape[1] - 1) // self.n_inputs if self._recurrent else None

    def _chunk(self, n, steps):
        """Samples per chunk of a whole-data pass: CHUNK_ROWS rows (steps count as rows for
        sequences, at least 16 sequences' worth)."""
        if steps is None:
            return min(n, CHUNK_ROWS)
        return max(1, min(n, CHUNK_ROWS * 16 // steps))

    def _workspace(self, n, mode, steps=None, **kw):
        """A workspace for whole-data passes: chunks of CHUNK_ROWS rows, or all ``n`` rows
        at once when batch statistics are needed (they are over the whole batch)."""
        rows = n if (mode != codes.EVAL and self.layout.has_batch_norm) else \
            self._chunk(n, steps)
        return Workspace(self.layout, rows, self.dtype, steps=steps, **kw)

    def _gradient_sums(self, X, Y, sw, grad, ws, mode, order=_NO_ORDER, start=0, count=None,
                       spare=None, dropout=None, key=0, t=0, pos0=0, bptt=0):
        """Kernel call on checked data: unnormalized (loss sum, weight sum), gradient sum in
        ``grad`` (see :func:`fastbp.kernels.epoch.gradient_sums`)."""
        X, Y, sw = read_only(X), read_only(Y), read_only(sw)  # one specialization
        count = X.shape[0] if count is None else count
        if spare is None:
            spare = grad if count <= ws.rows else np.empty_like(grad)
        if dropout is None:
            dropout = self._params[:0]
        if isinstance(X, SparseRows):
            from .kernels import sparse as sparse_kernels
            with blas_threads_for(self.layout, ws.rows):
                return sparse_kernels.gradient_sums(
                    X.indptr, X.indices, X.data, Y, sw, order, start, count, self._params,
                    self._buffers, grad, spare, self._spec, self.loss_code, ws.acts, ws.pre,
                    ws.stats, ws.tmp, ws.rows, mode, dropout, ws.masks, np.uint64(key), t,
                    pos0, ws.ybuf, ws.wbuf)
        if self._recurrent:
            from .kernels import sequence as seqk
            with blas_threads_for(self.layout, ws.rows):
                return seqk.gradient_sums(X, Y, sw, order, start, count, self._params,
                                          self._buffers, grad, spare, self._spec,
                                          self.loss_code, ws.scratch, ws.acts, ws.pre,
                                          ws.stats, ws.tmp, ws.rows, mode, dropout, ws.masks,
                                          np.uint64(key), t, pos0, bptt)
        with blas_threads_for(self.layout, ws.rows):
            return gradient_sums(X, Y, sw, order, start, count, self._params, self._buffers,
                                 grad, spare, self._spec, self.loss_code, ws.acts, ws.pre,
                                 ws.stats, ws.tmp, ws.rows, mode, dropout, ws.masks,
                                 np.uint64(key), t, pos0, ws.xbuf, ws.ybuf, ws.wbuf)

    def evaluate(self, X, y, sample_weight=None, training=False, lengths=None):
        """Mean loss over (X, y), without any penalty; ``training``: as in :meth:`gradient`
        (default here: running statistics, as ``predict``).  For sequence outputs, the mean
        over the valid steps."""
        X, Y, sw = self._check_data(X, y, sample_weight, lengths=lengths)
        if training:
            self._check_training_rows(X.shape[0], "X")
            grad = np.empty_like(self._params)
            ws = self._workspace(X.shape[0], codes.TRAIN_PURE, steps=self._steps(X))
            loss_sum, total_w = self._gradient_sums(X, Y, sw, grad, ws, codes.TRAIN_PURE)
            return float(loss_sum / total_w)
        return self._evaluate(X, Y, sw)[0]

    def _valid_steps(self, X, P, Y, sw):
        """Outputs, targets and weights (n_valid, n_outputs) of the valid steps of packed
        sequence data (as they are for one output per sample)."""
        if not self.sequence_output:
            return P, Y, sw
        n, steps = X.shape[0], self._steps(X)
        valid = valid_mask(X[:, 0].astype(np.int64), steps)
        k = self._n_out
        P = P.reshape(n, steps, k)[valid]
        Y = Y.reshape(n, steps, k)[valid]
        if sw.size:
            sw = np.broadcast_to(sw[:, None], (n, steps))[valid]
        return P, Y, sw

    def _evaluate(self, X, Y, sw):
        """(mean loss, output activations) of checked data, running statistics."""
        X, Y, sw = read_only(X), read_only(Y), read_only(sw)  # one specialization
        if self._recurrent:
            from .kernels import sequence as seqk
            steps = self._steps(X)
            ws = self._workspace(X.shape[0], codes.EVAL, steps=steps)
            out = np.empty(Y.shape, dtype=self.dtype)
            with blas_threads_for(self.layout, ws.rows):
                total, total_w = seqk.evaluate(X, Y, sw, self._params, self._buffers,
                                               self._spec, self.loss_code, out, ws.scratch,
                                               ws.acts, ws.stats, ws.rows)
            return total / total_w, out
        rows = min(X.shape[0], CHUNK_ROWS)
        acts = np.empty(rows * self.layout.activation_width, dtype=self.dtype)
        stats = np.empty(max(rows * self.layout.stats_width, 1), dtype=self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        if isinstance(X, SparseRows):
            from .kernels import sparse as sparse_kernels
            with blas_threads_for(self.layout, rows):
                loss = sparse_kernels.evaluate(X.indptr, X.indices, X.data, Y, sw,
                                               self._params, self._buffers, self._spec,
                                               self.loss_code, out)
            return loss, out
        with blas_threads_for(self.layout, rows):
            loss = evaluate(X, Y, sw, self._params, self._buffers, self._spec, self.loss_code,
                            out, acts, stats)
        return loss, out

    def folded(self):
        """An equivalent network for prediction with every batch normalization folded into
        the dense layer before it (W' = W s, b' = (b - mean) s + shift, s = scale /
        sqrt(var + eps)): plain dense layers where there was batch norm, so it predicts as
        fast as a network without normalization.  Layer normalization, which depends on
        each sample, stays.  The copy has no optimizer state."""
        if self._recurrent:  # no batch normalization there: nothing to fold
            new = self.copy()
            new.optimizer = None
            new.history = None
            return new
        layers = [Dense(l.units, l.activation,
                        None if l.normalization == "batch" else l.normalization, l.eps,
                        l.momentum) for l in self._layers]
        new = Network([self.n_inputs] + layers, loss=self.loss, dtype=self.dtype,
                      huber_epsilon=self.huber_epsilon)
        for old, fresh in zip(self.layers, new.layers):
            W = old.weight.astype(np.float64)
            b = old.bias.astype(np.float64)
            if old.normalization == "batch":
                s = old.scale / np.sqrt(old.running_var.astype(np.float64) + old.eps)
                W = W * s[:, None]
                b = (b - old.running_mean) * s + old.shift
            elif old.normalization == "layer":
                fresh.scale[:] = old.scale
                fresh.shift[:] = old.shift
            fresh.weight[:] = W
            fresh.bias[:] = b
        new.metadata = copy.deepcopy(self.metadata)
        return new

    def save(self, path):
        """Write the network (and its optimizer state) to ``path`` as a fastbp model file
        (a validated ``.npz``, written atomically; see :mod:`fastbp.io`)."""
        from .io import save_network
        return save_network(self, path)

    # --- other formats (fastbp.formats; each imports its library only when called) ---------
    def to_onnx(self, path=None, opset=None, lengths=False):
        """An ONNX model (``onnx.ModelProto``) computing ``predict_proba`` (output ``Y``,
        input ``X``; float32 graph for a float32 network, double for float64), written to
        ``path`` when given.  Batch norms are folded.  Recurrent networks: ``lengths=True``
        adds an int32 input ``lengths`` (see :mod:`fastbp.formats.onnx`).  Needs
        ``pip install fastbp[onnx]``."""
        from .formats.onnx import network_to_onnx
        return network_to_onnx(self, path, opset=opset, lengths=lengths)

    def to_torch(self):
        """A ``torch.nn.Sequential`` (eval mode) with the same function (needs PyTorch; see
        :mod:`fastbp.formats.torch`; recurrent networks: a ``RecurrentSequential`` whose
        ``forward(x, lengths=None)`` takes lengths as ``predict_proba`` does)."""
        from .formats.torch import to_torch
        return to_torch(self)

    @classmethod
    def from_torch(cls, module, loss=None):
        """A network copied from a ``torch.nn.Sequential`` of ``Linear``, ``BatchNorm1d``/
        ``LayerNorm`` and activation modules, after leading ``RNN``/``GRU``/``LSTM`` modules or
        ``RecurrentBlock``s (see :mod:`fastbp.formats.torch`)."""
        from .formats.torch import from_torch
        return from_torch(module, loss=loss)

    def save_safetensors(self, path):
        """Write the parameters and buffers as a safetensors file with PyTorch's state_dict
        key names and fastbp's model header as metadata (see
        :mod:`fastbp.formats.safetensors`); ``fastbp.load_safetensors`` reads it back."""
        from .formats.safetensors import save_safetensors
        return save_safetensors(self, path)

    def save_fann(self, path, relu=False):
        """Write the network as a FANN ``.net`` file (FANN_FLO_2.1) that FANN's
        ``fann_create_from_file`` loads (see :mod:`fastbp.formats.fann_net`; ``relu=True``
        writes FANN master's ReLU codes, which FANN 2.2.0 lacks)."""
        from .formats.fann_net import save_fann
        return save_fann(self, path, relu=relu)

    def fit(self, X, y, epochs=10, batch_size=32, learning_rate=None, optimizer="sgd",
            seed=None, **options):
        """Train on (X, y); returns the :class:`~fastbp.training.History`.

        ``y``: integer class labels (one-hot encoded here) or a float target matrix.  See
        :func:`fastbp.training.fit` for every option (validation, early stopping, schedules,
        regularization, callbacks, progress).
        """
        return _fit(self, X, y, epochs=epochs, batch_size=batch_size,
                   learning_rate=learning_rate, optimizer=optimizer, seed=seed, **options)


# --- model files -------------------------------------------------------------------------
def _layers_from_header(header, path):
    """(n_inputs, layer objects) of a version 2 header, or of a version 1 one (dense layers
    from ``layer_sizes`` and ``activations``)."""
    from .io import _fail
    if header["version"] >= 2:
        layers = header.get("layers")
        n_inputs = header.get("n_inputs")
        if not isinstance(layers, list) or not layers:
            _fail(path, "header field 'layers' is missing or empty")
        if not isinstance(n_inputs, int) or isinstance(n_inputs, bool):
            _fail(path, "header field 'n_inputs' is missing or not an int")
        try:
            return n_inputs, [from_config(c) for c in layers]
        except (TypeError, ValueError) as e:
            _fail(path, f"invalid layer description ({e})")
    sizes = header["layer_sizes"]
    acts = header["activations"]
    if len(sizes) < 2 or len(acts) != len(sizes) - 1:
        _fail(path, f"{len(sizes)} layer sizes do not fit {len(acts)} activations")
    try:
        return sizes[0], [Dense(n, activation=a) for n, a in zip(sizes[1:], acts)]
    except (TypeError, ValueError) as e:
        _fail(path, f"invalid network description ({e})")


def network_from_header(header, params, state, buffers, path):
    """Rebuild a Network (with its buffers and optimizer state) from validated file
    contents."""
    from .io import _fail
    n_inputs, layers = _layers_from_header(header, path)
    try:
        net = Network([n_inputs] + layers, loss=header["loss"], dtype=header["dtype"],
                      huber_epsilon=header.get("huber_epsilon"))
    except (TypeError, ValueError) as e:
        _fail(path, f"invalid network description ({e})")
    if net.n_params != params.shape[0]:
        _fail(path, f"the layers need {net.n_params} parameters, the file has "
                    f"{params.shape[0]}")
    if net.buffers.size != buffers.shape[0]:
        _fail(path, f"the layers need {net.buffers.size} buffer values, the file has "
                    f"{buffers.shape[0]}")
    if header["layer_sizes"] != list(net.sizes) or header["activations"] != net.activations:
        _fail(path, "layer_sizes/activations do not describe the layers")
    net.params[:] = params
    net.buffers[:] = buffers
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        _fail(path, "metadata is not a JSON object")
    net.metadata = metadata
    opt = header.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or opt.get("name") not in OPTIMIZERS:
            _fail(path, f"unknown optimizer {opt!r}")
        try:
            optimizer = OPTIMIZERS.get(opt["name"]).cls(**opt.get("params", {}))
        except (TypeError, ValueError) as e:
            _fail(path, f"invalid optimizer parameters ({e})")
        expected = (optimizer.n_slots, params.shape[0]) if optimizer.n_slots else (1, 0)
        if state.shape != expected:
            _fail(path, f"optimizer {opt['name']} keeps {optimizer.n_slots} state slots, the "
                        f"file has state of shape {state.shape}")
        optimizer.state = np.array(state)
        optimizer.t = opt.get("t", 0)  # validated by read_model_file
        net.optimizer = optimizer
    return net


def read_network(path):
    """(header, network) of a model file."""
    from .io import read_model_file  # model files: imported when one is read
    header, params, state, buffers = read_model_file(path)
    return header, network_from_header(header, params, state, buffers, path)
