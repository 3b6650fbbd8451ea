"""Checks and packing of sequence data for networks with recurrent layers.

The kernels (:mod:`fastbp.kernels.sequence`) take one row per sample: its length, then its
steps x features values, so that every row-wise operation (shuffling, validation splits, MPI
shards, chunks) carries the lengths along.  Targets become one row per sample too: n_out
values, or steps x n_out when the network outputs every step.  Values at steps past a sample's
length are never read (NaN there is fine).
"""
import numbers

import numpy as np

from ._validation import _as_numeric_array, check_targets
from .registry import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, LOSSES


def check_lengths(lengths, n, steps, name="lengths"):
    """``lengths`` as int64 (n,), each in 1..steps (all ``steps`` when None)."""
    if lengths is None:
        return np.full(n, steps, dtype=np.int64)
    arr = _as_numeric_array(lengths, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one length per sample ({n}), got shape "
                         f"{arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must be integers, got non-integer values")
    if n and (arr.min() < 1 or arr.max() > steps):
        bad = arr.min() if arr.min() < 1 else arr.max()
        raise ValueError(f"{name} must lie in 1..{steps} (the number of steps), got {bad:g}")
    return arr.astype(np.int64)


def valid_mask(lengths, steps):
    """(n, steps) bool: step t of sample i is within its length."""
    return np.arange(steps)[None, :] < lengths[:, None]


def _first_bad(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0])


def pack_inputs(X, n_features, dtype, lengths=None, name="X", lengths_name="lengths",
                allow_empty=False):
    """(packed (n, 1 + steps*features) array, lengths, steps) of sequence inputs X
    (n, steps, features); NaN/inf is an error only at valid steps."""
    from .sparse import SparseRows, is_sparse
    if isinstance(X, SparseRows) or is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix: sparse input is supported for dense "
                        f"networks only; a recurrent network takes a dense (n_samples, "
                        f"n_steps, n_features) array")
    arr = _as_numeric_array(X, name)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3-D array (n_samples, n_steps, n_features) for a "
                         f"recurrent network, got {arr.ndim}-D with shape {arr.shape}")
    n, steps, f = arr.shape
    if n == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if steps == 0:
        raise ValueError(f"{name} has 0 steps")
    if f != n_features:
        raise ValueError(f"{name} has {f} features per step, but the network expects "
                         f"{n_features}")
    lens = check_lengths(lengths, n, steps, lengths_name)
    packed = np.empty((n, 1 + steps * f), dtype=dtype)
    packed[:, 0] = lens
    with np.errstate(over="ignore", invalid="ignore"):
        packed[:, 1:] = arr.reshape(n, steps * f)
    body = packed[:, 1:].reshape(n, steps, f)
    bad = ~np.isfinite(body) & valid_mask(lens, steps)[:, :, None]
    if bad.any():
        i, t, k = _first_bad(bad)
        if np.isfinite(arr[i, t, k]):
            raise ValueError(f"{name} has a value too large for {np.dtype(dtype)} "
                             f"({arr[i, t, k]:g} at index [{i}, {t}, {k}]); rescale it or "
                             f"use float64")
        raise ValueError(f"{name} contains NaN or infinity (first at index [{i}, {t}, {k}], "
                         f"within that sample's length)")
    return packed, lens, steps


def pack_targets(y, lens, steps, n_outputs, loss, dtype, per_step, name="y",
                 allow_empty=False):
    """Targets as one row per sample: ``check_targets`` for many-to-one networks; for per-step
    outputs, labels (n, steps) or a target array (n, steps, n_outputs) ((n, steps) also for
    one output), read only within each length, as (n, steps * n_outputs)."""
    n = lens.shape[0]
    if not per_step:
        return check_targets(y, n, n_outputs, loss, dtype, name, allow_empty=allow_empty)
    arr = _as_numeric_array(y, name)
    if arr.ndim not in (2, 3) or arr.shape[:2] != (n, steps):
        raise ValueError(f"{name} must be ({n}, {steps}) labels or a ({n}, {steps}, "
                         f"{n_outputs}) target array for a network that outputs every step, "
                         f"got shape {arr.shape}")
    valid = valid_mask(lens, steps)
    if arr.ndim == 2 and n_outputs == 1:
        arr = arr[:, :, None]
    if arr.ndim == 2:  # class labels per step
        v = arr[valid]
        if not np.isfinite(v).all() or (arr.dtype.kind == "f" and not np.all(v == np.round(v))):
            raise ValueError(f"{name} has non-integer or non-finite labels within the "
                             f"lengths; pass labels 0..{n_outputs - 1} or a ({n}, {steps}, "
                             f"{n_outputs}) target array")
        if v.size and (v.min() < 0 or v.max() >= n_outputs):
            bad = v.min() if v.min() < 0 else v.max()
            raise ValueError(f"{name} has class label {bad:g}, out of range for a network "
                             f"with {n_outputs} outputs (labels must be in "
                             f"0..{n_outputs - 1})")
        Y = np.zeros((n, steps, n_outputs), dtype=dtype)
        idx = np.nonzero(valid)
        Y[idx[0], idx[1], arr[valid].astype(np.int64)] = 1
        return Y.reshape(n, steps * n_outputs)
    if arr.shape[2] != n_outputs:
        raise ValueError(f"{name} has {arr.shape[2]} values per step but the network has "
                         f"{n_outputs} outputs")
    with np.errstate(over="ignore", invalid="ignore"):
        Y = np.array(arr, dtype=dtype, order="C")
    Y[~valid] = 0
    if not np.isfinite(Y).all():
        i, t, k = _first_bad(~np.isfinite(Y))
        raise ValueError(f"{name} contains NaN or infinity (or a value too large for "
                         f"{np.dtype(dtype)}) at index [{i}, {t}, {k}], within that sample's "
                         f"length")
    if loss in (CROSS_ENTROPY, BINARY_CROSS_ENTROPY) and Y.size and (Y.min() < 0
                                                                   or Y.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for {LOSSES.name_of(loss)}")
    return Y.reshape(n, steps * n_outputs)


def check_bptt(bptt_steps):
    """0 (full BPTT) or the positive truncation length."""
    if bptt_steps is None:
        return 0
    if isinstance(bptt_steps, (bool, np.bool_)) or not isinstance(bptt_steps,
                                                                 numbers.Integral):
        raise ValueError(f"bptt_steps must be a positive integer or None, got {bptt_steps!r}")
    if bptt_steps < 1:
        raise ValueError(f"bptt_steps must be >= 1 (or None for full BPTT), got {bptt_steps}")
    return int(bptt_steps)
