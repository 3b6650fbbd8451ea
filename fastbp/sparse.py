"""Sparse input: scipy.sparse CSR (and CSC, converted) matrices for ``Network`` and the
estimators, read by the sparse first-layer kernels of :mod:`fastbp.kernels.sparse`.

:func:`check_sparse` turns a scipy sparse matrix into :class:`SparseRows`: the CSR arrays
with int64 ``indptr``/``indices`` and ``data`` in the network's dtype (one kernel signature
whatever the input's index dtype), checked (shape, finite values, indices in range,
monotone ``indptr``) before any kernel reads them.  The matrix is never densified.
"""
import numpy as np


def is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing scipy)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


class SparseRows:
    """A checked CSR matrix as the kernels read it.  Row selection (``X[rows]`` with an
    integer array) gives another one, for validation splits."""

    ndim = 2

    def __init__(self, indptr, indices, data, n_features):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = (indptr.shape[0] - 1, int(n_features))
        self.dtype = data.dtype

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        counts = stops - starts
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        take = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
        return SparseRows(indptr, self.indices[take], self.data[take], self.shape[1])

    def __repr__(self):
        return f"SparseRows(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def check_sparse(X, n_features, dtype, name="X", allow_empty=False):
    """A scipy sparse matrix as :class:`SparseRows` of ``dtype`` (CSC and other formats are
    converted to CSR), or a ValueError/TypeError naming what is wrong."""
    from ._validation import as_finite
    if isinstance(X, SparseRows):
        if X.dtype == dtype and X.shape[1] == n_features:
            return X
        return SparseRows(X.indptr, X.indices, as_finite(X.data, dtype, name), X.shape[1])
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D sparse matrix, got {X.ndim}-D")
    csr = X.tocsr()
    if csr.dtype.kind not in "biuf":
        kind = "real numbers" if csr.dtype.kind == "c" else "numeric"
        raise TypeError(f"{name} must be {kind}, got sparse dtype {csr.dtype}")
    n, m = csr.shape
    if n == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if m != n_features:
        raise ValueError(f"{name} has {m} features per sample, but the network expects "
                         f"{n_features}")
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int64)
    if indptr.shape[0] != n + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) \
            or indptr[-1] != indices.shape[0] or csr.data.shape[0] != indices.shape[0]:
        raise ValueError(f"{name} is a malformed CSR matrix (indptr does not describe its "
                         f"rows)")
    if indices.size and (indices.min() < 0 or indices.max() >= m):
        raise ValueError(f"{name} has column indices outside 0..{m - 1}")
    data = as_finite(csr.data, dtype, name)
    return SparseRows(indptr, indices, data, m)
