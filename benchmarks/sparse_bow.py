"""Sparse input on a bag-of-words problem: fastbp's sparse first-layer kernels against the
same network fed the densified matrix, and against scikit-learn's MLP (which takes CSR).

    python benchmarks/sparse_bow.py [--docs 4000] [--vocab 10000] [--epochs 5]

The corpus is synthetic (no download): documents of ~80 tokens drawn from a Zipf(1.1)
vocabulary, two classes whose documents over-use two disjoint sets of 50 mid-frequency words;
features are log(1 + count), float32.  The first table's fits are Adam, one hidden layer of
64 relu units, batch 200, the same number of epochs and the same initial weights for both
fastbp runs; the second table's are online plain SGD (batch 1, learning rate 0.02, no
momentum, no penalty: fastbp's fused sparse step), ``--online-epochs`` epochs.  Times are the
median of 3 fits after a warm-up fit (kernels loaded), accuracy on 1,000 held-out documents.
"""
import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp


def corpus(docs, vocab, seed=0):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    p /= p.sum()
    y = rng.integers(0, 2, docs)
    marked = [np.arange(200, 250), np.arange(250, 300)]
    rows, cols = [], []
    for d in range(docs):
        words = rng.choice(vocab, size=rng.integers(40, 120), p=p)
        extra = rng.choice(marked[y[d]], size=rng.integers(1, 6))
        w = np.concatenate([words, extra])
        rows.append(np.full(w.size, d))
        cols.append(w)
    counts = sp.csr_matrix((np.ones(sum(map(len, cols))), (np.concatenate(rows),
                                                          np.concatenate(cols))),
                           shape=(docs, vocab))
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    return counts.astype(np.float32), y


def timed(fit, repeats=3):
    fit()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--online-epochs", type=int, default=1)
    args = ap.parse_args()
    import fastbp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = corpus(args.docs + 1000, args.vocab)
    X_tr, X_te, y_tr, y_te = X[:args.docs], X[args.docs:], y[:args.docs], y[args.docs:]
    print(f"{args.docs} documents, vocabulary {args.vocab}, {X_tr.nnz / args.docs:.0f} "
          f"nonzeros per row (density {X_tr.nnz / np.prod(X_tr.shape):.4f}), "
          f"{args.epochs} epochs")
    init = fastbp.Network([args.vocab, 64, 2], hidden_activation="relu", seed=0)

    def fastbp_fit(data, **options):
        def fit():
            net = init.copy()
            net.fit(data, y_tr, seed=0, **options)
            return net
        return fit

    dense = X_tr.toarray()
    for title, options, sk in [
            (f"Adam, batch 200, {args.epochs} epochs",
             dict(epochs=args.epochs, batch_size=200, optimizer="adam", learning_rate=1e-3),
             dict(batch_size=200, max_iter=args.epochs)),
            (f"online plain SGD, {args.online_epochs} epoch(s)",
             dict(epochs=args.online_epochs, batch_size=1, optimizer="sgd",
                  learning_rate=0.02),
             dict(solver="sgd", batch_size=1, momentum=0.0, alpha=0.0,
                  learning_rate_init=0.02, max_iter=args.online_epochs))]:
        rows = []
        t, net = timed(fastbp_fit(X_tr, **options))
        rows.append(("fastbp, sparse CSR", t, (net.predict(X_te) == y_te).mean()))
        t, net = timed(fastbp_fit(dense, **options))
        rows.append(("fastbp, densified", t, (net.predict(X_te.toarray()) == y_te).mean()))
        t, clf = timed(lambda: MLPClassifier(hidden_layer_sizes=(64,), n_iter_no_change=np.inf,
                                             random_state=0, **sk).fit(X_tr, y_tr))
        rows.append(("scikit-learn, sparse CSR", t, clf.score(X_te, y_te)))
        base = rows[0][1]
        print(f"\n{title}")
        print(f"{'':26s} {'fit s':>8s} {'vs sparse':>10s} {'accuracy':>9s}")
        for name, t, acc in rows:
            print(f"{name:26s} {t:8.3f} {t / base:9.1f}x {acc:9.4f}")


if __name__ == "__main__":
    main()
