"""The activations added with the layer kinds (elu, softplus, silu, gelu), value and
derivative, through the kernels' buffer loops, against the NumPy reference and PyTorch, on a
grid with large |z|, in float64 and float32.  (Their gradients inside networks: test_layers.)"""
import numpy as np
import pytest

from fastbp.kernels.activations import activate, backprop_activation
from fastbp.registry import ACTIVATIONS
from naive import act, act_derivative

NEW = ["elu", "softplus", "silu", "gelu"]
GRID = np.concatenate([np.linspace(-12, 12, 2401),
                       np.outer([-1, 1], [1e-9, 1e-6, 1e-3, 20, 50, 100, 1e3, 1e4]).ravel()])


def kernel(name, z, keep_pre):
    """f(z) and f'(z) from the kernels' loops: activate (the forward pass) and
    backprop_activation with an upstream gradient of ones (the backward pass), given z (as
    when some layer of the network needs it) or only f(z)."""
    e = ACTIVATIONS.get(name)
    a = z.copy()
    activate(a, 0, a.size, a.size, e.code)
    d = a.copy()
    pre = z.copy() if keep_pre else np.empty(0, z.dtype)
    backprop_activation(np.ones_like(z), 0, d, 0, pre, z.size, e.code)
    return a, d


def close(got, ref, z, rtol, atol):
    ref = np.asarray(ref, dtype=np.float64)
    err = np.abs(got.astype(np.float64) - ref)
    bad = err > rtol * np.abs(ref) + atol
    assert not bad.any(), list(zip(z[bad][:5], got[bad][:5], ref[bad][:5]))


def tolerances(dtype):
    eps = np.finfo(dtype).eps
    # values: a few ulps, and traces of the clamped exp (|z| e^-88 in float32) below 1e-30;
    # derivatives: a few ulps and eps absolute (elu's f' = f + 1 knows e^z to eps only)
    # (1e-30 absolute: the same as 0 in any network)
    return 8 * eps, 1e-30, 2 * eps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NEW)
def test_value_and_derivative_match_reference(name, dtype):
    z = GRID.astype(dtype)
    z64 = z.astype(np.float64)  # the reference, in float64, at the same points
    rtol, atol_v, atol_d = tolerances(dtype)
    paths = [True] if ACTIVATIONS.get(name).needs_pre else [True, False]
    for keep_pre in paths:
        a, d = kernel(name, z, keep_pre)
        assert a.dtype == dtype and d.dtype == dtype
        assert np.isfinite(a).all() and np.isfinite(d).all()
        # values: to within rounding of z (backward error): rtol (|f| + |z f'|), which
        # matters where f = e^(large) (gelu's tail)
        close(a, act(name, z64), z64, rtol, atol_v + rtol * np.abs(z64 * act_derivative(name, z64)))
        close(d, act_derivative(name, z64), z64, rtol, atol_d)


def test_reference_derivatives_are_derivatives():
    z = np.linspace(-6, 6, 600)  # not 0: elu's f'' jumps there
    h = 1e-6
    for name in NEW:
        fd = (act(name, z + h) - act(name, z - h)) / (2 * h)
        np.testing.assert_allclose(act_derivative(name, z), fd, rtol=1e-7, atol=1e-9)


def test_gelu_saturates_in_float32():
    """float32 tanh rounds to within ulps of +-1, and the old 0.5 z (1 - t**2) u' magnified
    that by z**3: f'(100) came out 1.03 and f'(1e4) 2.6e4; 0.5 z (1 + t) gave f(-10) =
    -1.2e-6 for -1.2e-37."""
    z = np.array([5, 10, 30, 100, 1e4, 1e10, 1e20, 3e38], dtype=np.float32)
    a, d = kernel("gelu", np.concatenate([z, -z]), True)
    n = z.size
    assert np.abs(d[:2] - 1).max() < 1e-5 and np.abs(d[n:n + 2]).max() < 1e-5
    np.testing.assert_array_equal(d[2:n], 1)
    np.testing.assert_array_equal(d[n + 2:], 0)
    np.testing.assert_array_equal(a[:n], z)
    assert np.abs(a[n + 1:]).max() < 1e-30


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NEW)
def test_value_and_derivative_match_torch(name, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    fn = {"elu": F.elu, "softplus": F.softplus, "silu": F.silu,
          "gelu": lambda t: F.gelu(t, approximate="tanh")}[name]
    z = GRID.astype(dtype)
    t = torch.tensor(z, requires_grad=True)
    y = fn(t)
    y.sum().backward()
    a, d = kernel(name, z, True)
    eps = np.finfo(dtype).eps
    # PyTorch computes 0.5 z (1 + tanh u), whose 1 + tanh u cancels for u << 0 (an error of
    # eps |z| / 2, in f' about 3 eps |z|), and softplus as z beyond z = 20 (its threshold),
    # off by log1p(e^-z) < 2.1e-9
    atol = 4 * eps * np.maximum(1, np.abs(z.astype(np.float64)))
    if name == "softplus":
        atol = np.maximum(atol, 2.1e-9 * (z > 20))
    close(a, y.detach().numpy(), z, 8 * eps, atol)
    close(d, t.grad.numpy(), z, 8 * eps, atol)
