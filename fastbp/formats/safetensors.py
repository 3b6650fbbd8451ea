"""safetensors: ``net.save_safetensors(path)`` and ``fastbp.load_safetensors(path)``.

The file holds the network's tensors under PyTorch's ``state_dict`` key names -- those of the
``nn.Sequential`` that ``net.to_torch()`` builds (``0.weight``, ``0.bias``, ``1.weight``,
``1.running_mean``, ``1.num_batches_tracked``, ...), so ``seq.load_state_dict(
safetensors.torch.load_file(path))`` works -- in the network's dtype, and in the metadata
``{"format": "pt", "fastbp": <fastbp's model-file header as JSON>}`` (see :mod:`fastbp.io`:
the layers, loss, dtype, metadata and a SHA-256 checksum of the header and the parameters
and buffers; no optimizer state).  Written and read with the ``safetensors`` package's numpy
API (no torch needed).

Loading checks the file before reading any tensor: the safetensors header's length against
the file's size and a bound, fastbp's header as the model-file reader does (bounded JSON,
every field), the parameter and buffer counts it declares against the file's size, then that
the tensors are exactly those the layers need (names, dtypes, shapes); then the checksum and
that every value is finite.  Any problem is a :class:`fastbp.ModelFileError` naming the file.
"""
import json
import os
import struct

import numpy as np

from .._config import MODEL_HEADER_MAX_BYTES
from ..errors import MalformedModelFile, ModelFileError
from ..io import _check_header, _checksum, _parse_header, atomic_write, model_header
from ._common import modules, state_dict_arrays

try:
    from safetensors import safe_open
    from safetensors.numpy import save as _st_save
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('safetensors is needed here: pip install "fastbp[safetensors]"') from e

#: largest safetensors header read: fastbp's header (at most MODEL_HEADER_MAX_BYTES) plus the
#: tensor table
MAX_HEADER = 4 * MODEL_HEADER_MAX_BYTES
_DTYPES = {"float32": "F32", "float64": "F64"}


def _num_batches_keys(net):
    return [f"{i}.num_batches_tracked" for i, row, _ in modules(net)
            if row is not None and "running_mean" in row.tensors]


def save_safetensors(net, path):
    """Write ``net``'s parameters and buffers to ``path`` (atomically); returns the path."""
    header, _ = model_header(net, optimizer=False)
    tensors = {k: np.ascontiguousarray(v) for k, v in state_dict_arrays(net).items()}
    for key in _num_batches_keys(net):  # torch's BatchNorm1d has it; fastbp does not count
        tensors[key] = np.zeros((), dtype=np.int64)
    data = _st_save(tensors, metadata={"format": "pt", "fastbp": json.dumps(header)})
    with atomic_write(path) as f:
        f.write(data)
    return os.fspath(path)


def _fail(path, why):
    raise ModelFileError(f"{os.fspath(path)}: {why}")


def _read_table(path):
    """(file size, the safetensors header as a dict) read and bounded before anything else."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise MalformedModelFile("not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise MalformedModelFile(f"not a safetensors file, or truncated (its header "
                                     f"declares {n} bytes; the file has {size}, at most "
                                     f"{MAX_HEADER} are read)")
        raw = f.read(n)
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MalformedModelFile(f"not a safetensors file (corrupt header: {e})") from None
    if not isinstance(table, dict):
        raise MalformedModelFile("not a safetensors file (its header is not a JSON object)")
    return size, table


def load_safetensors(path):
    """The :class:`fastbp.Network` stored in ``path`` by :func:`save_safetensors`."""
    from ..network import network_from_header
    try:
        size, table = _read_table(path)
        meta = table.pop("__metadata__", None)
        if not isinstance(meta, dict) or not isinstance(meta.get("fastbp"), str):
            raise MalformedModelFile(
                "no fastbp header in the safetensors metadata: not written by fastbp (for a "
                "PyTorch model, load its state_dict into the module and use "
                "Network.from_torch)")
        text = meta["fastbp"].encode("utf-8")
        if len(text) > MODEL_HEADER_MAX_BYTES:
            raise MalformedModelFile(f"the fastbp header has {len(text)} bytes, more than "
                                     f"{MODEL_HEADER_MAX_BYTES}")
        header = _parse_header(np.frombuffer(text, dtype=np.uint8))
        _check_header(header)
        if header.get("optimizer") is not None:
            raise MalformedModelFile("a safetensors model carries no optimizer state")
        itemsize = np.dtype(header["dtype"]).itemsize
        n_params, n_buffers = header["n_params"], header.get("n_buffers", 0)
        if (n_params + n_buffers) * itemsize > size:  # before anything is sized from them
            raise MalformedModelFile(f"the header declares {n_params} parameters and "
                                     f"{n_buffers} buffer values, more than the file's {size} "
                                     f"bytes hold")
    except MalformedModelFile as e:
        _fail(path, str(e))
    except OSError:
        raise
    except Exception as e:  # whatever damaged bytes make of the parsers
        _fail(path, f"not a fastbp safetensors file, or corrupt ({type(e).__name__}: {e})")
    net = network_from_header(header, np.zeros(n_params, dtype=header["dtype"]), None,
                              np.zeros(n_buffers, dtype=header["dtype"]), path)
    expected = {k: (_DTYPES[header["dtype"]], list(v.shape))
                for k, v in state_dict_arrays(net).items()}
    expected.update({k: ("I64", []) for k in _num_batches_keys(net)})
    found = {k: (v.get("dtype"), v.get("shape")) if isinstance(v, dict) else None
             for k, v in table.items()}
    if set(found) != set(expected):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        _fail(path, f"the tensors do not fit the layers (missing {missing[:5]}, unexpected "
                    f"{extra[:5]})")
    for k, want in expected.items():
        if found[k] != want:
            _fail(path, f"tensor {k!r} is {found[k]}, the layers need {want}")
    views = state_dict_arrays(net)
    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            for k, view in views.items():
                view[...] = f.get_tensor(k)
    except Exception as e:
        _fail(path, f"corrupt tensor data ({type(e).__name__}: {e})")
    buffers = net.buffers if net.buffers.size else None
    if _checksum(header, net.params, None, buffers) != header["checksum"]:
        _fail(path, "checksum mismatch: the file was modified or damaged after it was written")
    if not (np.isfinite(net.params).all() and np.isfinite(net.buffers).all()):
        _fail(path, "parameters or buffers contain NaN or infinity")
    return net
