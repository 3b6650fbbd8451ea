"""``python -m fastbp demo``: train on the bundled digits, print accuracy and throughput."""
import time

import numpy as np

from .datasets import load_digits, stratified_split
from .network import Network


def run(epochs=30, batch_size=16, learning_rate=0.1, dtype="float32", seed=0, out=print):
    X, y = load_digits()
    train, test = stratified_split(y, 0.25, seed=0)
    out(f"fastbp demo: handwritten digits bundled with fastbp, {train.size} training and "
        f"{test.size} test samples (stratified), 64 inputs, 10 classes")
    results = {}
    for name, bs, lr in (("online SGD, batch 1", 1, learning_rate / 10),
                         (f"mini-batch SGD, batch {batch_size}", batch_size, learning_rate)):
        net = Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                      dtype=dtype, seed=seed)
        t0 = time.perf_counter()
        net.fit(X[train][:bs], y[train][:bs], epochs=1, batch_size=bs, learning_rate=lr)
        warm = time.perf_counter() - t0  # loads (or, the very first time, compiles) kernels
        net.init_params(seed)
        history = net.fit(X[train], y[train], epochs=epochs, batch_size=bs,
                          learning_rate=lr, seed=seed)
        accuracy = float(np.mean(net.predict(X[test]) == y[test]))
        rate = train.size / float(np.median(history.seconds))
        results[name] = (accuracy, rate)
        out(f"  {net!r}")
        out(f"  {name}, {epochs} epochs: test accuracy {accuracy:.4f}, "
            f"{rate:,.0f} training samples/s (median epoch), final loss "
            f"{history.loss[-1]:.4f}; kernels ready in {warm:.2f} s (compiled on the very "
            f"first run, loaded from the cache after)")
    return results
