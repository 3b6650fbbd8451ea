"""Two threads meeting inside compiled code: the barrier of a batch split over two cores.

:func:`.sequence.train_epoch` runs in two threads at once (one per half of every batch); at
the end of each half's backward pass the two meet (:func:`meet`), one adds the halves'
gradients and updates, and they meet again before the next batch reads the parameters.

The barrier is a counter in a shared int64 array: each arrival adds one (an atomic
read-modify-write, sequentially consistent), and a party waits until the counter reaches
``episode * parties`` (atomic loads with acquire ordering, so that everything the other
thread wrote before arriving is visible after).  Waiting spins with the CPU's pause hint,
then yields the core (``sched_yield``) so that a descheduled partner on a busy machine gets
it.  ``sync[ABORT]`` non-zero ends every wait at once (the caller sets it when the other
thread could not start): :func:`meet` then returns False.

``sched_yield`` is called by name (``fastbp_sched_yield``, registered with LLVM below as
:mod:`fastbp._blas` registers its table), so cached machine code holds no address.
"""
import ctypes
import ctypes.util
import platform

from llvmlite import binding, ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from .._config import JIT

#: sync[COUNTER]: arrivals so far; sync[ABORT]: non-zero ends every wait (own cache lines)
COUNTER = 0
ABORT = 8
#: int64 values of a sync array
SYNC_SIZE = 16
#: busy-wait rounds (with the pause hint) before a waiting thread starts yielding its core
SPINS = 1 << 12

YIELD_SYMBOL = "fastbp_sched_yield"


def _register():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    fn = getattr(libc, "sched_yield", None)
    if fn is None:  # pragma: no cover - not a POSIX C library: yield nothing
        global _noop
        _noop = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 0)
        fn = _noop
    binding.add_symbol(YIELD_SYMBOL, ctypes.cast(fn, ctypes.c_void_p).value)


_register()


def _check_sync(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.int64):
        raise TypingError("sync arrays are 1-D int64")


def _element(context, builder, arr_ty, arr, index_ty, index):
    data = make_array(arr_ty)(context, builder, arr).data
    return builder.gep(data, [context.cast(builder, index, index_ty, types.int64)])


@intrinsic
def atomic_add(typingctx, arr, index, value):
    """arr[index] += value atomically (sequentially consistent); returns the old value."""
    _check_sync(arr)
    sig = types.int64(arr, index, value)

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, arr, index):
    """arr[index], an atomic load with acquire ordering."""
    _check_sync(arr)
    sig = types.int64(arr, index)

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def relax(typingctx, give_up_core):
    """A pause hint (x86), or with ``give_up_core`` a ``sched_yield``."""
    sig = types.void(give_up_core)
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(ir.IntType(32), []),
                                            YIELD_SYMBOL)
        with builder.if_else(args[0]) as (then, otherwise):
            with then:
                builder.call(fn, [])
            with otherwise:
                if x86:
                    pause = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(ir.VoidType(), []),
                        "llvm.x86.sse2.pause")
                    builder.call(pause, [])
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def meet(sync, episode, parties):
    """Arrive at the barrier's ``episode``-th meeting (1, 2, ... since ``sync`` was zeroed)
    and wait for the other parties; False when ``sync[ABORT]`` was set instead."""
    atomic_add(sync, COUNTER, 1)
    target = episode * parties
    spins = 0
    while atomic_load(sync, COUNTER) < target:
        if atomic_load(sync, ABORT) != 0:
            return False
        spins += 1
        relax(spins > SPINS)
    return True
