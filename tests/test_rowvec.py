"""The register-blocked one-row product (fastbp.kernels.rowvec) against NumPy in float64,
for widths that exercise its full blocks, single vectors and scalar tail, at offsets into
one shared vector (as the recurrent kernels call it), overwriting and accumulating."""
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from numba import njit

from fastbp.kernels.layers.recurrent import mm_nn, mm_tn
from fastbp.kernels.rowvec import (NV, PANEL_VECTOR_BYTES, VECTOR_BYTES, _block, block_width,
                                   pack_panels, panel_width, row_times, row_times_panels,
                                   rows_times, tn_times)
from fastbp.kernels.rowvec import col_times

AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,n", [(1, 1), (7, 13), (32, 32), (8, 45), (64, 192), (192, 64),
                                 (3, 40), (0, 9)])
@pytest.mark.parametrize("acc", [False, True])
def test_row_times_matches_numpy(dtype, k, n, acc):
    rng = np.random.default_rng(k * 1000 + n)
    ao, bo, co = 3, 5 + k, 11 + k + k * n  # odd offsets: unaligned vector loads
    s = rng.normal(size=co + n + 7).astype(dtype)
    a = s[ao:ao + k].astype(np.float64)
    B = s[bo:bo + k * n].reshape(k, n).astype(np.float64)
    before = s.copy()
    expect = a @ B + (s[co:co + n].astype(np.float64) if acc else 0.0)
    row_times(s, ao, s, bo, s, co, n, k, acc)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(s[co:co + n], expect, rtol=tol, atol=tol * max(k, 1))
    # nothing outside the output row is touched
    np.testing.assert_array_equal(s[:co], before[:co])
    np.testing.assert_array_equal(s[co + n:], before[co + n:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mm_nn_one_row_uses_separate_arrays(dtype):
    """mm_nn's batch-of-one branch with A, B, C in three different arrays (the backward
    pass reads W_hh from the parameter vector), garbage in C when not accumulating."""
    rng = np.random.default_rng(1)
    k, n = 96, 2 * block_width(np.zeros(1, dtype)) + 3
    A = rng.normal(size=k + 2).astype(dtype)
    B = rng.normal(size=k * n + 4).astype(dtype)
    C = np.full(n + 1, np.nan, dtype=dtype)
    mm_nn(A, 2, B, 4, C, 1, 1, n, k, False)
    expect = A[2:].astype(np.float64) @ B[4:].reshape(k, n).astype(np.float64)
    np.testing.assert_allclose(C[1:], expect, rtol=1e-4 if dtype == np.float32 else 1e-12)
    assert np.isnan(C[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(192, 64), (32, 32), (45, 8), (5, 3), (96, 1)])
@pytest.mark.parametrize("backwards", [False, True])
@pytest.mark.parametrize("acc", [False, True])
def test_row_times_panels_matches_numpy_and_row_times(dtype, n, k, backwards, acc):
    """W (n, k) packed into panels, times a row (written, or added to C): NumPy's product,
    and bit for bit what row_times gives with the plain transpose (same sums, same order),
    either panel order."""
    rng = np.random.default_rng(n * 100 + k)
    W = rng.normal(size=(n, k)).astype(dtype)
    src = np.concatenate([np.zeros(3, dtype), W.ravel()])
    s = rng.normal(size=7 + k + n * k + n).astype(dtype)
    ao, po, co = 7, 7 + k, 7 + k + n * k
    c0 = s[co:co + n].astype(np.float64)
    pack_panels(src, 3, n, k, s, po)
    plain = np.concatenate([s[:ao + k], W.T.ravel(), s[co:co + n]])
    row_times_panels(s, ao, s, po, s, co, n, k, backwards, acc)
    a = s[ao:ao + k].astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(s[co:co + n], W.astype(np.float64) @ a + (c0 if acc else 0),
                               rtol=tol, atol=tol * k)
    row_times(plain, ao, plain, ao + k, plain, co, n, k, acc)
    np.testing.assert_array_equal(s[co:co + n], plain[co:co + n])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(32, 8, 20), (32, 32, 19), (5, 45, 3), (1, 1, 1), (7, 3, 0)])
@pytest.mark.parametrize("acc", [False, True])
def test_mm_tn_loops_match_numpy(dtype, m, n, k, acc):
    """mm_tn's loop branch (C [+]= A^T B, columns of A through col_times) for the weight
    gradients' shapes below the BLAS threshold and odd ones, C in another array."""
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    s = rng.normal(size=3 + k * m + k * n).astype(dtype)
    A = s[3:3 + k * m].reshape(k, m).astype(np.float64)
    B = s[3 + k * m:].reshape(k, n).astype(np.float64)
    C = rng.normal(size=2 + m * n).astype(dtype)
    expect = A.T @ B + (C[2:].reshape(m, n).astype(np.float64) if acc else 0.0)
    if m * n * k >= 1 << 13 and m > 1 and n > 1 and k > 1:
        pytest.skip("goes to BLAS")
    mm_tn(s, 3, s, 3 + k * m, C, 2, m, n, k, acc)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(C[2:].reshape(m, n), expect, rtol=tol, atol=tol * max(k, 1))


@njit(cache=False)
def _panel_block(a, P, C, k):
    _block(a, 0, 1, P, 0, panel_width(C), C, 0, k, False, NV, PANEL_VECTOR_BYTES)


@njit(cache=False)
def _plain_block(a, P, C, k):
    _block(a, 0, 1, P, 0, block_width(C), C, 0, k, False, NV, VECTOR_BYTES)


def _fma_registers(fn):
    asm = fn.inspect_asm(fn.signatures[-1])
    return {m.group(1) for line in asm.splitlines()
            for m in [re.search(r"vfmadd\w+\s.*%([xyz]mm)", line)] if m}


@pytest.mark.skipif(not AVX512, reason="this CPU has no AVX-512 registers")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_panel_blocks_use_512_bit_registers(dtype):
    """The panels' register blocks are computed with 512-bit fused multiply-adds (zmm), which
    LLVM's tuning for AVX-512 server cores would not choose; the other blocks stay at 256 bits
    (ymm). Both give NumPy's product. (The cached kernels' machine code cannot be inspected,
    so fresh callers of the block are compiled here.)"""
    k = 16
    rng = np.random.default_rng(0)
    for fn, width, reg in ((_panel_block, panel_width, "zmm"), (_plain_block, block_width, "ymm")):
        n = width(np.zeros(1, dtype))
        assert n == NV * (PANEL_VECTOR_BYTES if reg == "zmm" else VECTOR_BYTES) // np.dtype(dtype).itemsize
        a = rng.normal(size=k).astype(dtype)
        P = rng.normal(size=(k, n)).astype(dtype)
        C = np.full(n, np.nan, dtype=dtype)
        fn(a, P.ravel(), C, k)
        np.testing.assert_allclose(C, a.astype(np.float64) @ P.astype(np.float64), rtol=1e-5)
        assert _fma_registers(fn) == {reg}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_panels_start_on_a_vector_boundary_at_any_scratch_offset(dtype):
    """W_hh^T's copy in a direction's scratch starts on a PANEL_VECTOR_BYTES boundary of memory
    and stays inside its room, wherever the direction starts; and the one-sequence forward
    pass (which packs there and reads from there) gives the same states, bit for bit, at every
    start."""
    from fastbp.kernels.codes import GRU, TANH
    from fastbp.kernels.layers import recurrent as rec
    H, T, n_in, G = 64, 5, 3, 3
    rng = np.random.default_rng(4)
    x = rng.normal(size=T * n_in).astype(dtype)
    params = (rng.normal(size=G * H * (n_in + H + 2)) * 0.3).astype(dtype)
    size = rec.direction_size(GRU, H, 1, T, n_in)
    states = []
    for shift in range(17):
        base = T * n_in + 1 + shift
        s = np.zeros(base + size, dtype)
        s[:T * n_in] = x
        s[T * n_in] = T  # the length
        wh, wi = rec.transposed_offsets(GRU, H, 1, T, n_in, base, s)
        assert (s.ctypes.data + wh * s.itemsize) % PANEL_VECTOR_BYTES == 0
        assert wi - G * H * H - rec.ALIGN_ROOM <= wh <= wi - G * H * H
        rec.forward_direction(GRU, TANH, False, s, 0, n_in, params, 0, H, 1, T, T * n_in, base)
        states.append(s[base:base + T * H].copy())
    assert np.abs(states[0]).max() > 0.1
    for h in states[1:]:
        np.testing.assert_array_equal(h, states[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(2, 3, 64), (4, 64, 192), (7, 17, 200), (9, 40, 64),
                                   (5, 8, 13), (16, 64, 192), (3, 0, 70)])
@pytest.mark.parametrize("acc", [False, True])
def test_rows_times_matches_numpy_and_row_times_bit_for_bit(dtype, m, k, n, acc):
    """The multi-row blocks (rows of A, B and C with strides wider than the product, at odd
    offsets in one vector, as the recurrent steps call them): NumPy's product, and bit for
    bit what row_times gives row by row (full blocks of MR rows, leftover rows, and the
    columns past the last 512-bit block)."""
    rng = np.random.default_rng(m * 10000 + k * 100 + n)
    lda, ldb, ldc = k + 3, n + 5, n + 2
    ao, bo = 5, 7 + m * lda
    co = bo + k * ldb + 1
    s = rng.normal(size=co + m * ldc + 4).astype(dtype)
    A = np.lib.stride_tricks.as_strided(s[ao:], (m, k), (lda * s.itemsize, s.itemsize))
    B = np.lib.stride_tricks.as_strided(s[bo:], (k, n), (ldb * s.itemsize, s.itemsize))
    C = np.lib.stride_tricks.as_strided(s[co:], (m, n), (ldc * s.itemsize, s.itemsize))
    expect = A.astype(np.float64) @ B.astype(np.float64) + (C.astype(np.float64) if acc else 0)
    rowwise = s.copy()
    for i in range(m):  # the reference: row_times on a contiguous copy of B
        plain = np.concatenate([rowwise[ao + i * lda:ao + i * lda + k],
                                np.ascontiguousarray(B).ravel(),
                                rowwise[co + i * ldc:co + i * ldc + n]])
        row_times(plain, 0, plain, k, plain, k + k * n, n, k, acc)
        rowwise[co + i * ldc:co + i * ldc + n] = plain[k + k * n:]
    before = s.copy()
    rows_times(s, ao, lda, m, s, bo, ldb, s, co, ldc, n, k, acc)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(C, expect, rtol=tol, atol=tol * max(k, 1))
    np.testing.assert_array_equal(s, rowwise)  # the same bits, and nothing else written
    outside = np.ones(s.size, bool)
    for i in range(m):
        outside[co + i * ldc:co + i * ldc + n] = False
    np.testing.assert_array_equal(s[outside], before[outside])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(512, 16, 600), (64, 128, 300), (37, 70, 513), (16, 8, 20),
                                   (5, 13, 3), (20, 64, 0), (33, 24, 257)])
@pytest.mark.parametrize("acc", [False, True])
def test_tn_times_matches_numpy_and_the_column_loops_bit_for_bit(dtype, m, n, k, acc):
    """C [+]= A^T B in passes of KC rows (k both above and below a pass), with every column
    kind (512-bit strips and single vectors, 256-bit vectors, scalars) and leftover rows:
    NumPy's product, and bit for bit the column-by-column loops (col_times), at offsets in
    one vector."""
    rng = np.random.default_rng(m * 7 + n * 5 + k)
    ao, bo = 3, 4 + k * m
    co = bo + k * n + 2
    s = rng.normal(size=co + m * n + 3).astype(dtype)
    A = s[ao:ao + k * m].reshape(k, m).astype(np.float64)
    B = s[bo:bo + k * n].reshape(k, n).astype(np.float64)
    expect = A.T @ B + (s[co:co + m * n].reshape(m, n).astype(np.float64) if acc else 0)
    loops = s.copy()
    for i in range(m):
        col_times(loops, ao + i, m, loops, bo, n, loops, co + i * n, n, k, acc)
    tn_times(s, ao, s, bo, s, co, m, n, k, acc)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(s[co:co + m * n].reshape(m, n), expect, rtol=tol,
                               atol=tol * max(k, 1) ** 0.5 * 4)
    np.testing.assert_array_equal(s, loops)
