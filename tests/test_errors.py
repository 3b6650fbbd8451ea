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
