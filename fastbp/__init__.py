"""fastbp: backpropagation at C speed, from Python.

The core is a set of Numba kernels (:mod:`fastbp.kernels`) on flat arrays: all weights and
biases of a network live in one contiguous parameter vector, the gradient and the optimizer
state in twins of it, and a whole training epoch runs inside compiled code.
"""
import gc as _gc

# The import creates some hundred thousand objects that live as long as the process (Numba's
# types, templates and dispatchers, the kernels' dispatchers) and no garbage worth collecting;
# the cyclic collector would walk them over and over while they are made (about 120 passes,
# one of them full, 0.04-0.05 CPU-s of a fresh process here).  It is paused for the import and
# left as it was found.  After a successful import the objects alive then are moved to the
# collector's permanent generation (gc.freeze), so that it never walks them again: otherwise
# the first collections after the import (in the first fit) walk them all, young, then old
# (import + first fit + first predict took 0.08-0.10 s longer, median of 15 paired runs).
# The price: cyclic garbage among objects made *before* ``import fastbp`` is not reclaimed
# if they are dropped later.  FASTBP_GC_FREEZE=0 keeps the collector's default.
_collecting = _gc.isenabled()
_imported = False
_gc.disable()
try:
    from ._blas import current_blas, set_blas
    from .errors import DivergenceError, ModelFileError
    from .formats import load_safetensors, read_fann_net
    from .layers import GRU, LSTM, RNN, Dense
    from .loading import load
    from .network import Network
    from .optimizers import *  # noqa: F401,F403  (every optimizer class, by optimizers.__all__)
    from .optimizers import __all__ as _optimizer_names
    from .schedules import (ExponentialDecay, InvScaling, ReduceOnPlateau, Schedule, StepDecay)
    from .training import History, fit
    _imported = True
finally:
    if _collecting:
        import os as _os
        if _imported and _os.environ.get("FASTBP_GC_FREEZE", "1").strip() != "0":
            _gc.freeze()
        _gc.enable()
        del _os
    del _collecting, _imported

from ._version import __version__

__all__ = ["Network", "Dense", "RNN", "GRU", "LSTM", "fit", "History", "load", "read_fann_data", "write_fann_data", "load_safetensors", "read_fann_net", "DivergenceError", "ModelFileError",
           *_optimizer_names, "Schedule", "StepDecay", "ExponentialDecay", "InvScaling",
           "ReduceOnPlateau", "warmup", "fit_many", "set_blas", "current_blas", "__version__"]


def __getattr__(name):
    # FANN data files (fastbp/fann.py, with the model-file machinery of fastbp/io.py they
    # use), imported when asked for: a fit from arrays needs neither
    if name in ("read_fann_data", "write_fann_data"):
        from . import fann as _fann
        return getattr(_fann, name)
    # the scikit-learn estimators load scikit-learn only when asked for
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as _sk
        return getattr(_sk, name)
    if name in ("BaggingClassifier", "BaggingRegressor", "param_grid", "fit_estimators"):
        from . import ensemble as _ensemble  # scikit-learn, loaded when asked for
        return getattr(_ensemble, name)
    if name == "fit_many":  # many networks over the cores (fastbp/many.py)
        from .many import fit_many
        return fit_many
    if name == "warmup":  # ahead-of-time compilation (fastbp/_warmup.py), loaded when asked
        from ._warmup import warmup
        return warmup
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
