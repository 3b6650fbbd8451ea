"""Hostile and damaged model files: every one raises ModelFileError, in bounded memory.

The red-team sweeps flip one bit at every byte position of a small model file and cut it at
every length; each variant must load as the identical model or raise ModelFileError.  The
hostile files (zip bomb, huge declared layers, an .npy member declaring 2**40 elements) are
loaded in a subprocess whose peak RSS is compared with its RSS after a first, valid load.
"""
import io
import json
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest

import fastbp
from fastbp import ModelFileError
from fastbp.io import _checksum

#: peak memory a hostile file may add to a process that has already loaded a model
MEMORY_BOUND_MB = 50


def small_network():
    net = fastbp.Network([3, 4, 2], hidden_activation="tanh", output="softmax", seed=0)
    net.optimizer = fastbp.Adam()
    net.optimizer.init_state(net.n_params, net.dtype)
    net.optimizer.state[:] = np.random.default_rng(1).normal(size=net.optimizer.state.shape)
    net.optimizer.t = 7
    return net


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "small.npz"
    small_network().save(path)
    return path


def assert_same_model(a, b):
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.optimizer.state, b.optimizer.state)
    assert (a.sizes, a.activations, a.loss, a.dtype, a.optimizer.t) == \
        (b.sizes, b.activations, b.loss, b.dtype, b.optimizer.t)


def check_loads_identically_or_fails(path, original):
    """ModelFileError or the identical model; any other exception fails the test."""
    try:
        back = fastbp.load(path)
    except ModelFileError:
        return False
    assert_same_model(back, original)
    return True


# --- the red-team sweeps ---------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_every_one_bit_flip_is_rejected_or_harmless(saved, tmp_path, compressed):
    original = fastbp.load(saved)
    if compressed:  # as np.savez_compressed writes it: deflated members
        np.savez_compressed(saved, **arrays_of(saved))
    data = saved.read_bytes()
    assert len(data) < 5000  # keeps the sweep to a few seconds
    damaged = tmp_path / "flipped.npz"
    harmless = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        damaged.write_bytes(flipped)
        if check_loads_identically_or_fails(damaged, original):
            harmless.append(i)
    # only flips in zip bookkeeping nothing reads (timestamps, attributes, the local headers'
    # copies of the sizes, ...) are harmless; every flip in a stored member's bytes is caught
    # (a deflate stream's last byte has padding bits that change nothing)
    for start, stop in [] if compressed else member_data_ranges(data):
        assert not [i for i in harmless if start <= i < stop]


def member_data_ranges(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    ranges = []
    for info in infos:
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_len + extra_len
        ranges.append((start, start + info.compress_size))
    assert sum(stop - start for start, stop in ranges) > len(data) // 2
    return ranges


def test_every_truncation_is_rejected(saved, tmp_path):
    original = fastbp.load(saved)
    data = saved.read_bytes()
    damaged = tmp_path / "cut.npz"
    for n in range(len(data)):
        damaged.write_bytes(data[:n])
        assert not check_loads_identically_or_fails(damaged, original), n


# --- hostile files built by hand -------------------------------------------------------------
def npy_bytes(array=None, header=None):
    """An .npy member: ``array`` saved by NumPy, or ``header`` (dict) with no data."""
    buf = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buf, array, allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def zip_bytes(members):
    """A zip archive of ``(name, method, stored_bytes, declared_size, crc)`` members, written
    by hand so that the declared sizes can lie."""
    out, central = bytearray(), bytearray()
    for name, method, stored, size, crc in members:
        name = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                           len(stored), size, len(name), 0) + name + stored
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(stored), size, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)
    return bytes(out + central + end)


def stored(name, data):
    return (name, 0, data, len(data), zlib.crc32(data))


def header_npy(sizes, n_params, checksum="0" * 64, optimizer=None):
    header = {"format": "fastbp-model", "version": 1, "kind": "network",
              "fastbp_version": fastbp.__version__, "layer_sizes": sizes,
              "activations": ["tanh"] * (len(sizes) - 2) + ["softmax"],
              "loss": "cross_entropy", "dtype": "float64", "n_params": n_params,
              "optimizer": optimizer, "estimator": None, "metadata": {}, "checksum": checksum}
    return header, npy_bytes(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def zeros_deflated(prefix, n_zero_mib):
    """Raw deflate of ``prefix`` followed by ``n_zero_mib`` MiB of zeros (about 1 KB per MiB),
    made from one compressed MiB repeated: a full flush makes the blocks independent."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    mib = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + mib * n_zero_mib + c.flush()


def crc_of(prefix, n_zero_mib):
    crc = zlib.crc32(prefix)
    zeros = bytes(1 << 20)
    for _ in range(n_zero_mib):
        crc = zlib.crc32(zeros, crc)
    return crc


def zip_bomb():
    """1 MB that inflates to 1 GiB: a params member of 2**27 float64 declared honestly."""
    n = 2 ** 27
    _, header = header_npy([n - 1, 1], n)
    npy_head = npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (n,)})
    body = zeros_deflated(npy_head, 1024)
    return zip_bytes([stored("header.npy", header),
                      ("params.npy", 8, body, len(npy_head) + 8 * n, crc_of(npy_head, 1024))])


def lying_zip_bomb():
    """A params member that declares the honest size of [3, 4, 2]'s parameters but whose
    deflate stream goes on with 1 GiB of zeros: reading must stop at the declared size."""
    params = np.zeros(26)
    header, _ = header_npy([3, 4, 2], 26)
    _, header_member = header_npy([3, 4, 2], 26, checksum=_checksum(header, params, None))
    member = npy_bytes(params)
    body = zeros_deflated(member, 1024)
    return zip_bytes([stored("header.npy", header_member),
                      ("params.npy", 8, body, len(member), zlib.crc32(member))])


def huge_layers(sizes):
    """A 2 KB file with an honest checksum whose header declares layers of ``sizes`` while
    its params (and n_params) are those of [3, 4, 2]."""
    params = np.zeros(26)
    header, _ = header_npy(sizes, 26)
    _, header_member = header_npy(sizes, 26, checksum=_checksum(header, params, None))
    return zip_bytes([stored("header.npy", header_member),
                      stored("params.npy", npy_bytes(params))])


def npy_declaring(n):
    """A valid [3, 4, 2] header and a params member whose .npy header declares n values."""
    _, header_member = header_npy([3, 4, 2], 26)
    member = npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (n,)})
    return zip_bytes([stored("header.npy", header_member), stored("params.npy", member)])


HOSTILE = {
    "zip_bomb": zip_bomb,
    "lying_zip_bomb": lying_zip_bomb,
    "huge_layers_1e4": lambda: huge_layers([10 ** 4, 10 ** 4, 3]),
    "huge_layers_1e6": lambda: huge_layers([10 ** 6, 10 ** 6, 3]),
    "npy_2_40": lambda: npy_declaring(2 ** 40),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_rejected(tmp_path, name):
    path = tmp_path / f"{name}.npz"
    path.write_bytes(HOSTILE[name]())
    assert path.stat().st_size < 1_100_000
    if name == "lying_zip_bomb":  # the declared bytes are an honest, all-zero network
        np.testing.assert_array_equal(fastbp.load(path).params, np.zeros(26))
        return
    with pytest.raises(ModelFileError, match=str(path.name)):
        fastbp.load(path)


PEAK_SCRIPT = textwrap.dedent("""
    import os, sys
    # Linux carries the parent's RSS high-water mark over an exec into ru_maxrss, so a child
    # of a big pytest process would start at pytest's peak; a fork of this small process
    # starts afresh.
    pid = os.fork()
    if pid:
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    import resource
    import fastbp
    fastbp.load(sys.argv[1])  # imports and allocations of an ordinary load
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        fastbp.load(sys.argv[2])
    except fastbp.ModelFileError:
        pass
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before / 1024, (after - before) / 1024)
""")


@pytest.mark.parametrize("name", ["zip_bomb", "lying_zip_bomb", "huge_layers_1e4", "npy_2_40"])
def test_loading_hostile_files_takes_bounded_memory(saved, tmp_path, name):
    path = tmp_path / f"{name}.npz"
    path.write_bytes(HOSTILE[name]())
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(saved), str(path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    baseline_mb, extra_mb = map(float, run.stdout.split())
    assert 0 < baseline_mb and extra_mb < MEMORY_BOUND_MB, \
        f"{name}: peak RSS grew by {extra_mb:.0f} MB over {baseline_mb:.0f} MB"


# --- header contents -------------------------------------------------------------------------
def arrays_of(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def with_header_text(path, text):
    arrays = arrays_of(path)
    arrays["header"] = np.frombuffer(text.encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def forged(path, header_edit=None, state_edit=None):
    """Edit the header and/or the optimizer state and recompute the checksum, as a forger
    (or a buggy writer) would: only the checks on the contents can catch it."""
    arrays = arrays_of(path)
    header = json.loads(arrays["header"].tobytes())
    if header_edit:
        header_edit(header)
    if state_edit:
        arrays["optimizer_state"] = state_edit(arrays["optimizer_state"].copy())
    header["checksum"] = _checksum(header, arrays["params"], arrays["optimizer_state"])
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_forging_helper_gives_a_loadable_file(saved):
    forged(saved, header_edit=lambda h: h["metadata"].update(note="x"))
    assert fastbp.load(saved).metadata == {"note": "x"}


@pytest.mark.parametrize("metadata", [
    "[" * 100_000 + "]" * 100_000,  # RecursionError in json
    '{"a": ' * 70 + "1" + "}" * 70,
    "1" * 5000,  # ValueError: exceeds the limit for integer string conversion
    "NaN", "-Infinity", "1e999",
    '"' + '\\"' * 200_000,  # unterminated string
])
def test_hostile_header_json_is_rejected(saved, metadata):
    header = json.loads(arrays_of(saved)["header"].tobytes())
    header["metadata"] = "@@"
    with_header_text(saved, json.dumps(header).replace('"@@"', metadata))
    with pytest.raises(ModelFileError, match=saved.name):
        fastbp.load(saved)


def test_oversized_header_is_rejected_before_it_is_read(saved):
    header = json.loads(arrays_of(saved)["header"].tobytes())
    header["metadata"] = {"blob": "x" * (1 << 20)}
    with_header_text(saved, json.dumps(header))
    with pytest.raises(ModelFileError, match="header declares .* bytes, more than"):
        fastbp.load(saved)


def test_nan_in_optimizer_state_is_rejected(saved):
    def poison(state):
        state[0, 3] = np.nan
        return state
    forged(saved, state_edit=poison)
    with pytest.raises(ModelFileError, match="optimizer state contains NaN"):
        fastbp.load(saved)


@pytest.mark.parametrize("t", [True, 10 ** 30, -1, 2.5, "7"])
def test_bad_step_counter_is_rejected(saved, t):
    forged(saved, header_edit=lambda h: h["optimizer"].update(t=t))
    with pytest.raises(ModelFileError, match="step count"):
        fastbp.load(saved)


def test_layer_sizes_must_match_n_params(saved):
    # format 2 builds the network from n_inputs and the layers' units
    forged(saved, header_edit=lambda h: h["layers"][0].update(units=5))
    with pytest.raises(ModelFileError, match=r"need at least 32 parameters, the header says 26"):
        fastbp.load(saved)
    forged(saved, header_edit=lambda h: h["layers"][0].update(units=2))  # fewer: 14
    with pytest.raises(ModelFileError, match=r"need 14 parameters, the file has 26"):
        fastbp.load(saved)


def test_unsupported_compression_is_rejected(saved):
    data = bytearray(saved.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 10] = 99  # compression method of the first member: not one zip knows
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="compression method 99"):
        fastbp.load(saved)


def test_compressed_files_still_load(saved):
    np.savez_compressed(saved, **arrays_of(saved))
    assert_same_model(fastbp.load(saved), small_network())
