"""Model files: a documented ``.npz`` (no pickle), written atomically, validated on load.

Format (version 2).  A NumPy ``.npz`` archive (a zip file) with exactly these members:

``header``
    uint8 array: UTF-8 JSON object with
    ``format`` = "fastbp-model", ``version`` = 2, ``kind`` ("network", "MLPClassifier" or
    "MLPRegressor"), ``fastbp_version``, ``n_inputs``, ``layers`` (one object per layer, as
    ``Dense.config()``: ``kind``, ``units``, ``activation``, ``normalization``, ``eps``,
    ``momentum``), ``layer_sizes`` (list of int, input first) and ``activations`` (one name
    per layer) for readers that want only those, ``loss``, ``dtype`` ("float32"/"float64"),
    ``n_params``, ``n_buffers``, ``optimizer`` (null, or {"name", "params" (its
    hyperparameters), "t" (updates done)}), ``estimator`` (null, or the estimator's
    constructor parameters and fitted attributes such as ``classes``), ``metadata`` (the
    network's free-form JSON dict, e.g. the command line's class labels), and ``checksum``:
    the SHA-256 of the header without this field (keys sorted) followed by the bytes of
    ``params``, ``optimizer_state`` and ``buffers``.
``params``
    the flat parameter vector (layout: :mod:`fastbp.layout`), of ``dtype``.
``optimizer_state`` (only when ``optimizer`` is not null)
    the optimizer's (slots, n_params) state, of ``dtype``.
``buffers`` (only when ``n_buffers`` > 0)
    the non-trainable state (batch norm's running mean and variance), of ``dtype``.

Version 1 files (dense networks: ``layer_sizes`` and ``activations``, no ``layers``, no
buffers) still load.

Writing goes to a temporary file in the same directory, is fsynced, then renamed over the
target, so a crash leaves the previous file intact.  Loading uses ``allow_pickle=False``,
checks every field, the shapes and the checksum, and raises :class:`ModelFileError` for a
truncated, corrupt, foreign, tampered-with or newer-version file.  (The checksum detects
damage and edits; it is not a signature against a deliberate forger who rewrites it too.)
"""
import contextlib
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import ModelFileError

FORMAT = "fastbp-model"
VERSION = 2
_MEMBERS = {"header", "params", "optimizer_state", "buffers"}


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Write to a temporary file in the target's directory, fsync it, then rename it over
    ``path``: readers see the old file or the complete new one, never a half-written one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _checksum(header, params, state, buffers=None):
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "checksum"}
    h.update(json.dumps(body, sort_keys=True).encode("utf-8"))
    h.update(np.ascontiguousarray(params).tobytes())
    if state is not None:
        h.update(np.ascontiguousarray(state).tobytes())
    if buffers is not None:
        h.update(np.ascontiguousarray(buffers).tobytes())
    return h.hexdigest()


def _jsonable(value):
    """Plain JSON types for estimator parameters (tuples to lists, numpy scalars to Python)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, np.dtype):
        return value.name
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {value!r} in a model file header")


def save_network(net, path, kind="network", estimator=None):
    """Write ``net`` (and its optimizer state) to ``path`` atomically; see the module doc."""
    from . import __version__
    opt = net.optimizer
    state = None
    opt_header = None
    if opt is not None and opt.state is not None:
        state = np.ascontiguousarray(opt.state)
        opt_header = {"name": opt.name, "params": _jsonable(opt.get_params()), "t": int(opt.t)}
    buffers = net.buffers if net.buffers.size else None
    header = {
        "format": FORMAT, "version": VERSION, "kind": kind, "fastbp_version": __version__,
        "n_inputs": int(net.n_inputs), "layers": [l.config() for l in net.layers],
        "layer_sizes": list(net.sizes), "activations": net.activations, "loss": net.loss,
        "dtype": net.dtype.name, "n_params": int(net.n_params),
        "n_buffers": int(net.buffers.size), "optimizer": opt_header,
        "estimator": _jsonable(estimator), "metadata": _jsonable(net.metadata),
    }
    header["checksum"] = _checksum(header, net.params, state, buffers)
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
              "params": net.params}
    if state is not None:
        arrays["optimizer_state"] = state
    if buffers is not None:
        arrays["buffers"] = buffers
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return os.fspath(path)


def _fail(path, why):
    raise ModelFileError(f"{os.fspath(path)}: {why}")


def read_model_file(path):
    """(header, params, optimizer_state or None, buffers) of a model file, every field
    validated (``buffers``: empty for networks without running statistics)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        _fail(path, f"not a fastbp model file, or truncated/corrupt ({type(e).__name__}: {e})")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        _fail(path, "not a fastbp model file (a plain .npy array, not an .npz archive)")
    with archive:
        members = set(archive.files)
        if "header" not in members:
            _fail(path, "not a fastbp model file (no header)")
        unknown = members - _MEMBERS
        if unknown:
            _fail(path, f"not a fastbp model file (unexpected members {sorted(unknown)})")
        try:
            raw = archive["header"]
            params = archive["params"] if "params" in members else None
            state = archive["optimizer_state"] if "optimizer_state" in members else None
            buffers = archive["buffers"] if "buffers" in members else None
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            _fail(path, f"truncated or corrupt ({type(e).__name__}: {e})")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(path, "not a fastbp model file (header is not UTF-8 JSON bytes)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"corrupt header ({e})")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        _fail(path, "not a fastbp model file (wrong format tag)")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        _fail(path, f"invalid format version {version!r}")
    if version > VERSION:
        _fail(path, f"written by a newer fastbp (format version {version}); this fastbp "
                    f"reads format version {VERSION} and older: upgrade fastbp")
    for key, kind in (("kind", str), ("layer_sizes", list), ("activations", list),
                      ("loss", str), ("dtype", str), ("n_params", int), ("checksum", str)):
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            _fail(path, f"header field {key!r} is missing or not a {kind.__name__}")
    if header["dtype"] not in ("float32", "float64"):
        _fail(path, f"dtype {header['dtype']!r} is not float32 or float64")
    if params is None:
        _fail(path, "no parameter vector")
    if params.dtype != np.dtype(header["dtype"]) or params.ndim != 1:
        _fail(path, f"params are {params.dtype} with shape {params.shape}, the header says "
                    f"1-D {header['dtype']}")
    if params.shape[0] != header["n_params"]:
        _fail(path, f"params has {params.shape[0]} values, the header says "
                    f"{header['n_params']}")
    if (header.get("optimizer") is None) != (state is None):
        _fail(path, "optimizer state and optimizer header do not go together")
    if state is not None and (state.dtype != params.dtype or state.ndim != 2
                              or state.shape[1] not in (0, params.shape[0])):
        _fail(path, f"optimizer_state has shape {state.shape} and dtype {state.dtype}, "
                    f"which does not fit {params.shape[0]} {params.dtype} parameters")
    n_buffers = header.get("n_buffers", 0)
    if not isinstance(n_buffers, int) or isinstance(n_buffers, bool) or n_buffers < 0:
        _fail(path, f"header field 'n_buffers' is not a non-negative int: {n_buffers!r}")
    if (buffers is not None) != (n_buffers > 0):
        _fail(path, f"the header says {n_buffers} buffer values, the file has "
                    f"{'none' if buffers is None else buffers.size}")
    if buffers is not None and (buffers.dtype != params.dtype or buffers.shape != (n_buffers,)):
        _fail(path, f"buffers have shape {buffers.shape} and dtype {buffers.dtype}, the "
                    f"header says {n_buffers} {params.dtype}")
    if _checksum(header, params, state, buffers) != header["checksum"]:
        _fail(path, "checksum mismatch: the file was modified or damaged after it was written")
    if not np.isfinite(params).all():
        _fail(path, "params contain NaN or infinity")
    if buffers is None:
        buffers = np.empty(0, dtype=params.dtype)
    elif not np.isfinite(buffers).all():
        _fail(path, "buffers contain NaN or infinity")
    return header, params, state, buffers
