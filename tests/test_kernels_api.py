"""The public kernels, called from a user's own @njit code."""
import numpy as np
import pytest
from numba import njit

import fastbp
from fastbp.kernels import gradient, mean_loss, network_arrays, predict_proba
from fastbp.kernels.codes import N_OUT


@njit
def user_predict_all(population, X, buffers, spec):
    """A user's loop: outputs of many parameter vectors for the same inputs."""
    out = np.empty((population.shape[0], X.shape[0], spec[spec.shape[0] - 1, N_OUT]),
                   dtype=population.dtype)
    for i in range(population.shape[0]):
        out[i] = predict_proba(X, population[i], buffers, spec)
    return out


@njit
def user_losses(population, X, Y, buffers, spec, loss):
    losses = np.empty(population.shape[0])
    for i in range(population.shape[0]):
        losses[i] = mean_loss(X, Y, population[i], buffers, spec, loss)
    return losses


@njit
def user_gradient(X, Y, params, buffers, spec, loss):
    grad = np.empty_like(params)
    value = gradient(X, Y, params, buffers, spec, loss, grad)
    return value, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_njit_code_gets_the_same_outputs_as_predict_proba(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(dtype)  # more rows than one kernel chunk
    nets = [fastbp.Network([6, 9, 4], hidden_activation="tanh", dtype=dtype, seed=s)
            for s in range(3)]
    params, buffers, spec, loss = network_arrays(nets[0])
    assert np.shares_memory(params, nets[0].params) and loss == nets[0].loss_code
    population = np.stack([n.params for n in nets])
    out = user_predict_all(population, X, buffers, spec)
    # the same kernel; BLAS may split the products over a different number of threads (fastbp
    # limits small products to one), which changes float32 rounding in the last bits only
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for i, net in enumerate(nets):
        np.testing.assert_allclose(out[i], net.predict_proba(X), rtol=tol, atol=tol)


def test_user_njit_losses_and_gradient_match_the_network():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, 40)
    Y = np.eye(3)[y]
    nets = [fastbp.Network([5, 7, 3], dtype=np.float64, seed=s) for s in range(4)]
    _, buffers, spec, loss = network_arrays(nets[0])
    losses = user_losses(np.stack([n.params for n in nets]), X, Y, buffers, spec, loss)
    np.testing.assert_allclose(losses, [n.evaluate(X, y) for n in nets], rtol=1e-12)
    value, grad = user_gradient(X, Y, nets[1].params, buffers, spec, loss)
    ref_value, ref_grad = nets[1].gradient(X, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_public_kernels_reject_bad_input_with_a_clear_error():
    net = fastbp.Network([3, 4, 2], dtype=np.float64, seed=0)
    params, buffers, spec, loss = network_arrays(net)
    with pytest.raises(ValueError, match="wrong number of features"):
        predict_proba(np.ones((2, 5)), params, buffers, spec)
    X = np.ones((2, 3))
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        predict_proba(X, params, buffers, spec)
    # Y shorter than X would read past its end: refused, as are bad codes and grad sizes
    grad = np.empty_like(params)
    with pytest.raises(ValueError, match="different numbers of rows"):
        gradient(np.ones((5, 3)), np.ones((2, 2)), params, buffers, spec, loss, grad)
    with pytest.raises(ValueError, match="columns"):
        mean_loss(np.ones((2, 3)), np.ones((2, 3)), params, buffers, spec, loss)
    with pytest.raises(ValueError, match="unknown loss code"):
        mean_loss(np.ones((2, 3)), np.ones((2, 2)), params, buffers, spec, 99)
    with pytest.raises(ValueError, match="grad must have"):
        gradient(np.ones((2, 3)), np.ones((2, 2)), params, buffers, spec, loss, grad[:3])


# --- argument types: a clear error naming the argument, from Python and from @njit code ----
@njit
def user_predict(X, params, buffers, spec):
    return predict_proba(X, params, buffers, spec)


@njit
def user_mean_loss(X, Y, params, buffers, spec, loss):
    return mean_loss(X, Y, params, buffers, spec, loss)


@njit
def user_gradient_into(X, Y, params, buffers, spec, loss, grad):
    return gradient(X, Y, params, buffers, spec, loss, grad)


def _float32_net():
    net = fastbp.Network([3, 4, 2], dtype=np.float32, seed=0)
    params, buffers, spec, loss = network_arrays(net)
    X = np.ones((5, 3), dtype=np.float32)
    Y = np.zeros((5, 2), dtype=np.float32)
    Y[:, 0] = 1
    return X, Y, params, buffers, spec, loss


def _bad_cases():
    """(argument name, pattern, a function that swaps the bad value into the arguments)."""
    X, Y, params, buffers, spec, loss = _float32_net()
    return [
        ("X", r"X must be a C-contiguous 2-D float32 like params array, got "
              r"array\(float64, 2d, C\)", dict(X=X.astype(np.float64))),
        ("X", r"X must be .*, got array\(float32, 1d, C\)", dict(X=X[0].copy())),
        ("X", r"X must be .*, got array\(float32, 2d, A\)",
         dict(X=np.ones((5, 6), np.float32)[:, ::2])),
        ("Y", r"Y must be .*float32 like params", dict(Y=Y.astype(np.float64))),
        ("spec", r"spec must be a C-contiguous 2-D int64 array, got array\(int32, 2d, C\)",
         dict(spec=spec.astype(np.int32))),
        ("spec", r"spec must be .*, got array\(int64, 1d, C\)", dict(spec=spec.ravel().copy())),
        ("params", r"params must be a C-contiguous 1-D float32 or float64 array, got "
                   r"array\(int64, 1d, C\)", dict(params=np.zeros(params.size, np.int64))),
        ("grad", r"grad must be a C-contiguous writable 1-D float32 like params array",
         dict(grad=np.empty(params.size, np.float64))),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
@pytest.mark.parametrize("where", ["python", "njit"])
def test_public_kernels_name_the_argument_of_the_wrong_type(case, where):
    from numba.core.errors import TypingError
    X, Y, params, buffers, spec, loss = _float32_net()
    args = dict(X=X, Y=Y, params=params, buffers=buffers, spec=spec, loss=loss,
                grad=np.empty_like(params))
    name, pattern, swap = _bad_cases()[case]
    args.update(swap)
    calls = {"gradient": (gradient, user_gradient_into, ["X", "Y", "params", "buffers", "spec",
                                                         "loss", "grad"])}
    if name != "grad":
        calls["mean_loss"] = (mean_loss, user_mean_loss,
                              ["X", "Y", "params", "buffers", "spec", "loss"])
    if name not in ("Y", "grad"):
        calls["predict_proba"] = (predict_proba, user_predict, ["X", "params", "buffers",
                                                                "spec"])
    for fn, (public, user, names) in calls.items():
        call = public if where == "python" else user
        error = TypeError if where == "python" else TypingError
        with pytest.raises(error, match=f"fastbp.kernels.{fn}: {pattern}"):
            call(*[args[n] for n in names])


def test_public_kernels_refuse_a_non_integer_loss_code():
    from numba.core.errors import TypingError
    X, Y, params, buffers, spec, loss = _float32_net()
    with pytest.raises(TypeError, match="loss must be an integer loss code"):
        mean_loss(X, Y, params, buffers, spec, 1.5)
    with pytest.raises(TypingError, match="loss must be an integer loss code"):
        user_mean_loss(X, Y, params, buffers, spec, 1.5)


@pytest.mark.parametrize("where", ["python", "njit"])
def test_a_layer_table_that_does_not_match_params_is_refused(where):
    """A spec of the wrong shape, or another network's, would read outside params."""
    X, Y, params, buffers, spec, loss = _float32_net()
    call = predict_proba if where == "python" else user_predict
    with pytest.raises(ValueError, match="wrong shape"):
        call(X, params, buffers, np.ascontiguousarray(spec[:, :5]))
    other = fastbp.Network([3, 40, 2], dtype=np.float32, seed=0)
    with pytest.raises(ValueError, match="spec does not match params"):
        call(X, params, buffers, other.layout.spec)  # params far too short for this table
    with pytest.raises(ValueError, match="spec does not match params"):
        call(X, other.params, buffers, spec)
    bad = spec.copy()
    bad[1, 4] += 1  # a bias offset moved
    with pytest.raises(ValueError, match="spec does not match params"):
        call(X, params, buffers, bad)
    bad = spec.copy()
    bad[0, 5] = 77  # an activation code that does not exist
    with pytest.raises(ValueError, match="bad activation code"):
        call(X, params, buffers, bad)


def test_unchecked_kernels_stay_available_for_inner_loops():
    from fastbp.kernels import unchecked_mean_loss, unchecked_predict_proba
    X, Y, params, buffers, spec, loss = _float32_net()
    np.testing.assert_array_equal(unchecked_predict_proba(X, params, buffers, spec),
                                  predict_proba(X, params, buffers, spec))
    assert unchecked_mean_loss(X, Y, params, buffers, spec, loss) == \
        mean_loss(X, Y, params, buffers, spec, loss)


@pytest.mark.parametrize("normalization", ["batch", "layer"])
def test_layer_tables_with_normalization_pass_the_table_check(normalization):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    net = fastbp.Network([4, 6, 5, 3], dtype=np.float64, seed=0, normalization=normalization)
    net.fit(X, y, epochs=2, batch_size=8)  # running statistics away from their start
    params, buffers, spec, loss = network_arrays(net)
    np.testing.assert_allclose(user_predict(X, params, buffers, spec), net.predict_proba(X),
                               rtol=1e-12, atol=1e-15)
    assert user_mean_loss(X, np.eye(3)[y], params, buffers, spec, loss) == \
        pytest.approx(net.evaluate(X, y), rel=1e-12)
    if normalization == "batch":
        with pytest.raises(ValueError, match="buffers is too short"):
            predict_proba(X, params, buffers[:-1], spec)


def test_kernels_compiled_from_other_sources_are_refused(monkeypatch):
    """A user's @njit(cache=True) function holds a copy of the kernels' machine code, which
    Numba's cache checks against the user's file only: after fastbp's kernels change it would
    run the old ones.  The checked kernels compare the sources' digest they were compiled with
    against the loaded fastbp's, read at run time (here the loaded one is made to differ, as
    after an upgrade), and refuse with an error that says what to delete."""
    from fastbp.kernels import api
    rng = np.random.default_rng(2)
    X = rng.normal(size=(10, 5))
    Y = np.eye(3)[rng.integers(0, 3, 10)]
    net = fastbp.Network([5, 7, 3], dtype=np.float64, seed=0)
    _, buffers, spec, loss = network_arrays(net)
    population = net.params[None, :].copy()
    before = user_losses(population, X, Y, buffers, spec, loss)
    monkeypatch.setattr(api._RUNTIME_STAMP, "value", api.SOURCE_STAMP + 1)
    with pytest.raises(ValueError, match=r"stale Numba cache.*__pycache__"):
        user_losses(population, X, Y, buffers, spec, loss)
    monkeypatch.undo()
    assert user_losses(population, X, Y, buffers, spec, loss)[0] == before[0]
