"""Where a recurrent training batch's time goes (R1, R3 of issue 10), kernel by kernel.

    python benchmarks/recurrent_profile.py [--rounds 5] [--threads 1]

For one batch of R1 (GRU 8 -> 64, 50 steps, batch 32) and R3 (LSTM 16 -> 128, 100 steps,
batch 64), float32, it times fastbp's own one-direction kernels (``forward_direction``,
``forward_direction`` + ``backward_direction``) and, apart, the BLAS products they make at
the same shapes: the input projection of all steps, the T per-step recurrent products of
the forward pass and the T of BPTT (with ``rowvec.rows_times`` where the kernels use it,
else BLAS), the W_ih and W_hh gradients of all steps (``mm_tn``: ``rowvec.tn_times`` or BLAS).  ``R1h`` and ``R3h`` are the half
batches that each of two threads computes when ``fit`` splits a batch over two cores.  What is left
of the kernels' time (element-wise gate passes, column sums, transposes, zero fills) is
their time minus the products'.  Medians of ``--rounds`` interleaved rounds; on a shared
machine compare only figures from one run.
"""
import argparse
import statistics
import time

import numpy as np
from numba import njit

from fastbp._config import JIT
from fastbp.kernels.blas import gemm
from fastbp.kernels.codes import GRU, LSTM, TANH
from fastbp.kernels.layers import recurrent as rec
from fastbp.kernels.rowvec import rows_times

WORKLOADS = {"R1": (GRU, 8, 64, 50, 32), "R3": (LSTM, 16, 128, 100, 64),
             "R1h": (GRU, 8, 64, 50, 16), "R3h": (LSTM, 16, 128, 100, 32)}


@njit(**dict(JIT, cache=False))
def _kernels(kind, s, params, grad, H, B, T, n_in, lo, base, douto, backward, reps):
    for _ in range(reps):
        rec.forward_direction(kind, TANH, False, s, 0, n_in, params, 0, H, B, T, lo, base)
        if backward:
            rec.backward_direction(kind, TANH, False, s, 0, n_in, params, grad, 0, H, B, T,
                                   lo, base, douto, H, 0, 0, False, False, 0)


@njit(**dict(JIT, cache=False))
def _products(which, B, T, X, WI, G, HS, WH, P, D, W, DH, GI, GW, reps):
    for _ in range(reps):
        if which == 0:  # input projection of all steps (onto the biases: beta = 1)
            gemm(1.0, X, WI, 1.0, G)
        elif which == 1:  # per-step h W_hh^T, forward
            H, GH = WH.shape
            for t in range(T):
                if rec._step_rows(B, GH, H, WH.itemsize):
                    rows_times(HS.ravel(), t * B * H, H, B, WH.ravel(), 0, GH, P.ravel(), 0, GH,
                               GH, H, False)
                else:
                    gemm(1.0, HS[t * B:(t + 1) * B], WH, 0.0, P)
        elif which == 2:  # per-step dgates W_hh, BPTT (accumulated into dh)
            GH, H = W.shape
            for t in range(T):
                if rec._step_rows(B, H, GH, W.itemsize):
                    rows_times(D.ravel(), t * B * GH, GH, B, W.ravel(), 0, H, DH.ravel(), 0, H,
                               H, GH, True)
                else:
                    gemm(1.0, D[t * B:(t + 1) * B], W, 1.0, DH)
        elif which == 3:  # W_ih gradient: dgates^T X over all steps (as the kernels: mm_tn)
            rec.mm_tn(D.ravel(), 0, X.ravel(), 0, GI.ravel(), 0, GI.shape[0], GI.shape[1],
                      T * B, False)
        else:  # W_hh gradient: dgates^T h_prev over steps 1..T-1
            rec.mm_tn(D.ravel(), B * D.shape[1], HS.ravel(), 0, GW.ravel(), 0, GW.shape[0],
                      GW.shape[1], (T - 1) * B, False)


PRODUCTS = ("input projection", "per-step forward", "per-step BPTT", "W_ih gradient",
            "W_hh gradient")


def profile(name, rounds):
    kind, n_in, H, T, B = WORKLOADS[name]
    G = rec.n_gates(kind)
    GH, TB = G * H, T * B
    f = np.float32
    rng = np.random.default_rng(0)
    lo = TB * n_in
    douto = lo + B
    base = douto + TB * H
    s = np.zeros(base + rec.direction_size(kind, H, B, T, n_in), f)
    s[:lo] = rng.normal(size=lo)
    s[lo:lo + B] = T
    s[douto:base] = 0.01 * rng.normal(size=TB * H)
    params = (0.1 * rng.normal(size=GH * (n_in + H + 2))).astype(f)
    grad = np.zeros_like(params)
    arrays = (rng.normal(size=(TB, n_in)).astype(f), rng.normal(size=(n_in, GH)).astype(f),
              np.zeros((TB, GH), f), rng.normal(size=(TB, H)).astype(f),
              rng.normal(size=(H, GH)).astype(f), np.zeros((B, GH), f),
              rng.normal(size=(TB, GH)).astype(f), rng.normal(size=(GH, H)).astype(f),
              np.zeros((B, H), f), np.zeros((GH, n_in), f), np.zeros((GH, H), f))
    reps = max(1, int(2e8 // (G * H * (n_in + H) * TB)))
    runs = [("forward kernel", lambda r: _kernels(kind, s, params, grad, H, B, T, n_in, lo,
                                                  base, douto, False, r)),
            ("forward + BPTT kernels", lambda r: _kernels(kind, s, params, grad, H, B, T,
                                                          n_in, lo, base, douto, True, r))]
    runs += [(p, lambda r, i=i: _products(i, B, T, *arrays, r)) for i, p in enumerate(PRODUCTS)]
    for _, fn in runs:
        fn(1)
    times = {label: [] for label, _ in runs}
    for _ in range(rounds):
        for label, fn in runs:
            t0 = time.perf_counter()
            fn(reps)
            times[label].append((time.perf_counter() - t0) / reps * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    total = med["forward + BPTT kernels"]
    products = sum(med[p] for p in PRODUCTS)
    print(f"{name}: one batch ({B} x {T} steps), ms (share of forward + BPTT)")
    for label in times:
        print(f"  {label:24s} {med[label]:8.3f}  {100 * med[label] / total:5.1f} %")
    print(f"  {'all products':24s} {products:8.3f}  {100 * products / total:5.1f} %")
    print(f"  {'the rest':24s} {total - products:8.3f}  {100 * (total - products) / total:5.1f} %")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("workloads", nargs="*", default=["R1", "R3"],
                    help=f"any of {', '.join(WORKLOADS)} (default R1 R3)")
    args = ap.parse_args()
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls, for threadpoolctl)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(args.threads, user_api="blas"):
        for name in args.workloads:
            profile(name, args.rounds)


if __name__ == "__main__":
    main()
