"""The kernels' public face: functions a user's own ``@njit`` code can call.

A network is handed over as four values (see :func:`network_arrays`): the flat parameter
vector ``params`` (float32 or float64), the flat buffer vector ``buffers`` (batch norm's
running statistics; empty without), the int64 layer table ``spec`` and the integer loss code.
Everything here works on C-contiguous 2-D arrays of the parameters' dtype and may be called
from nopython code as often as needed, e.g. to evaluate thousands of parameter vectors in an
evolutionary or reinforcement-learning loop::

    from numba import njit
    import fastbp
    from fastbp.kernels import mean_loss, network_arrays

    @njit
    def best_of(population, X, Y, buffers, spec, loss):
        losses = np.empty(population.shape[0])
        for i in range(population.shape[0]):
            losses[i] = mean_loss(X, Y, population[i], buffers, spec, loss)
        return losses.argmin()

    params, buffers, spec, loss = network_arrays(net)

Every function checks its arguments' types -- when called from Python, and when a user's
``@njit`` function calling it is compiled (a ``TypingError`` naming the argument and what it
must be, instead of Numba's own) -- then the shapes it is given against ``spec`` and ``spec``
against ``params`` and ``buffers`` (``ValueError`` naming the mismatch); normalization uses the running statistics (evaluation mode).  These
functions allocate their scratch buffers per call (a few kilobytes for small networks); the
training loop's own kernels (:mod:`.epoch`) take buffers from the caller.  The same kernels
without the type checks are ``unchecked_predict_proba``, ``unchecked_mean_loss`` and
``unchecked_gradient`` (plain Numba dispatchers; their shape checks stay).

A user's ``@njit(cache=True)`` function that calls these kernels holds a copy of their machine
code in its own cache, which Numba checks against the user's source file only.  After fastbp's
kernels change (an upgrade), such a cached function would still run the old kernels.  So the
checked kernels compare the kernel sources' digest they were compiled with (a constant) with
the one of the fastbp loaded now (read at run time through the symbol
``fastbp_source_stamp``): a mismatch is a ``ValueError`` that says to clear that cache.
"""
import ctypes
import hashlib
import numbers
from collections import namedtuple

import numpy as np
from llvmlite import binding, ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from .._cache import installed_digest
from .._config import JIT, PREDICT_CHUNK
from ..registry import ACTIVATIONS, LOSSES
from .codes import (A_OFF, ACT, B_OFF, BATCH_NORM, DENSE, EVAL, KIND, LAYER_NORM, LSTM, N_IN,
                    N_OUT, RNN, S_OFF, SOFTMAX, SPEC_COLUMNS, T_OFF, W_OFF)
from .epoch import (eval_buffers, evaluate, finish_gradient, gradient_sums,
                    predict_into_buffered)

#: the kernel sources' digest as a positive int64: compiled into every checked kernel as a
#: constant, and kept in ``_RUNTIME_STAMP`` (LLVM symbol ``fastbp_source_stamp``) for the
#: comparison at run time (see the module docstring)
def _source_stamp():
    try:
        return int(installed_digest()[:15], 16)
    except OSError:  # sources not readable (a zipped install): the version stands in
        from .._version import __version__
        return int(hashlib.sha256(__version__.encode()).hexdigest()[:15], 16)


SOURCE_STAMP = _source_stamp()
STAMP_SYMBOL = "fastbp_source_stamp"
_RUNTIME_STAMP = ctypes.c_int64(SOURCE_STAMP)
binding.add_symbol(STAMP_SYMBOL, ctypes.addressof(_RUNTIME_STAMP))


@intrinsic
def _runtime_stamp(typingctx):
    """The kernel sources' digest of the fastbp this process loaded."""
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        gv = builder.module.globals.get(STAMP_SYMBOL)
        if gv is None:
            gv = ir.GlobalVariable(builder.module, i64, STAMP_SYMBOL)
            gv.linkage = "external"
        return builder.load(gv)

    return types.int64(), codegen


#: what :func:`network_arrays` returns
NetworkArrays = namedtuple("NetworkArrays", ["params", "buffers", "spec", "loss"])


def network_arrays(net):
    """The arrays a kernel needs to run ``net``: ``(params, buffers, spec, loss)``.

    ``params`` and ``buffers`` are the network's own flat vectors (not copies: a kernel that
    writes them changes the network), ``spec`` its int64 layer table and ``loss`` its loss
    code (:mod:`fastbp.registry`).
    """
    return NetworkArrays(net.params, net.buffers, net.layout.spec, int(net.loss_code))


_N_ACTIVATIONS = max(e.code for e in ACTIVATIONS) + 1
_N_LOSSES = max(e.code for e in LOSSES) + 1


@njit(**JIT)
def _check_spec(params, buffers, spec):
    """ValueError unless ``spec`` is a layer table as :class:`fastbp.layout.Layout` writes
    it for exactly ``params`` and ``buffers``: every offset the kernels read from it then lies
    inside those vectors, and every buffer sized from it is bounded by their sizes (a table
    from another network, or made up, is refused instead of reading out of bounds)."""
    if _runtime_stamp() != SOURCE_STAMP:
        raise ValueError("this compiled code calls fastbp kernels from other sources than the "
                         "fastbp loaded now: it comes from a stale Numba cache of an @njit "
                         "function that calls them (compiled before fastbp changed); delete "
                         "that cache (the function's __pycache__/*.nbi and *.nbc files, or "
                         "NUMBA_CACHE_DIR) and run again")
    if spec.shape[1] != SPEC_COLUMNS or spec.shape[0] < 1:
        raise ValueError("spec is not a fastbp layer table (wrong shape)")
    n_params = params.shape[0]
    offset = 0
    a_off = 0
    t_off = 0
    s_off = 0
    last = spec.shape[0] - 1
    for l in range(spec.shape[0]):
        kind = spec[l, KIND]
        n_in = spec[l, N_IN]
        n_out = spec[l, N_OUT]
        if n_in < 1 or n_out < 1 or n_in > n_params or n_out > n_params:
            raise ValueError("spec does not match params: a layer size is out of range")
        if l > 0 and n_in != spec[l - 1, N_OUT]:
            raise ValueError("spec is not a fastbp layer table (layer sizes do not chain)")
        act = spec[l, ACT]
        if act < 0 or act >= _N_ACTIVATIONS or (act == SOFTMAX and l != last):
            raise ValueError("spec is not a fastbp layer table (bad activation code)")
        if spec[l, W_OFF] != offset or spec[l, A_OFF] != a_off:
            raise ValueError("spec does not match params (offsets)")
        if kind == DENSE:
            offset += n_in * n_out
        elif (kind == BATCH_NORM or kind == LAYER_NORM) and l > 0 and n_in == n_out \
                and spec[l - 1, KIND] == DENSE:
            if spec[l, T_OFF] != t_off:
                raise ValueError("spec is not a fastbp layer table (statistics offsets)")
            offset += n_out
            t_off += 2 * n_out if kind == BATCH_NORM else 2
            if kind == BATCH_NORM:
                if spec[l, S_OFF] != s_off:
                    raise ValueError("spec does not match buffers (offsets)")
                s_off += 2 * n_out
        elif RNN <= kind <= LSTM:
            raise ValueError("spec has recurrent layers: these kernels take feed-forward "
                             "networks (use Network.predict / gradient for sequences)")
        else:
            raise ValueError("spec is not a fastbp layer table (bad layer kind)")
        if spec[l, B_OFF] != offset:
            raise ValueError("spec does not match params (offsets)")
        offset += n_out
        a_off += n_out
        if offset > n_params:
            raise ValueError("spec does not match params: params is too short")
    if offset != n_params:
        raise ValueError("spec does not match params: params is too long")
    if s_off > buffers.shape[0]:
        raise ValueError("spec does not match buffers: buffers is too short")


@njit(**JIT)
def _check(X, params, buffers, spec):
    _check_spec(params, buffers, spec)
    if X.shape[1] != spec[0, N_IN]:
        raise ValueError("X has the wrong number of features for this network")


@njit(**JIT)
def _check_targets(X, Y, params, buffers, spec, loss):
    _check(X, params, buffers, spec)
    if Y.shape[0] != X.shape[0]:
        raise ValueError("X and Y have different numbers of rows")
    if Y.shape[1] != spec[spec.shape[0] - 1, N_OUT]:
        raise ValueError("Y has the wrong number of columns for this network")
    if loss < 0 or loss >= _N_LOSSES:
        raise ValueError("unknown loss code")


# --- the kernels without type checks -----------------------------------------------------
# Shapes, the layer table and the loss code are checked (cheaply, at run time); the argument
# *types* are not: a float64 X with float32 params, a 1-D or non-contiguous array end in
# Numba's own typing error.  For inner loops that already know their types.

@njit(**JIT)
def unchecked_predict_proba(X, params, buffers, spec):
    """:func:`predict_proba` without its argument type checks."""
    _check(X, params, buffers, spec)
    out = np.empty((X.shape[0], spec[spec.shape[0] - 1, N_OUT]), dtype=params.dtype)
    if not predict_into_buffered(X, params, buffers, spec, out):
        raise ValueError("X contains NaN or infinity")
    return out


@njit(**JIT)
def unchecked_mean_loss(X, Y, params, buffers, spec, loss):
    """:func:`mean_loss` without its argument type checks."""
    _check_targets(X, Y, params, buffers, spec, loss)
    acts, stats = eval_buffers(spec, min(max(X.shape[0], 1), PREDICT_CHUNK), params.dtype)
    out = np.empty(Y.shape, dtype=params.dtype)
    return evaluate(X, Y, np.empty(0, dtype=params.dtype), params, buffers, spec, loss, out,
                    acts, stats)


@njit(**JIT)
def unchecked_gradient(X, Y, params, buffers, spec, loss, grad):
    """:func:`gradient` without its argument type checks."""
    _check_targets(X, Y, params, buffers, spec, loss)
    if grad.shape[0] != params.shape[0]:
        raise ValueError("grad must have as many entries as params")
    rows = min(max(X.shape[0], 1), PREDICT_CHUNK)
    acts, stats = eval_buffers(spec, rows, params.dtype)
    hidden = 1
    for l in range(1, spec.shape[0]):
        hidden = max(hidden, spec[l, N_IN])
    tmp = np.empty(rows * hidden, dtype=params.dtype)
    spare = np.empty_like(grad) if X.shape[0] > rows else grad
    no = np.empty(0, dtype=params.dtype)
    none = np.empty(0, dtype=np.int64)
    xb = np.empty((0, X.shape[1]), dtype=params.dtype)
    yb = np.empty((0, Y.shape[1]), dtype=params.dtype)
    loss_sum, total_w = gradient_sums(X, Y, no, none, 0, X.shape[0], params, buffers, grad,
                                      spare, spec, loss, acts, no, stats, tmp, rows, EVAL,
                                      no, acts, np.uint64(0), 0, 0, xb, yb, no)
    return finish_gradient(params, grad, spec, loss_sum, total_w, 0.0)


# --- argument types: one rule per argument, checked on NumPy arrays (Python calls) and on
# Numba types (typing of a user's @njit code) alike ------------------------------------------
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: name -> (ndim, dtype: "float" (float32/float64), "like" (the dtype of params) or a dtype,
#: must be writable)
_RULES = {
    "X": (2, "like", False), "Y": (2, "like", False), "params": (1, "float", False),
    "buffers": (1, "like", False), "spec": (2, np.dtype(np.int64), False),
    "grad": (1, "like", True),
}


def _describe(ndim, dtype, contiguous):
    return f"array({dtype}, {ndim}d, {'C' if contiguous else 'A'})"


def _check_types(fn, facts, got, loss):
    """Raise TypeError for the first argument that breaks its rule.  ``facts[name]`` is
    (ndim, dtype, C-contiguous, writable) of an array argument or None for anything else;
    ``got[name]`` how to name what was passed; ``loss`` whether the loss code is an integer
    (None: no loss argument)."""
    like = facts["params"][1] if facts["params"] is not None else None
    for name in sorted(facts, key=lambda n: n != "params"):  # params first: the others follow it
        fact = facts[name]
        ndim, kind, writable = _RULES[name]
        dtype = like if kind == "like" else kind
        if kind == "float" or (kind == "like" and like not in _FLOATS):
            want = "float32 or float64"
        else:
            want = f"{dtype}" + (" like params" if kind == "like" else "")
        expected = (f"a C-contiguous {'writable ' if writable else ''}{ndim}-D {want} array")
        ok = (fact is not None and fact[0] == ndim and fact[2] and (fact[3] or not writable)
              and (fact[1] in _FLOATS if kind == "float" else fact[1] == dtype))
        if not ok:
            raise TypeError(f"fastbp.kernels.{fn}: {name} must be {expected}, got "
                            f"{got[name]}")
    if loss is False:
        raise TypeError(f"fastbp.kernels.{fn}: loss must be an integer loss code "
                        f"(fastbp.registry), got {got['loss']}")


def _python_check(fn, args, loss=None):
    facts, got = {}, {}
    for name, a in args.items():
        if isinstance(a, np.ndarray):
            c = a.flags.c_contiguous
            facts[name] = (a.ndim, a.dtype, c, a.flags.writeable)
            got[name] = _describe(a.ndim, a.dtype, c)
        else:
            facts[name] = None
            got[name] = type(a).__name__
    is_int = None
    if loss is not None:
        is_int = isinstance(loss, (numbers.Integral, np.integer)) and not isinstance(
            loss, (bool, np.bool_))
        got["loss"] = repr(loss)
    _check_types(fn, facts, got, is_int)


def _numba_check(fn, args, loss=None):
    facts, got = {}, {}
    for name, t in args.items():
        got[name] = str(t)
        if isinstance(t, types.Array):
            try:
                dtype = as_dtype(t.dtype)
            except NotImplementedError:
                dtype = None
            facts[name] = (t.ndim, dtype, t.layout == "C", t.mutable)
        else:
            facts[name] = None
    if loss is not None:
        got["loss"] = str(loss)
        loss = isinstance(loss, types.Integer)
    try:
        _check_types(fn, facts, got, loss)
    except TypeError as e:
        raise TypingError(str(e)) from None


# --- the public kernels: checked in Python, and at typing time inside nopython code ------
def predict_proba(X, params, buffers, spec):
    """Output activations (N, n_out) of the network ``(params, buffers, spec)`` for the rows
    of X (a ValueError for NaN or infinite inputs)."""
    _python_check("predict_proba", dict(X=X, params=params, buffers=buffers, spec=spec))
    return unchecked_predict_proba(X, params, buffers, spec)


def mean_loss(X, Y, params, buffers, spec, loss):
    """Mean loss over (X, Y), Y a (N, n_out) target matrix (one-hot for classes)."""
    _python_check("mean_loss", dict(X=X, Y=Y, params=params, buffers=buffers, spec=spec),
                  loss)
    return unchecked_mean_loss(X, Y, params, buffers, spec, loss)


def gradient(X, Y, params, buffers, spec, loss, grad):
    """Mean loss over (X, Y); its gradient goes to ``grad`` (the layout of ``params``).
    Normalization layers use their running statistics (as prediction does)."""
    _python_check("gradient", dict(X=X, Y=Y, params=params, buffers=buffers, spec=spec,
                                   grad=grad), loss)
    return unchecked_gradient(X, Y, params, buffers, spec, loss, grad)


@overload(predict_proba)
def _predict_proba_typed(X, params, buffers, spec):
    _numba_check("predict_proba", dict(X=X, params=params, buffers=buffers, spec=spec))

    def impl(X, params, buffers, spec):
        return unchecked_predict_proba(X, params, buffers, spec)
    return impl


@overload(mean_loss)
def _mean_loss_typed(X, Y, params, buffers, spec, loss):
    _numba_check("mean_loss", dict(X=X, Y=Y, params=params, buffers=buffers, spec=spec),
                 loss)

    def impl(X, Y, params, buffers, spec, loss):
        return unchecked_mean_loss(X, Y, params, buffers, spec, loss)
    return impl


@overload(gradient)
def _gradient_typed(X, Y, params, buffers, spec, loss, grad):
    _numba_check("gradient", dict(X=X, Y=Y, params=params, buffers=buffers, spec=spec,
                                  grad=grad), loss)

    def impl(X, Y, params, buffers, spec, loss, grad):
        return unchecked_gradient(X, Y, params, buffers, spec, loss, grad)
    return impl
