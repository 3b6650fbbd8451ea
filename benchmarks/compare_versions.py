"""Two fastbp versions in one process, interleaved: is a change a speed regression?

    python benchmarks/compare_versions.py OLD_CHECKOUT [--workloads W1,W2,W3] [--rounds 15]

OLD_CHECKOUT is a directory holding another version's ``fastbp/`` package (e.g. a
``git worktree add /tmp/old <commit>``).  It is copied (without caches) to a temporary
directory as the package ``fastbp_old``, so both versions load side by side; the workloads
and initial weights come from this checkout's :mod:`fastbp.bench`.  Each round trains one
epoch of each workload with each version, alternating, and times one-row predictions; the
report gives medians and the median of the paired new/old ratios, which a shared machine's
drifting speed (here: 2x over minutes) affects far less than separate runs.  Each epoch is
reported twice: the wall time of ``fit(epochs=1)`` (with fit's set-up: checks, buffers,
BLAS threads) and the epoch's own ``History.seconds``, which is what the peer comparison and
``python -m fastbp bench`` time (W1's set-up is about 0.1 ms of CPU beside a 1.7 ms epoch,
but on a busy machine it can add milliseconds of wall time).  With ``--cpu`` also an
epoch's CPU seconds in the calling thread (between the ends of epochs 1 and 2 of a
two-epoch fit): on a machine that other jobs keep busy this is the steady measure of a
single-threaded workload (W1, or W2/W3 under ``OPENBLAS_NUM_THREADS=1``).
"""
import argparse
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np


def load_old(checkout):
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fastbp-old-"))
    shutil.copytree(pathlib.Path(checkout) / "fastbp", tmp / "fastbp_old",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp))
    import fastbp_old
    return fastbp_old


def network(mod, wl, init):
    net = mod.Network(wl["sizes"], hidden_activation=wl["hidden"], output="softmax",
                      dtype=np.float32, seed=0)
    for W, b, (W0, b0) in zip(net.weights, net.biases, init):
        W[:] = W0
        b[:] = b0
    return net


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="directory with the other version's fastbp/ package")
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--cpu", action="store_true",
                   help="also time one epoch in CPU seconds of the calling thread: steady "
                        "where other processes share the cores (wall times then move 3x "
                        "between rounds), but it misses BLAS worker threads, so for W2/W3 "
                        "run it under OPENBLAS_NUM_THREADS=1")
    args = p.parse_args(argv)
    import fastbp
    from fastbp import bench
    versions = {"old": load_old(args.old), "new": fastbp}
    print(f"old: {versions['old'].__file__}\nnew: {fastbp.__file__}")
    for name in args.workloads.split(","):
        wl = bench.WORKLOADS[name]
        X, Y = bench.workload_data(wl)
        init = bench.workload_init(wl)
        nets = {k: network(m, wl, init) for k, m in versions.items()}
        kw = dict(batch_size=wl["batch_size"], optimizer=wl["optimizer"],
                  learning_rate=wl["learning_rate"])
        for net in nets.values():  # compile or load the kernels
            net.fit(X, Y, epochs=1, seed=0, **kw)
        rounds = args.rounds if name == "W1" else max(3, args.rounds // 3)
        rate = {k: [] for k in nets}
        epoch = {k: [] for k in nets}
        cpu = {k: [] for k in nets}
        for r in range(rounds):
            for k, net in nets.items():
                t = time.perf_counter()
                history = net.fit(X, Y, epochs=1, seed=r, **kw)
                rate[k].append(X.shape[0] / (time.perf_counter() - t))
                epoch[k].append(X.shape[0] / history.seconds[-1])
                if args.cpu:  # this thread's CPU time from the end of epoch 1 to that of 2
                    marks = []
                    net.fit(X, Y, epochs=2, seed=r, **kw,
                            callbacks=[lambda net, logs: marks.append(time.thread_time())])
                    cpu[k].append(X.shape[0] / (marks[1] - marks[0]))
        measures = [("fit(epochs=1)", rate), ("epoch (History.seconds)", epoch)]
        if args.cpu:
            measures.append(("epoch (thread CPU time)", cpu))
        for what, r in measures:
            old, new = np.array(r["old"]), np.array(r["new"])
            print(f"{name} {what}: old {np.median(old) / 1e3:.4g} k samples/s, new "
                  f"{np.median(new) / 1e3:.4g} k samples/s, new/old paired median "
                  f"{np.median(new / old):.3f} ({rounds} rounds)")
    wl = bench.WORKLOADS["W1"]
    X, _ = bench.workload_data(wl)
    x = np.ascontiguousarray(X[:1])
    nets = {k: network(m, wl, bench.workload_init(wl)) for k, m in versions.items()}
    secs = {k: [] for k in nets}
    for net in nets.values():
        net.predict_proba(x)
    for _ in range(args.rounds * 2):
        for k, net in nets.items():
            t = time.perf_counter()
            for _ in range(2000):
                net.predict_proba(x)
            secs[k].append((time.perf_counter() - t) / 2000)
    old, new = np.array(secs["old"]), np.array(secs["new"])
    print(f"predict one row (W1 net): old {np.median(old) * 1e6:.3g} us, new "
          f"{np.median(new) * 1e6:.3g} us, new/old paired median {np.median(new / old):.3f}")


if __name__ == "__main__":
    main()
