"""Bad input gets a ValueError/TypeError naming the problem, before any kernel runs."""
import numpy as np
import pytest

import fastbp


@pytest.fixture
def net():
    return fastbp.Network([4, 5, 3], hidden_activation="tanh", output="softmax",
                          dtype=np.float64, seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 4)), rng.integers(0, 3, 10)


def test_wrong_number_of_features(net, data):
    X, y = data
    with pytest.raises(ValueError, match="3 features per sample, but the network expects 4"):
        net.fit(X[:, :3], y)
    with pytest.raises(ValueError, match="5 features"):
        net.predict(np.ones((2, 5)))


def test_one_dimensional_X(net, data):
    X, y = data
    with pytest.raises(ValueError, match="must be a 2-D array.*reshape"):
        net.fit(X[0], y[:1])
    with pytest.raises(ValueError, match="2-D"):
        net.predict_proba(X[0])


def test_nan_in_X(net, data):
    X, y = data
    X = X.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at index \[3, 2\]\)"):
        net.fit(X, y)
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.predict(X)


def test_inf_in_X(net, data):
    X, y = data
    X = X.copy()
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.gradient(X, y)
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.predict_proba(X)


def test_nan_in_y(data):
    X, _ = data
    reg = fastbp.Network([4, 5, 2], output="identity", dtype=np.float64)
    Y = np.zeros((10, 2))
    Y[5, 1] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        reg.fit(X, Y)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'mish'.*choose one of"):
        fastbp.Network([4, 5, 3], hidden_activation="mish")
    with pytest.raises(ValueError, match="unknown output activation"):
        fastbp.Network([4, 5, 3], output="sotfmax")


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        fastbp.Network([4, 5, 3], loss="hinge")


def test_mismatched_loss_and_output():
    with pytest.raises(ValueError, match="cross_entropy needs a softmax output"):
        fastbp.Network([4, 5, 3], output="identity", loss="cross_entropy")
    with pytest.raises(ValueError, match="binary_cross_entropy needs a logistic output"):
        fastbp.Network([4, 5, 3], output="tanh", loss="binary_cross_entropy")


def test_softmax_on_a_hidden_layer():
    with pytest.raises(ValueError, match="softmax can only be the output activation"):
        fastbp.Network([4, 5, 3], hidden_activation="softmax")
    with pytest.raises(ValueError, match="softmax can only be the output"):
        fastbp.Network([4, 5, 5, 3], hidden_activation=["relu", "softmax"])


def test_labels_out_of_range(net, data):
    X, _ = data
    with pytest.raises(ValueError, match="class label 3, out of range.*0..2"):
        net.fit(X, np.arange(10) % 4)
    with pytest.raises(ValueError, match="class label -1"):
        net.fit(X, np.full(10, -1))


def test_empty_data_set(net):
    with pytest.raises(ValueError, match="X is empty"):
        net.fit(np.empty((0, 4)), np.empty(0, dtype=int))
    with pytest.raises(ValueError, match="X is empty"):
        net.predict(np.empty((0, 4)))


def test_mismatched_sample_counts(net, data):
    X, y = data
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        net.fit(X, y[:9])


def test_non_numeric_input(net, data):
    X, y = data
    with pytest.raises(TypeError, match="X must be numeric"):
        net.fit(X.astype(str), y)
    with pytest.raises(TypeError, match="y must be numeric"):
        net.fit(X, y.astype(str))


def test_bad_layer_sizes_and_dtype():
    with pytest.raises(ValueError, match="at least an input and an output"):
        fastbp.Network([4])
    with pytest.raises(ValueError, match="must be >= 1"):
        fastbp.Network([4, 0, 2])
    with pytest.raises(TypeError, match="must be integers"):
        fastbp.Network([4, 2.5, 2])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fastbp.Network([4, 3, 2], dtype=np.int32)
    with pytest.raises(ValueError, match="hidden_activation lists 1 values but the network has 2"):
        fastbp.Network([4, 5, 5, 3], hidden_activation=["relu"])


def test_bad_fit_options(net, data):
    X, y = data
    with pytest.raises(ValueError, match="unknown optimizer 'sgdd'"):
        net.fit(X, y, optimizer="sgdd")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        net.fit(X, y, epochs=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        net.fit(X, y, batch_size=2.5)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        net.fit(X, y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="non-integer values"):
        net.fit(X, np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\] for cross_entropy"):
        net.fit(X, np.full((10, 3), 2.0))


@pytest.mark.parametrize("weight", [-1, 0, 0.0, np.nan, np.inf, -np.inf])
def test_a_scalar_sample_weight_must_be_finite_and_positive(net, data, weight):
    """One weight for every sample: 0 or less makes training a silent no-op, NaN/inf a
    reported divergence; both are bad input."""
    X, y = data
    with pytest.raises(ValueError, match="sample_weight must be"):
        net.fit(X, y, epochs=1, sample_weight=weight)
    with pytest.raises(ValueError, match="sample_weight must be"):
        net.gradient(X, y, sample_weight=weight)


def test_values_beyond_float32_are_bad_input_not_divergence(data):
    X, y = data
    net = fastbp.Network([4, 5, 1], output="identity", dtype=np.float32, seed=0)
    target = np.ones(10)
    target[3] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"y has a value too large for float32 .*\[3, 0\]"):
        net.fit(X, target, epochs=1)
    big = X.copy()
    big[2, 1] = -1e300
    with pytest.raises(ValueError, match=r"X has a value too large for float32 .*\[2, 1\]"):
        net.fit(big, np.ones(10), epochs=1)
    with pytest.raises(ValueError, match=r"X has a value too large for float32"):
        net.predict(big)
    weights = np.ones(10)
    weights[0] = 1e39
    with pytest.raises(ValueError, match=r"sample_weight has a value too large for float32"):
        net.fit(X, np.ones(10), epochs=1, sample_weight=weights)


def test_huge_labels_are_reported_as_given(net, data):
    """Range checked before the cast to int64, which would wrap 1e20 around."""
    X, _ = data
    y = np.zeros(10)
    y[5] = 1e20
    with pytest.raises(ValueError, match=r"class label 1e\+20, out of range"):
        net.fit(X, y)
    y = np.zeros(10, dtype=np.uint64)
    y[5] = 2 ** 63 + 1
    with pytest.raises(ValueError, match=f"class label {2 ** 63 + 1}, out of range"):
        net.fit(X, y)


def test_complex_input_is_refused_everywhere(net, data):
    X, y = data
    Xc = X.astype(complex)
    for call in (lambda: net.fit(Xc, y), lambda: net.predict(Xc),
                 lambda: net.predict_proba(Xc), lambda: net.gradient(Xc, y),
                 lambda: net.evaluate(Xc, y)):
        with pytest.raises(TypeError, match="X must be real numbers, got complex"):
            call()
    with pytest.raises(TypeError, match="y must be real numbers, got complex"):
        net.fit(X, y.astype(complex))
    with pytest.raises(TypeError, match="sample_weight must be real numbers, got complex"):
        net.fit(X, y, sample_weight=np.ones(10, dtype=complex))
    with pytest.raises(TypeError, match="sample_weight must be a real number, got complex"):
        net.fit(X, y, sample_weight=1 + 1j)


def test_a_network_too_large_is_refused_before_allocating():
    from fastbp._config import MAX_PARAMS
    with pytest.raises(ValueError, match=f"more than the {MAX_PARAMS} fastbp allows"):
        fastbp.Network([3, 100_000, 100_000, 2])
    with pytest.raises(ValueError, match="too large"):
        fastbp.Network([3, 99999999999999, 2])
