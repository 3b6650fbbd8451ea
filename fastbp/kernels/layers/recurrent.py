"""Recurrent layers (Elman RNN, GRU, LSTM): one direction's forward pass over time and its
backpropagation through time (BPTT), with PyTorch's equations and parameter layout.

Per direction the parameters are, contiguous and row-major like PyTorch's tensors,
``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H), ``bias_hh`` (G*H), with G
gates of H units (RNN 1; GRU 3: r, z, n; LSTM 4: i, f, g, o).  With x the step's input and h
the previous state (zero at a sequence's first step):

    RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
    GRU:  r = s(.._r), z = s(.._z), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
          h' = (1 - z) n + z h
    LSTM: i, f, g, o = s, s, tanh, s (W_ih x + b_ih + W_hh h + b_hh), c' = f c + i g,
          h' = o tanh(c')

Everything lives in one flat scratch vector ``s`` of the batch (offsets below), *time-major*:
row (t, b) of a (steps, batch, width) block is at ``(t*B + b) * width``, so the states of all
samples at one step are a contiguous (B, H) matrix.  The input projection of every step of the
batch is one product (``gates = X W_ih^T + biases``, T*B rows); only the recurrent product
``h W_hh^T`` is left per step; both use copies of W_ih^T and W_hh^T that each forward pass
makes in the scratch (see :func:`transposed_offsets`).  The per-step products of a batch
and the weight gradients run in the register blocks of :mod:`..rowvec` (``rows_times``,
``tn_times``) while their matrices are at most ``ROWS_MAX_BYTES``; a batch of one sequence
runs its steps through single-row blocks (``row_times_panels``, ``row_times``); the other
products go to BLAS from ``BLAS_MIN_MACS`` multiply-adds (and more than one row), to the
single-row loops otherwise.

Variable lengths: ``s[lo + b]`` is sample b's length.  A step t >= length is not computed:
its state is stored as 0, so the reverse direction, which runs t = T-1 .. 0, starts each
sample at its last valid step from a zero state (PyTorch's packed sequences), and BPTT gives
such steps zero deltas.  The backward pass overwrites the stored gate values of a step with
the step's gate deltas once they are no longer needed (GRU: the hidden side's deltas, which
differ in the n block, go to their own ``dgh`` block); then the weight gradients of all steps
are three products.  Truncated BPTT (``bptt`` = k > 0): the gradient carried from one step to
the one before it in the direction's order is cut where the two lie in different chunks of k
steps (chunk j is steps j*k .. j*k + k - 1).
"""
from numba import njit

from ..._config import BLAS_MIN_MACS, JIT, JIT_INLINE, ROWS_MAX_BYTES
from ..activations import U
from ..blas import gemm
from ..codes import GRU, LSTM, TANH
from ..mathfn import logistic, tanh
from ..rowvec import (PANEL_VECTOR_BYTES, col_times, pack_panels, row_times, row_times_panels,
                      rows_times, tn_times)
from .dense import rows_view


@njit(**JIT_INLINE)
def n_gates(kind):
    """Gate blocks of a recurrent kind (registry trait ``gates``)."""
    if kind == GRU:
        return 3
    if kind == LSTM:
        return 4
    return 1


@njit(**JIT_INLINE)
def _blas(m, n, k):
    return m > 1 and n > 1 and k > 1 and m * n * k >= BLAS_MIN_MACS


@njit(**JIT_INLINE)
def _step_rows(B, n, k, itemsize):
    """Whether a step's product of a batch, (B, k) @ (k, n), goes to ``rows_times``."""
    return B > 1 and n * k * itemsize <= ROWS_MAX_BYTES


# --- the three products (flat operands, row-major; accumulate into C when ``acc``) ---------
@njit(**JIT)
def mm_nn(A, ao, B, bo, C, co, m, n, k, acc):
    """C (m, n) [+]= A (m, k) @ B (k, n): BLAS for big products, else one
    :func:`..rowvec.row_times` per row of A (the same sums in the same order as the loops it
    replaced, which added eight scaled rows of B to the row of C in memory per pass: 0.4-0.8x
    their time at 20x8 @ 8x32, 4x32 @ 32x32, 1x64 @ 64x192, in float32 and float64)."""
    if _blas(m, n, k):
        gemm(1.0, rows_view(A, ao, m, k), rows_view(B, bo, k, n), 1.0 if acc else 0.0,
             rows_view(C, co, m, n))
        return
    for i in range(m):  # row by row, each row's outputs accumulated in SIMD registers
        row_times(A, ao + i * k, B, bo, C, co + i * n, n, k, acc)


@njit(**JIT)
def mm_tn(A, ao, B, bo, C, co, m, n, k, acc):
    """C (m, n) [+]= A (k, m)^T @ B (k, n): outer products of rows, summed (the weight
    gradients: deltas^T inputs over every step of the batch).  ``rowvec.tn_times`` while C
    is at most ``ROWS_MAX_BYTES`` (it stays in the cache over the passes of k), else BLAS."""
    if m * n * C.itemsize <= ROWS_MAX_BYTES:
        tn_times(A, ao, B, bo, C, co, m, n, k, acc)
        return
    if _blas(m, n, k):
        gemm(1.0, rows_view(A, ao, k, m).T, rows_view(B, bo, k, n), 1.0 if acc else 0.0,
             rows_view(C, co, m, n))
        return
    for i in range(m):  # row i of C: column i of A times B, accumulated in registers
        col_times(A, ao + i, m, B, bo, n, C, co + i * n, n, k, acc)


@njit(**JIT)
def column_sums(A, ao, rows, n, out, oo):
    """out[oo:oo+n] = the column sums of the (rows, n) block A[ao:]."""
    zero = out.dtype.type(0)
    o = U(oo)
    for j in range(n):
        out[o + U(j)] = zero
    for r in range(rows):
        a = U(ao + r * n)
        for j in range(n):
            out[o + U(j)] += A[a + U(j)]


@njit(**JIT)
def zero_fill(buf, off, count):
    zero = buf.dtype.type(0)
    o = U(off)
    for k in range(count):
        buf[o + U(k)] = zero


# --- sizes of one direction's scratch ----------------------------------------------------
#: values of room before W_hh^T in a direction's scratch, so that its copy can start on a
#: ``PANEL_VECTOR_BYTES`` boundary of memory (16 float32 values cover any 4-byte aligned
#: start).  Aligned, each 512-bit load of the one-sequence panels touches one cache line
#: instead of two: the chained R1 step product took 0.35 us against 0.48 us misaligned by
#: 4, 16 or 32 bytes (float32, one process, interleaved).
ALIGN_ROOM = 16


@njit(**JIT)
def direction_size(kind, H, B, T, n_in):
    """Scratch values of one direction: states h (T*B*H), cell states (LSTM), gates
    (T*B*G*H), the hidden side's deltas and W_hn h + b_hn (GRU), the per-step recurrent
    product (B*G*H), the carried dh and dc (B*H each), W_hh^T (G*H*H, with ``ALIGN_ROOM``
    values of room before it) and W_ih^T (G*H*n_in)."""
    G = n_gates(kind)
    TB = T * B
    size = TB * H + TB * G * H + B * G * H + 3 * B * H + G * H * (H + n_in) + ALIGN_ROOM
    if kind == LSTM:
        size += TB * H
    if kind == GRU:
        size += TB * G * H + TB * H
    return size


@njit(**JIT)
def transposed_offsets(kind, H, B, T, n_in, base, s):
    """Offsets of the direction's copies of W_hh^T ((H, G*H)) and W_ih^T ((n_in, G*H)), its
    last two blocks, refreshed by every forward pass.  With them the forward products are
    plain ``x @ W^T`` = (rows, k) @ (k, G*H) products: BLAS does the per-step one about twice
    as fast as the transposed one at R1's sizes (OpenBLAS's small-matrix kernel, no packing:
    8.0 vs 16.6 us for 32x64 @ 64x192, float32, one thread), and the loops (a batch of one)
    become vectorized row updates instead of short dot products (1x32 @ 32x32 0.10 vs 0.13
    us, 1x64 @ 64x192 1.1 vs 1.6 us, 20x8 @ 8x32 1.1 vs 3.9 us)."""
    end = base + direction_size(kind, H, B, T, n_in)
    wi = end - n_gates(kind) * H * n_in
    room = wi - n_gates(kind) * H * H - ALIGN_ROOM
    # the first PANEL_VECTOR_BYTES boundary at or after the room's start (the address is
    # the scratch's own, so the forward pass that packs and the steps that read agree)
    miss = (s.ctypes.data + room * s.itemsize) % PANEL_VECTOR_BYTES
    shift = (PANEL_VECTOR_BYTES - miss) % PANEL_VECTOR_BYTES // s.itemsize
    return room + min(shift, ALIGN_ROOM), wi


@njit(**JIT)
def transpose_into(src, so, rows, cols, dst, do):
    """dst[do:] (cols, rows) = the transpose of the (rows, cols) block src[so:], written
    row by row of dst (strided reads, contiguous writes: scattered writes were 1.1-25x
    slower, the most for few columns as W_ih's)."""
    for j in range(cols):
        d = U(do + j * rows)
        for i in range(rows):
            dst[d + U(i)] = src[U(so + i * cols + j)]


@njit(**JIT)
def direction_offsets(kind, H, B, T, base):
    """(h, c, gates, dgh, ghn, step, dh, dc, work) offsets of a direction's scratch at
    ``base`` (c, dgh, ghn alias other blocks for the kinds that have none)."""
    G = n_gates(kind)
    TB = T * B
    ho = base
    go = ho + TB * H
    po = go + TB * G * H
    dho = po + B * G * H
    dco = dho + B * H
    wo = dco + B * H
    end = wo + B * H
    co = ho
    dgo = go
    no = ho
    if kind == LSTM:
        co = end
    if kind == GRU:
        dgo = end
        no = dgo + TB * G * H
    return ho, co, go, dgo, no, po, dho, dco, wo


# --- forward ---------------------------------------------------------------------------------
@njit(**JIT)
def forward_direction(kind, act, reverse, s, xo, n_in, params, w0, H, B, T, lo, base):
    """One direction of a recurrent layer over the batch: inputs (T*B, n_in) at ``s[xo:]``,
    parameters at ``params[w0:]``; states and stored gates go to the direction's scratch at
    ``base`` (see :func:`direction_offsets`)."""
    G = n_gates(kind)
    GH = G * H
    TB = T * B
    ho, co, go, dgo, no, po, dho, dco, wo = direction_offsets(kind, H, B, T, base)
    whh = w0 + GH * n_in
    bih = whh + GH * H
    bhh = bih + GH
    wh, wi = transposed_offsets(kind, H, B, T, n_in, base, s)
    transpose_into(params, w0, GH, n_in, s, wi)
    if B == 1:  # one sequence: W_hh^T in register-block panels (rowvec.pack_panels)
        pack_panels(params, whh, GH, H, s, wh)
    else:
        transpose_into(params, whh, GH, H, s, wh)
    # the biases that add up, then the input projection of every step at once added to them
    # (BLAS's beta = 1: one pass over the gates fewer than a product and a bias pass)
    nb = 2 * H if kind == GRU else GH  # GRU's b_hn stays inside r * (...)
    bi = U(bih)
    bh = U(bhh)
    for r in range(TB):
        g = U(go + r * GH)
        for j in range(nb):
            s[g + U(j)] = params[bi + U(j)] + params[bh + U(j)]
        for j in range(nb, GH):
            s[g + U(j)] = params[bi + U(j)]
    mm_nn(s, xo, s, wi, s, go, TB, GH, n_in, True)
    zero_fill(s, dho, B * H)  # the zero state before the first step (h, and c for LSTM)
    zero_fill(s, dco, B * H)
    dt = s.dtype.type
    zero = dt(0)
    for q in range(T):
        t = T - 1 - q if reverse else q
        tp = t + 1 if reverse else t - 1
        hprev = dho if q == 0 else ho + tp * B * H
        cprev = dco if q == 0 else co + tp * B * H
        # GRU needs W_hn h + b_hn apart from the input side's n; the other cells add
        # h W_hh^T straight to the step's stored gates (a contiguous (B, GH))
        out = po if kind == GRU else go + t * B * GH
        if B == 1:
            row_times_panels(s, hprev, s, wh, s, out, GH, H, q % 2 == 1, kind != GRU)
        elif _step_rows(B, GH, H, s.itemsize):
            rows_times(s, hprev, H, B, s, wh, GH, s, out, GH, GH, H, kind != GRU)
        else:
            mm_nn(s, hprev, s, wh, s, out, B, GH, H, kind != GRU)
        for b in range(B):
            g = U(go + (t * B + b) * GH)
            h = U(ho + (t * B + b) * H)
            p = U(po + b * GH)
            if t >= s[U(lo + b)]:
                for j in range(H):
                    s[h + U(j)] = zero
                if kind == LSTM:
                    c = U(co + (t * B + b) * H)
                    for j in range(H):
                        s[c + U(j)] = zero
                continue
            # few pointers per loop, so that LLVM vectorizes each (the transcendentals
            # dominate the element-wise work)
            if kind == GRU:
                hp = U(hprev + b * H)
                n = U(no + (t * B + b) * H)
                bn = U(bhh + 2 * H)
                z = g + U(H)
                c = g + U(2 * H)
                for j in range(2 * H):  # r, z
                    s[g + U(j)] = logistic(s[g + U(j)] + s[p + U(j)])
                for j in range(H):  # W_hn h + b_hn
                    s[n + U(j)] = s[p + U(2 * H + j)] + params[bn + U(j)]
                for j in range(H):  # n
                    s[c + U(j)] = tanh(s[c + U(j)] + s[g + U(j)] * s[n + U(j)])
                for j in range(H):  # h' = n + z (h - n)
                    s[h + U(j)] = s[c + U(j)] + s[z + U(j)] * (s[hp + U(j)] - s[c + U(j)])
            elif kind == LSTM:
                cp = U(cprev + b * H)
                c = U(co + (t * B + b) * H)
                for j in range(2 * H):  # i, f
                    s[g + U(j)] = logistic(s[g + U(j)])
                for j in range(2 * H, 3 * H):  # g
                    s[g + U(j)] = tanh(s[g + U(j)])
                for j in range(3 * H, 4 * H):  # o
                    s[g + U(j)] = logistic(s[g + U(j)])
                f = g + U(H)
                gg = g + U(2 * H)
                o = g + U(3 * H)
                for j in range(H):
                    s[c + U(j)] = s[f + U(j)] * s[cp + U(j)] + s[g + U(j)] * s[gg + U(j)]
                for j in range(H):
                    s[h + U(j)] = s[o + U(j)] * tanh(s[c + U(j)])
            elif act == TANH:
                for j in range(H):
                    s[h + U(j)] = tanh(s[g + U(j)])
            else:  # relu
                for j in range(H):
                    s[h + U(j)] = max(s[g + U(j)], zero)


# --- backward --------------------------------------------------------------------------------
@njit(**JIT)
def backward_direction(kind, act, reverse, s, xo, n_in, params, grad, w0, H, B, T, lo, base,
                       douto, dout_width, dout_col, dxo, need_dx, dx_acc, bptt):
    """BPTT of one direction: dLoss/d(state) of every step at ``s[douto:]`` ((T*B,
    dout_width) rows, this direction's H columns from ``dout_col``) -> the gradients of the
    direction's parameters (written into ``grad``) and, with ``need_dx``, dLoss/d(input)
    (T*B, n_in) at ``s[dxo:]`` (added when ``dx_acc``)."""
    G = n_gates(kind)
    GH = G * H
    TB = T * B
    ho, co, go, dgo, no, po, dho, dco, wo = direction_offsets(kind, H, B, T, base)
    whh = w0 + GH * n_in
    bih = whh + GH * H
    bhh = bih + GH
    dt = s.dtype.type
    zero = dt(0)
    one = dt(1)
    zero_fill(s, dho, B * H)
    zero_fill(s, dco, B * H)
    zero_fill(s, po, B * GH)  # zeros standing for the state before the first step
    for q in range(T):
        t = q if reverse else T - 1 - q
        tp = t + 1 if reverse else t - 1
        has_prev = q < T - 1
        hprev = ho + tp * B * H if has_prev else po
        cprev = co + tp * B * H if has_prev else po
        for b in range(B):
            g = U(go + (t * B + b) * GH)
            dh = U(dho + b * H)
            dc = U(dco + b * H)
            if t >= s[U(lo + b)]:
                for j in range(GH):
                    s[g + U(j)] = zero
                if kind == GRU:
                    d = U(dgo + (t * B + b) * GH)
                    for j in range(GH):
                        s[d + U(j)] = zero
                for j in range(H):
                    s[dh + U(j)] = zero
                    s[dc + U(j)] = zero
                continue
            h = U(ho + (t * B + b) * H)
            o = U(douto + (t * B + b) * dout_width + dout_col)
            for j in range(H):  # dLoss/dh of this step: from above plus carried
                s[dh + U(j)] += s[o + U(j)]
            if kind == GRU:
                hp = U(hprev + b * H)
                n = U(no + (t * B + b) * H)
                d = U(dgo + (t * B + b) * GH)
                z = g + U(H)
                c = g + U(2 * H)
                dz = d + U(H)
                dc2 = d + U(2 * H)
                for j in range(H):  # dz (pre-activation), kept in the hidden side's block
                    zv = s[z + U(j)]
                    s[dz + U(j)] = s[dh + U(j)] * (s[hp + U(j)] - s[c + U(j)]) * zv * (one - zv)
                for j in range(H):  # dn (pre-activation)
                    nv = s[c + U(j)]
                    s[c + U(j)] = s[dh + U(j)] * (one - s[z + U(j)]) * (one - nv * nv)
                for j in range(H):  # carried to the previous state directly: dh z
                    s[dh + U(j)] *= s[z + U(j)]
                for j in range(H):
                    s[z + U(j)] = s[dz + U(j)]
                for j in range(H):  # the hidden side's dn: dn r
                    s[dc2 + U(j)] = s[c + U(j)] * s[g + U(j)]
                for j in range(H):  # dr (pre-activation)
                    rv = s[g + U(j)]
                    s[g + U(j)] = s[c + U(j)] * s[n + U(j)] * rv * (one - rv)
                for j in range(H):
                    s[d + U(j)] = s[g + U(j)]
            elif kind == LSTM:
                cp = U(cprev + b * H)
                c = U(co + (t * B + b) * H)
                w = U(wo + b * H)
                f = g + U(H)
                gg = g + U(2 * H)
                og = g + U(3 * H)
                for j in range(H):
                    s[w + U(j)] = tanh(s[c + U(j)])
                for j in range(H):  # dc
                    tc = s[w + U(j)]
                    s[dc + U(j)] += s[dh + U(j)] * s[og + U(j)] * (one - tc * tc)
                for j in range(H):  # do (pre-activation)
                    ov = s[og + U(j)]
                    s[og + U(j)] = s[dh + U(j)] * s[w + U(j)] * ov * (one - ov)
                for j in range(H):  # dg (pre-activation), to w first: di needs g
                    gv = s[gg + U(j)]
                    s[w + U(j)] = s[dc + U(j)] * s[g + U(j)] * (one - gv * gv)
                for j in range(H):  # di
                    iv = s[g + U(j)]
                    s[g + U(j)] = s[dc + U(j)] * s[gg + U(j)] * iv * (one - iv)
                for j in range(H):
                    s[gg + U(j)] = s[w + U(j)]
                for j in range(H):  # dc carried: dc f
                    s[w + U(j)] = s[dc + U(j)] * s[f + U(j)]
                for j in range(H):  # df
                    fv = s[f + U(j)]
                    s[f + U(j)] = s[dc + U(j)] * s[cp + U(j)] * fv * (one - fv)
                for j in range(H):
                    s[dc + U(j)] = s[w + U(j)]
                for j in range(H):
                    s[dh + U(j)] = zero
            elif act == TANH:
                for j in range(H):
                    hv = s[h + U(j)]
                    s[g + U(j)] = s[dh + U(j)] * (one - hv * hv)
                for j in range(H):
                    s[dh + U(j)] = zero
            else:  # relu
                for j in range(H):
                    s[g + U(j)] = s[dh + U(j)] if s[h + U(j)] > zero else zero
                for j in range(H):
                    s[dh + U(j)] = zero
        cut = bptt > 0 and ((t + 1) % bptt == 0 if reverse else t % bptt == 0)
        if has_prev and not cut and _step_rows(B, H, GH, s.itemsize):
            rows_times(s, dgo + t * B * GH, GH, B, params, whh, H, s, dho, H, H, GH, True)
        elif has_prev and not cut:
            mm_nn(s, dgo + t * B * GH, params, whh, s, dho, B, H, GH, True)
        else:
            zero_fill(s, dho, B * H)
            zero_fill(s, dco, B * H)
    # the weight gradients of all steps at once
    mm_tn(s, go, s, xo, grad, w0, GH, n_in, TB, False)
    column_sums(s, go, TB, GH, grad, bih)
    if T > 1:  # the first step of a direction saw a zero state: nothing to add
        if reverse:
            mm_tn(s, dgo, s, ho + B * H, grad, whh, GH, H, (T - 1) * B, False)
        else:
            mm_tn(s, dgo + B * GH, s, ho, grad, whh, GH, H, (T - 1) * B, False)
    else:
        zero_fill(grad, whh, GH * H)
    if kind == GRU:
        column_sums(s, dgo, TB, GH, grad, bhh)
    else:  # the same deltas (dgo is go): the same sums, copied instead of summed again
        for j in range(GH):
            grad[U(bhh + j)] = grad[U(bih + j)]
    if need_dx:
        mm_nn(s, go, params, w0, s, dxo, TB, n_in, GH, dx_acc)
