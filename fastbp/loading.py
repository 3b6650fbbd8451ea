"""``fastbp.load``: a model file back as the object that saved it.

The file format (validation, checksums, atomic writes) is :mod:`fastbp.io`; rebuilding a
network from a file is :func:`fastbp.network.read_network`; this module only dispatches on
the file's ``kind`` (a network, or the scikit-learn estimator that saved it).
"""
from .network import read_network


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
    from .io import _fail
    _fail(path, f"unknown model kind {kind!r}")
