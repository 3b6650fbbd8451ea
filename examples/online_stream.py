"""Online learning from a stream: samples arrive in small chunks, the network learns from
each chunk as it comes (one pass, batch size 1, as FANN's incremental training) and is
evaluated on the next chunk before learning from it (prequential evaluation).  Halfway the
stream's concept drifts (two classes swap); the online learner recovers.

    python examples/online_stream.py
"""
import numpy as np

import fastbp
from fastbp.datasets import load_digits


def stream(X, y, chunk, rng):
    """Chunks of a shuffled pass over (X, y); labels 3 and 8 swap in the second half."""
    order = rng.permutation(len(y))
    for start in range(0, len(order), chunk):
        idx = order[start:start + chunk]
        labels = y[idx].copy()
        if start >= len(order) // 2:
            labels = np.where(labels == 3, 8, np.where(labels == 8, 3, labels))
        yield X[idx], labels


def main():
    X, y = load_digits()
    rng = np.random.default_rng(0)
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", dtype=np.float32, seed=0)
    seen, correct, window = 0, 0, []
    for i, (Xc, yc) in enumerate(stream(np.concatenate([X, X]), np.concatenate([y, y]), 50,
                                        rng)):
        if seen:  # test on the chunk before training on it
            hits = net.predict(Xc) == yc
            correct += hits.sum()
            window.append(hits.mean())
        net.fit(Xc, yc, epochs=1, batch_size=1, learning_rate=0.02, seed=i, warm_start=True)
        seen += len(yc)
        if (i + 1) % 12 == 0:
            print(f"after {seen:5d} samples: accuracy on the last 12 chunks "
                  f"{np.mean(window[-12:]):.3f}")
    print(f"prequential accuracy over the whole stream: {correct / (seen - 50):.3f}")
    return float(np.mean(window[-12:]))


if __name__ == "__main__":
    main()
