"""What every exporter needs: the rows of a network's layer table as named tensors.

A network is described row by row (:mod:`fastbp.layout`): a dense row, a normalization row,
and later other layer kinds.  :func:`rows` gives, for each row, its layer-kind name (from
:data:`fastbp.registry.LAYER_KINDS`), its activation's name and its tensors under PyTorch's
``state_dict`` names (``weight``, ``bias``, ``running_mean``, ``running_var``), as *views*
into ``net.params``/``net.buffers``: exporters read them, importers write them.

The per-kind table :data:`TENSORS` says which tensors a kind has; a new layer kind adds a
line there and one in each format's table: :data:`fastbp.formats.onnx.ROW_OPS`,
:data:`fastbp.formats.torch.ROW_MODULES` and the module reading of
:func:`fastbp.formats.torch.from_torch`.  A kind without an entry is an error naming it in
that format (FANN's ``.net`` has dense layers only).

A recurrent row (``rnn``, ``gru``, ``lstm``) carries its layer object in ``cell`` (units,
cell activation, ``return_sequences``, ``bidirectional``) and its tensors under the names
they have in the :class:`fastbp.formats.torch.RecurrentBlock` that holds the torch module:
``rnn.weight_ih_l0``, ``rnn.weight_hh_l0``, ``rnn.bias_ih_l0``, ``rnn.bias_hh_l0`` and,
bidirectional, the same with ``_reverse`` -- views of the layer's ``weight_ih`` ... in
PyTorch's gate order and shapes.
"""
from collections import namedtuple

import numpy as np

from ..kernels import codes
from ..registry import ACTIVATIONS, LAYER_KINDS

#: one row of the layer table: ``kind`` (layer-kind name), ``n_in``, ``n_out``,
#: ``activation`` (name), ``tensors`` (dict name -> view), ``eps``, ``momentum`` (floats,
#: normalization rows), ``layer`` (index of the user layer the row belongs to), ``cell``
#: (the layer object of a recurrent row, else None)
Row = namedtuple("Row", "kind n_in n_out activation tensors eps momentum layer cell",
                 defaults=(None,))

#: prefix of a recurrent row's tensor names: the torch module inside its RecurrentBlock
RECURRENT_MODULE = "rnn"


def _dense(net, r):
    lay = net.layout
    return {"weight": net.params[lay.weight_slice(r)].reshape(lay.n_out(r), lay.n_in(r)),
            "bias": net.params[lay.bias_slice(r)]}


def _norm(net, r):
    lay = net.layout
    t = {"weight": net.params[lay.weight_slice(r)], "bias": net.params[lay.bias_slice(r)]}
    s = lay.buffer_slice(r)
    if s is not None:
        n = lay.n_out(r)
        t["running_mean"] = net.buffers[s][:n]
        t["running_var"] = net.buffers[s][n:]
    return t


def _recurrent(net, r):
    layer = net.layers[net.layout.layer_rows.index((r,))]
    out = {}
    for suffix in ("", "_reverse")[:layer.directions]:
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            out[f"{RECURRENT_MODULE}.{name}_l0{suffix}"] = getattr(layer, name + suffix)
    return out


#: layer kind -> the row's tensors (views), under PyTorch's state_dict names
TENSORS = {"dense": _dense, "batch_norm": _norm, "layer_norm": _norm, "rnn": _recurrent,
           "gru": _recurrent, "lstm": _recurrent}


def _bits_to_float(bits):
    return float(np.int64(bits).view(np.float64))


def rows(net):
    """The rows of ``net``'s layer table as :class:`Row` tuples (tensors are views)."""
    lay = net.layout
    out = []
    for i, table_rows in enumerate(lay.layer_rows):
        for r in table_rows:
            kind = LAYER_KINDS.name_of(lay.kind(r))
            if kind not in TENSORS:
                raise ValueError(f"layer kind {kind!r} has no tensor description for export")
            spec = lay.spec[r]
            out.append(Row(kind, lay.n_in(r), lay.n_out(r),
                           ACTIVATIONS.name_of(int(spec[codes.ACT])), TENSORS[kind](net, r),
                           _bits_to_float(spec[codes.EPS]), _bits_to_float(spec[codes.MOMENTUM]),
                           i, net._layers[i] if LAYER_KINDS.by_code(lay.kind(r)).recurrent
                           else None))
    return out


def unsupported(kind, what, supported):
    """The error for a layer kind (or activation) a format cannot express."""
    return ValueError(f"{what} {kind!r} cannot be expressed in this format; supported: "
                      f"{sorted(supported)}")


def modules(net):
    """``(index, row or None, activation name or None)`` per module of the
    ``torch.nn.Sequential`` that :func:`fastbp.formats.torch.to_torch` builds: each row is one
    module, followed by its activation's module unless the activation is the identity.  The
    state_dict keys of a network are ``f"{index}.{tensor name}"`` (safetensors uses them)."""
    out = []
    for row in rows(net):
        out.append((len(out), row, None))
        if row.activation != "identity":
            out.append((len(out), None, row.activation))
    return out


def state_dict_arrays(net):
    """``{key: view}`` with PyTorch's state_dict key names (``0.weight``, ``1.running_mean``)
    of the Sequential :func:`fastbp.formats.torch.to_torch` builds, without torch;
    batch norm's ``num_batches_tracked`` is not included (fastbp does not count batches)."""
    out = {}
    for index, row, _ in modules(net):
        if row is not None:
            for name, view in row.tensors.items():
                out[f"{index}.{name}"] = view
    return out
