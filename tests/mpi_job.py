"""Run under mpiexec by tests/test_distributed.py: ``mpiexec -n 2 python mpi_job.py CASE OUT``."""
import sys

import numpy as np
from mpi4py import MPI

import fastbp
from fastbp import distributed

comm = MPI.COMM_WORLD
case, out = sys.argv[1], sys.argv[2]


def equivalence_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(96, 5)), rng.integers(0, 3, 96)


def shard(n, global_batch):
    """This rank's rows: its half of every global mini-batch, in order."""
    half = global_batch // comm.size
    return np.concatenate([np.arange(k * global_batch + comm.rank * half,
                                     k * global_batch + (comm.rank + 1) * half)
                           for k in range(n // global_batch)])


if case in ("sgd_momentum", "adam"):
    X, y = equivalence_data()
    net = fastbp.Network([5, 8, 3], hidden_activation="tanh", dtype=np.float64, seed=0)
    opt = fastbp.SGD(0.1, momentum=0.9) if case == "sgd_momentum" else fastbp.Adam(0.01)
    idx = shard(96, 16)
    history = distributed.fit(net, X[idx], y[idx], epochs=3, batch_size=16 // comm.size,
                              optimizer=opt, shuffle=False)
    gathered = comm.gather(net.params.copy(), root=0)
    if comm.rank == 0:
        assert all(np.array_equal(g, gathered[0]) for g in gathered), "ranks differ"
        np.save(out, net.params)
elif case == "disagree":
    sizes = [5, 8, 3] if comm.rank == 0 else [5, 9, 3]
    dtype = np.float64 if comm.rank == 0 else np.float32
    net = fastbp.Network(sizes, dtype=dtype, seed=0)
    X, y = equivalence_data()
    try:
        distributed.fit(net, X, y, epochs=1)
    except ValueError as e:
        print(f"rank {comm.rank}: {e}", flush=True)
        sys.exit(3)
elif case == "raise":
    X, y = equivalence_data()
    net = fastbp.Network([5, 8, 3], dtype=np.float64, seed=0)
    if comm.rank == 1:
        distributed.abort_on_error(comm)
        raise RuntimeError("rank 1 failed while loading its shard (simulated)")
    distributed.fit(net, X, y, epochs=50)  # rank 0 would wait forever in a collective
