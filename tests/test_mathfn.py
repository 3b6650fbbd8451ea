"""The vectorizable exp/tanh/logistic against NumPy's (C library) versions."""
import numpy as np
import pytest
from numba import njit

from fastbp._config import JIT
from fastbp.kernels.mathfn import exp, logistic, tanh


@njit(**JIT)
def _apply(code, x, out):
    for i in range(x.shape[0]):
        if code == 0:
            out[i] = exp(x[i])
        elif code == 1:
            out[i] = tanh(x[i])
        else:
            out[i] = logistic(x[i])


def run(code, x):
    out = np.empty_like(x)
    _apply(code, x, out)
    return out


def ulps(got, ref, dtype):
    ref = ref.astype(np.float64)
    scale = np.maximum(np.abs(ref), np.finfo(dtype).tiny)
    return np.abs(got.astype(np.float64) - ref) / scale / np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_within_a_few_ulps(dtype):
    hi = 88.0 if dtype == np.float32 else 709.0
    x = np.concatenate([np.linspace(-hi + 1, hi, 400_001), [0.0, -0.0, 1e-30, 1.0]]).astype(dtype)
    assert ulps(run(0, x), np.exp(x.astype(np.float64)), dtype).max() < 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_within_a_few_ulps(dtype):
    x = np.concatenate([np.linspace(-20, 20, 400_001), np.linspace(-1e-3, 1e-3, 20_001),
                        [0.0, 1e-30, -1e-30, 0.625, -0.625, 700, -700, 1e6]]).astype(dtype)
    assert ulps(run(1, x), np.tanh(x.astype(np.float64)), dtype).max() < 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_within_a_few_ulps(dtype):
    x = np.linspace(-80, 80, 200_001).astype(dtype)
    ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert ulps(run(2, x), ref, dtype).max() < 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_and_infinities_saturate(dtype):
    x = np.array([np.nan, np.inf, -np.inf], dtype=dtype)
    for code in (0, 1, 2):
        assert np.isnan(run(code, x)[0])
    t = run(1, x)
    assert t[1] == pytest.approx(1.0, abs=1e-6) and t[2] == pytest.approx(-1.0, abs=1e-6)
    s = run(2, x)
    assert s[1] == pytest.approx(1.0) and s[2] == pytest.approx(0.0, abs=1e-30)
