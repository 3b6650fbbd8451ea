"""fastbp's own throughput on the recurrent workloads of issue 10 (sequences per second,
training; and one-sequence prediction latency for R1).  The peer comparison (PyTorch, JAX)
lives elsewhere; this is the quick check of the kernels alone.

    python benchmarks/recurrent_fastbp.py [--threads N]

R1: GRU 8 -> 64, 50 steps, batch 32, Adam, 10 classes
R2: Elman tanh 8 -> 32, 20 steps, batch 1 (online SGD), 10 classes
R3: LSTM 16 -> 128, 100 steps, batch 64, Adam, 10 classes
float32, one epoch after a warm-up epoch; the best of 3 epochs is reported.
"""
import argparse
import time

import numpy as np

import fastbp

WORKLOADS = {
    "R1": (fastbp.GRU, 8, 64, 50, 32, "adam", 4096),
    "R2": (fastbp.RNN, 8, 32, 20, 1, "sgd", 4096),
    "R3": (fastbp.LSTM, 16, 128, 100, 64, "adam", 1024),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for name, (cls, n_in, units, steps, batch, opt, n) in WORKLOADS.items():
        X = rng.normal(size=(n, steps, n_in)).astype(np.float32)
        y = rng.integers(0, 10, n)
        net = fastbp.Network([n_in, cls(units), 10], seed=0)
        net.fit(X[:batch * 2], y[:batch * 2], epochs=1, batch_size=batch, optimizer=opt)
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            net.fit(X, y, epochs=1, batch_size=batch, optimizer=opt, seed=0)
            best = min(best, time.perf_counter() - t0)
        line = f"{name}: {n / best / 1e3:8.1f} k sequences/s training"
        if name == "R1":
            one = X[:1]
            net.predict_proba(one)
            t = []
            for _ in range(2000):
                t0 = time.perf_counter()
                net.predict_proba(one)
                t.append(time.perf_counter() - t0)
            line += f"; one-sequence prediction {np.median(t) * 1e6:.1f} us (median)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
