"""FANN network files (.net) against the real FANN library (doublefann, via ctypes): networks
FANN trained and saved load into fastbp and predict what fann_run does; networks fastbp
saved load into fann_create_from_file and fann_run computes what fastbp does; both within
1e-6.  Networks FANN cannot express and broken files are clear errors."""
import ctypes
import ctypes.util
import re

import numpy as np
import pytest

import fastbp
from fastbp import Dense
from fastbp.errors import FannFormatError

FANN_SIGMOID, FANN_SIGMOID_STEPWISE, FANN_SIGMOID_SYMMETRIC, FANN_LINEAR = 3, 4, 5, 0
FANN_TRAIN_RPROP, FANN_TRAIN_INCREMENTAL = 2, 0


def _doublefann():
    name = ctypes.util.find_library("doublefann")
    if name is None:
        pytest.skip("libdoublefann not found (install FANN: apt-get install libfann-dev)")
    lib = ctypes.CDLL(name)
    P, D, U = ctypes.c_void_p, ctypes.c_double, ctypes.c_uint
    for fn, res, args in [
        ("fann_create_standard_array", P, [U, ctypes.POINTER(U)]),
        ("fann_create_sparse_array", P, [ctypes.c_float, U, ctypes.POINTER(U)]),
        ("fann_create_shortcut_array", P, [U, ctypes.POINTER(U)]),
        ("fann_create_from_file", P, [ctypes.c_char_p]),
        ("fann_set_activation_function_hidden", None, [P, ctypes.c_int]),
        ("fann_set_activation_function_output", None, [P, ctypes.c_int]),
        ("fann_set_activation_steepness_hidden", None, [P, D]),
        ("fann_set_activation_steepness_output", None, [P, D]),
        ("fann_set_training_algorithm", None, [P, ctypes.c_int]),
        ("fann_read_train_from_file", P, [ctypes.c_char_p]),
        ("fann_train_on_data", None, [P, P, U, U, ctypes.c_float]),
        ("fann_save", ctypes.c_int, [P, ctypes.c_char_p]),
        ("fann_run", ctypes.POINTER(D), [P, ctypes.POINTER(D)]),
        ("fann_get_num_output", U, [P]),
        ("fann_destroy", None, [P]),
        ("fann_destroy_train", None, [P]),
    ]:
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


@pytest.fixture(scope="module")
def fann():
    return _doublefann()


def _create(fann, sizes, kind="standard"):
    arr = (ctypes.c_uint * len(sizes))(*sizes)
    if kind == "sparse":
        ann = fann.fann_create_sparse_array(0.5, len(sizes), arr)
    elif kind == "shortcut":
        ann = fann.fann_create_shortcut_array(len(sizes), arr)
    else:
        ann = fann.fann_create_standard_array(len(sizes), arr)
    assert ann
    return ann


def _run(fann, ann, X):
    n_out = fann.fann_get_num_output(ann)
    out = np.empty((len(X), n_out))
    for i, x in enumerate(np.ascontiguousarray(X, dtype=np.float64)):
        y = fann.fann_run(ann, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        out[i] = y[:n_out]
    return out


def _data(rng, n=64, n_in=4, n_out=2):
    X = rng.uniform(-1, 1, size=(n, n_in))
    Y = np.stack([np.sin(X[:, 0] + X[:, 1]), X[:, 2] * X[:, 3]], 1)[:, :n_out]
    return X, Y


@pytest.mark.parametrize("hidden,hidden_s,output,output_s", [
    (FANN_SIGMOID_SYMMETRIC, 0.5, FANN_SIGMOID, 0.5),      # FANN's default steepness
    (FANN_SIGMOID, 0.5, FANN_LINEAR, 1.0),
    (FANN_SIGMOID_SYMMETRIC, 0.75, FANN_SIGMOID_SYMMETRIC, 1.0),
    (FANN_SIGMOID_SYMMETRIC, 1.0, FANN_LINEAR, 0.5),
])
def test_network_fann_trained_predicts_the_same_in_fastbp(fann, tmp_path, hidden, hidden_s,
                                                          output, output_s):
    rng = np.random.default_rng(0)
    X, Y = _data(rng)
    fastbp.write_fann_data(tmp_path / "train.data", X, (Y + 1) / 2 if output == FANN_SIGMOID
                           else Y)
    ann = _create(fann, [4, 7, 5, 2])
    fann.fann_set_activation_function_hidden(ann, hidden)
    fann.fann_set_activation_steepness_hidden(ann, hidden_s)
    fann.fann_set_activation_function_output(ann, output)
    fann.fann_set_activation_steepness_output(ann, output_s)
    data = fann.fann_read_train_from_file(str(tmp_path / "train.data").encode())
    assert data
    fann.fann_train_on_data(ann, data, 50, 0, 0.0)
    fann.fann_destroy_train(data)
    path = tmp_path / "trained.net"
    assert fann.fann_save(ann, str(path).encode()) == 0
    X_test = rng.uniform(-1.5, 1.5, size=(200, 4))
    expected = _run(fann, ann, X_test)
    fann.fann_destroy(ann)
    net = fastbp.read_fann_net(path)
    names = {FANN_SIGMOID: "logistic", FANN_SIGMOID_SYMMETRIC: "tanh", FANN_LINEAR: "identity"}
    assert net.sizes == (4, 7, 5, 2) and net.loss == "squared_error"
    assert net.activations == [names[hidden], names[hidden], names[output]]
    assert np.ptp(expected) > 0.1  # FANN's training did something: a real comparison
    np.testing.assert_allclose(net.predict_proba(X_test), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("hidden,output", [("tanh", "logistic"), ("logistic", "identity"),
                                           ("tanh", "tanh")])
def test_network_fastbp_saved_runs_the_same_in_fann(fann, tmp_path, hidden, output):
    rng = np.random.default_rng(1)
    X, Y = _data(rng, n_out=2)
    if output == "logistic":
        Y = (Y + 1) / 2
    net = fastbp.Network([4, 9, 6, 2], hidden_activation=hidden, output=output,
                         loss="squared_error", dtype=np.float64, seed=0)
    net.fit(X, Y, epochs=30, batch_size=8, learning_rate=0.1, optimizer="adam", seed=0)
    path = tmp_path / "fastbp.net"
    net.save_fann(path)
    ann = fann.fann_create_from_file(str(path).encode())
    assert ann, "FANN could not read the file fastbp wrote"
    X_test = rng.uniform(-1.5, 1.5, size=(200, 4))
    got = _run(fann, ann, X_test)
    fann.fann_destroy(ann)
    np.testing.assert_allclose(got, net.predict_proba(X_test), rtol=0, atol=1e-6)
    # and back into fastbp: steepness 1 (tanh, linear) and 0.5 (logistic) fold exactly
    back = fastbp.read_fann_net(path)
    np.testing.assert_array_equal(back.params, net.params)
    assert back.activations == net.activations


def test_float32_network_saves_its_exact_values(tmp_path):
    net = fastbp.Network([3, 5, 2], hidden_activation="tanh", output="identity",
                         loss="squared_error", dtype=np.float32, seed=3)
    net.save_fann(tmp_path / "f.net")
    back = fastbp.read_fann_net(tmp_path / "f.net", dtype=np.float32)
    np.testing.assert_array_equal(back.params, net.params)


def test_relu_is_written_only_for_fann_master(tmp_path):
    net = fastbp.Network([3, Dense(5, activation="relu"), Dense(4, activation="leaky_relu"), 2],
                         output="identity", loss="squared_error", dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="FANN_LINEAR_PIECE_RECT.*FANN 2.2.0.*relu=True"):
        net.save_fann(tmp_path / "r.net")
    net.save_fann(tmp_path / "r.net", relu=True)
    text = (tmp_path / "r.net").read_text()
    assert "(4, 18, 1.0" in text and "(6, 19, 1.0" in text
    back = fastbp.read_fann_net(tmp_path / "r.net")
    X = np.random.default_rng(0).normal(size=(20, 3))
    assert back.activations == ["relu", "leaky_relu", "identity"]
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("make,message", [
    (lambda: fastbp.Network([3, 4, 2], output="softmax"), "loss 'cross_entropy'"),
    (lambda: fastbp.Network([3, 4, 2], output="logistic"), "loss 'binary_cross_entropy'"),
    (lambda: fastbp.Network([3, 4, 2], output="softmax", loss="cross_entropy"), "FANN"),
    (lambda: fastbp.Network([3, 4, 2], hidden_activation="gelu", output="identity"),
     "activation 'gelu' cannot be expressed"),
    (lambda: fastbp.Network([3, Dense(4, normalization="layer"), 2], output="identity"),
     "layer kind 'layer_norm' cannot be expressed"),
    (lambda: fastbp.Network([3, Dense(4, normalization="batch"), 2], output="identity"),
     "layer kind 'batch_norm' cannot be expressed"),
    (lambda: fastbp.Network([3, fastbp.GRU(4), 2], output="identity"),
     r"layer kind 'gru' cannot be expressed in this format; supported: \['dense'\]"),
    (lambda: fastbp.Network([3, fastbp.LSTM(4, return_sequences=True), 2], output="identity"),
     "layer kind 'lstm' cannot be expressed"),
    (lambda: fastbp.Network([3, fastbp.RNN(4), 2], output="identity"),
     "layer kind 'rnn' cannot be expressed"),
])
def test_networks_fann_cannot_express_are_errors(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        make().save_fann(tmp_path / "x.net")
    assert not (tmp_path / "x.net").exists()


def test_fann_networks_fastbp_cannot_read_are_errors(fann, tmp_path):
    cases = [("sparse", None, "sparse FANN network"),
             ("shortcut", None, "shortcut network"),
             ("standard", FANN_SIGMOID_STEPWISE, "FANN_SIGMOID_STEPWISE")]
    for kind, act, message in cases:
        ann = _create(fann, [3, 4, 2], kind)
        fann.fann_set_activation_function_output(ann, act or FANN_SIGMOID)
        path = tmp_path / f"{kind}.net"
        assert fann.fann_save(ann, str(path).encode()) == 0
        fann.fann_destroy(ann)
        with pytest.raises(FannFormatError, match=message):
            fastbp.read_fann_net(path)


def _saved(tmp_path):
    net = fastbp.Network([2, 3, 1], hidden_activation="tanh", output="identity",
                         loss="squared_error", dtype=np.float64, seed=0)
    return net.save_fann(tmp_path / "ok.net") and (tmp_path / "ok.net").read_text()


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("FANN_FLO_2.1", "FANN_FIX_2.1"), "fixed-point"),
    (lambda t: t.replace("FANN_FLO_2.1", "hello"), "not a FANN network file"),
    (lambda t: t.replace("layer_sizes=3 4 2", "layer_sizes=3 400000000 2"),
     "need more neurons and connections than the file holds"),
    (lambda t: t.replace("layer_sizes=3 4 2", "layer_sizes=3 4"), "does not fit layer_sizes"),
    (lambda t: t[:len(t) - 40], "should hold 13 entries"),
    (lambda t: t.replace("weight)=(0,", "weight)=(1,"), "comes from neuron 1, not 0"),
    (lambda t: t.replace("=(0, 0,", "=(1, 0,"), "input neuron 0 has 1 inputs"),
    (lambda t: t.replace("(3, 5, 1.", "(3, 3, 1.", 1), "mixes activations"),
    (lambda t: t.replace("(3, 5, 1.", "(3, 7, 1.", 1), "FANN_GAUSSIAN"),
    (lambda t: t.replace("(3, 5, 1.", "(2, 5, 1.", 1), "has 2 inputs"),
    (lambda t: t.replace("network_type=0", "network_type=x"), "not a number"),
    (lambda t: t.replace("num_layers=3\n", ""), "'num_layers' is missing"),
    (lambda t: "\u00e9" + t, "not ASCII"),
    (lambda t: "", "empty file"),
])
def test_broken_files_are_clear_errors(tmp_path, edit, message):
    text = _saved(tmp_path)
    assert "layer_sizes=3 4 2" in text and "(3, 5, 1." in text
    path = tmp_path / "bad.net"
    path.write_text(edit(text), encoding="utf-8")
    with pytest.raises(FannFormatError, match=message):
        fastbp.read_fann_net(path)


def test_weights_nan_is_an_error(tmp_path):
    text = _saved(tmp_path)
    key = "connections (connected_to_neuron, weight)="
    head, conns = text.split(key)
    path = tmp_path / "nan.net"
    path.write_text(head + key + re.sub(r"\(0, [^)]+\)", "(0, nan)", conns, count=1))
    with pytest.raises(FannFormatError, match="weight='nan' is not finite"):
        fastbp.read_fann_net(path)


def test_fann_trained_on_a_fann_benchmark_predicts_the_same(fann, tmp_path):
    from conftest import fann_path
    train, test = fann_path("robot.train"), fann_path("robot.test")
    X_test, Y_test = fastbp.read_fann_data(test)
    ann = _create(fann, [X_test.shape[1], 24, Y_test.shape[1]])
    fann.fann_set_activation_function_hidden(ann, FANN_SIGMOID_SYMMETRIC)
    fann.fann_set_activation_function_output(ann, FANN_LINEAR)
    data = fann.fann_read_train_from_file(str(train).encode())
    fann.fann_train_on_data(ann, data, 100, 0, 0.0)
    fann.fann_destroy_train(data)
    assert fann.fann_save(ann, str(tmp_path / "robot.net").encode()) == 0
    expected = _run(fann, ann, X_test)
    fann.fann_destroy(ann)
    assert np.mean((expected - Y_test) ** 2) < np.var(Y_test)  # FANN learned something
    net = fastbp.read_fann_net(tmp_path / "robot.net")
    np.testing.assert_allclose(net.predict_proba(X_test), expected, rtol=0, atol=1e-6)
