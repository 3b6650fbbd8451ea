"""How many threads BLAS may use for fastbp's matrix products.

OpenBLAS splits even small matrix products over all cores and its worker threads busy-wait
for work.  On a machine where another process holds a core (a shared CI runner, a grid search
with several jobs, MPI ranks), a two-thread product of a few hundred thousand multiply-adds
then waits for a descheduled worker: a 64-64-10 network's epoch took 72 ms instead of 0.6 ms
(measured here with a second busy process), and predicting 1000 rows swung from 0.2 to 23 ms.
Products below ``BLAS_THREADS_MIN_MACS`` gain nothing from a second thread (measured: a
64x256x128 product takes 44 us on one thread, 41 us on two; 64x784x256 237 us vs 163 us),
so fastbp runs them single-threaded; big ones keep every BLAS thread.  For a recurrent layer
the per-step product ``h W_hh^T`` decides (``BLAS_THREADS_MIN_STEP_MACS``): it is called once
per time step, and from about 2 M multiply-adds (R3's 64x512x128) a second thread pays.  Only while fastbp's
own kernels run: the setting is restored afterwards.

From any thread: threadpoolctl (3.8 and later) lets only one Python thread, the first to set
OpenBLAS's thread count, change it and silently ignores the others, so after one ``fit`` in
the main thread the switch did nothing in worker threads: two ``fit_many`` workers then ran
their small products on two BLAS threads each, and two half-batch R1 trainings at once
reached 0.65x the throughput of one instead of about 2x.  :func:`_set_threads` hands that
control back after every change (fastbp's own changes are serialized by the switch's lock).
"""
import contextlib
import threading

from ._config import BLAS_MIN_MACS


def _set_threads(lib, n):
    """``lib.set_num_threads(n)`` from whichever thread calls it (see the module docstring)."""
    clear = getattr(type(lib), "clear_controlling_thread", None)  # threadpoolctl >= 3.8
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n)
    if clear is not None:
        clear(force=True)


class _OneThread:
    """Re-entrant, thread-safe "BLAS on one thread" switch (threadpoolctl's controllers,
    looked up once; entering and leaving costs a few microseconds)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._libs = None
        self._saved = []

    def _controllers(self):
        if self._libs is None:
            try:
                # the BLAS that Numba's np.dot calls must be loaded for threadpoolctl to see it
                import scipy.linalg.cython_blas  # noqa: F401
                from threadpoolctl import ThreadpoolController
                self._libs = ThreadpoolController().select(user_api="blas").lib_controllers
            except Exception:  # pragma: no cover - both are dependencies
                self._libs = []
        return self._libs

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                libs = self._controllers()
                self._saved = [lib.num_threads for lib in libs]
                for lib in libs:
                    _set_threads(lib, 1)
            self._depth += 1

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in zip(self._libs, self._saved):
                    _set_threads(lib, n)


_ONE_THREAD = _OneThread()

#: ``_SHARED.cores`` is set in threads that share the machine with other trainings
#: (``fit_many``'s workers): a fit there keeps to one core
_SHARED = threading.local()


def sharing_cores():
    """Mark the calling thread as one of several training at once."""
    _SHARED.cores = True


def cores_for_one_fit():
    """Cores one fit in this thread may use for itself: 1 in ``fit_many``'s workers, else
    the cores this process may run on."""
    if getattr(_SHARED, "cores", False):
        return 1
    from .many import cpu_count
    return cpu_count()


def forget_blas_libraries():
    """Look the BLAS libraries up again at the next switch (after :func:`fastbp.set_blas`
    loaded another one)."""
    with _ONE_THREAD._lock:
        if _ONE_THREAD._depth == 0:
            _ONE_THREAD._libs = None


def blas_threads_for(layout, rows):
    """A context that limits BLAS to one thread when this network's products for batches of
    ``rows`` rows use BLAS but are small (nothing to do when the kernels use their own loops
    for them, or when they are big enough for threads to pay)."""
    if (rows > 1 and layout.largest_product(rows) >= BLAS_MIN_MACS
            and not layout.uses_all_blas_threads(rows)):
        return _ONE_THREAD
    return contextlib.nullcontext()
