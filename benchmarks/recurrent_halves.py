"""What the second core could give one recurrent batch: two networks trained at once on half
batches each (``fastbp.fit_many``, two worker threads, BLAS on one thread per network)
against one network on whole batches, on issue 10's R1 or R3.

    python benchmarks/recurrent_halves.py [R1|R3] [--rounds 5]

Prints the sequences per second of one network (batch B), of one network with batch B/2, and
of the pair (both networks' sequences over the wall time), and the paired ratio pair / one.
Splitting every batch over the cores inside the epoch kernel could reach about that ratio.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", nargs="?", default="R1", choices=("R1", "R3"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fastbp
    from peers import recurrent as R

    wl = R.WORKLOADS[args.workload]
    X, Y = R.workload_data(args.workload)
    init = R.workload_init(args.workload)
    B, E = wl["batch_size"], args.epochs
    opts = dict(optimizer=wl["optimizer"], learning_rate=wl["learning_rate"], shuffle=False,
                seed=0, epochs=E)

    def one(batch):
        net = R.fastbp_network(wl, init)
        t0 = time.perf_counter()
        net.fit(X, Y, batch_size=batch, **opts)
        return E * len(X) / (time.perf_counter() - t0)

    def pair():
        nets = [R.fastbp_network(wl, init) for _ in range(2)]
        t0 = time.perf_counter()
        fastbp.fit_many(nets, X, Y, batch_size=B // 2, n_jobs=2, **opts)
        return 2 * E * len(X) / (time.perf_counter() - t0)

    one(B), pair(), one(B // 2)  # load (or compile) the kernels
    rates = {"one network, batch B": [], "one network, batch B/2": [],
             "two networks at once, B/2 each": []}
    for _ in range(args.rounds):
        rates["one network, batch B"].append(one(B))
        rates["two networks at once, B/2 each"].append(pair())
        rates["one network, batch B/2"].append(one(B // 2))
    print(f"{args.workload} (B = {B}), sequences/s, median of {args.rounds} rounds:")
    for k, v in rates.items():
        print(f"  {k:32s} {statistics.median(v):9.0f}")
    r = [b / a for a, b in zip(rates["one network, batch B"],
                                rates["two networks at once, B/2 each"])]
    print(f"  pair / one (paired): median {statistics.median(r):.2f}, "
          f"range {min(r):.2f}-{max(r):.2f}")


if __name__ == "__main__":
    main()
