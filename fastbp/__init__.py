"""fastbp: backpropagation at C speed, from Python.

The core is a set of Numba kernels (:mod:`fastbp.kernels`) on flat arrays: all weights and
biases of a network live in one contiguous parameter vector, the gradient and the optimizer
state in twins of it, and a whole training epoch runs inside compiled code.
"""
from .errors import DivergenceError, ModelFileError
from .fann import read_fann_data, write_fann_data
from .formats import load_safetensors, read_fann_net
from .layers import GRU, LSTM, RNN, Dense
from .loading import load
from .network import Network
from .optimizers import *  # noqa: F401,F403  (every optimizer class, by optimizers.__all__)
from .optimizers import __all__ as _optimizer_names
from .schedules import (ExponentialDecay, InvScaling, ReduceOnPlateau, Schedule, StepDecay)
from .training import History, fit

from ._version import __version__

__all__ = ["Network", "Dense", "RNN", "GRU", "LSTM", "fit", "History", "load", "read_fann_data", "write_fann_data", "load_safetensors", "read_fann_net", "DivergenceError", "ModelFileError",
           *_optimizer_names, "Schedule", "StepDecay", "ExponentialDecay", "InvScaling",
           "ReduceOnPlateau", "__version__"]


def __getattr__(name):
    # the scikit-learn estimators load scikit-learn only when asked for
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as _sk
        return getattr(_sk, name)
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
