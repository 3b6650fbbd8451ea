"""Data-parallel training over MPI: every rank trains on its own shard, one Allreduce of the
flat gradient per step.

    pip install 'fastbp[mpi]'
    mpiexec -n 2 python examples/distributed_train.py            # 2 ranks
    python examples/distributed_train.py                         # 1 rank, for comparison

Options: --sizes 784,1024,1024,10 --samples 8192 --batch 256 (global rows per step)
--epochs 3 --optimizer adam.  Prints the global training throughput on rank 0.
"""
import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # with several ranks per machine

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

import fastbp  # noqa: E402
from fastbp import distributed  # noqa: E402


def synthetic_shard(n_total, n_in, n_out, rank, size, seed=0):
    """This rank's share of a fixed synthetic classification set (a random teacher)."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(n_in, n_out))
    rows = np.arange(rank, n_total, size)
    X = np.random.default_rng([seed, 1]).random((n_total, n_in)).astype(np.float32)[rows]
    return X, (X @ teacher).argmax(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784,1024,1024,10")
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=256, help="global rows per step")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    sizes = [int(s) for s in args.sizes.split(",")]
    X, y = synthetic_shard(args.samples, sizes[0], sizes[-1], comm.rank, comm.size)
    net = fastbp.Network(sizes, hidden_activation="relu", dtype=np.float32, seed=0)
    local_batch = args.batch // comm.size
    # warm-up: load the kernels (and compile them, the first time) outside the timing
    distributed.fit(net.copy(), X[:local_batch], y[:local_batch], epochs=1,
                    batch_size=local_batch, optimizer=args.optimizer)
    comm.Barrier()
    t0 = time.perf_counter()
    history = distributed.fit(net, X, y, epochs=args.epochs, batch_size=local_batch,
                              optimizer=args.optimizer, seed=0)
    comm.Barrier()
    seconds = time.perf_counter() - t0
    if comm.rank == 0:
        rate = args.samples * args.epochs / seconds
        print(f"{comm.size} rank(s), {'-'.join(map(str, sizes))}, global batch {args.batch}: "
              f"{rate:,.0f} samples/s, loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}")


if __name__ == "__main__":
    main()
