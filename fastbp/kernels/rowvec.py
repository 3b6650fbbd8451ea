"""Register-blocked products for the recurrent kernels, with the outputs held in SIMD
registers: ``row_times``, one row times a matrix, c (n) [+]= a (k) @ B (k, n) (the per-step
product of a batch of one sequence: h W_hh^T forward, dh += dg W_hh in BPTT, where BLAS's
call overhead is too much); ``rows_times``, the same for a batch's rows, 4 at a time (the
per-step products of a batch, where BLAS's packing of both operands at every call costs more
than the product); ``tn_times``, C [+]= A^T B over every step of a batch (the weight
gradients).  Each output is one chain of fused multiply-adds in a fixed order, whichever of
them computes it.

The hand-written row loops (:func:`.layers.recurrent.mm_nn`) add rows of B into the row of C
in memory, so C is loaded and stored for every few rows of B; LLVM cannot keep it in
registers across the loop over k because every operand is a view of one scratch vector (it
cannot prove that C does not alias B), and Numba does not run LLVM's SLP vectorizer on
hand-unrolled scalar accumulators.  So :func:`_block` is written in LLVM IR: a block of
``NV`` vectors of C (4 x 8 float32 or 4 x 4 float64 on AVX2) is accumulated over the k rows
of B in registers (one broadcast of a[p], NV loads and NV fused multiply-adds per row) and
stored once.  Measured (float32, one process, interleaved, a loaded machine): 1x32 @ 32x32
0.045 us (the loops: 0.086), 1x192 @ 192x64 1.30 us (1.61); 1x64 @ 64x192 is bounded by
streaming its 48 KB B from the L2 cache (1.4 us either way, 1.0 us from the panels of
:func:`pack_panels`).
"""
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._config import JIT
from .activations import U

#: SIMD vectors of C per block (4 independent accumulator chains hide the FMA latency)
NV = 4
#: bytes of one SIMD register (AVX2's 256 bits; on narrower hardware LLVM splits the vectors)
VECTOR_BYTES = 32
#: bytes of one vector of the panels' blocks (:func:`row_times_panels`): AVX-512's 512 bits.
#: LLVM's tuning for Intel's AVX-512 server cores keeps its own loops at 256 bits, but vector
#: types written out in IR stay whole (Numba's functions set no "min-legal-vector-width").
#: Measured on this project's Xeon (paired in one process): one R1 prediction (GRU 64 units,
#: 50 steps) 0.85-0.9x the time with 512-bit panels.  Elsewhere 512-bit blocks were slower:
#: R2's online training (32 units) ran 0.71x as fast, most likely because an unaligned
#: 512-bit load always spans two cache lines; so the other products keep 256 bits.
PANEL_VECTOR_BYTES = 64


def _check_operands(name, A, B, C, literals):
    for arr in (A, B, C):
        if not isinstance(arr, types.Array) or arr.ndim != 1:
            raise TypingError(f"{name} takes 1-D arrays")
    if not (A.dtype == B.dtype == C.dtype) or not isinstance(C.dtype, types.Float):
        raise TypingError(f"{name} needs operands of one float dtype")
    if not all(isinstance(x, types.IntegerLiteral) for x in literals):
        raise TypingError(f"{name} needs literal block sizes and vector width")


def _codegen(C, n_rows, n_vec, vbytes, where):
    """The code of a register block (see :func:`_rows_block`): ``where`` maps each of A, ao,
    lda, ldp, B, bo, ldb, C, co, ldc, k, acc to its argument's position (None: the integer
    0, for a stride a one-row block does not use)."""
    width = C.dtype.bitwidth // 8
    lanes = vbytes // width

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)

        def index(name):
            i = where[name]
            if i is None:
                return ir.Constant(i64, 0)
            return context.cast(builder, args[i], signature.args[i], types.int64)

        ao_v, lda_v, ldp_v, bo_v, ldb_v, co_v, ldc_v, k_v = (
            index(n) for n in ("ao", "lda", "ldp", "bo", "ldb", "co", "ldc", "k"))
        acc_v = args[where["acc"]]
        fty = context.get_value_type(C.dtype)
        vty = ir.VectorType(fty, lanes)
        vptr = vty.as_pointer()
        pa, pb, pc = (make_array(signature.args[where[n]])(context, builder, args[where[n]]).data
                      for n in ("A", "B", "C"))
        zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes)
        slots = []
        for r in range(n_rows):
            row = builder.add(co_v, builder.mul(ir.Constant(i64, r), ldc_v))
            for v in range(n_vec):
                ptr = builder.bitcast(
                    builder.gep(pc, [builder.add(row, ir.Constant(i64, v * lanes))]), vptr)
                start = builder.select(acc_v, builder.load(ptr, align=width), zero)
                slots.append((ptr, cgutils.alloca_once_value(builder, start)))
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                             f"llvm.fma.v{lanes}f{C.dtype.bitwidth}")
        mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        with cgutils.for_range(builder, k_v) as loop:
            p = loop.index
            brow = builder.add(bo_v, builder.mul(p, ldb_v))
            bs = []

            def b_vector(v):  # B's v-th vector of row p, loaded once (where first needed)
                while len(bs) <= v:
                    bs.append(builder.load(builder.bitcast(
                        builder.gep(pb, [builder.add(brow, ir.Constant(i64, len(bs) * lanes))]),
                        vptr), align=width))
                return bs[v]

            if n_rows > 1:  # all of B's row first, then each row of A against it
                b_vector(n_vec - 1)
            arow = builder.add(ao_v, builder.mul(p, ldp_v))
            for r in range(n_rows):
                a = builder.load(builder.gep(
                    pa, [builder.add(arow, builder.mul(ir.Constant(i64, r), lda_v))]))
                av = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(vty, ir.Undefined), a,
                                           ir.Constant(i64, 0)),
                    ir.Constant(vty, ir.Undefined), mask)
                for v in range(n_vec):
                    slot = slots[r * n_vec + v][1]
                    builder.store(builder.call(fma, [av, b_vector(v), builder.load(slot)]),
                                  slot)
        for ptr, slot in slots:
            builder.store(builder.load(slot), ptr, align=width)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _block(typingctx, A, ao, lda, B, bo, ldb, C, co, k, acc, nv, vbytes):
    """C[co : co + nv*lanes] (=|+=) sum over p < k of A[ao + p*lda] * B[bo + p*ldb : ... + nv*lanes],
    accumulated in ``nv`` vectors of ``vbytes`` bytes (both compile-time constants): the
    one-row block of :func:`_rows_block`."""
    _check_operands("_block", A, B, C, (nv, vbytes))
    sig = types.void(A, ao, lda, B, bo, ldb, C, co, k, acc, nv, vbytes)
    where = dict(A=0, ao=1, lda=None, ldp=2, B=3, bo=4, ldb=5, C=6, co=7, ldc=None, k=8, acc=9)
    return sig, _codegen(C, 1, nv.literal_value, vbytes.literal_value, where)


@njit(**JIT)
def block_width(C):
    """Outputs per register block for C's dtype."""
    return NV * (VECTOR_BYTES // C.itemsize)


@njit(**JIT)
def panel_width(C):
    """Outputs per panel (:func:`pack_panels`) for C's dtype."""
    return NV * (PANEL_VECTOR_BYTES // C.itemsize)


@njit(**JIT)
def row_times(A, ao, B, bo, C, co, n, k, acc):
    """C[co:co+n] (=|+=) A[ao:ao+k] @ B (k, n) (row-major at ``bo``): register blocks of
    :func:`block_width` outputs, then single vectors, then scalars."""
    col_times(A, ao, 1, B, bo, n, C, co, n, k, acc)


@njit(**JIT)
def col_times(A, ao, lda, B, bo, ldb, C, co, n, k, acc):
    """:func:`row_times` for a vector a with stride ``lda`` (a[p] = A[ao + p*lda]: a column
    of a row-major matrix, as in the weight gradients' A^T B) and B's rows ``ldb`` apart."""
    lanes = VECTOR_BYTES // C.itemsize
    j = 0
    while j + NV * lanes <= n:
        _block(A, ao, lda, B, bo + j, ldb, C, co + j, k, acc, NV, VECTOR_BYTES)
        j += NV * lanes
    while j + lanes <= n:
        _block(A, ao, lda, B, bo + j, ldb, C, co + j, k, acc, 1, VECTOR_BYTES)
        j += lanes
    zero = C.dtype.type(0)
    while j < n:
        c = C[U(co + j)] if acc else zero
        for p in range(k):
            c += A[U(ao + p * lda)] * B[U(bo + p * ldb + j)]
        C[U(co + j)] = c
        j += 1


@njit(**JIT)
def pack_panels(src, so, n, k, dst, do):
    """dst[do:] = W^T for the (n, k) row-major block W at src[so:] (a weight matrix of n
    outputs), as :func:`row_times_panels` reads it: the outputs in panels of
    :func:`panel_width` (the last one narrower), each panel's (k, width) block contiguous at
    ``do + j*k`` (j its first output), so a register block streams one contiguous panel."""
    bw = panel_width(dst)
    for j in range(0, n, bw):
        w = min(bw, n - j)
        base = U(do + j * k)
        for p in range(k):
            d = base + U(p * w)
            for i in range(w):
                dst[d + U(i)] = src[U(so + (j + i) * k + p)]


@njit(**JIT)
def row_times_panels(A, ao, P, po, C, co, n, k, backwards, acc):
    """C[co:co+n] (=|+=) A[ao:ao+k] @ W^T, W^T packed at P[po:] by :func:`pack_panels`; the same
    sums in the same order as :func:`row_times`.  ``backwards`` takes the panels last to
    first: called every other time so, the panels the previous call read last (still in the
    L1 cache when W^T is about the cache's size, as R1's 48 KB) are read first."""
    bw = panel_width(C)
    full = n - n % bw
    if n > full and backwards:
        row_times(A, ao, P, po + full * k, C, co + full, n - full, k, acc)
    for b in range(full // bw):
        j = full - bw - b * bw if backwards else b * bw
        _block(A, ao, 1, P, po + j * k, bw, C, co + j, k, acc, NV, PANEL_VECTOR_BYTES)
    if n > full and not backwards:
        row_times(A, ao, P, po + full * k, C, co + full, n - full, k, acc)


@intrinsic
def _rows_block(typingctx, A, ao, lda, ldp, B, bo, ldb, C, co, ldc, k, acc, mr, nv, vbytes):
    """C[co + r*ldc : ... + nv*lanes] (=|+=) sum over p < k of A[ao + r*lda + p*ldp] *
    B[bo + p*ldb : ... + nv*lanes] for the ``mr`` rows r of a block, accumulated in mr * nv
    vectors of ``vbytes`` bytes (compile-time constants): each row of B loaded once per mr
    rows of C.  ``ldp`` = 1 reads rows of A (C = A B); ``lda`` = 1 reads its columns (C =
    A^T B, A stored (k, m)).  Every output's sum is the same chain of fused multiply-adds in the same
    order as :func:`_block`'s, so the bits are row_times' bits."""
    _check_operands("_rows_block", A, B, C, (mr, nv, vbytes))
    sig = types.void(A, ao, lda, ldp, B, bo, ldb, C, co, ldc, k, acc, mr, nv, vbytes)
    where = dict(A=0, ao=1, lda=2, ldp=3, B=4, bo=5, ldb=6, C=7, co=8, ldc=9, k=10, acc=11)
    return sig, _codegen(C, mr.literal_value, nv.literal_value, vbytes.literal_value, where)


#: rows of A per block of :func:`rows_times` (with 4 x 512-bit vectors of outputs: 16
#: accumulators, 4 loads of B per row of B, one broadcast of A per row of the block)
MR = 4


@njit(**JIT)
def rows_times(A, ao, lda, m, B, bo, ldb, C, co, ldc, n, k, acc):
    """C (m, n) [+]= A (m, k) @ B (k, n), all row-major at the given offsets and row strides:
    blocks of :data:`MR` rows by :func:`panel_width` outputs in 512-bit registers, each row of
    B read once per block; the columns past the last full block row by row
    (:func:`col_times`).  Every output is the same chain of fused multiply-adds as
    :func:`row_times` gives it, so the bits do not depend on the blocking.  For the per-step
    recurrent products of a batch, where BLAS (which packs both operands at every call) is
    slower: float32, one thread, against OpenBLAS 0.3.30 (SkylakeX): 32x128 @ 128x512 23-26
    us against 48-54 us, 32x512 @ 512x128 23 against 49-53 us, 16x64 @ 64x192 2.4 against
    3.1 us; B must be small enough to stay in the cache (see ``_config.ROWS_MAX_BYTES``)."""
    bw = panel_width(C)
    full = n - n % bw
    for j in range(0, full, bw):
        i = 0
        while i + MR <= m:
            _rows_block(A, ao + i * lda, lda, 1, B, bo + j, ldb, C, co + i * ldc + j, ldc, k,
                        acc, MR, NV, PANEL_VECTOR_BYTES)
            i += MR
        while i < m:
            _rows_block(A, ao + i * lda, lda, 1, B, bo + j, ldb, C, co + i * ldc + j, ldc, k,
                        acc, 1, NV, PANEL_VECTOR_BYTES)
            i += 1
    if full < n:
        for i in range(m):
            col_times(A, ao + i * lda, 1, B, bo + full, ldb, C, co + i * ldc + full, n - full,
                      k, acc)


#: rows of B (steps x batch rows) per pass of :func:`tn_times` over C: a 64-column strip of
#: B's pass (64 KB in float32) stays in the L1/L2 cache while the blocks of C go over it
KC = 256


@njit(**JIT)
def _tn_rows(A, ao, m, B, bo, ldb, C, co, ldc, i0, i1, j, k, acc, mr, nv, vbytes):
    """Rows i0..i1 of C's columns j.. (nv vectors of vbytes): blocks of ``mr`` rows, then
    single rows."""
    i = i0
    while i + mr <= i1:
        _rows_block(A, ao + i, 1, m, B, bo + j, ldb, C, co + i * ldc + j, ldc, k, acc, mr, nv,
                    vbytes)
        i += mr
    while i < i1:
        _rows_block(A, ao + i, 1, m, B, bo + j, ldb, C, co + i * ldc + j, ldc, k, acc, 1, nv,
                    vbytes)
        i += 1


@njit(**JIT)
def tn_times(A, ao, B, bo, C, co, m, n, k, acc):
    """C (m, n) [+]= A^T B for A (k, m) and B (k, n), row-major and contiguous (the weight
    gradients of a recurrent layer: deltas^T inputs over every step of a batch, k = steps x
    rows).  k is taken in passes of :data:`KC` rows; in each, C's columns in strips of
    :func:`panel_width` (blocks of :data:`MR` rows x 4 x 512-bit), then 512-bit and 256-bit
    single vectors (blocks of 16 rows: 16 independent sums), then scalars.  Every output is
    the same fused multiply-add chain over p = 0..k-1 as :func:`col_times` gives it (a pass
    stores its sums and the next reloads them exactly), so the bits do not depend on the
    blocking.  Against OpenBLAS (one thread, float32): 512x3200 @ 3200x16 (R3's W_ih
    gradient, half batch) 0.80 against 1.19 ms, 512x3200 @ 3200x128 (its W_hh gradient) 3.8
    against 4.7 ms, 192x800 @ 800x64 (R1's) 124 against 177 us."""
    bw = panel_width(C)
    wide = PANEL_VECTOR_BYTES // C.itemsize
    narrow = VECTOR_BYTES // C.itemsize
    for k0 in range(0, max(k, 1), KC):
        kk = min(KC, k - k0)
        a0 = ao + k0 * m
        b0 = bo + k0 * n
        more = acc or k0 > 0
        j = 0
        while j + bw <= n:
            _tn_rows(A, a0, m, B, b0, n, C, co, n, 0, m, j, kk, more, MR, NV, PANEL_VECTOR_BYTES)
            j += bw
        while j + wide <= n:
            _tn_rows(A, a0, m, B, b0, n, C, co, n, 0, m, j, kk, more, 16, 1, PANEL_VECTOR_BYTES)
            j += wide
        while j + narrow <= n:
            _tn_rows(A, a0, m, B, b0, n, C, co, n, 0, m, j, kk, more, 16, 1, VECTOR_BYTES)
            j += narrow
        if j < n:  # fewer columns than a vector: col_times' scalar loop, row by row
            for i in range(m):
                col_times(A, a0 + i, m, B, b0 + j, n, C, co + i * n + j, n - j, kk, more)
