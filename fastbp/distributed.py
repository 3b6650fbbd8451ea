"""Synchronous data-parallel training over MPI (mpi4py): one Allreduce of the flat gradient
per step.

Each rank holds its own shard of the data and starts from rank 0's parameters (broadcast).
Every step each rank computes, with the compiled kernels, the gradient *sum* over its next
``batch_size`` rows; one in-place ``Allreduce`` adds the gradient sums of all ranks, their
loss sums and their sample-weight sums (one buffer: the flat gradient plus two numbers), and
every rank divides by the total weight and applies the same optimizer step.  The epoch loop
is fastbp's one trainer (:func:`fastbp.training.fit`); this module is only how its
gradients are reduced: every ``fit`` option works here too (schedules, callbacks, monitors,
``restore_best``, ``warm_start``, dropout, sample weights, checkpoints, normalization layers).

Normalization layers: batch norm normalizes each rank's rows by that rank's own batch
statistics, as PyTorch's DistributedDataParallel does without SyncBatchNorm, and after every
epoch the running statistics are rank 0's (broadcast, as DDP's ``broadcast_buffers``).
Layer norm is per sample, so it is exactly what one rank would compute.

Validation: each rank evaluates its own validation rows (``validation_data`` on any rank,
or ``validation_fraction`` of each shard); the losses and scores are combined over all
ranks' rows, so every rank sees the same logs and takes the same decisions.  Dropout masks
depend on the seed, the update number, the layer and the position of the row in the global
batch (the ranks' rows in rank order), so 2 ranks draw the masks one rank would.  So a step of
P ranks with b rows each equals one step on the P*b rows of the global mini-batch, whatever
the ranks' shares are (a rank whose shard is used up contributes zeros).

Install with ``pip install fastbp[mpi]`` (mpi4py and the ``mpich`` wheel, which brings
``mpiexec``), then run ``mpiexec -n 2 python examples/distributed_train.py``.

When it pays (measured in the README): a step moves 4 bytes (float32) per parameter twice
through the network (reduce and broadcast halves of the Allreduce) and computes about 6
FLOPs per parameter per row.  With P parameters, B rows per step in total, R ranks,
per-rank speed F (FLOP/s) and link bandwidth W (bytes/s), a step takes about
6 P B / (R F) + 2 * 4 P (R - 1) / (R W) + latency, against 6 P B / F on one rank: more
ranks help when the batch is big enough that 6 B / F >> 8 / W, i.e. B >> 4 F / (3 W) rows.
"""
import sys
import time
import traceback

import numpy as np

from .training import fit as _fit

#: seconds a failing rank waits between writing its traceback and MPI_Abort
ABORT_GRACE_SECONDS = 1.0


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - exercised where mpi4py is missing
        raise ImportError("fastbp.distributed needs mpi4py and an MPI library: "
                          "pip install 'fastbp[mpi]'") from e
    return MPI


def abort_on_error(comm=None):
    """Make an uncaught exception on any rank abort the whole job (``MPI_Abort``) instead of
    leaving the other ranks waiting forever in a collective.  ``fit`` installs it."""
    MPI = _mpi()
    comm = comm or MPI.COMM_WORLD
    if comm.size == 1 or getattr(sys.excepthook, "_fastbp_abort", False):
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        if previous is sys.__excepthook__:  # the whole report in one write, not line by line
            sys.stderr.write("".join(traceback.format_exception(kind, value, tb)))
        else:
            previous(kind, value, tb)
        sys.stdout.flush()
        sys.stderr.flush()
        # MPI_Abort tears the job down at once, and mpiexec may drop what it has not yet
        # forwarded from this rank's pipes: a test run under load once got only the first
        # line of the traceback.  A moment's wait lets the report through.
        time.sleep(ABORT_GRACE_SECONDS)
        comm.Abort(1)

    hook._fastbp_abort = True
    sys.excepthook = hook


class MPIReducer:
    """The trainer's reducer over an MPI communicator (see :class:`fastbp.training.
    LocalReducer` for the interface)."""

    def __init__(self, comm):
        self.MPI = _mpi()
        self.comm = comm
        self.size = comm.size
        self.rank = comm.rank

    def sum(self, buf):
        mpi_type = self.MPI.FLOAT if buf.dtype == np.float32 else self.MPI.DOUBLE
        self.comm.Allreduce(self.MPI.IN_PLACE, [buf, mpi_type], op=self.MPI.SUM)

    def gather(self, obj):
        return self.comm.allgather(obj)

    def any(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self.MPI.LOR))

    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def bcast_array(self, arr):
        if arr.size:
            self.comm.Bcast(arr, root=0)

    def start(self, net, signature):
        """Every rank must train the same network the same way: a clear error on every rank
        (from one collective, so no rank is left waiting) when they differ; then every rank
        takes rank 0's parameters and buffers."""
        sigs = self.comm.allgather(signature())
        differ = sorted({k for s in sigs for k in s if s.get(k) != sigs[0].get(k)})
        if differ:
            details = "; ".join(f"{k}: " + ", ".join(f"rank {r}={s.get(k)!r}"
                                                    for r, s in enumerate(sigs))
                                for k in differ)
            raise ValueError(f"MPI ranks disagree on {', '.join(differ)} ({details})")
        self.bcast_array(net.params)
        self.bcast_array(net.buffers)

    def warm(self, compile_kernels):
        """Compile (or load) the kernels on rank 0 first: ranks that write Numba's on-disk
        cache index at the same time can corrupt it."""
        for turn in (0, 1):
            if (self.rank == 0) == (turn == 0):
                compile_kernels()
            self.comm.Barrier()


def fit(net, X, y, *, comm=None, **options):
    """Data-parallel training of ``net`` on this rank's shard (X, y); call it on every rank.

    Takes every option of :func:`fastbp.training.fit`.  ``batch_size`` is the number of rows
    each rank contributes per step (a step's global batch is the sum over ranks; a rank whose
    shard is used up, or empty, contributes nothing).  ``seed`` seeds every rank's shuffling
    (rank r shuffles its shard with its own stream) and the dropout masks (the same key on
    every rank); ``seed=None`` takes rank 0's fresh entropy.  ``checkpoint``: rank 0 saves
    the network there after every epoch.  At the end every rank holds the same weights and
    returns the same :class:`~fastbp.History`.
    """
    MPI = _mpi()
    comm = comm or MPI.COMM_WORLD
    abort_on_error(comm)
    if "reducer" in options:
        raise TypeError("fit() got an unexpected keyword argument 'reducer'")
    return _fit(net, X, y, reducer=MPIReducer(comm), **options)
