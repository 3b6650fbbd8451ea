"""The dense forward pass: z = W a + b, then the activation, layer after layer.

Layout (see :mod:`fastbp.layout`): each layer's weights are stored unit by unit, the
``N_IN`` incoming weights of output unit j contiguous at ``W_OFF + j * N_IN`` (FANN's
order), followed by the ``N_OUT`` biases at ``B_OFF``.  So a unit's pre-activation is a
contiguous dot product, which vectorizes with the sum held in registers.

Activations live in one flat buffer ``acts``: for a batch of ``rows`` rows, layer l's block
is ``acts[rows*A_OFF : rows*(A_OFF + N_OUT)]``, row-major.  Inputs come as a flat array
``x`` and the offset ``xo`` of the batch's first row, so online training can point at a row
of the data set without copying it.

Small products use the hand-written loops below; products of at least ``BLAS_MIN_MACS``
multiply-adds (and more than one row) go to BLAS through ``np.dot`` on 2-D views.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import U, activate
from .codes import A_OFF, ACT, B_OFF, N_IN, N_OUT, W_OFF
from .rng import uniform

#: multiply-adds (rows * n_in * n_out) from which a layer's products go to BLAS; below it the
#: hand-written loops, which avoid BLAS's call and packing overhead, are as fast or faster
#: (measured on one OpenBLAS thread, float32: 4x64x32 0.7 us both; 8x64x32 loops 1.5 us,
#: BLAS 1.0 us; 16x64x32 1.8 vs 1.3 us).  One row never goes to BLAS.
BLAS_MIN_MACS = 1 << 13


@njit(**JIT)
def use_blas(rows, n_in, n_out):
    return rows > 1 and rows * n_in * n_out >= BLAS_MIN_MACS


@njit(**JIT)
def rows_view(buf, off, rows, n):
    """``buf[off:off+rows*n]`` as a (rows, n) matrix (a view)."""
    return buf[off:off + rows * n].reshape((rows, n))


@njit(**JIT)
def layer_matrix(flat, spec, l):
    """Layer ``l``'s weights as the (N_OUT, N_IN) matrix stored in ``flat`` (a view); its
    transpose is the (N_IN, N_OUT) matrix ``W`` of ``z = a @ W + b``."""
    return rows_view(flat, spec[l, W_OFF], spec[l, N_OUT], spec[l, N_IN])


@njit(**JIT)
def dense_loops(x, xo, params, w0, b0, n_in, n_out, z, zo, rows):
    """z = W a + b for each row, as dot products (two units per sweep over the inputs)."""
    zero = params.dtype.type(0)
    nin = U(n_in)
    for r in range(rows):
        xr = U(xo + r * n_in)
        zr = U(zo + r * n_out)
        j = 0
        while j + 2 <= n_out:
            w = U(w0 + j * n_in)
            s0 = zero
            s1 = zero
            for i in range(n_in):
                k = U(i)
                ai = x[xr + k]
                s0 += params[w + k] * ai
                s1 += params[w + nin + k] * ai
            z[zr + U(j)] = s0 + params[U(b0 + j)]
            z[zr + U(j + 1)] = s1 + params[U(b0 + j + 1)]
            j += 2
        if j < n_out:
            w = U(w0 + j * n_in)
            s0 = zero
            for i in range(n_in):
                k = U(i)
                s0 += params[w + k] * x[xr + k]
            z[zr + U(j)] = s0 + params[U(b0 + j)]


@njit(**JIT)
def dense_blas(x, xo, params, w0, b0, n_in, n_out, z, zo, rows):
    """z = a @ W + b for a block of rows through BLAS."""
    np.dot(rows_view(x, xo, rows, n_in), rows_view(params, w0, n_out, n_in).T,
           rows_view(z, zo, rows, n_out))
    b = U(b0)
    for r in range(rows):
        zr = U(zo + r * n_out)
        for j in range(n_out):
            z[zr + U(j)] += params[b + U(j)]


@njit(**JIT)
def dense(x, xo, params, spec, l, z, rows):
    """Layer ``l``'s pre-activations for ``rows`` rows of input at ``x[xo:]``, into its block
    of ``z``; BLAS or loops by size."""
    n_in = spec[l, N_IN]
    n_out = spec[l, N_OUT]
    if use_blas(rows, n_in, n_out):
        dense_blas(x, xo, params, spec[l, W_OFF], spec[l, B_OFF], n_in, n_out, z,
                   rows * spec[l, A_OFF], rows)
    else:
        dense_loops(x, xo, params, spec[l, W_OFF], spec[l, B_OFF], n_in, n_out, z,
                    rows * spec[l, A_OFF], rows)


@njit(**JIT)
def apply_dropout(a, ao, m, count, rate, rng):
    """Inverted dropout on ``a[ao:ao+count]``: zero each entry with probability ``rate``,
    scale the rest by 1/(1-rate); the factors go to ``m`` (same offsets) for the backward
    pass."""
    keep = 1.0 - rate
    scale = a.dtype.type(1.0 / keep)
    zero = a.dtype.type(0)
    o = U(ao)
    for k in range(count):
        f = scale if uniform(rng) < keep else zero
        m[o + U(k)] = f
        a[o + U(k)] *= f


@njit(**JIT)
def forward(x, xo, params, spec, acts, rows, activate_output, dropout, masks, rng):
    """Forward pass of ``rows`` rows starting at ``x[xo]`` through every layer.

    Leaves each hidden layer's activations in ``acts``; the output layer's block holds the
    output activations when ``activate_output`` is true and the logits (pre-activations)
    otherwise, which is what the fused loss (:func:`losses.output_delta`) wants.
    ``dropout[l]`` > 0 applies inverted dropout to hidden layer l's output, drawing from
    ``rng`` and recording the factors in ``masks`` (same layout as ``acts``); pass an empty
    ``dropout`` to disable it.
    """
    n_layers = spec.shape[0]
    use_dropout = dropout.shape[0] > 0
    for l in range(n_layers):
        if l == 0:
            dense(x, xo, params, spec, 0, acts, rows)
        else:
            dense(acts, rows * spec[l - 1, A_OFF], params, spec, l, acts, rows)
        zo = rows * spec[l, A_OFF]
        count = rows * spec[l, N_OUT]
        if l < n_layers - 1:
            activate(acts, zo, count, spec[l, N_OUT], spec[l, ACT])
            if use_dropout and dropout[l] > 0.0:
                apply_dropout(acts, zo, masks, count, dropout[l], rng)
        elif activate_output:
            activate(acts, zo, count, spec[l, N_OUT], spec[l, ACT])
