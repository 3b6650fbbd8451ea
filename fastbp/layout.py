"""Where each layer's parameters live in the flat parameter vector, and the layer table the
kernels read.

A network is a list of layers (:mod:`fastbp.layers`); each becomes one or two *rows* of the
int64 layer table ``spec`` (columns in :mod:`fastbp.kernels.codes`): a dense row, followed by
a normalization row when the layer is normalized.  Every row computes its operation and then
its activation (a dense row followed by a normalization has the identity).

The parameter vector holds, row after row, a dense row's weights unit by unit -- the n_in
incoming weights of output unit 0, then those of unit 1, ... (FANN's order, and
``torch.nn.Linear.weight``'s) -- and then its n_out biases; a normalization row's n scales and
then n shifts.  ``net.weights[l]``, the (n_in, n_out) matrix of ``z = a @ W + b``, is a
transposed view.  The gradient and every optimizer slot use the same layout, so one loop
updates all parameters.  Non-trainable state (batch norm's running mean, then running
variance) lives in a second flat vector, ``buffers``, with its own offsets.
"""
import numpy as np

from ._config import BLAS_THREADS_MIN_MACS, BLAS_THREADS_MIN_STEP_MACS, MAX_PARAMS
from .kernels import codes
from .registry import ACTIVATIONS, LAYER_KINDS

#: per-row units of the workspace's ``stats`` buffer each normalization kind needs, as a
#: function of its units n (see kernels/layers/norm.py)
_STATS_WIDTH = {codes.BATCH_NORM: lambda n: 2 * n, codes.LAYER_NORM: lambda n: 2}


def _bits(x):
    return int(np.float64(x).view(np.int64))


class Layout:
    """Offsets and shapes of a network's parameters in one flat vector.

    ``spec`` is the (n_rows, SPEC_COLUMNS) int64 table the kernels read; everything else
    here is derived from it for Python callers.  ``layer_rows[i]`` lists the table rows of
    user layer i.
    """

    def __setstate__(self, state):
        # an unpickled table comes back writable; the kernels are compiled for the read-only
        # one (a writable table would be another specialization: seconds of compilation)
        self.__dict__.update(state)
        self.spec.setflags(write=False)

    def __init__(self, n_inputs, layers, loss_param=0.0):
        rows = []  # (kind, n_in, n_out, act, eps, momentum, dirs, cell act, seq)
        layer_rows = []
        n_in = n_inputs
        for layer in layers:
            mine = [len(rows)]
            kind = LAYER_KINDS.get(getattr(layer, "kind", "dense"))
            if kind.recurrent:
                rows.append((kind.code, n_in, layer.width, codes.IDENTITY, 0.0, 0.0,
                             layer.directions, ACTIVATIONS.code(layer.activation),
                             int(layer.return_sequences)))
                layer_rows.append(tuple(mine))
                n_in = layer.width
                continue
            act = ACTIVATIONS.code(layer.activation)
            if layer.norm_kind is None:
                rows.append((codes.DENSE, n_in, layer.units, act, 0.0, 0.0))
            else:
                rows.append((codes.DENSE, n_in, layer.units, codes.IDENTITY, 0.0, 0.0))
                mine.append(len(rows))
                rows.append((LAYER_KINDS.code(layer.norm_kind), layer.units, layer.units, act,
                             layer.eps, layer.momentum))
            layer_rows.append(tuple(mine))
            n_in = layer.units
        rows = [r if len(r) == 9 else r + (0, 0, 0) for r in rows]
        n_params = sum(self._row_params(r) for r in rows)
        if n_params > MAX_PARAMS:  # before any vector is sized from it
            raise ValueError(f"the network would have {n_params} parameters, more than the "
                             f"{MAX_PARAMS} fastbp allows (fastbp._config.MAX_PARAMS)")
        spec = np.zeros((len(rows), codes.SPEC_COLUMNS), dtype=np.int64)
        offset = a_off = s_off = t_off = 0
        for l, (kind, n_in, n_out, act, eps, momentum, dirs, cell, seq) in enumerate(rows):
            spec[l, codes.KIND] = kind
            spec[l, codes.N_IN] = n_in
            spec[l, codes.N_OUT] = n_out
            spec[l, codes.W_OFF] = offset
            if LAYER_KINDS.by_code(kind).recurrent:
                offset += self._row_params(rows[l])
                spec[l, codes.B_OFF] = offset
                spec[l, codes.ACT] = act
                spec[l, codes.DIRS] = dirs
                spec[l, codes.CELL_ACT] = cell
                spec[l, codes.SEQ] = seq
                continue
            offset += n_in * n_out if kind == codes.DENSE else n_out
            spec[l, codes.B_OFF] = offset
            offset += n_out
            spec[l, codes.ACT] = act
            spec[l, codes.A_OFF] = a_off
            a_off += n_out
            if kind != codes.DENSE:
                spec[l, codes.T_OFF] = t_off
                t_off += _STATS_WIDTH[kind](n_out)
                spec[l, codes.EPS] = _bits(eps)
                spec[l, codes.MOMENTUM] = _bits(momentum)
                if LAYER_KINDS.by_code(kind).running_stats:
                    spec[l, codes.S_OFF] = s_off
                    s_off += 2 * n_out
        # the loss's parameter (huber's epsilon) rides in the output layer's dense row
        spec[layer_rows[-1][0], codes.EPS] = _bits(loss_param)
        spec.setflags(write=False)
        self.spec = spec
        self.layer_rows = tuple(layer_rows)
        self.n_inputs = int(n_inputs)
        #: units per user layer, input first (outputs per step for a recurrent layer)
        self.sizes = (int(n_inputs),) + tuple(int(spec[r[-1], codes.N_OUT])
                                              for r in layer_rows)
        #: number of leading recurrent rows (0: a dense network, data rows are samples)
        self.n_recurrent = sum(1 for r in rows if LAYER_KINDS.by_code(r[0]).recurrent)
        self.recurrent = self.n_recurrent > 0
        self.n_params = offset
        #: length of the non-trainable buffer vector (running statistics)
        self.n_buffers = s_off
        #: units per batch row of the activation buffer (all rows but the input)
        self.activation_width = a_off
        #: units per batch row of the normalization statistics
        self.stats_width = t_off
        #: widest input of a row after the first: the backward pass's scratch row width
        self.hidden_width = max([int(spec[l, codes.N_IN]) for l in range(1, len(rows))],
                                default=1)
        #: whether some activation's derivative needs the pre-activations kept
        self.needs_pre = any(ACTIVATIONS.by_code(r[3]).needs_pre for r in rows[:-1])
        #: whether a batch-norm row is present (batch statistics need whole batches)
        self.has_batch_norm = any(r[0] == codes.BATCH_NORM for r in rows)
        #: multiply-adds per row of the biggest dense product (asked before every kernel call)
        self._largest = max(r[1] * r[2] if r[0] == codes.DENSE else self._row_params(r)
                            for r in rows
                            if r[0] == codes.DENSE or LAYER_KINDS.by_code(r[0]).recurrent)
        #: multiply-adds per batch row of the biggest recurrent per-step product (h W_hh^T)
        self._largest_step = max((self._row_step(r) for r in rows
                                  if LAYER_KINDS.by_code(r[0]).recurrent), default=0)

    @staticmethod
    def _row_step(row):
        kind, n_in, n_out, *_, dirs = row[:7]
        H = n_out // dirs
        return LAYER_KINDS.by_code(kind).gates * H * H

    @staticmethod
    def _row_params(row):
        kind, n_in, n_out, *_, dirs = row[:7]
        if LAYER_KINDS.by_code(kind).recurrent:
            H = n_out // dirs
            return dirs * LAYER_KINDS.by_code(kind).gates * H * (n_in + H + 2)
        return n_in * n_out + n_out if kind == codes.DENSE else 2 * n_out

    # --- rows -------------------------------------------------------------------------------
    @property
    def n_rows(self):
        return self.spec.shape[0]

    @property
    def n_layers(self):
        """Number of user layers (hidden and output)."""
        return len(self.layer_rows)

    def kind(self, row):
        return int(self.spec[row, codes.KIND])

    def n_in(self, row):
        return int(self.spec[row, codes.N_IN])

    def n_out(self, row):
        return int(self.spec[row, codes.N_OUT])

    @property
    def dense_rows(self):
        """The dense rows (``weights``/``biases`` list them; recurrent rows are not there)."""
        return [l for l in range(self.n_rows) if self.kind(l) == codes.DENSE]

    @property
    def activation_codes(self):
        """The activation code of each user layer (its last row's)."""
        return tuple(int(self.spec[rows[-1], codes.ACT]) for rows in self.layer_rows)

    def largest_product(self, rows):
        """Multiply-adds of the biggest dense (rows x n_in x n_out) product of one batch."""
        return rows * self._largest

    def uses_all_blas_threads(self, rows):
        """Whether batches of ``rows`` rows have products big enough to run on every BLAS
        thread: a dense product from ``BLAS_THREADS_MIN_MACS`` multiply-adds, or a recurrent
        per-step product from ``BLAS_THREADS_MIN_STEP_MACS`` (see :mod:`fastbp._threads`)."""
        return (self.largest_product(rows) >= BLAS_THREADS_MIN_MACS
                or rows * self._largest_step >= BLAS_THREADS_MIN_STEP_MACS)

    # --- slices and views -----------------------------------------------------------------
    def weight_slice(self, row):
        start = int(self.spec[row, codes.W_OFF])
        return slice(start, int(self.spec[row, codes.B_OFF]))

    def bias_slice(self, row):
        start = int(self.spec[row, codes.B_OFF])
        return slice(start, start + self.n_out(row))

    def buffer_slice(self, row):
        """Running mean and variance of a batch-norm row in the buffer vector, or None."""
        if not LAYER_KINDS.by_code(self.kind(row)).running_stats:
            return None
        start = int(self.spec[row, codes.S_OFF])
        return slice(start, start + 2 * self.n_out(row))

    def weights(self, flat):
        """Views of ``flat`` as the list of (n_in, n_out) matrices of the dense rows (each
        the transpose of the stored unit-by-unit (n_out, n_in) block)."""
        return [flat[self.weight_slice(l)].reshape(self.n_out(l), self.n_in(l)).T
                for l in self.dense_rows]

    def biases(self, flat):
        """Views of ``flat`` as the list of the dense rows' bias vectors."""
        return [flat[self.bias_slice(l)] for l in self.dense_rows]

    def initialize(self, params, buffers, rng):
        """Initial values, each row kind its own: a dense row's weights uniform Glorot (He
        when its layer's activation is a rectifier: the registry's ``init`` trait), drawn
        layer by layer from ``rng``, and zero biases; a normalization row's scales 1 and
        shifts 0; running means 0 and variances 1."""
        params[:] = 0
        buffers[:] = 0  # running means of a trained network must not survive
        for rows in self.layer_rows:
            d = rows[0]
            n_in, n_out = self.n_in(d), self.n_out(d)
            if LAYER_KINDS.by_code(self.kind(d)).recurrent:  # PyTorch's U(-1/sqrt(H), 1/sqrt(H))
                bound = 1.0 / np.sqrt(n_out // int(self.spec[d, codes.DIRS]))
                block = params[int(self.spec[d, codes.W_OFF]):int(self.spec[d, codes.B_OFF])]
                block[:] = rng.uniform(-bound, bound, size=block.shape)
                continue
            init = ACTIVATIONS.by_code(int(self.spec[rows[-1], codes.ACT])).init
            bound = np.sqrt(6.0 / n_in) if init == "he" else np.sqrt(6.0 / (n_in + n_out))
            w = params[self.weight_slice(d)].reshape(n_out, n_in).T
            w[:] = rng.uniform(-bound, bound, size=w.shape)
            for r in rows[1:]:
                params[self.weight_slice(r)] = 1
                s = self.buffer_slice(r)
                if s is not None:
                    buffers[s][self.n_out(r):] = 1

    def row_rates(self, per_hidden_layer):
        """Per-row dropout rates from one rate per hidden user layer (on its last row)."""
        rates = np.zeros(self.n_rows)
        for rows, rate in zip(self.layer_rows[:-1], per_hidden_layer):
            rates[rows[-1]] = rate
        return rates

    def __eq__(self, other):
        return isinstance(other, Layout) and np.array_equal(self.spec, other.spec)

    def __repr__(self):
        names = [ACTIVATIONS.name_of(c) for c in self.activation_codes]
        return (f"Layout(sizes={list(self.sizes)}, activations={names}, "
                f"n_params={self.n_params})")
