"""The dense layer: z = W a + b, and its backward pass.

Layout (see :mod:`fastbp.layout`): the weights are stored unit by unit, the ``N_IN``
incoming weights of output unit j contiguous at ``W_OFF + j * N_IN`` (FANN's order, and
``torch.nn.Linear.weight``'s), followed by the ``N_OUT`` biases at ``B_OFF``.  So a unit's
pre-activation is a contiguous dot product, which vectorizes with the sum held in registers.

Inputs come as a flat array ``x`` and the offset ``xo`` of the batch's first row, so online
training can point at a row of the data set without copying it.  Small products use the
hand-written loops below; products of at least ``BLAS_MIN_MACS`` multiply-adds (and more than
one row) go to BLAS (:func:`..blas.gemm`) on 2-D views.

Backward, with delta the (rows, N_OUT) dLoss/dz and a the (rows, N_IN) input:

    grad W = delta^T a    (stored unit by unit, like the weights)
    grad b = column sums of delta
    g      = delta W      (dLoss/da, for the layer before; only when there is one)

With ``lr > 0`` (plain SGD) the update is fused in: each weight moves by -lr * gradient the
moment its gradient is known, right after its old value has been used for g.  Online (one
row) that saves writing and re-reading the whole gradient vector per sample; for BLAS-sized
layers the step is part of the gradient product (a gemm with beta = 1), which saves the
gradient buffer and the update pass.
"""
from numba import njit

from ..._config import BLAS_MIN_MACS, JIT
from ..activations import U
from ..blas import gemm
from ..codes import A_OFF, B_OFF, N_IN, N_OUT, W_OFF


@njit(**JIT)
def use_blas(rows, n_in, n_out):
    return rows > 1 and rows * n_in * n_out >= BLAS_MIN_MACS


@njit(**JIT)
def rows_view(buf, off, rows, n):
    """``buf[off:off+rows*n]`` as a (rows, n) matrix (a view)."""
    return buf[off:off + rows * n].reshape((rows, n))


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
    gemm(1.0, rows_view(x, xo, rows, n_in), rows_view(params, w0, n_out, n_in).T, 0.0,
         rows_view(z, zo, rows, n_out))
    b = U(b0)
    for r in range(rows):
        zr = U(zo + r * n_out)
        for j in range(n_out):
            z[zr + U(j)] += params[b + U(j)]


@njit(**JIT)
def forward(x, xo, params, spec, l, z, rows):
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
def bias_gradient(d, do, rows, n, grad, b0):
    b = U(b0)
    o = U(do)
    for j in range(n):
        grad[b + U(j)] = d[o + U(j)]
    for r in range(1, rows):
        dr = U(do + r * n)
        for j in range(n):
            grad[b + U(j)] += d[dr + U(j)]


@njit(**JIT)
def layer_backward_loops(a, ao, d, do, params, grad, w0, b0, n_in, n_out, g, rows, need_g,
                         lr):
    """Gradient of one layer (and, with ``need_g``, g = delta W into ``g``) row by row;
    with ``lr > 0`` the plain SGD step instead of the gradient (see the module docstring)."""
    zero = params.dtype.type(0)
    if lr > 0:  # fused SGD, one row
        ar = U(ao)
        dr = U(do)
        b = U(b0)
        if need_g:
            for i in range(n_in):
                g[U(i)] = zero
        for j in range(n_out):
            dj = d[dr + U(j)]
            c = lr * dj
            params[b + U(j)] -= c
            w = U(w0 + j * n_in)
            if need_g:
                for i in range(n_in):
                    k = U(i)
                    wi = params[w + k]
                    g[k] += dj * wi
                    params[w + k] = wi - c * a[ar + k]
            else:
                for i in range(n_in):
                    k = U(i)
                    params[w + k] -= c * a[ar + k]
        return
    bias_gradient(d, do, rows, n_out, grad, b0)
    for r in range(rows):
        ar = U(ao + r * n_in)
        dr = U(do + r * n_out)
        gr = U(r * n_in)
        if need_g:
            for i in range(n_in):
                g[gr + U(i)] = zero
        for j in range(n_out):
            dj = d[dr + U(j)]
            w = U(w0 + j * n_in)
            if r == 0:
                for i in range(n_in):
                    grad[w + U(i)] = dj * a[ar + U(i)]
            else:
                for i in range(n_in):
                    grad[w + U(i)] += dj * a[ar + U(i)]
            if need_g:
                for i in range(n_in):
                    g[gr + U(i)] += dj * params[w + U(i)]


@njit(**JIT)
def backward(a, ao, params, grad, spec, l, acts, tmp, rows, lr):
    """Gradient of layer ``l`` from its delta (in ``acts``) and its input ``a[ao:]``; for
    l > 0 also delta W into ``tmp``.  BLAS or loops by size.  With ``lr > 0`` the plain SGD
    step is applied instead of writing the gradient: for BLAS layers as part of the product
    itself (W <- W - lr delta^T a, a gemm with beta = 1), after delta W has been taken from
    the old weights."""
    n_in = spec[l, N_IN]
    n_out = spec[l, N_OUT]
    w0 = spec[l, W_OFF]
    b0 = spec[l, B_OFF]
    do = rows * spec[l, A_OFF]
    if use_blas(rows, n_in, n_out):
        D = rows_view(acts, do, rows, n_out)
        W = rows_view(params, w0, n_out, n_in)
        if l > 0:
            gemm(1.0, D, W, 0.0, rows_view(tmp, 0, rows, n_in))
        if lr > 0:
            gemm(-lr, D.T, rows_view(a, ao, rows, n_in), 1.0, W)
            b = U(b0)
            for r in range(rows):
                dr = U(do + r * n_out)
                for j in range(n_out):
                    params[b + U(j)] -= lr * acts[dr + U(j)]
        else:
            bias_gradient(acts, do, rows, n_out, grad, b0)
            gemm(1.0, D.T, rows_view(a, ao, rows, n_in), 0.0, rows_view(grad, w0, n_out, n_in))
    else:
        layer_backward_loops(a, ao, acts, do, params, grad, w0, b0, n_in, n_out, tmp, rows,
                             l > 0, lr)
