"""The backward pass: delta propagation from the output layer to the first.

On entry the output layer's block of ``acts`` holds the output delta dLoss/dz (written by
:func:`losses.output_delta`).  For each layer l, from the last to the first, with delta_l
its (rows, N_OUT) delta and a_{l-1} its (rows, N_IN) input activations:

    grad W_l = delta_l^T a_{l-1}    (stored unit by unit, like the weights)
    grad b_l = column sums of delta_l
    delta_{l-1} = (delta_l W_l) * f'(a_{l-1})

delta_{l-1} overwrites a_{l-1}'s block once a_{l-1} is no longer needed, so the pass needs
one extra (rows, widest hidden layer) buffer ``tmp`` and nothing else.  The input layer gets
no delta.  The gradient is *written* into ``grad`` (not accumulated), in the parameter
layout.

With ``lr > 0`` (plain SGD) the update is fused in: each weight moves by -lr * gradient the
moment its gradient is known, right after its old value has been used for the delta, and
``grad`` is not touched.  Online (one row) that saves writing and re-reading the whole
gradient vector per sample; for BLAS-sized layers the step is part of the gradient product
(see :func:`layer_backward`), which saves the gradient buffer and the update pass.  Valid
when :func:`fused_update_possible`.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .activations import U, backprop_activation, undo_dropout
from .codes import A_OFF, ACT, B_OFF, N_IN, N_OUT, W_OFF
from .blas import gemm
from .forward import rows_view, use_blas


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
def layer_backward(a, ao, params, grad, spec, l, acts, tmp, rows, lr):
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
            np.dot(D, W, rows_view(tmp, 0, rows, n_in))
        if lr > 0:
            gemm(-lr, D.T, rows_view(a, ao, rows, n_in), 1.0, W)
            b = U(b0)
            for r in range(rows):
                dr = U(do + r * n_out)
                for j in range(n_out):
                    params[b + U(j)] -= lr * acts[dr + U(j)]
        else:
            bias_gradient(acts, do, rows, n_out, grad, b0)
            np.dot(D.T, rows_view(a, ao, rows, n_in), rows_view(grad, w0, n_out, n_in))
    else:
        layer_backward_loops(a, ao, acts, do, params, grad, w0, b0, n_in, n_out, tmp, rows,
                             l > 0, lr)


@njit(**JIT)
def fused_update_possible(spec, rows):
    """Whether a plain SGD step can be fused into the backward pass for batches of ``rows``:
    one row, or every layer on BLAS (the loops update row by row, right only for one row)."""
    if rows == 1:
        return True
    for l in range(spec.shape[0]):
        if not use_blas(rows, spec[l, N_IN], spec[l, N_OUT]):
            return False
    return True


@njit(**JIT)
def backward(x, xo, params, grad, spec, acts, tmp, rows, dropout, masks, lr):
    """Gradient of the batch loss w.r.t. every parameter, written into ``grad``
    (or, with ``lr > 0``, applied at once as a plain SGD step: see the module docstring)."""
    use_dropout = dropout.shape[0] > 0
    for l in range(spec.shape[0] - 1, 0, -1):
        ao = rows * spec[l - 1, A_OFF]
        layer_backward(acts, ao, params, grad, spec, l, acts, tmp, rows, lr)
        count = rows * spec[l, N_IN]
        if use_dropout and dropout[l - 1] > 0.0:
            undo_dropout(tmp, 0, acts, ao, masks, count)
        backprop_activation(tmp, 0, acts, ao, count, spec[l - 1, ACT])
    layer_backward(x, xo, params, grad, spec, 0, acts, tmp, rows, lr)
