"""What one step of a one-sequence R1 prediction costs on one core, and what a second core
would cost to bring in (issue 10's <= 30 us target for 50 steps).

    python benchmarks/recurrent_step_floor.py [--rounds 9]

Times, float32, each as a chain (every step reads what the one before wrote, as the
recurrence does), median over interleaved rounds:

- the step's product h (64) @ W_hh^T (64 x 192) with register blocks of 4, 8 and 12 SIMD
  vectors of accumulators, 256-bit and 512-bit vectors (``rowvec._block``), and the panel
  kernel prediction uses (``row_times_panels``);
- the GRU gate pass of one step (64 units: two logistic blocks, a tanh block, the update);
- one meeting of two threads at fastbp's compiled barrier (``kernels.sync.meet``), and the
  start of a Python thread: what splitting each step over two cores would add.
"""
import argparse
import statistics
import threading
import time

import numpy as np
from numba import njit

from fastbp._config import JIT
from fastbp.kernels.activations import U
from fastbp.kernels.mathfn import logistic, tanh
from fastbp.kernels.rowvec import _block, pack_panels, row_times_panels
from fastbp.kernels.sync import SYNC_SIZE, meet

H, GH = 64, 192
J = dict(JIT, cache=False)


def _blocked(nv, vbytes):
    lanes = vbytes // 4
    width = nv * lanes

    @njit(**J)
    def steps(s, P, reps):
        for _ in range(reps):
            j = 0
            while j + width <= GH:
                _block(s, 0, 1, P, j * H, width, s, 256 + j, H, False, nv, vbytes)
                j += width
            while j < GH:  # what is left, in single vectors
                _block(s, 0, 1, P, j * H, lanes, s, 256 + j, H, False, 1, vbytes)
                j += lanes
            for k in range(H):  # the next step's input depends on this step's output
                s[k] = s[256 + k] * np.float32(0.5)
    return steps


@njit(**J)
def _panels(s, P, reps):
    for r in range(reps):
        row_times_panels(s, 0, P, 0, s, 256, GH, H, r % 2 == 1, False)
        for k in range(H):
            s[k] = s[256 + k] * np.float32(0.5)


@njit(**J)
def _gates(s, params, reps):
    g, p, n, hp, h, bn = U(0), U(1024), U(2048), U(2304), U(2560), U(0)
    z = g + U(H)
    c = g + U(2 * H)
    for _ in range(reps):
        for j in range(2 * H):  # r, z
            s[g + U(j)] = logistic(s[g + U(j)] + s[p + U(j)])
        for j in range(H):  # W_hn h + b_hn
            s[n + U(j)] = s[p + U(2 * H + j)] + params[bn + U(j)]
        for j in range(H):  # n
            s[c + U(j)] = tanh(s[c + U(j)] + s[g + U(j)] * s[n + U(j)])
        for j in range(H):  # h' = n + z (h - n)
            s[h + U(j)] = s[c + U(j)] + s[z + U(j)] * (s[hp + U(j)] - s[c + U(j)])
        for j in range(H):  # the next step reads this one's state
            s[hp + U(j)] = s[h + U(j)]


@njit(nogil=True, cache=False)
def _meetings(sync, count):
    for e in range(1, count + 1):
        if not meet(sync, e, 2):
            return False
    return True


def _barrier_us(count=20000):
    sync = np.zeros(SYNC_SIZE, dtype=np.int64)
    _meetings(np.zeros(SYNC_SIZE, dtype=np.int64), 0)
    other = threading.Thread(target=_meetings, args=(sync, count))
    t0 = time.perf_counter()
    other.start()
    _meetings(sync, count)
    other.join()
    return (time.perf_counter() - t0) / count * 1e6


def _thread_start_us(count=200):
    t0 = time.perf_counter()
    for _ in range(count):
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    return (time.perf_counter() - t0) / count * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    s = (rng.standard_normal(4096) * 0.1).astype(np.float32)
    W = (rng.standard_normal(GH * H) * 0.1).astype(np.float32)
    WT = np.ascontiguousarray(W.reshape(GH, H).T).ravel()  # (H, GH): one block row per input
    P = np.empty_like(W)
    pack_panels(W, 0, GH, H, P, 0)
    steps = {f"product, {nv} x {8 * vb}-bit blocks": (_blocked(nv, vb), (s, WT))
             for vb in (32, 64) for nv in (4, 8, 12)}
    # _blocked reads B as (k, ldb=width) panels of the transposed matrix: lay each panel out
    for name, (fn, a) in list(steps.items()):
        nv = int(name.split(",")[1].split("x")[0])
        vb = 32 if "256" in name else 64
        width = nv * vb // 4
        packed = np.empty_like(W)
        Wm = W.reshape(GH, H)
        j = 0
        while j < GH:
            w = width if j + width <= GH else vb // 4
            packed[j * H:(j + w) * H] = Wm[j:j + w].T.ravel()
            j += w
        steps[name] = (fn, (s, packed))
    steps["product, row_times_panels (prediction's)"] = (_panels, (s, P))
    steps["GRU gate pass, 64 units"] = (_gates, (s, W))
    reps = 5000
    for fn, a in steps.values():
        fn(*a, 1)
    times = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, (fn, a) in steps.items():
            t0 = time.perf_counter()
            fn(*a, reps)
            times[name].append((time.perf_counter() - t0) / reps * 1e6)
    print(f"one R1 step, float32, median of {args.rounds} rounds (us per step):")
    for name, v in times.items():
        print(f"  {name:45s} {statistics.median(v):7.3f}")
    best = min(statistics.median(v) for k, v in times.items() if k.startswith("product"))
    gate = statistics.median(times["GRU gate pass, 64 units"])
    print(f"  50 steps at the best product + the gates: {50 * (best + gate):.1f} us, before "
          f"any fixed cost")
    bar = statistics.median(_barrier_us() for _ in range(5))
    print(f"two threads meeting at the compiled barrier: {bar:.3f} us per meeting")
    print(f"starting and joining a Python thread: {_thread_start_us():.1f} us")


if __name__ == "__main__":
    main()
