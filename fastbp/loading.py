"""Reading model files back into objects: :func:`load` (``fastbp.load``).

The file format itself (validation, checksums, atomic writes) is :mod:`fastbp.io`; this module
turns its validated contents into a :class:`~fastbp.Network`, or into the scikit-learn
estimator that saved it.
"""
import numpy as np

from .io import _fail, read_model_file
from .layers import Dense, from_config
from .network import Network
from .registry import OPTIMIZERS


def _layers_from_header(header, path):
    """(n_inputs, layer objects) of a version 2 header, or of a version 1 one (dense layers
    from ``layer_sizes`` and ``activations``)."""
    if header["version"] >= 2:
        layers = header.get("layers")
        n_inputs = header.get("n_inputs")
        if not isinstance(layers, list) or not layers:
            _fail(path, "header field 'layers' is missing or empty")
        if not isinstance(n_inputs, int) or isinstance(n_inputs, bool):
            _fail(path, "header field 'n_inputs' is missing or not an int")
        try:
            return n_inputs, [from_config(c) for c in layers]
        except (TypeError, ValueError) as e:
            _fail(path, f"invalid layer description ({e})")
    sizes = header["layer_sizes"]
    acts = header["activations"]
    if len(sizes) < 2 or len(acts) != len(sizes) - 1:
        _fail(path, f"{len(sizes)} layer sizes do not fit {len(acts)} activations")
    try:
        return sizes[0], [Dense(n, activation=a) for n, a in zip(sizes[1:], acts)]
    except (TypeError, ValueError) as e:
        _fail(path, f"invalid network description ({e})")


def network_from_header(header, params, state, buffers, path):
    """Rebuild a Network (with its buffers and optimizer state) from validated file
    contents."""
    n_inputs, layers = _layers_from_header(header, path)
    try:
        net = Network([n_inputs] + layers, loss=header["loss"], dtype=header["dtype"])
    except (TypeError, ValueError) as e:
        _fail(path, f"invalid network description ({e})")
    if net.n_params != params.shape[0]:
        _fail(path, f"the layers need {net.n_params} parameters, the file has "
                    f"{params.shape[0]}")
    if net.buffers.size != buffers.shape[0]:
        _fail(path, f"the layers need {net.buffers.size} buffer values, the file has "
                    f"{buffers.shape[0]}")
    if header["layer_sizes"] != list(net.sizes) or header["activations"] != net.activations:
        _fail(path, "layer_sizes/activations do not describe the layers")
    net.params[:] = params
    net.buffers[:] = buffers
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        _fail(path, "metadata is not a JSON object")
    net.metadata = metadata
    opt = header.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or opt.get("name") not in OPTIMIZERS:
            _fail(path, f"unknown optimizer {opt!r}")
        try:
            optimizer = OPTIMIZERS.get(opt["name"]).cls(**opt.get("params", {}))
        except (TypeError, ValueError) as e:
            _fail(path, f"invalid optimizer parameters ({e})")
        expected = (optimizer.n_slots, params.shape[0]) if optimizer.n_slots else (1, 0)
        if state.shape != expected:
            _fail(path, f"optimizer {opt['name']} keeps {optimizer.n_slots} state slots, the "
                        f"file has state of shape {state.shape}")
        optimizer.state = np.array(state)
        optimizer.t = opt.get("t", 0)  # validated by read_model_file
        net.optimizer = optimizer
    return net


def read_network(path):
    """(header, network) of a model file."""
    header, params, state, buffers = read_model_file(path)
    return header, network_from_header(header, params, state, buffers, path)


def load(path):
    """Load a model file written by ``save``: a :class:`~fastbp.Network`, or the
    scikit-learn estimator (``MLPClassifier``/``MLPRegressor``) that saved it."""
    header, net = read_network(path)
    kind = header["kind"]
    if kind == "network":
        return net
    if kind in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as fsk  # optional dependency: scikit-learn
        return getattr(fsk, kind)._from_file(net, header.get("estimator"), path)
    _fail(path, f"unknown model kind {kind!r}")
