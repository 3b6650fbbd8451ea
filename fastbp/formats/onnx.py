"""ONNX: ``net.to_onnx(path)``, ``estimator.to_onnx(path)`` and skl2onnx converters.

One graph builder serves all three.  Per row of the layer table (batch norms folded first:
``net.folded()``) one node from :data:`ROW_OPS`, keyed by the registry's layer kinds -- a
dense row is one ``Gemm`` whose B is the stored unit-by-unit ``(n_out, n_in)`` weight block
with ``transB=1``; a layer norm is ``LayerNormalization`` (opset 17) -- then its activation
from :data:`ACTIVATION_OPS` (``Sigmoid``, ``Tanh``, ``Relu``, ``LeakyRelu`` 0.01, ``Elu`` 1,
``Softplus``, ``Softmax``; in double graphs leaky relu, elu and softplus are spelled out
with elementary nodes, since onnxruntime has no double ``Elu``/``Softplus`` kernels and
``LeakyRelu``'s alpha is a float32; silu as ``x * Sigmoid(x)`` and gelu, the tanh approximation, as
``x * Sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))``, fastbp's own formula, at every opset).  A
layer kind or activation without an entry is a ``ValueError`` naming it.

Recurrent rows are ONNX ``RNN``/``GRU`` (``linear_before_reset=1``)/``LSTM`` nodes (torch's gate
blocks reordered to ONNX's: :data:`GATE_ORDER`) on the input transposed to (steps, N,
features); a many-to-one layer outputs ``Y_h`` as (N, directions*units), a sequence output
``Y`` as (N, steps, directions*units), and dense rows after it are per-step ``MatMul`` +
``Add``.  ``lengths=True`` adds the int32 input ``lengths`` (``sequence_lens``); per-step
outputs are then zero past each length.  onnxruntime (1.32) runs these operators in float
only.

The graph computes in the network's dtype: float32 networks give float graphs, float64
networks double graphs.  ``Network.to_onnx``: input ``X`` (N, n_inputs), output ``Y`` =
``predict_proba``.  Estimators, as skl2onnx's converters of scikit-learn's MLP (without
ZipMap): a classifier outputs ``label`` (int64 for integer or boolean classes, string for
strings, double for float classes; an int64 indicator matrix for multi-label) and
``probabilities`` (columns in ``classes_`` order); a regressor outputs ``variable`` (N,
n_outputs).  :func:`register_skl2onnx` registers both estimators with skl2onnx, so that
``skl2onnx.to_onnx(pipeline, X[:1])`` converts a pipeline ending in one.
"""

import numpy as np

from ._common import rows, unsupported

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('onnx is needed for to_onnx: pip install "fastbp[onnx]"') from e

#: default opset of the graphs fastbp writes (17: the first with LayerNormalization)
DEFAULT_OPSET = 17
_PROTO = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


class _Graph:
    """Collects nodes and initializers of a standalone model, with unique names."""

    def __init__(self, dtype, opset):
        self.dtype, self.opset = np.dtype(dtype), opset
        self.nodes, self.inits, self._names = [], [], set()

    def name(self, base):
        n, k = base, 0
        while n in self._names:
            k += 1
            n = f"{base}_{k}"
        self._names.add(n)
        return n

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def scalar(self, base, value):
        return self.const(base, np.array(value, dtype=self.dtype))

    def node(self, op, inputs, out=None, domain="", **attrs):
        out = out or self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=self.name(f"n_{op}"),
                                           domain=domain, **attrs))
        return out

    def node_outputs(self, op, inputs, wanted, **attrs):
        """A node with several outputs, of which those whose ``wanted`` flag is set get
        names (the others are left out: ``""``); returns the names."""
        outs = [self.name(f"{op.lower()}_{k}") if w else "" for k, w in enumerate(wanted)]
        while outs and not outs[-1]:
            outs.pop()
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.name(f"n_{op}"),
                                           **attrs))
        return outs


class _Skl2onnxGraph(_Graph):
    """The same interface on skl2onnx's scope and container (inside a pipeline)."""

    def __init__(self, scope, container, dtype):
        self.scope, self.container = scope, container
        self.dtype = np.dtype(dtype)
        self.opset = container.target_opset

    def name(self, base):
        return self.scope.get_unique_variable_name(base)

    def const(self, base, array):
        name = self.name(base)
        array = np.asarray(array)
        if array.dtype == object:  # strings: a TensorProto's raw data cannot hold them
            self.container.add_initializer(name, TensorProto.STRING, list(array.shape),
                                           [str(v).encode("utf-8") for v in array.ravel()])
        else:
            self.container.add_initializer(name, None, None,
                                           numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, out=None, domain="", **attrs):
        out = out or self.name(op.lower())
        self.container.add_node(op, list(inputs), [out], op_domain=domain,
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return out


# --- rows and activations -------------------------------------------------------------------
def _gemm(g, row, x):
    w = g.const("weight", np.ascontiguousarray(row.tensors["weight"], dtype=g.dtype))
    b = g.const("bias", np.ascontiguousarray(row.tensors["bias"], dtype=g.dtype))
    return g.node("Gemm", [x, w, b], transB=1)


def _layer_norm(g, row, x):
    if g.opset < 17:
        raise ValueError(f"layer normalization needs ONNX opset 17 or later "
                         f"(LayerNormalization), the target opset is {g.opset}")
    s = g.const("scale", np.asarray(row.tensors["weight"], dtype=g.dtype))
    b = g.const("shift", np.asarray(row.tensors["bias"], dtype=g.dtype))
    return g.node("LayerNormalization", [x, s, b], axis=-1, epsilon=row.eps)


def _per_step_gemm(g, row, x):
    """A dense row applied to every step of (N, steps, n_in): MatMul by the transposed block
    (Gemm is 2-D only), then Add."""
    w = g.const("weight_t", np.ascontiguousarray(row.tensors["weight"].T, dtype=g.dtype))
    b = g.const("bias", np.ascontiguousarray(row.tensors["bias"], dtype=g.dtype))
    return g.node("Add", [g.node("MatMul", [x, w]), b])


#: torch's gate blocks in ONNX's order: GRU r, z, n -> z, r, h; LSTM i, f, g, o -> i, o, f, c
GATE_ORDER = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 3, 1, 2]}
#: recurrent layer kind -> ONNX operator
RECURRENT_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _onnx_blocks(row, name, suffixes):
    """The row's torch tensor ``name`` per direction, gate blocks in ONNX's order, stacked
    as (directions, ...)."""
    order = GATE_ORDER[row.kind]
    H = row.cell.units
    out = []
    for suffix in suffixes:
        t = np.asarray(row.tensors[f"rnn.{name}_l0{suffix}"])
        out.append(np.concatenate([t[k * H:(k + 1) * H] for k in order]))
    return np.stack(out)


def _recurrent(g, row, x, lengths, last):
    """An ONNX ``RNN``/``GRU``/``LSTM`` node on seq-major ``x`` (steps, N, n_in).  Returns
    (output, layout): seq-major (steps, N, width) when the next row is recurrent, else
    batch-first (N, steps, width) for a sequence output or (N, width) for the final states
    ``Y_h`` (each direction's, forward then reverse: PyTorch's ``h_n``)."""
    cell = row.cell
    suffixes = ("", "_reverse")[:cell.directions]
    W = _onnx_blocks(row, "weight_ih", suffixes).astype(g.dtype)
    R = _onnx_blocks(row, "weight_hh", suffixes).astype(g.dtype)
    B = np.concatenate([_onnx_blocks(row, "bias_ih", suffixes),
                        _onnx_blocks(row, "bias_hh", suffixes)], axis=1).astype(g.dtype)
    inputs = [x, g.const("W", W), g.const("R", R), g.const("B", B)]
    if lengths is not None:
        inputs.append(lengths)
    attrs = {"hidden_size": cell.units,
             "direction": "bidirectional" if cell.bidirectional else "forward"}
    if row.kind == "rnn":
        attrs["activations"] = [cell.activation.capitalize()] * cell.directions
    if row.kind == "gru":
        attrs["linear_before_reset"] = 1
    seq = cell.return_sequences
    y, *yh = g.node_outputs(RECURRENT_OPS[row.kind], inputs, [seq, not seq], **attrs)
    if not seq:  # Y_h (dirs, N, H) -> (N, dirs*H)
        h = g.node("Transpose", [yh[0]], perm=[1, 0, 2])
        return g.node("Reshape", [h, g.const("shape", np.array([0, -1], dtype=np.int64))])
    # Y (steps, dirs, N, H) -> (steps, N, dirs*H) for a next recurrent row, else (N, steps, ..)
    y = g.node("Transpose", [y], perm=[2, 0, 1, 3] if last else [0, 2, 1, 3])
    return g.node("Reshape", [y, g.const("shape", np.array([0, 0, -1], dtype=np.int64))])


def _mask_steps(g, y, lengths):
    """Zero the per-step outputs ``y`` (N, steps, n_out) past each sample's length, as
    fastbp's do."""
    steps = g.node("Gather", [g.node("Shape", [y]), g.const("axis1", np.array(1, np.int64))],
                   axis=0)
    t = g.node("Range", [g.const("zero_i", np.array(0, np.int64)), steps,
                         g.const("one_i", np.array(1, np.int64))])
    lens = g.node("Unsqueeze", [g.node("Cast", [lengths], to=TensorProto.INT64),
                                g.const("axes", np.array([1], np.int64))])
    valid = g.node("Unsqueeze", [g.node("Less", [t, lens]),
                                 g.const("axes", np.array([2], np.int64))])
    return g.node("Where", [valid, y, g.scalar("zero", 0.0)])


#: layer kind -> node builder (batch norm is folded into the dense row before it); recurrent
#: kinds are :func:`_recurrent` nodes (see :data:`RECURRENT_OPS`)
ROW_OPS = {"dense": _gemm, "layer_norm": _layer_norm, "rnn": _recurrent, "gru": _recurrent,
           "lstm": _recurrent}


def _silu(g, x):
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


def _gelu(g, x):
    # fastbp's formula: x * logistic(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
    x3 = g.node("Mul", [g.node("Mul", [x, x]), x])
    inner = g.node("Add", [x, g.node("Mul", [x3, g.scalar("gelu_c", 0.044715)])])
    u2 = g.node("Mul", [inner, g.scalar("gelu_2k", 2 * 0.7978845608028654)])
    return g.node("Mul", [x, g.node("Sigmoid", [u2])])


def _double(g):
    return g.dtype == np.float64


def _leaky_relu(g, x):
    if _double(g):  # LeakyRelu's alpha attribute is a float32: 0.01 would be 0.00999999978
        return g.node("Max", [x, g.node("Mul", [x, g.scalar("slope", 0.01)])])
    return g.node("LeakyRelu", [x], alpha=0.01)


def _elu(g, x):
    if _double(g):  # onnxruntime has no double Elu kernel
        pos = g.node("Greater", [x, g.scalar("zero", 0.0)])
        em1 = g.node("Sub", [g.node("Exp", [x]), g.scalar("one", 1.0)])
        return g.node("Where", [pos, x, em1])
    return g.node("Elu", [x], alpha=1.0)


def _softplus(g, x):
    if _double(g):  # onnxruntime has no double Softplus kernel; fastbp's stable formula
        e = g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])])
        return g.node("Add", [g.node("Relu", [x]),
                              g.node("Log", [g.node("Add", [e, g.scalar("one", 1.0)])])])
    return g.node("Softplus", [x])


#: activation name -> node builder
ACTIVATION_OPS = {
    "identity": lambda g, x: x,
    "logistic": lambda g, x: g.node("Sigmoid", [x]),
    "tanh": lambda g, x: g.node("Tanh", [x]),
    "relu": lambda g, x: g.node("Relu", [x]),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softplus": _softplus,
    "silu": _silu,
    "gelu": _gelu,
    "softmax": lambda g, x: g.node("Softmax", [x], axis=-1),
}


def _network_nodes(g, net, x, lengths=None):
    """Nodes computing ``net.predict_proba`` from ``x`` (of the network's dtype; for a
    recurrent network (N, steps, n_inputs), with the int32 (N,) ``lengths`` when given)."""
    if net.layout.has_batch_norm:
        net = net.folded()
    table = rows(net)
    per_step = False
    if net.layout.recurrent:  # ONNX's recurrent operators read (steps, N, features)
        x = g.node("Transpose", [x], perm=[1, 0, 2])
    for k, row in enumerate(table):
        if row.kind not in ROW_OPS:
            raise unsupported(row.kind, "layer kind", ROW_OPS)
        if row.activation not in ACTIVATION_OPS:
            raise unsupported(row.activation, "activation", ACTIVATION_OPS)
        if row.cell is not None:
            last = k + 1 == len(table) or table[k + 1].cell is None
            x = _recurrent(g, row, x, lengths, last)
            per_step = row.cell.return_sequences
            continue
        op = _per_step_gemm if per_step and row.kind == "dense" else ROW_OPS[row.kind]
        x = ACTIVATION_OPS[row.activation](g, op(g, row, x))
    if per_step and lengths is not None:
        x = _mask_steps(g, x, lengths)
    return x


def _model(g, inputs, outputs, opset):
    graph = helper.make_graph(g.nodes, "fastbp", inputs, outputs, g.inits)
    from .._version import __version__
    model = helper.make_model(graph, producer_name="fastbp", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _save(model, path):
    if path is not None:
        from ..io import atomic_write
        with atomic_write(path) as f:
            f.write(model.SerializeToString())
    return model


def _opset(opset):
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an int >= 13, got {opset!r}")
    return opset


def network_to_onnx(net, path=None, opset=None, lengths=False):
    """The ONNX model of ``net.predict_proba`` (input ``X``, output ``Y``), saved to ``path``
    (atomically) when given.  Recurrent networks: ``X`` is (N, steps, n_inputs); with
    ``lengths=True`` the graph has a second input, ``lengths`` (int32, (N,)), ONNX's
    ``sequence_lens``; without it every sequence is full."""
    opset = _opset(opset)
    if not isinstance(lengths, (bool, np.bool_)):
        raise TypeError(f"lengths must be True or False, got {lengths!r}")
    if lengths and not net.layout.recurrent:
        raise ValueError("lengths is only for networks with recurrent layers")
    g = _Graph(net.dtype, opset)
    y = _network_nodes(g, net, "X", "lengths" if lengths else None)
    g.node("Identity", [y], out="Y")
    elem = _PROTO[net.dtype]
    steps = ["T"] if net.layout.recurrent else []
    out_steps = ["T"] if net.sequence_output else []
    inputs = [helper.make_tensor_value_info("X", elem, ["N"] + steps + [net.n_inputs])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["N"]))
    model = _model(g, inputs, [helper.make_tensor_value_info(
        "Y", elem, ["N"] + out_steps + [net.n_outputs])], opset)
    return _save(model, path)


# --- estimators -----------------------------------------------------------------------------
def _classes(est):
    """(classes array for the graph, its ONNX element type)."""
    c = np.asarray(est.classes_)
    if c.dtype.kind in "biu":
        return c.astype(np.int64), TensorProto.INT64
    if c.dtype.kind == "f":
        return c.astype(np.float64), TensorProto.DOUBLE
    return np.array([str(v) for v in c], dtype=object), TensorProto.STRING


def _is_multilabel(est):
    return est._label_binarizer.y_type_ == "multilabel-indicator"


def _estimator_nodes(g, est, x, outputs):
    """Nodes of a fitted estimator from ``x`` to the named ``outputs`` (classifier: label,
    probabilities; regressor: variable)."""
    from ..sklearn import MLPClassifier
    net = est.network_
    p = _network_nodes(g, net, x)
    if not isinstance(est, MLPClassifier):
        g.node("Identity", [p], out=outputs[0])
        return
    if _is_multilabel(est):
        g.node("Cast", [g.node("Greater", [p, g.scalar("half", 0.5)])], out=outputs[0],
               to=TensorProto.INT64)
        g.node("Identity", [p], out=outputs[1])
        return
    classes, _ = _classes(est)
    cl = g.const("classes", classes)
    if net.n_outputs == 1:  # binary: logistic output, P(classes_[1])
        # label as predict: classes_[1] where p > 0.5
        idx = g.node("Cast", [g.node("Greater", [p, g.scalar("half", 0.5)])],
                     to=TensorProto.INT64)
        idx = g.node("Reshape", [idx, g.const("flat", np.array([-1], dtype=np.int64))])
        g.node("Concat", [g.node("Sub", [g.scalar("one", 1.0), p]), p], out=outputs[1],
               axis=1)
    else:
        idx = g.node("ArgMax", [p], axis=1, keepdims=0)
        g.node("Identity", [p], out=outputs[1])
    g.node("Gather", [cl, idx], out=outputs[0], axis=0)


def _output_infos(est, n="N"):
    from ..sklearn import MLPClassifier
    net = est.network_
    elem = _PROTO[net.dtype]
    if not isinstance(est, MLPClassifier):
        return [helper.make_tensor_value_info("variable", elem, [n, net.n_outputs])]
    if _is_multilabel(est):
        label = helper.make_tensor_value_info("label", TensorProto.INT64, [n, net.n_outputs])
    else:
        label = helper.make_tensor_value_info("label", _classes(est)[1], [n])
    return [label, helper.make_tensor_value_info("probabilities", elem,
                                                 [n, len(est.classes_)])]


def estimator_to_onnx(est, path=None, opset=None):
    """The ONNX model of a fitted fastbp estimator (input ``X`` in the network's dtype)."""
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(est, "network_")
    opset = _opset(opset)
    net = est.network_
    g = _Graph(net.dtype, opset)
    outs = _output_infos(est)
    _estimator_nodes(g, est, "X", [o.name for o in outs])
    model = _model(g, [helper.make_tensor_value_info("X", _PROTO[net.dtype],
                                                     ["N", net.n_inputs])], outs, opset)
    return _save(model, path)


# --- skl2onnx -------------------------------------------------------------------------------
def _shape_calculator(operator):
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            Int64TensorType, StringTensorType)
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    tensor = FloatTensorType if est.network_.dtype == np.float32 else DoubleTensorType
    from ..sklearn import MLPClassifier
    if not isinstance(est, MLPClassifier):
        operator.outputs[0].type = tensor([n, est.network_.n_outputs])
        return
    if _is_multilabel(est):
        operator.outputs[0].type = Int64TensorType([n, est.network_.n_outputs])
    else:
        kind = _classes(est)[1]
        operator.outputs[0].type = (Int64TensorType([n]) if kind == TensorProto.INT64 else
                                    StringTensorType([n]) if kind == TensorProto.STRING else
                                    DoubleTensorType([n]))
    operator.outputs[1].type = tensor([n, len(est.classes_)])


def _converter(scope, operator, container):
    est = operator.raw_operator
    dtype = est.network_.dtype
    g = _Skl2onnxGraph(scope, container, dtype)
    x = operator.inputs[0].full_name
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != _PROTO[dtype]:
        x = g.node("Cast", [x], to=_PROTO[dtype])
    _estimator_nodes(g, est, x, [o.full_name for o in operator.outputs])


def register_skl2onnx():
    """Register :class:`fastbp.MLPClassifier` and :class:`fastbp.MLPRegressor` with skl2onnx
    (a shape calculator and a converter each), so ``skl2onnx.to_onnx`` converts them, alone
    or at the end of a pipeline.  Classifiers take skl2onnx's ``zipmap`` option (ZipMap
    needs float probabilities: pass ``options={"zipmap": False}`` for float64 models)."""
    from skl2onnx import update_registered_converter
    from ..sklearn import MLPClassifier, MLPRegressor
    update_registered_converter(MLPClassifier, "FastbpMLPClassifier", _shape_calculator,
                                _converter, options={"zipmap": [True, False, "columns"],
                                                     "nocl": [False, True]})
    update_registered_converter(MLPRegressor, "FastbpMLPRegressor", _shape_calculator,
                                _converter)
