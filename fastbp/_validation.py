"""Checks that turn bad input into clear errors before any kernel runs."""
import numbers

import numpy as np

from .registry import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, LOSSES, POISSON

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _as_numeric_array(a, name):
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name} could not be converted to an array: {e}") from None
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} must be real numbers, got complex dtype {arr.dtype}")
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


from ._config import FINITE_CHUNK as _FINITE_CHUNK  # noqa: E402


def _first_nonfinite(arr):
    """Flat (C-order) index of the first NaN/inf of a float array, or None; scans in chunks,
    so checking a big data set allocates no array of its size."""
    if arr.dtype.kind != "f":
        return None
    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel()
    for start in range(0, flat.size, _FINITE_CHUNK):
        chunk = flat[start:start + _FINITE_CHUNK]
        if not np.isfinite(chunk).all():
            return start + int(np.flatnonzero(~np.isfinite(chunk))[0])
    return None


def _where(k, shape):
    return ", ".join(str(int(i)) for i in np.unravel_index(k, shape))


def check_finite(arr, name):
    """ValueError naming the first NaN/inf of a float array."""
    k = _first_nonfinite(arr)
    if k is not None:
        raise ValueError(f"{name} contains NaN or infinity (first at index "
                         f"[{_where(k, arr.shape)}])")


def as_finite(arr, dtype, name):
    """``arr`` as a C-contiguous array of ``dtype``, checked finite *after* the conversion:
    a float64 value beyond float32's range becomes inf when cast, and is reported as too
    large for the dtype (naming ``name``), never left for training to find as divergence."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    k = _first_nonfinite(out)
    if k is not None:
        value = arr.flat[k]
        if np.isfinite(value):
            raise ValueError(f"{name} has a value too large for {np.dtype(dtype)} ({value:g} "
                             f"at index [{_where(k, arr.shape)}]); rescale it or use "
                             f"float64")
        check_finite(out, name)
    return out


def check_X(X, n_features, dtype, name="X", finite=True, allow_empty=False):
    """X as a C-contiguous (n_samples, n_features) array of ``dtype``, all finite.

    With ``finite=False`` an array that needs no conversion is not scanned for NaN/inf (the
    prediction kernel does it on the fly).
    """
    if (type(X) is np.ndarray and X.dtype == dtype and X.ndim == 2
            and X.flags.c_contiguous and X.shape[1] == n_features and X.shape[0] > 0):
        if finite:
            check_finite(X, name)
        return X
    from .sparse import SparseRows, check_sparse, is_sparse
    if isinstance(X, SparseRows) or is_sparse(X):  # CSR rows for the sparse kernels
        return check_sparse(X, n_features, dtype, name, allow_empty)
    arr = _as_numeric_array(X, name)
    if arr.ndim != 2:
        hint = (" Reshape it with .reshape(-1, 1) for one feature or .reshape(1, -1) for one "
                "sample." if arr.ndim == 1 else "")
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got "
                         f"{arr.ndim}-D with shape {arr.shape}.{hint}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample, but the network "
                         f"expects {n_features}")
    # converted here, so scanned here (cheap next to the copy): a value too large for dtype
    # is named as such, not found later as a NaN/inf or a divergence
    return as_finite(arr, dtype, name)


def check_targets(y, n_samples, n_outputs, loss, dtype, name="y", allow_empty=False):
    """Targets as a C-contiguous (n_samples, n_outputs) float matrix of ``dtype``.

    Accepted: a float target matrix (n_samples, n_outputs); for one output, a 1-D vector;
    for several outputs, 1-D integer class labels in [0, n_outputs), one-hot encoded here.
    """
    arr = _as_numeric_array(y, name)
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"{name} must be 1-D labels or a 2-D target matrix, got shape "
                         f"{arr.shape}")
    if arr.shape[0] == 0:
        if allow_empty and n_samples == 0:
            return np.zeros((0, n_outputs), dtype=dtype)
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but {name} has {arr.shape[0]}")
    check_finite(arr, name)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim == 1:
        if arr.dtype.kind == "f":
            if not np.all(arr == np.round(arr)):
                raise ValueError(f"{name} is 1-D with non-integer values but the network has "
                                 f"{n_outputs} outputs: pass class labels 0..{n_outputs - 1} "
                                 f"or a ({n_samples}, {n_outputs}) target matrix")
        # range first, on the values as given: a cast of 1e20 (or of a uint64 above 2**63)
        # to int64 would wrap around and be reported as some other number
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= n_outputs:
            bad = lo if lo < 0 else hi
            bad = f"{bad:g}" if arr.dtype.kind == "f" else str(bad)
            raise ValueError(f"{name} has class label {bad}, out of range for a network with "
                             f"{n_outputs} outputs (labels must be in 0..{n_outputs - 1})")
        labels = arr.astype(np.int64)
        Y = np.zeros((n_samples, n_outputs), dtype=dtype)
        Y[np.arange(n_samples), labels] = 1
        return Y
    if arr.shape[1] != n_outputs:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_outputs} "
                         f"outputs")
    Y = as_finite(arr, dtype, name)
    if loss in (CROSS_ENTROPY, BINARY_CROSS_ENTROPY) and (
            Y.min() < 0 or Y.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for {LOSSES.name_of(loss)}, got values "
                         f"in [{Y.min():g}, {Y.max():g}]")
    if loss == POISSON and Y.min() < 0:
        raise ValueError(f"{name} must be >= 0 for the poisson loss (counts or rates), got "
                         f"{Y.min():g}")
    return Y


def check_sample_weight(sample_weight, n_samples, dtype):
    """Sample weights as a 1-D float array (empty array for None), non-negative, finite."""
    if sample_weight is None or n_samples == 0:
        return np.empty(0, dtype=dtype)
    if isinstance(sample_weight, numbers.Number):  # one weight for all: finite and > 0
        value = check_number(sample_weight, "sample_weight", low=0, low_open=True)
        return np.full(n_samples, value, dtype=dtype)
    sw = _as_numeric_array(sample_weight, "sample_weight")
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(f"sample_weight must be 1-D with {n_samples} entries, got shape "
                         f"{sw.shape}")
    sw = as_finite(sw, dtype, "sample_weight")
    if (sw < 0).any():
        raise ValueError("sample_weight must be non-negative")
    if not sw.any():
        raise ValueError("sample_weight is all zero: at least one sample needs a positive "
                         "weight")
    return sw


def read_only(a):
    """``a`` as the kernels take their data: a read-only view of an ndarray (the array itself
    if it already is read-only; anything else unchanged).  Numba compiles a function once per
    argument type, and a read-only array is another type: passing X, Y and the sample weights
    read-only always means one specialization whether or not the caller's arrays are
    writable (a joblib memory map is not), instead of a second one compiled on first use."""
    if type(a) is np.ndarray and a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_number(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got complex {value!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def choice(value, options, name):
    """``options[value]`` for a string option, with an error listing the valid ones."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {sorted(options)}, got {value!r}")
    try:
        return options[value]
    except KeyError:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(options)}") from None


def per_hidden_layer(value, n_hidden, what):
    """One value for every hidden layer, or a list of exactly ``n_hidden`` values."""
    if isinstance(value, str) or np.isscalar(value):
        return [value] * n_hidden
    values = list(value)
    if len(values) != n_hidden:
        raise ValueError(f"{what} lists {len(values)} values but the network has {n_hidden} "
                         f"hidden layers")
    return values
