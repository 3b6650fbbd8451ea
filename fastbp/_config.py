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

# Every kernel is cached, including those only other kernels call, although Numba links a
# callee's IR into each caller and caches it inside the caller's machine code.  Not caching
# the callees made a first compile of the demo 0.9x as long, but the test suite 1.25x as long
# (1,261 s against 1,013 s, two clean-clone CI runs side by side, 2026-11-29): a process that
# compiles a new entry point (another process's kernels, a recurrent fit after a dense one)
# loads its callees from the cache instead of compiling them again.

#: for small helpers that must be inlined where they are called (Numba-level inlining, so
#: that a constant argument such as an activation code folds their branches away)
JIT_INLINE = dict(JIT, inline="always")

#: multiply-adds (rows * n_in * n_out) from which a dense layer's products go to BLAS; below
#: it the hand-written loops, which avoid BLAS's call and packing overhead, are as fast or
#: faster (measured on one OpenBLAS thread, float32: 4x64x32 0.7 us both; 8x64x32 loops
#: 1.5 us, BLAS 1.0 us; 16x64x32 1.8 vs 1.3 us).  One row never goes to BLAS.
BLAS_MIN_MACS = 1 << 13

#: the largest right-hand operand (bytes) of a per-step recurrent product of a batch that
#: goes to the register-blocked ``rowvec.rows_times`` instead of BLAS.  Below it, W_hh^T (or
#: W_hh) stays in the L1/L2 cache while the batch's rows pass over it, and the blocks beat
#: OpenBLAS, which packs both operands at every call (float32, one thread: 32x128 @ 128x512,
#: 256 KB, 23-26 us against 48-54 us).  Above it, BLAS's cache blocking wins (64x512 @
#: 512x2048, 4 MB: 2.6 ms against 1.5 ms).
ROWS_MAX_BYTES = 1 << 18

#: per-batch multiply-adds of the largest layer product from which BLAS keeps all its threads
#: (see fastbp/_threads.py)
BLAS_THREADS_MIN_MACS = 1 << 23

#: multiply-adds of a recurrent layer's per-step product (batch x gates*units x units) from
#: which BLAS keeps all its threads: the per-step products are called once per step, so they
#: decide (measured on 2 cores, quiet: R3's 64x512x128 = 4.2 M ran 1.30x faster on two
#: threads, R1's 32x192x64 = 0.39 M 0.96x; identical bits either way)
BLAS_THREADS_MIN_STEP_MACS = 1 << 21

#: sequences per batch from which a recurrent network's training splits every batch in two
#: halves computed at once on two cores (:func:`fastbp.kernels.sequence.train_epoch`); the
#: bits depend on this split, never on the number of cores (one core computes the halves in
#: turn).  Below it, one thread does the whole batch.
SPLIT_MIN_BATCH = 16

#: rows per chunk when a whole data set goes through the kernels (evaluation, full batch)
CHUNK_ROWS = 1024

#: rows per chunk of the prediction kernel
PREDICT_CHUNK = 256

#: multiply-adds (about rows x parameters) of one compiled slice of a training epoch: Python
#: checks for Ctrl-C between slices (about 10-50 ms of work each on this machine's cores)
EPOCH_SLICE_MACS = 1 << 27

#: elements per np.isfinite call when scanning a big array (keeps the temporary small)
FINITE_CHUNK = 1 << 16

# --- model files (fastbp/io.py): nothing is inflated or allocated before the sizes a file
# declares agree with each other and with its size; these bound what a hostile file can ask
#: largest header member (the JSON plus its .npy header)
MODEL_HEADER_MAX_BYTES = 1 << 20
#: deepest nesting of JSON arrays/objects in the header
MODEL_JSON_MAX_DEPTH = 64
#: longest integer / float literal in the header
MODEL_JSON_MAX_INT_DIGITS = 40
MODEL_JSON_MAX_FLOAT_CHARS = 64
#: deflated members (np.savez_compressed) may hold at most this many times the file's size
MODEL_MAX_INFLATION = 16
#: largest optimizer step count: far beyond any training run, and safe in the int64 counter
MODEL_MAX_STEPS = 2 ** 53
#: bytes read per call when a member is read
MODEL_READ_CHUNK = 1 << 20

# --- the command line (fastbp/cli.py) -------------------------------------------------------
#: rows per float chunk while a CSV file is read (the file is never held as strings)
CSV_CHUNK_ROWS = 4096
#: most distinct values a CSV target column may have to be read as class labels
CSV_MAX_CLASSES = 1 << 16

# --- network sizes: bound before anything is allocated from them (a size typed on the command
# line or passed to Network) ------------------------------------------------------------------
#: most units of one layer
MAX_UNITS = 2 ** 31
#: most parameters of a network (8 GiB as float32)
MAX_PARAMS = 2 ** 31
