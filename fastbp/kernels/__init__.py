"""Numba kernels on flat arrays.

Where each idea lives:

- :mod:`.forward`: the dense forward pass (loops or BLAS per layer);
- :mod:`.backward`: the backward pass (delta propagation and the gradient);
- :mod:`.losses`: losses fused with the output activation (the output delta);
- :mod:`.activations`, :mod:`.mathfn`: activations, their derivatives, vectorizable exp/tanh;
- :mod:`.updates`: every optimizer's update rule on the flat vector;
- :mod:`.training`: whole-epoch, whole-data-set and prediction kernels;
- :mod:`.codes`: the integer codes for activations, losses, optimizers and the layer table.

Public API for a user's own ``@njit`` code (see :mod:`.api`): :func:`network_arrays`,
:func:`predict_proba`, :func:`mean_loss`, :func:`gradient`, and the codes.

Their machine code is cached on disk when Numba has a writable place for it; the cache is
cleared when any source here changes (see :mod:`fastbp._cache`).
"""
from . import codes
from .api import NetworkArrays, gradient, mean_loss, network_arrays, predict_proba

__all__ = ["codes", "NetworkArrays", "network_arrays", "predict_proba", "mean_loss",
           "gradient"]
