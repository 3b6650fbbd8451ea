"""Models that leave fastbp (and come in): ONNX, PyTorch, safetensors and FANN ``.net`` files.

Each format is its own module, imported only when used (``import fastbp`` imports none of
onnx, torch or safetensors):

- :mod:`fastbp.formats.onnx`: ``net.to_onnx(path)``, ``estimator.to_onnx(path)`` and the
  skl2onnx converters of the estimators (``pip install "fastbp[onnx]"``);
- :mod:`fastbp.formats.torch`: ``net.to_torch()`` and ``Network.from_torch(module)`` (needs
  PyTorch, installed by you);
- :mod:`fastbp.formats.safetensors`: ``net.save_safetensors(path)`` and
  ``fastbp.load_safetensors(path)`` (``pip install "fastbp[safetensors]"``, no torch);
- :mod:`fastbp.formats.fann_net`: ``net.save_fann(path)`` and ``fastbp.read_fann_net(path)``
  (no dependency).

All of them walk a network through :func:`fastbp.formats._common.rows`, one entry per row of
the layer table, and look the row's layer kind up in a per-format table keyed by the
registry's layer-kind names: a kind a format does not support is a clear error naming it.
"""


def load_safetensors(path):
    """The :class:`fastbp.Network` in a safetensors file written by ``net.save_safetensors``
    (see :mod:`fastbp.formats.safetensors`)."""
    from .safetensors import load_safetensors as load
    return load(path)


def read_fann_net(path, dtype=None):
    """A :class:`fastbp.Network` from a FANN ``.net`` file (see :mod:`fastbp.formats.fann_net`)."""
    from .fann_net import read_fann_net as read
    return read(path, dtype=dtype)
