"""The buffers a kernel call needs, sized once per ``fit`` (nothing allocates per batch)."""
import numpy as np


class Workspace:
    """Buffers for batches of up to ``rows`` rows of a network with ``layout``: activations
    (``acts``), the backward pass's scratch row (``tmp``), pre-activations (``pre``, only when
    some activation needs them), normalization statistics (``stats``), dropout factors
    (``masks``, only with dropout) and, with ``n_inputs``, gathered batches
    (``xbuf``/``ybuf``/``wbuf``).

    For a recurrent network ``rows`` counts sequences of ``steps`` steps: the dense rows after
    the recurrent ones see ``rows * steps`` rows when the network outputs every step, and the
    recurrent rows' states, gates and gathered batches live in ``scratch`` (see
    :mod:`fastbp.kernels.sequence`)."""

    def __init__(self, layout, rows, dtype, dropout=False, n_inputs=None, n_outputs=None,
                 steps=None):
        self.rows = rows
        tail = rows
        if layout.recurrent:
            from .kernels.sequence import scratch_size, tail_rows
            tail = int(tail_rows(layout.spec, rows, steps))
            self.scratch = np.empty(int(scratch_size(layout.spec, rows, steps)), dtype=dtype)
            n_inputs = None  # batches are gathered into the scratch vector
        self.acts = np.empty(tail * layout.activation_width, dtype=dtype)
        self.tmp = np.empty(tail * layout.hidden_width, dtype=dtype)
        self.pre = np.empty(self.acts.shape if layout.needs_pre else 0, dtype=dtype)
        self.stats = np.empty(max(tail * layout.stats_width, 1), dtype=dtype)
        self.masks = np.empty(self.acts.shape if dropout else 0, dtype=dtype)
        n_inputs = n_inputs or 0
        n_outputs = n_outputs or 0
        self.xbuf = np.empty((rows if n_inputs else 0, n_inputs), dtype=dtype)
        self.ybuf = np.empty((rows if n_inputs else 0, n_outputs), dtype=dtype)
        self.wbuf = np.empty(rows if n_inputs else 0, dtype=dtype)
