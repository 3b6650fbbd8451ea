"""FANN's training-data files, so FANN users can bring their data sets.

Format (FANN's ``fann_read_train_from_file``): a header line ``N n_in n_out``, then for each
of the N samples its ``n_in`` inputs and its ``n_out`` outputs, separated by white space
(FANN writes one line of inputs and one line of outputs per sample).
"""
import os

import numpy as np

from .io import atomic_write


from .errors import FannFormatError  # noqa: F401  (raised here; re-exported)


def _number_location(lines, start_line, index):
    """(line number, token) of the ``index``-th number after the header."""
    seen = 0
    for lineno, line in enumerate(lines[start_line:], start=start_line + 1):
        tokens = line.split()
        if seen + len(tokens) > index:
            return lineno, tokens[index - seen]
        seen += len(tokens)
    return len(lines), None


def read_fann_data(path, dtype=np.float64):
    """Read a FANN training file; returns ``(X, Y)`` of shapes (N, n_in) and (N, n_out)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise FannFormatError(f"{path}: not a FANN data file (not text)") from None
    lines = text.splitlines()
    header_line = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_line is None:
        raise FannFormatError(f"{path}: empty file, expected a header 'N n_in n_out'")
    header = lines[header_line].split()
    try:
        n, n_in, n_out = (int(t) for t in header)
    except ValueError:
        raise FannFormatError(f"{path}, line {header_line + 1}: expected a header of three "
                              f"integers 'N n_in n_out', got {lines[header_line]!r}") from None
    if n < 1 or n_in < 1 or n_out < 1:
        raise FannFormatError(f"{path}, line {header_line + 1}: the header's counts must be "
                              f"positive, got {n} {n_in} {n_out}")
    body = "\n".join(lines[header_line + 1:])
    tokens = body.split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        for k, t in enumerate(tokens):
            try:
                float(t)
            except ValueError:
                lineno, _ = _number_location(lines, header_line + 1, k)
                raise FannFormatError(f"{path}, line {lineno}: {t!r} is not a number") \
                    from None
        raise
    expected = n * (n_in + n_out)
    if values.size != expected:
        raise FannFormatError(
            f"{path}: the header promises {n} samples of {n_in} inputs and {n_out} outputs "
            f"({expected} numbers), but the file holds {values.size}")
    if not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        lineno, t = _number_location(lines, header_line + 1, k)
        raise FannFormatError(f"{path}, line {lineno}: {t!r} is not a finite number")
    rows = values.reshape(n, n_in + n_out)
    X = np.ascontiguousarray(rows[:, :n_in], dtype=dtype)
    Y = np.ascontiguousarray(rows[:, n_in:], dtype=dtype)
    return X, Y


def write_fann_data(path, X, Y):
    """Write (X, Y) as a FANN training file (atomically: a temporary file, then a rename)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X and Y must be 2-D, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X and Y need the same, non-zero number of rows, got {X.shape[0]} "
                         f"and {Y.shape[0]}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite to be written as FANN data")
    with atomic_write(path, "w") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n")
        for x, y in zip(X, Y):
            f.write(" ".join(repr(float(v)) for v in x) + "\n")
            f.write(" ".join(repr(float(v)) for v in y) + "\n")
    return os.fspath(path)
