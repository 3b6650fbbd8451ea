"""``gemm``: C = alpha * A @ B + beta * C through BLAS: every matrix product of the kernels.

Numba's ``np.dot`` always overwrites its output (beta = 0, alpha = 1).  With alpha and beta
a plain SGD step becomes part of the gradient product itself, W <- W - lr * delta^T a, so the
gradient of a big layer is never written to memory and read back (no gradient buffer, no
separate update pass).

The call goes to the Fortran ``sgemm``/``dgemm`` whose addresses :mod:`fastbp._blas` keeps
in the table ``fastbp_gemm_table``, resolved by name when cached code is loaded: SciPy's
BLAS (the one ``np.dot`` calls) by default, or MKL after ``fastbp.set_blas("mkl")``.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.arrayobj import make_array
from numba.np.linalg import ensure_blas, ll_char, ll_void_p

from .._blas import TABLE_SYMBOL


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
        # Fortran calling convention: every argument by address, 32-bit integers (LP64)
        i32 = ir.IntType(32)
        fty = context.get_value_type(dtype)

        def by_ref(value, ty):
            return builder.bitcast(cgutils.alloca_once_value(builder, value), ty.as_pointer())

        def int_ref(value):
            return cgutils.alloca_once_value(builder, builder.trunc(value, i32))

        fnty = ir.FunctionType(ir.VoidType(), [ll_char.as_pointer()] * 2 + [i32.as_pointer()] * 3
                               + [fty.as_pointer(), ll_void_p, i32.as_pointer(), ll_void_p,
                                  i32.as_pointer(), fty.as_pointer(), ll_void_p,
                                  i32.as_pointer()])
        table_type = ir.ArrayType(ll_void_p, 2)
        table = builder.module.globals.get(TABLE_SYMBOL)
        if table is None:
            table = ir.GlobalVariable(builder.module, table_type, TABLE_SYMBOL)
            table.linkage = "external"
        slot = builder.gep(table, [ir.Constant(i32, 0),
                                   ir.Constant(i32, 0 if dtype.bitwidth == 32 else 1)])
        fn = builder.bitcast(builder.load(slot), fnty.as_pointer())
        builder.call(fn, (by_ref(transa, ll_char), by_ref(transb, ll_char), int_ref(n),
                          int_ref(m), int_ref(k), builder.bitcast(alpha_slot, fty.as_pointer()),
                          data_a, int_ref(lda), data_b, int_ref(ldb),
                          builder.bitcast(beta_slot, fty.as_pointer()), data_c, int_ref(ldc)))
        return context.get_dummy_value()

    return types.none(alpha, A, B, beta, C), codegen
