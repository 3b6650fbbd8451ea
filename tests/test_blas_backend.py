"""The kernels' matrix products (``kernels.blas.gemm``) and the BLAS behind them: SciPy's by
default, Intel's MKL with ``fastbp.set_blas("mkl")`` or ``FASTBP_BLAS=mkl`` (the MKL tests skip
where PyPI's ``mkl`` package is not installed)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

import fastbp
from fastbp import _blas
from fastbp.kernels.blas import gemm


@njit
def _gemm(alpha, A, B, beta, C):
    gemm(alpha, A, B, beta, C)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 7, 5), (64, 100, 33)])
def test_gemm_matches_numpy_for_every_layout(dtype, ta, tb, m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    A = A.T if ta else A
    B = B.T if tb else B
    C0 = rng.standard_normal((m, n)).astype(dtype)
    for alpha, beta in ((1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)):
        C = C0.copy()
        _gemm(alpha, A, B, beta, C)
        expected = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * C0
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(C, expected, rtol=tol, atol=tol * k)
        if beta == 0.0 and alpha == 1.0 and _blas.current_blas() == "scipy":
            # the same BLAS function with the same arguments as Numba's np.dot: same bits
            assert np.array_equal(C, np.dot(A, B))


def test_an_unknown_blas_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown BLAS 'openblas2'"):
        fastbp.set_blas("openblas2")
    assert fastbp.current_blas() in ("scipy", "mkl")


def test_an_unknown_blas_in_the_environment_is_refused_at_import():
    env = dict(os.environ, FASTBP_BLAS="atlas")
    out = subprocess.run([sys.executable, "-c", "import fastbp"], env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "FASTBP_BLAS='atlas'" in out.stderr


def test_mkl_missing_is_an_error_that_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_blas, "_mkl_candidates", lambda: [])
    monkeypatch.setitem(_blas._state, "mkl", None)
    before = fastbp.current_blas()
    with pytest.raises(ImportError, match=r"pip install 'fastbp\[mkl\]'"):
        fastbp.set_blas("mkl")
    assert fastbp.current_blas() == before  # nothing switched


needs_mkl = pytest.mark.skipif(not _blas.mkl_installed(), reason="Intel's MKL is not "
                               "installed (pip install 'fastbp[mkl]')")

#: a fit whose products all go to BLAS (and to both BLAS threads in the biggest layer)
FIT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastbp
    if len(sys.argv) > 1:
        fastbp.set_blas(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1024, 784)).astype(np.float32)
    y = rng.integers(0, 10, 1024)
    out = {"blas": fastbp.current_blas()}
    for dtype in ("float32", "float64"):
        net = fastbp.Network([784, 512, 128, 10], dtype=dtype, seed=1)
        net.fit(X, y, epochs=1, batch_size=256, optimizer="adam", seed=0)
        out[dtype] = net.params.tolist()
    print(json.dumps(out))
""")


def _fit(env_blas=None, argv_blas=None, threads=None):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTBP_BLAS", "MKL_NUM_THREADS")}
    if env_blas:
        env["FASTBP_BLAS"] = env_blas
    if threads:
        env["MKL_NUM_THREADS"] = str(threads)
    args = [sys.executable, "-c", FIT] + ([argv_blas] if argv_blas else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["blas"], {k: np.array(got[k]) for k in ("float32", "float64")}


@needs_mkl
def test_mkl_gives_the_same_function_and_the_same_bits_run_to_run_and_on_any_thread_count():
    blas, scipy = _fit()
    assert blas == "scipy"
    runs = [_fit(env_blas="mkl", threads=t) for t in (2, 1, 2)]
    assert all(b == "mkl" for b, _ in runs)
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-10)):
        mkl = runs[0][1][dtype]
        # another BLAS: not the same bits as SciPy's (so the switch happened) ...
        assert not np.array_equal(mkl, scipy[dtype])
        # ... but the same training, to the dtype's rounding
        assert np.max(np.abs(mkl - scipy[dtype])) < tol * np.max(np.abs(scipy[dtype]))
        # MKL's strict reproducible mode: the same bits in every run, on 1 or 2 threads
        for _, other in runs[1:]:
            assert np.array_equal(other[dtype], mkl)
    # switching at run time (fastbp.set_blas) gives what FASTBP_BLAS gives
    blas, switched = _fit(argv_blas="mkl")
    assert blas == "mkl"
    for dtype in ("float32", "float64"):
        assert np.array_equal(switched[dtype], runs[0][1][dtype])
