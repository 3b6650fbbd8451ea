"""``gemm``: C = alpha * A @ B + beta * C through BLAS, for kernels that need more than
``np.dot``.

Numba's ``np.dot`` always overwrites its output (beta = 0, alpha = 1).  With alpha and beta
a plain SGD step becomes part of the gradient product itself, W <- W - lr * delta^T a, so the
gradient of a big layer is never written to memory and read back (no gradient buffer, no
separate update pass).  The call goes to the same BLAS as ``np.dot`` (SciPy's, through
Numba's ``numba_xxgemm`` helper, resolved by name when cached code is loaded).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.arrayobj import make_array
from numba.np.linalg import (check_blas_return, ensure_blas, get_blas_kind, intp_t, ll_char,
                             ll_void_p)


@intrinsic
def gemm(typingctx, alpha, A, B, beta, C):
    """C = alpha * A @ B + beta * C.  A and B 2-D, C- or F-contiguous; C C-contiguous; all of
    one float dtype; shapes (m, k), (k, n), (m, n) (the caller checks them)."""
    for arr in (A, B, C):
        if not isinstance(arr, types.Array) or arr.ndim != 2:
            raise TypingError("gemm takes 2-D arrays")
    if C.layout != "C" or A.layout not in "CF" or B.layout not in "CF":
        raise TypingError("gemm needs C- or F-contiguous operands and a C-contiguous output")
    if not (A.dtype == B.dtype == C.dtype) or not isinstance(C.dtype, types.Float):
        raise TypingError("gemm needs operands of one float dtype")
    ensure_blas()
    dtype = C.dtype

    def codegen(context, builder, sig, args):
        alpha_v, a_v, b_v, beta_v, c_v = args
        a = make_array(A)(context, builder, a_v)
        b = make_array(B)(context, builder, b_v)
        c = make_array(C)(context, builder, c_v)
        m, k = cgutils.unpack_tuple(builder, a.shape)
        _, n = cgutils.unpack_tuple(builder, b.shape)
        alpha_slot = cgutils.alloca_once_value(
            builder, context.cast(builder, alpha_v, sig.args[0], dtype))
        beta_slot = cgutils.alloca_once_value(
            builder, context.cast(builder, beta_v, sig.args[3], dtype))
        # BLAS is column-major: compute C^T = B^T A^T, as Numba's own np.dot does
        trans = ir.Constant(ll_char, ord("t"))
        notrans = ir.Constant(ll_char, ord("n"))

        def operand(ty, arr):
            rows, cols = cgutils.unpack_tuple(builder, arr.shape)
            return (notrans if ty.layout == "C" else trans,
                    cols if ty.layout == "C" else rows,
                    builder.bitcast(arr.data, ll_void_p))

        transa, lda, data_a = operand(B, b)
        transb, ldb, data_b = operand(A, a)
        _, ldc, data_c = operand(C, c)
        fnty = ir.FunctionType(ir.IntType(32), [ll_char, ll_char, ll_char, intp_t, intp_t,
                                                intp_t, ll_void_p, ll_void_p, intp_t,
                                                ll_void_p, intp_t, ll_void_p, ll_void_p,
                                                intp_t])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        kind = ir.Constant(ll_char, ord(get_blas_kind(dtype)))
        res = builder.call(fn, (kind, transa, transb, n, m, k,
                                builder.bitcast(alpha_slot, ll_void_p), data_a, lda, data_b,
                                ldb, builder.bitcast(beta_slot, ll_void_p), data_c, ldc))
        check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return types.none(alpha, A, B, beta, C), codegen
