"""Where each layer's weights and biases live in the flat parameter vector.

The vector holds, layer after layer, the weights unit by unit -- the n_in incoming weights of
output unit 0, then those of unit 1, ... (FANN's order) -- and then the n_out biases.  In
matrix terms that is W^T, the (n_out, n_in) matrix, row-major, so ``net.weights[l]``, the
(n_in, n_out) matrix of ``z = a @ W + b``, is a transposed view.  The gradient and every
optimizer slot use the same layout, so one loop updates all parameters.
"""
import numpy as np

from .kernels import codes


class Layout:
    """Offsets and shapes of a dense network's parameters in one flat vector.

    ``spec`` is the (n_layers, 6) int64 table the kernels read (columns ``codes.N_IN`` ...
    ``codes.A_OFF``); everything else here is derived from it for Python callers.
    """

    def __init__(self, sizes, activation_codes):
        sizes = [int(s) for s in sizes]
        n_layers = len(sizes) - 1
        if len(activation_codes) != n_layers:
            raise ValueError("need one activation per layer")
        spec = np.zeros((n_layers, codes.SPEC_COLUMNS), dtype=np.int64)
        offset = 0
        a_off = 0
        for l in range(n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            spec[l, codes.N_IN] = n_in
            spec[l, codes.N_OUT] = n_out
            spec[l, codes.W_OFF] = offset
            offset += n_in * n_out
            spec[l, codes.B_OFF] = offset
            offset += n_out
            spec[l, codes.ACT] = activation_codes[l]
            spec[l, codes.A_OFF] = a_off
            a_off += n_out
        spec.setflags(write=False)
        self.spec = spec
        self.sizes = tuple(sizes)
        self.n_params = offset
        #: units per row of the activation buffer (all layers but the input)
        self.activation_width = a_off
        #: widest hidden layer: the backward pass's scratch row width
        self.hidden_width = max(sizes[1:-1], default=1)

    @property
    def n_layers(self):
        return self.spec.shape[0]

    @property
    def activation_codes(self):
        return tuple(int(c) for c in self.spec[:, codes.ACT])

    def weight_slice(self, l):
        start = int(self.spec[l, codes.W_OFF])
        return slice(start, start + self.sizes[l] * self.sizes[l + 1])

    def bias_slice(self, l):
        start = int(self.spec[l, codes.B_OFF])
        return slice(start, start + self.sizes[l + 1])

    def weights(self, flat):
        """Views of ``flat`` as the list of (n_in, n_out) weight matrices (each the transpose
        of the stored unit-by-unit (n_out, n_in) block)."""
        return [flat[self.weight_slice(l)].reshape(self.sizes[l + 1], self.sizes[l]).T
                for l in range(self.n_layers)]

    def biases(self, flat):
        """Views of ``flat`` as the list of bias vectors."""
        return [flat[self.bias_slice(l)] for l in range(self.n_layers)]

    def __eq__(self, other):
        return isinstance(other, Layout) and np.array_equal(self.spec, other.spec)

    def __repr__(self):
        names = [codes.ACTIVATION_NAMES[c] for c in self.activation_codes]
        return f"Layout(sizes={list(self.sizes)}, activations={names}, n_params={self.n_params})"
