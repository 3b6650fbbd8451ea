"""ONNX: onnxruntime computes what fastbp computes (within 1e-5 in float32) for a digits
classifier, a multi-output regressor, a batch-normalized net and a skl2onnx-converted
Pipeline, with identical labels; the graphs pass onnx.checker; what ONNX cannot get is an
error naming it."""
import numpy as np
import pytest

import fastbp
from fastbp import Dense

onnx = pytest.importorskip("onnx", reason='onnx is not installed (pip install "fastbp[onnx]")')
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("sklearn", reason="scikit-learn is not installed")


def _session(model):
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _ops(model):
    return [n.op_type for n in model.graph.node]


def test_digits_classifier(digits, tmp_path):
    from fastbp.sklearn import MLPClassifier
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=30, random_state=0,
                        dtype="float32").fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.9  # a trained model, not a random one
    model = clf.to_onnx(tmp_path / "digits.onnx")
    assert (tmp_path / "digits.onnx").read_bytes() == model.SerializeToString()
    assert _ops(model).count("Gemm") == 3
    sess = _session(onnx.load(tmp_path / "digits.onnx"))
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    X = X_test.astype(np.float32)
    label, proba = sess.run(None, {"X": X})
    assert proba.dtype == np.float32 and label.dtype == np.int64
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-5)


def test_gemm_uses_the_stored_weight_block():
    net = fastbp.Network([4, 3, 2], dtype=np.float32, seed=0)
    model = net.to_onnx()
    gemm = model.graph.node[0]
    assert gemm.op_type == "Gemm"
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}
    w = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}[gemm.input[1]]
    np.testing.assert_array_equal(w, net.layers[0].weight)  # (n_out, n_in), as stored


def test_multi_output_regressor(rng):
    from fastbp.sklearn import MLPRegressor
    X = rng.normal(size=(300, 6))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3], X[:, 4] - X[:, 5]], 1)
    reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", max_iter=200,
                       random_state=0, dtype="float32").fit(X[:200], Y[:200])
    assert reg.score(X[200:], Y[200:]) > 0.5
    sess = _session(reg.to_onnx())
    (out,) = sess.run(None, {"X": X[200:].astype(np.float32)})
    assert out.shape == (100, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, reg.predict(X[200:].astype(np.float32)), rtol=0, atol=1e-5)


def test_batch_normalized_network_is_folded(digits):
    X_train, X_test, y_train, _ = digits
    net = fastbp.Network([64, Dense(48, activation="relu", normalization="batch"),
                          Dense(32, activation="tanh", normalization="batch"), 10],
                         dtype=np.float32, seed=0)
    net.fit(X_train, y_train, epochs=5, batch_size=32, optimizer="adam", seed=0)
    assert np.ptp(net.layers[0].running_var) > 0  # running statistics were learned
    model = net.to_onnx()
    assert "BatchNormalization" not in _ops(model) and _ops(model).count("Gemm") == 3
    (proba,) = _session(model).run(None, {"X": X_test.astype(np.float32)})
    np.testing.assert_allclose(proba, net.predict_proba(X_test), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), net.predict(X_test))


def test_skl2onnx_converts_a_pipeline(digits):
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from fastbp.sklearn import MLPClassifier, register_skl2onnx
    register_skl2onnx()
    X_train, X_test, y_train, y_test = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                       "eight", "nine"])
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(32,), max_iter=50,
                                           random_state=0, dtype="float32"))])
    pipe.fit(X_train.astype(np.float32), labels[y_train])
    X = X_test.astype(np.float32)
    for options, check in [({MLPClassifier: {"zipmap": False}}, "array"), (None, "zipmap")]:
        model = skl2onnx.to_onnx(pipe, X[:1], options=options)
        label, proba = _session(model).run(None, {"X": X})
        np.testing.assert_array_equal(label, pipe.predict(X))
        if check == "zipmap":  # skl2onnx's default: one {class: probability} per row
            proba = np.array([[row[c] for c in pipe.classes_] for row in proba])
        np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=1e-5)
    assert (label == labels[y_test]).mean() > 0.9


def test_skl2onnx_regressor_in_a_float64_pipeline(rng):
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from fastbp.sklearn import MLPRegressor, register_skl2onnx
    register_skl2onnx()
    X = rng.normal(size=(200, 4)) * 10
    Y = np.stack([X[:, 0] - X[:, 1], X[:, 2] * 0.1], 1)
    pipe = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=50,
                                                        random_state=0)).fit(X, Y)
    model = skl2onnx.to_onnx(pipe, X[:1])
    (out,) = _session(model).run(None, {"X": X})
    assert out.dtype == np.float64  # a float64 model: a double graph
    np.testing.assert_allclose(out, pipe.predict(X), rtol=0, atol=1e-10)


@pytest.mark.parametrize("target", ["binary", "multilabel", "strings", "floats"])
def test_classifier_kinds(digits, target):
    from fastbp.sklearn import MLPClassifier
    X_train, X_test, y_train, _ = digits
    y = {"binary": y_train % 2, "multilabel": np.stack([y_train % 2, y_train < 5], 1),
         "strings": np.array(["a", "b", "c"])[y_train % 3],
         "floats": (y_train % 3).astype(float) * 2}[target]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0,
                        dtype="float32").fit(X_train, y)
    label, proba = _session(clf.to_onnx()).run(None, {"X": X_test.astype(np.float32)})
    np.testing.assert_array_equal(label, clf.predict(X_test))
    np.testing.assert_allclose(proba, clf.predict_proba(X_test), rtol=0, atol=1e-5)


ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "softplus",
               "silu", "gelu"]


@pytest.mark.parametrize("dtype,atol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_layer_norm(activation, dtype, atol):
    net = fastbp.Network([5, Dense(7, activation=activation),
                          Dense(6, activation=activation, normalization="layer"), 3],
                         dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    net.params[:] = rng.normal(size=net.n_params)
    X = rng.normal(size=(64, 5)).astype(dtype) * 3
    model = net.to_onnx()
    assert model.graph.input[0].type.tensor_type.elem_type == (
        onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE)
    (out,) = _session(model).run(None, {"X": X})
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=0, atol=atol)


def test_what_onnx_cannot_get_is_an_error():
    net = fastbp.Network([3, Dense(4, normalization="layer"), 2], seed=0)
    with pytest.raises(ValueError, match="opset 17"):
        net.to_onnx(opset=16)
    with pytest.raises(ValueError, match="opset must be an int"):
        net.to_onnx(opset="17")
    from fastbp.formats import onnx as fmt
    saved = fmt.ROW_OPS.pop("layer_norm")
    try:  # a layer kind without an exporter (as a new kind would be) is named
        with pytest.raises(ValueError, match="layer kind 'layer_norm' cannot be expressed"):
            net.to_onnx()
    finally:
        fmt.ROW_OPS["layer_norm"] = saved


def test_unfitted_estimator_is_an_error():
    from sklearn.exceptions import NotFittedError
    from fastbp.sklearn import MLPClassifier
    with pytest.raises(NotFittedError):
        MLPClassifier().to_onnx()


# --- recurrent layers -----------------------------------------------------------------------
CELLS = {"gru": lambda **kw: fastbp.GRU(4, **kw), "lstm": lambda **kw: fastbp.LSTM(4, **kw),
         "rnn_tanh": lambda **kw: fastbp.RNN(4, **kw),
         "rnn_relu": lambda **kw: fastbp.RNN(4, activation="relu", **kw)}
SHAPES = {  # many-to-one; stacked bidirectional; sequence output through per-step dense layers
    "last": lambda c: [3, c(), 2],
    "stacked_bidirectional": lambda c: [3, c(return_sequences=True, bidirectional=True),
                                        c(bidirectional=True), 2],
    "sequences": lambda c: [3, c(return_sequences=True, bidirectional=True),
                            Dense(5, activation="tanh", normalization="layer"), 3],
}


def _recurrent_net(cell, shape, dtype):
    output = "identity" if shape == "last" else "softmax"
    net = fastbp.Network(SHAPES[shape](CELLS[cell]), output=output, dtype=dtype, seed=0)
    net.params[:] = np.random.default_rng(1).normal(scale=0.6, size=net.n_params)
    return net


def _run(model, X, lengths=None):
    feed = {"X": X}
    if lengths is not None:
        feed["lengths"] = lengths.astype(np.int32)
    return _session(model).run(None, feed)[0]


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_network(cell, shape):
    net = _recurrent_net(cell, shape, np.float32)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(7, 6, 3)).astype(np.float32)
    lengths = np.array([6, 1, 3, 5, 6, 2, 4])
    X[np.arange(6)[None, :] >= lengths[:, None]] = np.nan  # padding is never read
    op = {"gru": "GRU", "lstm": "LSTM"}.get(cell, "RNN")
    for L in (lengths, None):
        model = net.to_onnx(lengths=L is not None)
        assert _ops(model).count(op) == (1 if shape == "last" else 2 if "stacked" in shape
                                         else 1)
        assert [i.name for i in model.graph.input] == (["X", "lengths"] if L is not None
                                                       else ["X"])
        Xi = X if L is not None else np.nan_to_num(X)
        got = _run(model, Xi, L)
        want = net.predict_proba(Xi, lengths=L)
        assert got.shape == want.shape == ((7, 6, 3) if shape == "sequences" else (7, 2))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        if shape == "sequences" and L is not None:  # zeros past each length, as fastbp's
            assert np.all(got[np.arange(6)[None, :] >= lengths[:, None]] == 0)


def test_recurrent_gates_in_onnx_order():
    """The ONNX weights are torch's gate blocks reordered (GRU r,z,n -> z,r,h; LSTM i,f,g,o
    -> i,o,f,c), and the attributes say linear_before_reset for the GRU."""
    for cell, order in (("gru", [1, 0, 2]), ("lstm", [0, 3, 1, 2])):
        net = _recurrent_net(cell, "last", np.float32)
        model = net.to_onnx()
        node = next(n for n in model.graph.node if n.op_type in ("GRU", "LSTM"))
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        W = inits[node.input[1]][0]
        w = net.layers[0].weight_ih
        np.testing.assert_array_equal(W, np.concatenate([w[4 * k:4 * k + 4] for k in order]))
        attrs = {a.name: a for a in node.attribute}
        assert attrs["hidden_size"].i == 4
        if cell == "gru":
            assert attrs["linear_before_reset"].i == 1


def test_recurrent_double_graph_is_valid_onnx():
    """A float64 recurrent network gives a double graph: valid ONNX (the operators allow
    double); onnxruntime 1.32 runs RNN, GRU and LSTM in float only, so it is run only where
    onnxruntime can."""
    net = _recurrent_net("gru", "stacked_bidirectional", np.float64)
    model = net.to_onnx(lengths=True)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    X = np.random.default_rng(2).normal(size=(4, 5, 3))
    L = np.array([5, 2, 1, 4])
    try:
        got = _run(model, X, L)
    except Exception as e:  # onnxruntime's missing double kernels
        pytest.skip(f"onnxruntime cannot run double recurrent operators: {e}")
    np.testing.assert_allclose(got, net.predict_proba(X, lengths=L), rtol=0, atol=1e-12)


def test_lengths_input_needs_a_recurrent_network():
    with pytest.raises(ValueError, match="lengths is only for networks with recurrent"):
        fastbp.Network([3, 4, 2], seed=0).to_onnx(lengths=True)
    with pytest.raises(TypeError, match="lengths must be True or False"):
        _recurrent_net("gru", "last", np.float32).to_onnx(lengths=np.array([1]))
