"""Reference-count-free array views for use inside a kernel.

Numba reference-counts arrays: every jitted function increments the count of each array
argument on entry and decrements it on exit, with atomic instructions.  In online training a
sample passes through a dozen small functions with several arrays each, and those atomics
took about half of the time.  :func:`borrow` returns the same array with no memory-info
pointer, so the reference-count calls on it (and on every slice of it) reduce to a null check.

Only for use inside a kernel whose caller keeps the original arrays alive for the whole call,
and never for an array the kernel returns or stores.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array


@intrinsic
def borrow(typingctx, arr):
    """``arr`` without its reference count (see the module docstring)."""
    if not isinstance(arr, types.Array):
        return None
    return arr(arr), _unowned


def _unowned(context, builder, sig, args):
    """The array argument as an array of the return type with no memory-info pointer."""
    src = make_array(sig.args[0])(context, builder, value=args[0])
    dst = make_array(sig.return_type)(context, builder)
    dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
    dst.parent = cgutils.get_null_value(dst.parent.type)
    dst.nitems = src.nitems
    dst.itemsize = src.itemsize
    dst.data = src.data
    dst.shape = src.shape
    dst.strides = src.strides
    return dst._getvalue()


@intrinsic
def borrow_readonly(typingctx, arr):
    """:func:`borrow`, typed read-only: one type for every array a kernel only reads, so that
    a callee is compiled once whether it reads the caller's read-only data or one of its
    writable buffers (a writable and a read-only array are two Numba types, two
    compilations)."""
    if not isinstance(arr, types.Array):
        return None
    return arr.copy(readonly=True)(arr), _unowned


@intrinsic
def call_address(typingctx, address, args):
    """Call the C function at ``address`` (an integer, e.g. a ``cfunc``'s ``.address``) with
    the values of the tuple ``args``, for its side effects.  Nothing checks the function's
    signature: it must take exactly ``args``' types and return nothing.  An integer costs
    nothing to pass from Python, where a ``cfunc`` object costs 17 us per call to type."""
    if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
        return None

    def codegen(context, builder, sig, llargs):
        tys = sig.args[1]
        values = [builder.extract_value(llargs[1], i) for i in range(len(tys))]
        fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in tys])
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), values)
        return context.get_dummy_value()

    return types.none(address, args), codegen


@intrinsic
def data_pointer(typingctx, arr):
    """The address of ``arr``'s first element, as a typed pointer (what a compiled C function,
    such as an update rule, takes).  The caller keeps ``arr`` alive and contiguous."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        return make_array(sig.args[0])(context, builder, value=args[0]).data

    return types.CPointer(arr.dtype)(arr), codegen
