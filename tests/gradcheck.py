"""One check of a network's compiled gradient, shared by the dense test files: equal to an
independent NumPy reference (value and gradient to 1e-10) and to central finite differences
of ``net.evaluate`` (1e-6)."""
import pytest

from naive import numeric_gradient, rel_error


def assert_gradient_matches(net, X, Y, reference):
    """``reference(net, X, Y)`` returns the NumPy (loss, flat gradient) of the network."""
    value, grad = net.gradient(X, Y)
    ref_value, ref_grad = reference(net, X, Y)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-14)
    assert rel_error(grad, ref_grad) < 1e-10

    def f(p):
        net.params[:] = p
        return net.evaluate(X, Y)

    p0 = net.params.copy()
    fd = numeric_gradient(f, p0.copy())
    net.params[:] = p0
    assert rel_error(grad, fd) < 1e-6
