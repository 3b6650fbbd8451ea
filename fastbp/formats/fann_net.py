"""FANN's network files (``.net``, ``FANN_FLO_2.1``): ``net.save_fann(path)`` and
``fastbp.read_fann_net(path)``.

The fields are those of FANN's ``src/fann_io.c`` (``fann_save_internal_fd`` /
``fann_create_from_fd``): ``key=value`` lines (training settings, cascade settings),
``layer_sizes`` (units per layer *plus one bias neuron*, the output layer's unused bias
included), ``neurons (num_inputs, activation_function, activation_steepness)`` per neuron,
and ``connections (connected_to_neuron, weight)``: each neuron's incoming weights in the order
of the previous layer's neurons, the bias neuron last -- fastbp's unit-by-unit block with
the bias appended to each unit's row.

Activations.  FANN applies its function to ``s * sum`` (``s``: the neuron's steepness):

=============================  ======================================  ====================
FANN                           value                                   fastbp
=============================  ======================================  ====================
FANN_LINEAR (0)                s x                                     identity, s = 1
FANN_SIGMOID (3)               1 / (1 + exp(-2 s x))                   logistic, s = 0.5
FANN_SIGMOID_SYMMETRIC (5)     2 / (1 + exp(-2 s x)) - 1 = tanh(s x)   tanh, s = 1
FANN_LINEAR_PIECE_RECT (18)    max(0, s x)                             relu, s = 1
FANN_LINEAR_PIECE_RECT_LEAKY   s x if s x > 0 else 0.01 s x            leaky_relu, s = 1
(19)
=============================  ======================================  ====================

Reading folds any other steepness into the neuron's incoming weights and bias (exact for
powers of two, such as FANN's default 0.5).  Codes 18 and 19 exist in FANN's master branch
only; FANN 2.2.0 (Debian's ``libfann``) does not know them and would compute garbage, so
:func:`save_fann` refuses relu and leaky_relu unless ``relu=True``.  FANN (floating point)
clips each neuron's ``s * sum`` to +-150/s before its activation; fastbp does not, so linear
and ReLU units agree only while their sums stay inside that range (sigmoids are saturated
there anyway).

Not expressible, each a ``ValueError`` naming it: softmax and the other activations FANN lacks,
normalization layers, layer kinds other than dense, losses other than squared error (FANN has
no cross-entropy).  On reading: shortcut networks, ``connection_rate`` < 1 (sparse), fixed-point
files, FANN's stepwise, threshold, Gaussian, Elliott, sine and cosine activations, and
neurons of one layer with different activations are a :class:`FannFormatError`; FANN's input
and output scaling parameters (``scale_included=1``), which ``fann_run`` does not apply
either, are dropped.  Sizes are checked against the file's length before anything is
allocated from them.
"""
import os
import re

import numpy as np

from .._config import MAX_PARAMS
from ..errors import FannFormatError
from ..io import atomic_write
from ._common import rows, unsupported

FANN_LINEAR, FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC = 0, 3, 5
FANN_LINEAR_PIECE_RECT, FANN_LINEAR_PIECE_RECT_LEAKY = 18, 19

#: fastbp activation -> (FANN code, steepness) for writing
TO_FANN = {"identity": (FANN_LINEAR, 1.0), "logistic": (FANN_SIGMOID, 0.5),
           "tanh": (FANN_SIGMOID_SYMMETRIC, 1.0), "relu": (FANN_LINEAR_PIECE_RECT, 1.0),
           "leaky_relu": (FANN_LINEAR_PIECE_RECT_LEAKY, 1.0)}
#: FANN code -> (fastbp activation, factor: the activation is applied to factor * s * sum)
FROM_FANN = {FANN_LINEAR: ("identity", 1.0), FANN_SIGMOID: ("logistic", 2.0),
             FANN_SIGMOID_SYMMETRIC: ("tanh", 1.0), FANN_LINEAR_PIECE_RECT: ("relu", 1.0),
             FANN_LINEAR_PIECE_RECT_LEAKY: ("leaky_relu", 1.0)}
FANN_NAMES = ["FANN_LINEAR", "FANN_THRESHOLD", "FANN_THRESHOLD_SYMMETRIC", "FANN_SIGMOID",
              "FANN_SIGMOID_STEPWISE", "FANN_SIGMOID_SYMMETRIC",
              "FANN_SIGMOID_SYMMETRIC_STEPWISE", "FANN_GAUSSIAN", "FANN_GAUSSIAN_SYMMETRIC",
              "FANN_GAUSSIAN_STEPWISE", "FANN_ELLIOT", "FANN_ELLIOT_SYMMETRIC",
              "FANN_LINEAR_PIECE", "FANN_LINEAR_PIECE_SYMMETRIC", "FANN_SIN_SYMMETRIC",
              "FANN_COS_SYMMETRIC", "FANN_SIN", "FANN_COS", "FANN_LINEAR_PIECE_RECT",
              "FANN_LINEAR_PIECE_RECT_LEAKY"]

#: the lines FANN 2.2 writes before layer_sizes (its defaults for a new network)
_SETTINGS = """num_layers={num_layers}
learning_rate=0.700000
connection_rate=1.000000
network_type=0
learning_momentum=0.000000
training_algorithm=2
train_error_function=1
train_stop_function=0
cascade_output_change_fraction=0.010000
quickprop_decay=-0.000100
quickprop_mu=1.750000
rprop_increase_factor=1.200000
rprop_decrease_factor=0.500000
rprop_delta_min=0.000000
rprop_delta_max=50.000000
rprop_delta_zero=0.100000
cascade_output_stagnation_epochs=12
cascade_candidate_change_fraction=0.010000
cascade_candidate_stagnation_epochs=12
cascade_max_out_epochs=150
cascade_min_out_epochs=50
cascade_max_cand_epochs=150
cascade_min_cand_epochs=50
cascade_num_candidate_groups=2
bit_fail_limit=3.49999999999999977796e-01
cascade_candidate_limit=1.00000000000000000000e+03
cascade_weight_multiplier=4.00000000000000022204e-01
cascade_activation_functions_count=10
cascade_activation_functions=3 5 7 8 10 11 14 15 16 17 
cascade_activation_steepnesses_count=4
cascade_activation_steepnesses=2.50000000000000000000e-01 5.00000000000000000000e-01 \
7.50000000000000000000e-01 1.00000000000000000000e+00 
"""


def _e(x):
    return "%.20e" % float(x)  # FANN's FANNPRINTF for double: exact round trip


def save_fann(net, path, relu=False):
    """Write ``net`` as a FANN_FLO_2.1 ``.net`` file (atomically); returns the path."""
    if net.loss != "squared_error":
        raise ValueError(f"FANN trains with squared error only; a network with loss "
                         f"{net.loss!r} cannot be saved as a FANN network (copy its "
                         f"parameters into one with loss='squared_error' to deploy its "
                         f"function)")
    allowed = {k: v for k, v in TO_FANN.items()
               if relu or v[0] not in (FANN_LINEAR_PIECE_RECT, FANN_LINEAR_PIECE_RECT_LEAKY)}
    table = rows(net)
    for row in table:
        if row.kind != "dense":
            raise unsupported(row.kind, "layer kind", ["dense"])
        if row.activation not in allowed:
            if row.activation in TO_FANN:
                raise ValueError(f"activation {row.activation!r} is FANN master's "
                                 f"{FANN_NAMES[TO_FANN[row.activation][0]]}, which FANN 2.2.0 "
                                 f"(Debian's libfann) does not have; pass relu=True to write "
                                 f"it for FANN master")
            raise unsupported(row.activation, "activation", allowed)
    sizes = [net.n_inputs] + [row.n_out for row in table]
    neurons = ["(0, 0, %s) " % _e(0)] * (sizes[0] + 1)
    conns = []
    first_prev = 0
    for row, n_prev in zip(table, sizes):
        code, steep = allowed[row.activation]
        neurons += ["(%d, %d, %s) " % (n_prev + 1, code, _e(steep))] * row.n_out
        neurons.append("(0, 0, %s) " % _e(0))
        W = row.tensors["weight"]
        b = row.tensors["bias"]
        src = [str(first_prev + k) for k in range(n_prev + 1)]
        for j in range(row.n_out):
            values = list(W[j]) + [b[j]]
            conns.append("".join(f"({s}, {_e(v)}) " for s, v in zip(src, values)))
        first_prev += n_prev + 1
    text = ("FANN_FLO_2.1\n" + _SETTINGS.format(num_layers=len(sizes))
            + "layer_sizes=" + "".join(f"{n + 1} " for n in sizes) + "\n"
            + "scale_included=0\n"
            + "neurons (num_inputs, activation_function, activation_steepness)="
            + "".join(neurons) + "\n"
            + "connections (connected_to_neuron, weight)=" + "".join(conns) + "\n")
    with atomic_write(path, "w") as f:
        f.write(text)
    return os.fspath(path)


# --- reading --------------------------------------------------------------------------------
_NEURON = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*,\s*([^()\s,]+)\s*\)")
_CONNECTION = re.compile(r"\(\s*(\d+)\s*,\s*([^()\s,]+)\s*\)")
_NEURONS_KEY = "neurons (num_inputs, activation_function, activation_steepness)"
_CONNECTIONS_KEY = "connections (connected_to_neuron, weight)"


def _bad(path, why):
    raise FannFormatError(f"{os.fspath(path)}: {why}")


def _number(path, key, text, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        _bad(path, f"{key}={text!r} is not a number")
    if kind is float and not np.isfinite(value):
        _bad(path, f"{key}={text!r} is not finite")
    return value


def _items(path, key, text, pattern, count):
    """``count`` tuples of ``pattern`` that make up all of ``text``."""
    found = pattern.findall(text)
    if len(found) != count or pattern.sub("", text).strip():
        _bad(path, f"'{key}' should hold {count} entries, it holds {len(found)} (or "
                   f"something else)")
    return found


def read_fann_net(path, dtype=None):
    """A :class:`fastbp.Network` with the function of FANN's ``fann_run`` for the ``.net``
    file at ``path`` (dense layers, squared error; ``dtype`` float64 by default)."""
    from ..layers import Dense
    from ..network import Network
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        _bad(path, "not a FANN network file (not ASCII text)")
    lines = text.splitlines()
    if not lines:
        _bad(path, "empty file")
    version = lines[0].strip()
    if version.startswith("FANN_FIX"):
        _bad(path, f"{version} is a fixed-point FANN network; fastbp reads floating-point "
                   f"ones (FANN_FLO_2.0/2.1)")
    if version not in ("FANN_FLO_2.1", "FANN_FLO_2.0"):
        _bad(path, f"not a FANN network file of version FANN_FLO_2.1 or 2.0 (first line "
                   f"{version[:40]!r})")
    fields = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if not sep:
            if line.strip():
                _bad(path, f"unexpected line {line[:60]!r}")
            continue
        if key in fields:
            _bad(path, f"field {key!r} appears twice")
        fields[key] = value
    for key in ("num_layers", "connection_rate", "network_type", "layer_sizes", _NEURONS_KEY,
                _CONNECTIONS_KEY):
        if key not in fields:
            _bad(path, f"field {key!r} is missing")
    if _number(path, "network_type", fields["network_type"], int) != 0:
        _bad(path, "a shortcut network (network_type=1): fastbp reads layered FANN networks "
                   "only")
    if _number(path, "connection_rate", fields["connection_rate"]) < 1:
        _bad(path, f"connection_rate={fields['connection_rate']}: a sparse FANN network; "
                   f"fastbp reads fully connected ones (connection rate 1)")
    num_layers = _number(path, "num_layers", fields["num_layers"], int)
    size_texts = fields["layer_sizes"].split()
    if not 2 <= num_layers <= len(text) or len(size_texts) != num_layers:
        _bad(path, f"num_layers={num_layers} does not fit layer_sizes "
                   f"{fields['layer_sizes'][:60]!r}")
    sizes = [_number(path, "layer_sizes", s, int) for s in size_texts]
    if min(sizes) < 2:
        _bad(path, f"layer_sizes {sizes[:8]} must each count at least one neuron and the bias")
    # sizes were read from the file: bound what they ask for by the file's length (each
    # neuron takes at least 9 characters, each connection 6) before allocating anything
    n_neurons = sum(sizes)
    n_conn = sum((n - 1) * p for p, n in zip(sizes, sizes[1:]))
    if 9 * n_neurons > len(text) or 6 * n_conn > len(text) or n_conn > MAX_PARAMS:
        _bad(path, f"layer_sizes {sizes[:8]} need more neurons and connections than the file "
                   f"holds")
    neurons = _items(path, "neurons", fields[_NEURONS_KEY], _NEURON, n_neurons)
    conns = _items(path, "connections", fields[_CONNECTIONS_KEY], _CONNECTION, n_conn)
    for j in range(sizes[0]):
        if int(neurons[j][0]) != 0:
            _bad(path, f"input neuron {j} has {neurons[j][0]} inputs")
    layers, blocks = [], []
    neuron = sizes[0]  # index of the first neuron of the current layer
    conn = 0
    first_prev = 0
    for li, (n_prev, n) in enumerate(zip(sizes, sizes[1:])):
        codes, steeps = set(), []
        W = np.empty((n - 1, n_prev))
        for j in range(n):
            n_inputs, code, steep = neurons[neuron + j]
            n_inputs, code = int(n_inputs), int(code)
            if j == n - 1:  # the layer's bias neuron
                if n_inputs != 0:
                    _bad(path, f"layer {li + 1}'s last (bias) neuron has {n_inputs} inputs")
                continue
            if n_inputs != n_prev:
                _bad(path, f"neuron {neuron + j} has {n_inputs} inputs, a fully connected "
                           f"layer after {n_prev - 1} units and a bias has {n_prev}")
            s = _number(path, "activation_steepness", steep)
            if code not in FROM_FANN:
                name = FANN_NAMES[code] if code < len(FANN_NAMES) else f"code {code}"
                _bad(path, f"neuron {neuron + j} uses {name}, which fastbp does not have "
                           f"(it reads {[FANN_NAMES[c] for c in FROM_FANN]})")
            codes.add(code)
            steeps.append(s * FROM_FANN[code][1])
            for k in range(n_prev):
                src, w = conns[conn + k]
                if int(src) != first_prev + k:
                    _bad(path, f"neuron {neuron + j}'s connection {k} comes from neuron "
                               f"{src}, not {first_prev + k}: not a fully connected layered "
                               f"network")
                W[j, k] = _number(path, "weight", w)
            conn += n_prev
        if len(codes) != 1:
            _bad(path, f"layer {li + 1} mixes activations "
                       f"{sorted(FANN_NAMES[c] for c in codes)}; fastbp has one per layer")
        (code,) = codes
        # fold the steepness (times 2 for FANN_SIGMOID) into the weights
        W *= np.asarray(steeps)[:, None]
        layers.append(Dense(n - 1, activation=FROM_FANN[code][0]))
        blocks.append(W)
        first_prev += n_prev
        neuron += n
    if conn != n_conn:  # pragma: no cover - guaranteed by the counts above
        _bad(path, "connection count mismatch")
    net = Network([sizes[0] - 1] + layers, loss="squared_error",
                  dtype=np.float64 if dtype is None else dtype)
    for row, W in zip(rows(net), blocks):
        row.tensors["weight"][...] = W[:, :-1]
        row.tensors["bias"][...] = W[:, -1]
    if not np.isfinite(net.params).all():
        _bad(path, "weights overflow the network's dtype")
    return net
