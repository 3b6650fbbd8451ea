"""Peak memory of one W3 epoch (784-2048-2048-10, batch 512, float32, 4096 samples) against
the sum the speed issue names: parameters + gradient + optimizer state + one batch's
activations + the data.

    MALLOC_MMAP_THRESHOLD_=65536 python benchmarks/w3_memory.py [n_samples]

Run it in a fresh process.  The fixed mmap threshold makes glibc hand big freed blocks back
to the system, so that temporaries from building the data do not hide (or fake) growth
during fit.  Reported: the growth of the resident set during ``fit`` (Linux's VmHWM, reset
just before), and fastbp's footprint = parameters + data + that growth, over the sum.
"""
import gc
import sys

import numpy as np

import fastbp
from fastbp.bench import WORKLOADS, workload_data, workload_init, workload_network


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024


def main(n=4096):
    wl = WORKLOADS["W3"]
    # load the kernels and let BLAS allocate its buffers on a small network first
    small = fastbp.Network([784, 64, 64, 10], dtype=np.float32, seed=0)
    Xs = np.random.default_rng(0).random((600, 784)).astype(np.float32)
    small.fit(Xs, np.arange(600) % 10, epochs=1, batch_size=512, learning_rate=0.01)
    X, Y = workload_data(wl)
    X, Y = X[:n].copy(), Y[:n].copy()
    net = workload_network(wl, workload_init(wl))
    gc.collect()
    before = rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident set
    net.fit(X, Y, epochs=1, batch_size=512, optimizer="sgd", learning_rate=0.01, seed=0)
    growth = peak_rss() - before
    params = net.params.nbytes
    acts = 512 * net.layout.activation_width * net.dtype.itemsize
    data = X.nbytes + Y.nbytes
    state = net.optimizer.state.nbytes
    budget = params + params + state + acts + data
    footprint = params + data + growth
    mb = 1e6
    print(f"W3 epoch, {n} samples: parameters {params / mb:.1f} MB, gradient {params / mb:.1f}, "
          f"optimizer state {state / mb:.1f}, one batch's activations {acts / mb:.1f}, data "
          f"{data / mb:.1f}: sum {budget / mb:.1f} MB")
    print(f"resident set grew by {growth / mb:.1f} MB during fit; fastbp's footprint "
          f"(parameters + data + growth) {footprint / mb:.1f} MB = {footprint / budget:.2f} x "
          f"the sum")
    return footprint / budget


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4096)
