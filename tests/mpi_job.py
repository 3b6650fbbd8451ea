"""Run under mpiexec by tests/test_distributed.py: ``mpiexec -n 2 python mpi_job.py CASE OUT``."""
import sys

import numpy as np
from mpi4py import MPI

import fastbp
from fastbp import distributed
from mpi_cases import options_case, options_network, recurrent_case

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
elif case in ("options", "empty_shard"):
    # every fit option at once, or one rank without rows: the result must be one rank's
    X, y, kw = options_case()
    if case == "options":
        idx = shard(96, 16)
        kw["batch_size"] = 16 // comm.size
        Xv, yv = kw.pop("validation_data")
        half = len(Xv) // comm.size  # each rank validates its own part
        kw["validation_data"] = (Xv[comm.rank * half:(comm.rank + 1) * half],
                                 yv[comm.rank * half:(comm.rank + 1) * half])
    else:
        idx = np.arange(96) if comm.rank == 0 else np.arange(0)
        kw["batch_size"] = 16
    net = options_network()
    seen = []
    history = distributed.fit(net, X[idx], y[idx], sample_weight=kw.pop("sw")[idx],
                              callbacks=[lambda n, logs: seen.append(logs["epoch"]) or
                                         logs["epoch"] >= 7], **kw)
    gathered = comm.gather(net.params.copy(), root=0)
    if comm.rank == 0:
        assert all(np.array_equal(g, gathered[0]) for g in gathered), "ranks differ"
        np.savez(out, params=net.params, loss=history.loss, val_loss=history.val_loss,
                 stop=history.stop_reason, best=history.best_epoch, seen=seen,
                 lr=history.learning_rate)
elif case == "recurrent":
    net, X, y, lens, (Xv, yv, _, lv), kw = recurrent_case()
    idx = shard(96, 16)
    half = len(Xv) // comm.size
    part = slice(comm.rank * half, (comm.rank + 1) * half)
    history = distributed.fit(net, X[idx], y[idx], lengths=lens[idx], batch_size=8,
                              sample_weight=kw.pop("sw")[idx],
                              validation_data=(Xv[part], yv[part], None, lv[part]), **kw)
    gathered = comm.gather(net.params.copy(), root=0)
    if comm.rank == 0:
        assert all(np.array_equal(g, gathered[0]) for g in gathered), "ranks differ"
        np.savez(out, params=net.params, loss=history.loss, val_loss=history.val_loss,
                 val_score=history.val_score)
elif case == "batch_norm":
    # per-rank batch statistics (as DDP without SyncBatchNorm); every rank ends with the same
    # weights and rank 0's running statistics
    X, y = equivalence_data()
    net = fastbp.Network([5, fastbp.Dense(8, "relu", normalization="batch"), 3],
                         dtype=np.float64, seed=0)
    idx = shard(96, 16)
    distributed.fit(net, X[idx], y[idx], epochs=3, batch_size=8, optimizer="adam", seed=1)
    params = comm.gather(net.params.copy(), root=0)
    buffers = comm.gather(net.buffers.copy(), root=0)
    if comm.rank == 0:
        assert all(np.array_equal(p, params[0]) for p in params), "ranks' weights differ"
        assert all(np.array_equal(b, buffers[0]) for b in buffers), "ranks' statistics differ"
        assert np.isfinite(net.params).all() and net.buffers[:8].any()
        np.save(out, net.buffers)
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
