"""How many threads BLAS may use during a training run.

OpenBLAS splits even small matrix products over all cores and its worker threads busy-wait
for work.  On a machine where another process holds a core (a shared CI runner, a grid search
with several jobs, MPI ranks), a two-thread product of a few hundred thousand multiply-adds
then waits for a descheduled worker: a 64-64-10 network's epoch took 72 ms instead of 0.6 ms
(measured here with a second busy process).  Products that small gain nothing from a second
thread anyway, so fit runs them single-threaded; big ones keep every BLAS thread.
"""
import contextlib

#: per-batch multiply-adds of the largest layer product from which BLAS keeps its threads
#: (below it one thread is as fast, measured in the closing notes of the speed issue)
BLAS_THREADS_MIN_MACS = 1 << 23


def largest_product(layout, rows):
    """Multiply-adds of the biggest (rows x n_in x n_out) product of one batch."""
    sizes = layout.sizes
    return rows * max(a * b for a, b in zip(sizes[:-1], sizes[1:]))


@contextlib.contextmanager
def blas_threads_for(layout, rows):
    """Limit BLAS to one thread when this network's batch products are small (nothing to
    do when they are so small that the kernels use their own loops, or so big that threads
    pay)."""
    from .kernels.forward import BLAS_MIN_MACS
    largest = largest_product(layout, rows)
    if largest >= BLAS_THREADS_MIN_MACS or rows == 1 or largest < BLAS_MIN_MACS:
        yield
        return
    try:
        # the BLAS that Numba's np.dot calls must be loaded for threadpoolctl to see it
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - both are dependencies
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
