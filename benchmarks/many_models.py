"""K=8 W1-sized models (64-32-10 tanh/softmax, SGD, batch 1, digits) trained four ways:

- ``sequential``: ``net.fit`` eight times, one after another;
- ``fit_many``: ``fastbp.fit_many`` over the cores (threads; bit-identical networks);
- ``GridSearchCV(n_jobs=2)``: scikit-learn's grid search over the same 8 configurations of
  ``fastbp.MLPClassifier`` (one train/test split, ``refit=False``), joblib's default
  process backend: the first search starts fresh worker processes, the second reuses them;
- ``fit_estimators``: the same 8 estimators through ``fastbp.param_grid`` /
  ``fastbp.fit_estimators`` (threads), scored on the same split.

Prints seconds and samples/s per way (median of ``--rounds``), and the ratios the issue asks
for.  Run from a checkout: ``python benchmarks/many_models.py [--epochs 10] [--rounds 3]``.
"""
import argparse
import statistics
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    import fastbp
    from fastbp.datasets import load_digits, stratified_split

    X, y = load_digits()
    X = X.astype(np.float32)
    train, test = stratified_split(y, 0.25, seed=0)
    K, E = 8, args.epochs
    rates = [0.005, 0.01, 0.02, 0.04]
    configs = [(lr, seed) for lr in rates for seed in (0, 1)]

    def nets():
        return [fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                               dtype=np.float32, seed=s) for _, s in configs]

    opts = dict(epochs=E, batch_size=1, optimizer="sgd")
    # load the kernels once (untimed)
    fastbp.fit_many(nets()[:2], X[:20], y[:20], epochs=1, batch_size=1)

    times = {}

    def timed(name, fn):
        t = time.perf_counter()
        fn()
        times.setdefault(name, []).append(time.perf_counter() - t)

    def sequential():
        for net, (lr, s) in zip(nets(), configs):
            net.fit(X[train], y[train], learning_rate=lr, seed=s, **opts)

    def many():
        fastbp.fit_many(nets(), X[train], y[train], learning_rate=[lr for lr, _ in configs],
                        seed=[s for _, s in configs], **opts)

    from sklearn.model_selection import GridSearchCV
    # the same training as the networks': plain SGD without momentum and without the L2
    # penalty (scikit-learn's default alpha=1e-4 adds a decay pass over every weight per
    # sample, 1.6-1.8x the time of an online W1 fit)
    est = fastbp.MLPClassifier(hidden_layer_sizes=(32,), activation="tanh", solver="sgd",
                               batch_size=1, momentum=0.0, alpha=0.0, max_iter=E, tol=0.0,
                               n_iter_no_change=10 ** 6, dtype=np.float32)
    grid = {"learning_rate_init": rates, "random_state": [0, 1]}
    split = [(train, test)]

    def search():
        GridSearchCV(est, grid, cv=split, n_jobs=2, refit=False).fit(X, y)

    def estimators():
        fitted = fastbp.fit_estimators(fastbp.param_grid(est, grid), X[train], y[train])
        [e.score(X[test], y[test]) for e in fitted]

    import warnings
    warnings.simplefilter("ignore")
    timed("GridSearchCV(n_jobs=2), fresh workers", search)
    for _ in range(args.rounds):
        timed("sequential net.fit x8", sequential)
        timed("fastbp.fit_many", many)
        timed("GridSearchCV(n_jobs=2), warm workers", search)
        timed("fastbp.fit_estimators(param_grid)", estimators)
    samples = K * E * train.size
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:42s} {v:7.3f} s  {samples / v / 1e3:8.0f} k samples/s")
    seq = med["sequential net.fit x8"]
    print(f"fit_many / sequential: {seq / med['fastbp.fit_many']:.2f}x")
    for k in ("GridSearchCV(n_jobs=2), fresh workers", "GridSearchCV(n_jobs=2), warm workers"):
        print(f"fit_estimators vs {k}: {med[k] / med['fastbp.fit_estimators(param_grid)']:.2f}x;"
              f" fit_many vs it: {med[k] / med['fastbp.fit_many']:.2f}x")


if __name__ == "__main__":
    main()
