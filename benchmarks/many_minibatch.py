"""fit_many against sequential fits for networks whose products go to BLAS: 8 networks
64-128-10, Adam, batches of 64, 5 epochs of the bundled digits tiled 4 times (7,188 rows),
paired rounds, checking that every network ends bit-identical either way.

    python benchmarks/many_minibatch.py [--rounds 5]

(The case where fit_many ran at 0.56x sequential before fastbp/_threads.py handed
threadpoolctl's control back: the workers' BLAS kept every thread.)
"""
import argparse
import statistics
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    import fastbp
    from fastbp.datasets import load_digits
    X, y = load_digits()
    X, y = np.tile(X.astype(np.float32), (4, 1)), np.tile(y, 4)

    def nets():
        return [fastbp.Network([64, 128, 10], output="softmax", seed=s) for s in range(8)]

    opts = dict(epochs=5, batch_size=64, optimizer="adam", seed=0)
    fastbp.fit_many(nets()[:2], X[:256], y[:256], **opts)  # load the kernels
    ratios = []
    for _ in range(args.rounds):
        seq = nets()
        t0 = time.perf_counter()
        for net in seq:
            net.fit(X, y, **opts)
        t_seq = time.perf_counter() - t0
        many = nets()
        t0 = time.perf_counter()
        fastbp.fit_many(many, X, y, n_jobs=2, **opts)
        t_many = time.perf_counter() - t0
        assert all(np.array_equal(a.params, b.params) for a, b in zip(seq, many))
        ratios.append(t_seq / t_many)
    print(f"8 x 64-128-10, Adam, batch 64: fit_many / sequential throughput, median "
          f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}) over "
          f"{args.rounds} paired rounds; bit-identical networks")


if __name__ == "__main__":
    main()
