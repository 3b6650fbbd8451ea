"""Data that installs with fastbp, so the demo and examples need nothing else."""
import pathlib

import numpy as np

_DATA = pathlib.Path(__file__).resolve().parent / "data"


def load_digits(scale=True):
    """The 1797 handwritten 8x8 digits (UCI optdigits test set, as in scikit-learn).

    Returns ``(X, y)``: X float64 (1797, 64), divided by 16 into [0, 1] when ``scale``;
    y int64 labels 0..9.
    """
    with np.load(_DATA / "digits.npz", allow_pickle=False) as f:
        X = f["X"].astype(np.float64)
        y = f["y"].astype(np.int64)
    return (X / 16.0 if scale else X), y


def stratified_split(labels, test_fraction=0.25, seed=None, n=None):
    """Sorted indices (train, test) holding out ``test_fraction`` of every class of
    ``labels``; with ``labels=None``, a plain random split of ``n`` rows."""
    rng = np.random.default_rng(seed)
    if labels is None:
        test = rng.permutation(n)[:int(round(test_fraction * n))]
    else:
        n = len(labels)
        test = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            test.append(idx[:int(round(test_fraction * idx.size))])
        test = np.concatenate(test)
    test = np.sort(test)
    train = np.setdiff1d(np.arange(n), test, assume_unique=True)
    return train, test
