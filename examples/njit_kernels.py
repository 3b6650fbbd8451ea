"""Calling fastbp's kernels from your own @njit code: a (1+lambda) evolution strategy that
trains a small network without gradients, evaluating hundreds of candidate parameter vectors
per generation inside compiled code, then a comparison with backpropagation.

    python examples/njit_kernels.py
"""
import time

import numpy as np
from numba import njit

import fastbp
from fastbp.kernels import mean_loss, network_arrays


@njit(cache=True)
def evolve(X, Y, params, buffers, spec, loss, generations, offspring, sigma, seed):
    """Mutate the parent, keep the best child if it beats the parent (all in nopython)."""
    np.random.seed(seed)
    parent = params.copy()
    best = mean_loss(X, Y, parent, buffers, spec, loss)
    child = np.empty_like(parent)
    for _ in range(generations):
        best_child = parent.copy()
        best_child_loss = best
        for _ in range(offspring):
            for i in range(parent.shape[0]):
                child[i] = parent[i] + sigma * np.random.standard_normal()
            value = mean_loss(X, Y, child, buffers, spec, loss)
            if value < best_child_loss:
                best_child_loss = value
                best_child[:] = child
        if best_child_loss < best:
            parent[:] = best_child
            best = best_child_loss
    return parent, best


def main():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = ((X[:, 0] * X[:, 1]) > 0).astype(np.int64)  # XOR-like quadrants
    Y = np.eye(2)[y]
    net = fastbp.Network([2, 8, 2], hidden_activation="tanh", dtype=np.float64, seed=0)
    params, buffers, spec, loss = network_arrays(net)
    start = mean_loss(X, Y, params, buffers, spec, loss)
    t0 = time.perf_counter()
    best_params, best = evolve(X, Y, params, buffers, spec, loss, 300, 50, 0.05, 0)
    seconds = time.perf_counter() - t0
    evaluations = 300 * 50
    net.params = best_params
    accuracy = float(np.mean(net.predict(X) == y))
    print(f"evolution strategy: loss {start:.3f} -> {best:.3f}, accuracy {accuracy:.3f}, "
          f"{evaluations} network evaluations on 200 samples in {seconds:.2f} s "
          f"(including the first compile)")
    bp = fastbp.Network([2, 8, 2], hidden_activation="tanh", dtype=np.float64, seed=0)
    bp.fit(X, y, epochs=200, batch_size=8, optimizer="adam", learning_rate=0.02, seed=0)
    print(f"backpropagation, 200 epochs: loss {bp.evaluate(X, y):.3f}, accuracy "
          f"{np.mean(bp.predict(X) == y):.3f}")
    return accuracy


if __name__ == "__main__":
    main()
