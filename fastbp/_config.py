"""Compilation settings shared by every kernel (one place, as STUMPY keeps its fastmath set).

``FASTMATH`` is LLVM's fast-math flag set *without* ``nnan`` and ``ninf``: the kernels may
reassociate sums (so reductions vectorize) and contract multiply-adds, but they still see NaN
and inf, so a diverging training run is detected instead of being optimized away.
"""

from ._cache import kernel_cache_setting

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Keyword arguments for every ``@njit`` kernel: the fast-math set above, and cached on disk
#: (so a new process loads machine code instead of compiling it) when Numba has a writable
#: cache directory for the kernels; decided once, here, before any kernel module is imported
#: (see :mod:`fastbp._cache`; without one they compile in memory, with a warning).
JIT = dict(cache=kernel_cache_setting(), fastmath=FASTMATH, nogil=True, error_model="numpy")
