"""safetensors: save/load round trips bit-identically with PyTorch's state_dict key names and
fastbp's header as metadata (numpy API, no torch needed); corrupt, foreign and hostile files
are ModelFileError; saving is atomic."""
import json
import os
import struct

import numpy as np
import pytest

import fastbp
from fastbp import Dense

safetensors_numpy = pytest.importorskip("safetensors.numpy",
                                        reason="safetensors is not installed")


def _net(dtype=np.float64):
    net = fastbp.Network([5, Dense(8, activation="relu", normalization="batch"),
                          Dense(6, activation="gelu", normalization="layer"), 3],
                         output="softmax", dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    net.params[:] = rng.normal(size=net.n_params)
    net.buffers[:] = rng.uniform(0.5, 1.5, size=net.buffers.size)
    net.metadata = {"classes": ["a", "b", "c"]}
    return net


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_identical(tmp_path, dtype):
    net = _net(dtype)
    path = net.save_safetensors(tmp_path / "m.safetensors")
    back = fastbp.load_safetensors(path)
    assert back.dtype == net.dtype and back.layout == net.layout and back.loss == net.loss
    assert back.params.tobytes() == net.params.tobytes()
    assert back.buffers.tobytes() == net.buffers.tobytes()
    assert back.metadata == net.metadata
    X = np.random.default_rng(1).normal(size=(10, 5)).astype(dtype)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_keys_are_pytorch_state_dict_names(tmp_path):
    net = _net()
    path = net.save_safetensors(tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(path)
    assert sorted(tensors) == sorted([
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "3.weight", "3.bias", "4.weight", "4.bias", "6.weight",
        "6.bias"])
    np.testing.assert_array_equal(tensors["0.weight"], net.layers[0].weight)
    np.testing.assert_array_equal(tensors["1.running_var"], net.layers[0].running_var)
    np.testing.assert_array_equal(tensors["6.weight"], net.layers[2].weight)


def test_torch_loads_the_state_dict(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file
    net = _net()
    seq = net.to_torch()
    for p in seq.parameters():
        torch.nn.init.zeros_(p)
    seq.load_state_dict(load_file(net.save_safetensors(tmp_path / "m.safetensors")))
    X = np.random.default_rng(1).normal(size=(10, 5))
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.from_numpy(X)).numpy(), net.predict_proba(X),
                                   rtol=0, atol=1e-6)


def _read_parts(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write_parts(path, table, body):
    raw = json.dumps(table).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + body)


def test_foreign_file_is_a_clear_error(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors_numpy.save_file({"0.weight": np.zeros((2, 2))}, path)
    with pytest.raises(fastbp.ModelFileError, match="no fastbp header"):
        fastbp.load_safetensors(path)
    (tmp_path / "npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(fastbp.ModelFileError, match="not a safetensors file"):
        fastbp.load_safetensors(tmp_path / "npz")


def test_edits_and_hostile_headers_are_errors(tmp_path):
    net = _net()
    path = net.save_safetensors(tmp_path / "m.safetensors")
    table, body = _read_parts(path)
    bad = tmp_path / "bad.safetensors"
    cases = []
    t = json.loads(json.dumps(table))  # a weight changed: the checksum catches it
    cases.append((t, body[:-1] + bytes([body[-1] ^ 1]), "checksum"))
    header = json.loads(table["__metadata__"]["fastbp"])
    for key, value, message in [
            ("n_params", 10 ** 12, "more than the file"),
            ("layers", [{"kind": "dense", "units": 2 ** 30}], "need at least"),
            ("version", 99, "newer fastbp"),
            ("dtype", "int8", "dtype"),
            ("optimizer", {"name": "adam", "params": {}, "t": 1}, "no optimizer state")]:
        h = dict(header, **{key: value})
        t = json.loads(json.dumps(table))
        t["__metadata__"]["fastbp"] = json.dumps(h)
        cases.append((t, body, message))
    t = json.loads(json.dumps(table))
    t["__metadata__"]["fastbp"] = "[" * 100000 + "]" * 100000
    cases.append((t, body, "nested deeper"))
    t = json.loads(json.dumps(table))
    del t["6.bias"]
    cases.append((t, body, r"missing \['6.bias'\]"))
    t = json.loads(json.dumps(table))
    t["0.weight"]["shape"] = [5, 8]
    cases.append((t, body, "tensor '0.weight'"))
    t = json.loads(json.dumps(table))
    t["0.weight"]["data_offsets"] = [0, 10 ** 9]
    cases.append((t, body, "tensor '0.weight'|corrupt tensor data"))
    for t, b, message in cases:
        _write_parts(bad, t, b)
        with pytest.raises(fastbp.ModelFileError, match=message):
            fastbp.load_safetensors(bad)
    # a header length far beyond the file, and truncations at every 97th byte
    data = open(path, "rb").read()
    bad.write_bytes(struct.pack("<Q", 2 ** 60) + data[8:])
    with pytest.raises(fastbp.ModelFileError, match="truncated"):
        fastbp.load_safetensors(bad)
    for cut in range(0, len(data), 97):
        bad.write_bytes(data[:cut])
        with pytest.raises(fastbp.ModelFileError):
            fastbp.load_safetensors(bad)


def test_one_bit_flips_are_errors(tmp_path):
    path = _net().save_safetensors(tmp_path / "m.safetensors")
    data = open(path, "rb").read()
    bad = tmp_path / "bad.safetensors"
    rng = np.random.default_rng(0)
    for i in rng.choice(len(data), size=150, replace=False):
        flipped = bytearray(data)
        flipped[i] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        try:
            back = fastbp.load_safetensors(bad)
        except fastbp.ModelFileError:
            continue
        # a flip the format cannot see (JSON whitespace, key order) must not change the model
        ref = fastbp.load_safetensors(path)
        assert back.params.tobytes() == ref.params.tobytes()
        assert back.buffers.tobytes() == ref.buffers.tobytes()


def test_save_is_atomic_and_keeps_symlinks(tmp_path):
    net = _net()
    target = tmp_path / "real.safetensors"
    net.save_safetensors(target)
    link = tmp_path / "link.safetensors"
    os.symlink(target, link)
    net.params[:] += 1
    net.save_safetensors(link)
    assert os.path.islink(link)
    assert fastbp.load_safetensors(target).params.tobytes() == net.params.tobytes()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_import_fastbp_imports_no_format_library():
    import subprocess
    import sys
    code = ("import sys, fastbp; bad = [m for m in ('onnx', 'torch', 'safetensors', "
            "'onnxruntime', 'skl2onnx') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def _recurrent_net(dtype):
    net = fastbp.Network([3, fastbp.LSTM(4, return_sequences=True, bidirectional=True),
                          fastbp.GRU(3), Dense(5, activation="tanh"), 2],
                         output="softmax", dtype=dtype, seed=0)
    net.params[:] = np.random.default_rng(0).normal(scale=0.6, size=net.n_params)
    return net


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_round_trip_is_bit_identical(tmp_path, dtype):
    net = _recurrent_net(dtype)
    path = net.save_safetensors(tmp_path / "r.safetensors")
    back = fastbp.load_safetensors(path)
    assert back.layout == net.layout and repr(back) == repr(net)
    assert back.params.tobytes() == net.params.tobytes()
    X = np.random.default_rng(1).normal(size=(4, 5, 3)).astype(dtype)
    L = np.array([5, 1, 3, 2])
    np.testing.assert_array_equal(back.predict_proba(X, lengths=L),
                                  net.predict_proba(X, lengths=L))


def test_recurrent_keys_are_to_torchs(tmp_path):
    net = _recurrent_net(np.float64)
    tensors = safetensors_numpy.load_file(net.save_safetensors(tmp_path / "r.safetensors"))
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    assert sorted(tensors) == sorted(
        [f"0.rnn.{n}_l0{s}" for n in names for s in ("", "_reverse")]
        + [f"1.rnn.{n}_l0" for n in names] + ["2.weight", "2.bias", "4.weight", "4.bias"])
    np.testing.assert_array_equal(tensors["0.rnn.weight_hh_l0_reverse"],
                                  net.layers[0].weight_hh_reverse)
    np.testing.assert_array_equal(tensors["1.rnn.bias_ih_l0"], net.layers[1].bias_ih)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file
    seq = net.to_torch()
    for p in seq.parameters():
        torch.nn.init.zeros_(p)
    seq.load_state_dict(load_file(tmp_path / "r.safetensors"))
    X = np.random.default_rng(1).normal(size=(4, 5, 3))
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.from_numpy(X)).numpy(), net.predict_proba(X),
                                   rtol=0, atol=1e-6)
