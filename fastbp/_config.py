"""Compilation settings shared by every kernel (one place, as STUMPY keeps its fastmath set).

``FASTMATH`` is LLVM's fast-math flag set *without* ``nnan`` and ``ninf``: the kernels may
reassociate sums (so reductions vectorize) and contract multiply-adds, but they still see NaN
and inf, so a diverging training run is detected instead of being optimized away.
"""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Keyword arguments for every ``@njit`` kernel: cached on disk, so a new process loads
#: machine code instead of compiling it, and the fast-math set above.
JIT = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
