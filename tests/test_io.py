"""Model files: round trips, rejection of bad files, atomic saving; estimator persistence."""
import json
import os
import pathlib
import zipfile
import pickle

import numpy as np
import pytest

import fastbp
from fastbp import ModelFileError
from fastbp.io import FORMAT

HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
OUTPUTS = [("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy"),
           ("identity", "squared_error"), ("tanh", "squared_error")]


def trained(hidden="tanh", output="softmax", loss="cross_entropy", dtype=np.float64,
            optimizer="adam"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    n_out = 3
    if loss == "cross_entropy":
        y = rng.integers(0, n_out, 30)
    else:
        y = rng.random((30, n_out))
    net = fastbp.Network([4, 6, 5, n_out], hidden_activation=hidden, output=output, loss=loss,
                         dtype=dtype, seed=1)
    net.fit(X, y, epochs=2, batch_size=8, optimizer=optimizer, seed=0)
    return net, X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output,loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_round_trip_gives_identical_predictions(tmp_path, hidden, output, loss, dtype):
    net, X, _ = trained(hidden, output, loss, dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    back = fastbp.load(path)
    assert isinstance(back, fastbp.Network)
    assert back.sizes == net.sizes and back.activations == net.activations
    assert back.loss == net.loss and back.dtype == net.dtype
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_optimizer_state_is_saved_and_training_continues_identically(tmp_path):
    net, X, y = trained(optimizer="adam")
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert type(back.optimizer) is fastbp.Adam and back.optimizer.t == net.optimizer.t
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)
    for n in (net, back):
        n.fit(X, y, epochs=2, batch_size=8, optimizer="adam", seed=3, warm_start=True)
    np.testing.assert_array_equal(back.params, net.params)


def test_metadata_round_trips(tmp_path):
    net, _, _ = trained()
    net.metadata = {"classes": ["a", "b", "c"], "note": "x"}
    net.save(tmp_path / "m.npz")
    assert fastbp.load(tmp_path / "m.npz").metadata == net.metadata


@pytest.fixture
def saved(tmp_path):
    net, _, _ = trained()
    path = tmp_path / "model.npz"
    net.save(path)
    return path


def rewrite(path, header_edit=None, params_edit=None, extra=None, drop=None):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["header"].tobytes())
    if header_edit:
        header_edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    if params_edit:
        arrays["params"] = params_edit(arrays["params"].copy())
    if extra:
        arrays.update(extra)
    for k in drop or ():
        del arrays[k]
    np.savez(path, **arrays)


def test_truncated_file_is_rejected(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated|corrupt"):
        fastbp.load(saved)


def test_corrupted_bytes_are_rejected(saved):
    data = bytearray(saved.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8] = b"\xff" * 8
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        fastbp.load(saved)


def test_foreign_files_are_rejected(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.ones(3))
    with pytest.raises(ModelFileError, match="not a fastbp model file"):
        fastbp.load(plain)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a fastbp model file"):
        fastbp.load(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ModelFileError, match="not a fastbp model file"):
        fastbp.load(npy)
    pickled = tmp_path / "pickle.npz"
    np.savez(pickled, header=np.array([{"format": FORMAT}], dtype=object))
    with pytest.raises(ModelFileError):  # np.load refuses object arrays without pickle
        fastbp.load(pickled)


def test_tampered_params_are_rejected(saved):
    def bump(p):
        p[0] += 1.0
        return p
    rewrite(saved, params_edit=bump)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        fastbp.load(saved)


def test_tampered_header_is_rejected(saved):
    rewrite(saved, header_edit=lambda h: h.update(activations=["relu", "relu", "softmax"]))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        fastbp.load(saved)


def test_newer_format_version_is_rejected(saved):
    rewrite(saved, header_edit=lambda h: h.update(version=99))
    with pytest.raises(ModelFileError, match="newer fastbp.*format version 99"):
        fastbp.load(saved)


def test_unexpected_members_and_missing_params_are_rejected(saved, tmp_path):
    rewrite(saved, extra={"payload": np.ones(2)})
    with pytest.raises(ModelFileError, match="unexpected members"):
        fastbp.load(saved)
    net, _, _ = trained()
    other = tmp_path / "other.npz"
    net.save(other)
    rewrite(other, drop=["params"])
    with pytest.raises(ModelFileError, match="no parameter vector"):
        fastbp.load(other)


def test_a_crash_during_save_leaves_the_previous_file_intact(saved, monkeypatch):
    before = saved.read_bytes()
    net, _, _ = trained(hidden="relu")

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 partial")  # some bytes reach the temporary file, then...
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="simulated"):
        net.save(saved)
    assert saved.read_bytes() == before
    assert sorted(os.listdir(saved.parent)) == [saved.name]  # no temporary file left
    monkeypatch.undo()
    assert isinstance(fastbp.load(saved), fastbp.Network)


def test_save_replaces_atomically(saved):
    net, X, _ = trained(hidden="leaky_relu")
    net.save(saved)
    np.testing.assert_array_equal(fastbp.load(saved).predict_proba(X), net.predict_proba(X))


# --- estimators ------------------------------------------------------------------------------
sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")


def _estimators():
    from fastbp.sklearn import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 60)]
    yield MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0), X, labels
    yield (MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0), X,
           (X[:, :2] > 0).astype(int))
    yield MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0), X, X[:, 0] > 0
    yield MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0), X, X[:, :2]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_save_load_pickle_and_clone(tmp_path):
    from sklearn.base import clone
    for est, X, y in _estimators():
        est.fit(X, y)
        path = tmp_path / "est.npz"
        est.save(path)
        for back in (fastbp.load(path), type(est).load(path),
                     pickle.loads(pickle.dumps(est))):
            assert type(back) is type(est)
            np.testing.assert_array_equal(back.predict(X), est.predict(X))
            if hasattr(est, "classes_"):
                np.testing.assert_array_equal(back.classes_, est.classes_)
                np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
            assert back.get_params() == est.get_params()
        fresh = clone(est)
        assert not hasattr(fresh, "network_") and fresh.get_params() == est.get_params()
    from fastbp.sklearn import MLPRegressor
    with pytest.raises(ModelFileError, match="holds a MLPClassifier, not a MLPRegressor"):
        cls_path = tmp_path / "c.npz"
        est = next(_estimators())[0].fit(*next(_estimators())[1:])
        est.save(cls_path)
        MLPRegressor.load(cls_path)


# --- files written by fastbp 0.1.0 (format version 1), committed as fixtures ---------------
DATA = pathlib.Path(__file__).with_name("data")


def test_version_1_network_file_still_loads():
    """tests/data/v1_network.npz was written by fastbp 0.1.0 (dense layers only, no layer
    objects, no buffers); its outputs and optimizer state were recorded by that release."""
    expected = np.load(DATA / "v1_expected.npz")
    net = fastbp.load(DATA / "v1_network.npz")
    assert net.sizes == (4, 6, 5, 3) and net.activations == ["tanh", "relu", "softmax"]
    assert net.buffers.size == 0 and net.metadata["written_by"].startswith("fastbp 0.1.0")
    np.testing.assert_array_equal(net.params, expected["params"])
    np.testing.assert_array_equal(net.optimizer.state, expected["state"])
    assert net.optimizer.name == "adam" and net.optimizer.t == int(expected["t"])
    np.testing.assert_allclose(net.predict_proba(expected["X"]), expected["network"],
                               rtol=1e-13, atol=1e-15)
    # it continues training (warm start from the saved Adam moments) and saves as version 2
    X = expected["X"]
    net.fit(X, np.arange(10) % 3, epochs=1, optimizer="adam", learning_rate=0.01,
            warm_start=True, seed=0)
    assert net.optimizer.t > int(expected["t"])


def test_version_1_estimator_file_still_loads():
    pytest.importorskip("sklearn")
    expected = np.load(DATA / "v1_expected.npz")
    clf = fastbp.load(DATA / "v1_mlpclassifier.npz")
    assert type(clf).__name__ == "MLPClassifier" and list(clf.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(clf.predict_proba(expected["X"]), expected["clf"], rtol=1e-13,
                               atol=1e-15)
    assert list(clf.predict(expected["X"])) == list(expected["clf_labels"])


def test_new_files_are_version_2_with_layers_and_buffers(tmp_path):
    net = fastbp.Network([4, fastbp.Dense(6, "tanh", normalization="batch"),
                          fastbp.Dense(5, "relu", normalization="layer"), 3],
                         dtype=np.float64, seed=1)
    rng = np.random.default_rng(2)
    net.fit(rng.normal(size=(40, 4)), rng.integers(0, 3, 40), epochs=3, batch_size=8,
            optimizer="adam", seed=0)
    path = net.save(tmp_path / "norm.npz")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["buffers.npy", "header.npy", "optimizer_state.npy",
                                         "params.npy"]
        header = json.loads(np.load(zf.open("header.npy")).tobytes())
    assert header["version"] == 2 and header["n_buffers"] == 12
    assert [l["normalization"] for l in header["layers"]] == ["batch", "layer", None]
    back = fastbp.load(path)
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.buffers, net.buffers)
    assert back.buffers[:6].any()  # trained running means, not the initial zeros
    X = rng.normal(size=(7, 4))
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_an_unpickled_network_predicts_with_the_kernels_already_compiled():
    """Unpickling gives writable arrays; the layer table must come back read-only, as the
    kernels were compiled for it (a writable one is another specialization to compile)."""
    from fastbp.kernels import epoch
    net = fastbp.Network([5, 4, 3], dtype=np.float64, seed=0)
    X = np.random.default_rng(0).standard_normal((7, 5))
    expected = net.predict_proba(X)
    before = {k: len(d.signatures) for k, d in
              (("predict_into", epoch.predict_into),
               ("predict_into_buffered", epoch.predict_into_buffered))}
    back = pickle.loads(pickle.dumps(net))
    assert not back.layout.spec.flags.writeable
    np.testing.assert_array_equal(back.predict_proba(X), expected)
    after = {"predict_into": len(epoch.predict_into.signatures),
             "predict_into_buffered": len(epoch.predict_into_buffered.signatures)}
    assert after == before
