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

Version 1 files (dense networks only: ``layer_sizes`` and ``activations``, no ``layers``,
no buffers) still load.

Writing (:func:`atomic_write`) goes to a temporary file in the same directory, is fsynced,
then renamed over the target, so a crash leaves the previous file intact; an existing file
keeps its mode, a new one gets 0666 less the umask, a symlink is written through to its
target, and a device or FIFO is written directly.

Loading reads the zip members with :mod:`zipfile` and their ``.npy`` headers with
``numpy.lib.format`` (never pickle, never object arrays).  Before anything is inflated or
allocated, the sizes the file declares -- the zip directory's member sizes, each ``.npy``
header's dtype and shape, the JSON header's layer sizes and ``n_params`` -- must agree with
each other and with the file's size (deflated members may inflate to at most 16 times the
file size; the header member is at most 1 MiB, its JSON nested at most 64 deep, with bounded
numbers and no NaN/Infinity), and no member is read beyond its declared size, so memory
stays proportional to the file's real size.  Every field, the
checksum, and the finiteness of the parameters and optimizer state are checked too.  Any
truncated, corrupt, foreign, tampered-with, hostile or newer-version file raises
:class:`ModelFileError` naming the file and the problem.  (The checksum detects damage and
edits; it is not a signature against a deliberate forger who rewrites it too.)
"""
import contextlib
import hashlib
import json
import os
import re
import reprlib
import secrets
import signal
import socket
import stat
import threading
import zipfile

import numpy as np

from ._config import (MODEL_HEADER_MAX_BYTES as _HEADER_MAX_BYTES,
                      MODEL_JSON_MAX_DEPTH as _JSON_MAX_DEPTH,
                      MODEL_JSON_MAX_FLOAT_CHARS as _JSON_MAX_FLOAT_CHARS,
                      MODEL_JSON_MAX_INT_DIGITS as _JSON_MAX_INT_DIGITS,
                      MODEL_MAX_INFLATION as _MAX_INFLATION, MODEL_MAX_STEPS as _MAX_STEPS,
                      MODEL_READ_CHUNK as _READ_CHUNK)
from .errors import MalformedModelFile as _Malformed
from ._version import __version__
from .errors import ModelFileError

FORMAT = "fastbp-model"
VERSION = 2
_MEMBERS = {"header", "params", "optimizer_state", "buffers"}

# --- saving ----------------------------------------------------------------------------------
#: temporary files are named ``.fastbp-save.<host>.<pid>.<random>.tmp``, so that a later save
#: into the same directory can recognize (and remove) those of writers that died
_TEMP_NAME = re.compile(
    r"\.fastbp-save\.(?P<host>[A-Za-z0-9-]*)\.(?P<pid>[0-9]+)\.[0-9a-f]+\.tmp")
#: temporary files of the saves running in this process (removed when SIGTERM kills it)
_active_temps = set()


def _host_tag():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64]


def _pid_alive(pid):
    if os.name != "posix":  # on Windows os.kill(pid, 0) would send the process a CTRL_C_EVENT
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive but another user's; nonsense: leave it
        return True
    return True


def _sweep_stale_temps(directory):
    """Remove temporary files left in ``directory`` by writers on this host that died
    (SIGKILL, power loss): their name carries the writer's pid, which is no longer alive."""
    host = _host_tag()
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            m = _TEMP_NAME.fullmatch(entry.name)
            if (m and m["host"] == host and not _pid_alive(int(m["pid"]))
                    and entry.is_file(follow_symlinks=False)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _create_temp(directory, existing):
    """(fd, path) of a new temporary file in ``directory``, listed in ``_active_temps`` before
    it exists: with the mode and owner of the file it will replace (``existing``, an
    ``os.stat`` result), else with the mode a plain ``open`` gives a new file (0666 less the
    umask, which the kernel applies)."""
    prefix = f".fastbp-save.{_host_tag()}.{os.getpid()}."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, prefix + secrets.token_hex(6) + ".tmp")
        _active_temps.add(tmp)
        try:
            fd = os.open(tmp, flags, 0o600 if existing else 0o666)
            break
        except BaseException as e:
            _active_temps.discard(tmp)
            if not isinstance(e, FileExistsError):
                raise
    if existing:
        try:
            if hasattr(os, "fchown"):  # best effort: root keeps the owner, others the group
                with contextlib.suppress(OSError):
                    os.fchown(fd, existing.st_uid if os.geteuid() == 0 else -1,
                              existing.st_gid)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            else:
                os.chmod(tmp, stat.S_IMODE(existing.st_mode))
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            _active_temps.discard(tmp)
            raise
    return fd, tmp


def _on_sigterm(signum, frame):
    """SIGTERM during a save: remove the temporary files, then die of SIGTERM as before."""
    for tmp in list(_active_temps):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


@contextlib.contextmanager
def _temps_removed_on_sigterm():
    """While the block runs, SIGTERM (when it would kill the process) first removes the
    temporary files in ``_active_temps``.  The handler is installed from the main thread
    only and only over the default action; the default is restored afterwards."""
    installed = False
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
                installed = True
    try:
        yield
    finally:
        if installed and signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _naming(error, target):
    """The OSError to raise for ``error``: one naming ``target`` when ``error`` is about a
    temporary file (or names no file: a failed write), else ``error`` itself."""
    about = error.filename
    if error.errno is None or (about is not None and not _TEMP_NAME.fullmatch(
            os.path.basename(os.fsdecode(about)))):
        return error
    return OSError(error.errno, error.strerror, target)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Write ``path`` so that readers see the old file or the complete new one.

    A regular file (or a new one) is written to a temporary file in its directory, fsynced
    and renamed over it, keeping the old file's mode (a new file gets 0666 less the umask).
    A symlink is written through: its resolved target is replaced, the link stays.  Anything
    else that exists (a device such as ``/dev/stdout``, a FIFO) is written directly.  Errors
    name ``path``; SIGTERM during the save removes the temporary file, and temporary files of
    dead writers (SIGKILL) in the directory are removed by the next save there."""
    target = os.fspath(path)
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    try:
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            with open(target, mode) as f:
                yield f
            return
        real = os.path.realpath(target)
        directory = os.path.dirname(real)
        _sweep_stale_temps(directory)
        with _temps_removed_on_sigterm():
            fd, tmp = _create_temp(directory, existing)
            try:
                with os.fdopen(fd, mode) as f:
                    yield f
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, real)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            finally:
                _active_temps.discard(tmp)
    except OSError as e:
        renamed = _naming(e, target)
        if renamed is e:
            raise
        raise renamed from e
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
    for extra in (state, buffers):
        if extra is not None:
            h.update(np.ascontiguousarray(extra).tobytes())
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


def model_header(net, kind="network", estimator=None, optimizer=True):
    """(header, optimizer state or None) of a model file for ``net``, the header's checksum
    included; ``optimizer=False`` leaves the optimizer out (formats that carry weights only,
    such as safetensors, use this header as their metadata)."""
    opt = net.optimizer if optimizer else None
    state = None
    opt_header = None
    if opt is not None and opt.state is not None:
        state = np.ascontiguousarray(opt.state)
        opt_header = {"name": opt.name, "params": _jsonable(opt.get_params()), "t": int(opt.t)}
    buffers = net.buffers if net.buffers.size else None
    header = {
        "format": FORMAT, "version": VERSION, "kind": kind, "fastbp_version": __version__,
        "n_inputs": int(net.n_inputs), "layers": [layer.config() for layer in net.layers],
        "layer_sizes": list(net.sizes), "activations": net.activations, "loss": net.loss,
        "dtype": net.dtype.name, "n_params": int(net.n_params),
        "n_buffers": int(net.buffers.size), "optimizer": opt_header,
        "estimator": _jsonable(estimator), "metadata": _jsonable(net.metadata),
    }
    if getattr(net, "huber_epsilon", None) is not None:  # the loss's parameter, when it has one
        header["huber_epsilon"] = float(net.huber_epsilon)
    header["checksum"] = _checksum(header, net.params, state, buffers)
    return header, state


def save_network(net, path, kind="network", estimator=None):
    """Write ``net`` (and its optimizer state) to ``path`` atomically; see the module doc."""
    header, state = model_header(net, kind, estimator)
    buffers = net.buffers if net.buffers.size else None
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


# --- loading ---------------------------------------------------------------------------------
# Nothing is inflated or allocated before the sizes the file declares (zip directory, .npy
# headers, the JSON header's layer sizes and n_params) agree with each other and with the
# file's size, so memory stays proportional to the file's real size.
# (the limits are tunables: fastbp/_config.py)
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?')  # linear even when unterminated


def _check_directory(zf, file_size):
    """The archive's members, checked from the zip directory alone (before reading any)."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if "header.npy" not in names:
        raise _Malformed("not a fastbp model file (no header)")
    unknown = set(names) - {m + ".npy" for m in _MEMBERS}
    if unknown:
        raise _Malformed(f"not a fastbp model file (unexpected members {sorted(unknown)})")
    if len(set(names)) != len(names):
        raise _Malformed("corrupt: a member appears twice in the zip directory")
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Malformed(f"member {info.filename} uses compression method "
                             f"{info.compress_type}; only stored and deflated are read")
        if info.flag_bits & 0x1:
            raise _Malformed(f"member {info.filename} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Malformed(f"corrupt zip directory: stored member {info.filename} has "
                             f"{info.compress_size} bytes but declares {info.file_size}")
    stored = sum(i.compress_size for i in infos)
    if stored > file_size:
        raise _Malformed(f"truncated or corrupt: the members take {stored} bytes, the file "
                         f"has {file_size}")
    inflated = sum(i.file_size for i in infos)
    if inflated > _MAX_INFLATION * file_size:
        raise _Malformed(f"the members declare {inflated} bytes, more than {_MAX_INFLATION} "
                         f"times the file's {file_size} (a zip bomb?)")
    return {name[:-len(".npy")] for name in names}


def _shape_fits(shape, expected):
    """``expected``: one entry per axis, an int, a tuple of allowed ints, or None (any)."""
    return len(shape) == len(expected) and all(
        e is None or (shape_n in e if isinstance(e, tuple) else shape_n == e)
        for shape_n, e in zip(shape, expected))


def _read_member(zf, name, expected_dtype, expected_shape, max_bytes):
    """The array ``name`` of the archive, read from its .npy member without pickle and
    without reading more than the member declares: its .npy header must give
    ``expected_dtype`` and a shape fitting ``expected_shape`` (see ``_shape_fits``), and
    header plus data must fill the member's declared size, at most ``max_bytes``."""
    info = zf.getinfo(name + ".npy")
    if info.file_size > max_bytes:
        raise _Malformed(f"member {name} declares {info.file_size} bytes, more than the "
                         f"{max_bytes} it may have")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _Malformed(f"member {name} has .npy format version {version}")
        expected_dtype = np.dtype(expected_dtype)
        if dtype != expected_dtype or not _shape_fits(shape, expected_shape):
            raise _Malformed(f"{name} is {dtype} of shape {shape}, expected {expected_dtype} "
                             f"of shape {tuple(expected_shape)}")
        if fortran_order and len(shape) > 1:
            raise _Malformed(f"{name} is stored in Fortran order")
        count = 1
        for n in shape:
            count *= n
        nbytes = count * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise _Malformed(f"{name}'s .npy header describes {nbytes} bytes of data, the zip "
                             f"directory {info.file_size - f.tell()}")
        array = np.empty(count, dtype=dtype)
        buffer = memoryview(array).cast("B")
        done = 0
        while done < nbytes:  # the zip layer checks the CRC when the last byte is read
            chunk = f.read(min(nbytes - done, _READ_CHUNK))
            if not chunk:
                raise _Malformed(f"{name} is truncated")
            buffer[done:done + len(chunk)] = chunk
            done += len(chunk)
    return array.reshape(shape)


def _json_int(text):
    if len(text.lstrip("-")) > _JSON_MAX_INT_DIGITS:
        raise _Malformed(f"header holds an integer of {len(text)} digits")
    return int(text)


def _json_float(text):
    value = float(text) if len(text) <= _JSON_MAX_FLOAT_CHARS else float("inf")
    if not np.isfinite(value):
        raise _Malformed(f"header holds a number out of range ({text[:20]}...)")
    return value


def _json_constant(name):
    raise _Malformed(f"header holds {name}, which is not JSON")


def _parse_header(raw):
    """The header member's JSON object, parsed with bounded depth and number sizes."""
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Malformed(f"corrupt header ({e})") from None
    brackets = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    steps = np.isin(brackets, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(brackets, (ord("]"), ord("}")))
    if np.cumsum(steps).max(initial=0) > _JSON_MAX_DEPTH:
        raise _Malformed(f"corrupt header (JSON nested deeper than {_JSON_MAX_DEPTH})")
    try:
        header = json.loads(text, parse_int=_json_int, parse_float=_json_float,
                            parse_constant=_json_constant)
    except json.JSONDecodeError as e:
        raise _Malformed(f"corrupt header ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Malformed("not a fastbp model file (wrong format tag)")
    return header


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(header):
    """Every field read_model_file's callers rely on, before any array is read."""
    version = header.get("version")
    if not _is_int(version) or version < 1:
        raise _Malformed(f"invalid format version {version!r}")
    if version > VERSION:
        raise _Malformed(f"written by a newer fastbp (format version {version}); this fastbp "
                         f"reads format version {VERSION} and older: upgrade fastbp")
    for key, kind in (("kind", str), ("layer_sizes", list), ("activations", list),
                      ("loss", str), ("dtype", str), ("n_params", int), ("checksum", str)):
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            raise _Malformed(f"header field {key!r} is missing or not a {kind.__name__}")
    if header["dtype"] not in ("float32", "float64"):
        raise _Malformed(f"dtype {header['dtype']!r} is not float32 or float64")
    sizes = header["layer_sizes"]
    if version >= 2:  # the network is built from n_inputs and the layers' units
        layers = header.get("layers")
        if not isinstance(layers, list) or not all(isinstance(l, dict) for l in layers):
            raise _Malformed("header field 'layers' is missing or not a list of objects")
        sizes = [header.get("n_inputs")] + [l.get("units") for l in layers]
        n_buffers = header.get("n_buffers")
        if not _is_int(n_buffers) or not 0 <= n_buffers <= 2 * header["n_params"]:
            raise _Malformed(f"invalid n_buffers {reprlib.repr(n_buffers)}")
    if len(sizes) < 2 or not all(_is_int(s) and s >= 1 for s in sizes):
        raise _Malformed(f"layer sizes {reprlib.repr(sizes)} are not two or more positive "
                         f"integers")
    # Building the network allocates about as much as its layers need, so the sizes it is
    # built from must not need more parameters than n_params (which the params member's
    # size bounds): a dense layer's weights and biases, the least any layer kind has.  The
    # exact count is compared once the network is built.
    need = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))
    if need > header["n_params"]:
        raise _Malformed(f"layer sizes {reprlib.repr(sizes)} need at least {need} "
                         f"parameters, the header says {header['n_params']}")
    opt = header.get("optimizer")
    if opt is not None:
        if not (isinstance(opt, dict) and isinstance(opt.get("name"), str)
                and isinstance(opt.get("params", {}), dict)):
            raise _Malformed(f"invalid optimizer description {reprlib.repr(opt)}")
        t = opt.get("t", 0)
        if not _is_int(t) or not 0 <= t <= _MAX_STEPS:
            raise _Malformed(f"invalid optimizer step count {reprlib.repr(t)}")


def read_model_file(path):
    """(header, params, optimizer_state or None, buffers) of a model file, every field
    validated (``buffers`` is empty for networks without running statistics)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise
    except OSError as e:
        _fail(path, f"cannot be read ({type(e).__name__}: {e})")
    try:
        with f, zipfile.ZipFile(f) as zf:
            file_size = os.fstat(f.fileno()).st_size
            members = _check_directory(zf, file_size)
            header = _parse_header(_read_member(zf, "header", np.uint8, (None,),
                                                _HEADER_MAX_BYTES))
            _check_header(header)
            if "params" not in members:
                raise _Malformed("no parameter vector")
            if (header.get("optimizer") is None) == ("optimizer_state" in members):
                raise _Malformed("optimizer state and optimizer header do not go together")
            dtype, n = header["dtype"], header["n_params"]
            budget = _MAX_INFLATION * file_size
            params = _read_member(zf, "params", dtype, (n,), budget)
            state = (_read_member(zf, "optimizer_state", dtype, (None, (0, n)), budget)
                     if "optimizer_state" in members else None)
            n_buffers = header.get("n_buffers", 0)
            if ("buffers" in members) != (n_buffers > 0):
                raise _Malformed(f"the header says {n_buffers} buffer values, the file "
                                 f"{'has' if 'buffers' in members else 'has none'}")
            buffers = (_read_member(zf, "buffers", dtype, (n_buffers,), budget)
                       if "buffers" in members else None)
    except MemoryError:  # not the file's fault: the sizes it declares were checked
        raise
    except _Malformed as e:
        _fail(path, str(e))
    except Exception as e:  # whatever the zip, .npy and JSON layers make of damaged bytes
        _fail(path, f"not a fastbp model file, or truncated/corrupt ({type(e).__name__}: {e})")
    if _checksum(header, params, state, buffers) != header["checksum"]:
        _fail(path, "checksum mismatch: the file was modified or damaged after it was written")
    for name, arr in (("params contain", params), ("optimizer state contains", state),
                      ("buffers contain", buffers)):
        if arr is not None and not np.isfinite(arr).all():
            _fail(path, f"{name} NaN or infinity")
    if buffers is None:
        buffers = np.empty(0, dtype=params.dtype)
    return header, params, state, buffers
