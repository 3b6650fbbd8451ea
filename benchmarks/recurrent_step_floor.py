"""What one step of a one-sequence R1 prediction costs on one core, and what a second core
would cost to bring in (issue 10's <= 30 us target for 50 steps).

    python benchmarks/recurrent_step_floor.py [--rounds 9]

Times, float32, each as a chain (every step reads what the one before wrote, as the
recurrence does), median over interleaved rounds:

- the step's product h (64) @ W_hh^T (64 x 192) with register blocks of 4, 8 and 12 SIMD
  vectors of accumulators, 256-bit and 512-bit vectors (``rowvec._block``), and the panel
  kernel prediction uses (``row_times_panels``);
- one step as the prediction kernel runs it (``layers.recurrent.forward_direction`` over 50
  steps minus over 1, per step: product, GRU gates and stores);
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
from fastbp.kernels.codes import GRU, TANH
from fastbp.kernels.layers import recurrent as rec
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
def _forward(s, params, T, lo, base, reps):
    """The prediction's own forward kernel of one GRU direction, one sequence of T steps."""
    for _ in range(reps):
        rec.forward_direction(GRU, TANH, False, s, 0, 8, params, 0, H, 1, T, lo, base)


def _step_in_kernel_us(rounds, steps=50, reps=200):
    """(forward of ``steps`` steps - forward of 1) / (steps - 1): one step as the kernel runs
    it (product, gates, storing the step), without the per-call packing and projection."""
    n_in = 8
    rng = np.random.default_rng(1)
    base = steps * n_in + 8
    size = rec.direction_size(GRU, H, 1, steps, n_in)
    s = (rng.standard_normal(base + size) * 0.1).astype(np.float32)
    lo = steps * n_in
    s[lo] = steps
    params = (rng.standard_normal(3 * H * (n_in + H + 2)) * 0.1).astype(np.float32)
    _forward(s, params, steps, lo, base, 1)
    per = []
    for _ in range(rounds):
        t = []
        for T in (steps, 1):
            t0 = time.perf_counter()
            _forward(s, params, T, lo, base, reps)
            t.append((time.perf_counter() - t0) / reps * 1e6)
        per.append((t[0] - t[1]) / (steps - 1))
    return statistics.median(per)


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
    step = _step_in_kernel_us(args.rounds)
    print(f"  one step inside the prediction kernel (product, gates, stores): {step:7.3f}")
    print(f"  50 such steps: {50 * step:.1f} us, before the per-call packing and projection")
    bar = statistics.median(_barrier_us() for _ in range(5))
    print(f"two threads meeting at the compiled barrier: {bar:.3f} us per meeting")
    print(f"starting and joining a Python thread: {_thread_start_us():.1f} us")


if __name__ == "__main__":
    main()
