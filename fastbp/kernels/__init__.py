"""Numba kernels on flat arrays.

Where each idea lives:

- :mod:`.layers`: one module per layer kind with its forward and backward kernels
  (:mod:`.layers.dense`, :mod:`.layers.norm`, :mod:`.layers.recurrent`);
- :mod:`.model`: forward and backward over the layer table (dispatch on the kind column);
- :mod:`.losses`: losses fused with the output activation (the output delta);
- :mod:`.activations`, :mod:`.mathfn`: activations, their derivatives, vectorizable exp/tanh;
- :mod:`.optimizers`: every optimizer's update rule on the flat vector;
- :mod:`.epoch`: the batch gradient, whole-epoch, whole-data-set and prediction kernels;
- :mod:`.sequence`: the same for networks that start with recurrent layers (sequences,
  lengths, backpropagation through time);
- :mod:`.codes`: the layer table's columns (names and codes come from
  :mod:`fastbp.registry`).

Public API for a user's own ``@njit`` code (see :mod:`.api`): :func:`network_arrays`,
:func:`predict_proba`, :func:`mean_loss`, :func:`gradient` (their argument types checked from
Python and at typing time in nopython code), the same without type checks for inner loops
(``unchecked_*``), and the codes.  They take feed-forward networks (a recurrent layer table
is refused with a ValueError).

Their machine code is cached on disk when Numba has a writable place for it; the cache is
cleared when any source here changes (see :mod:`fastbp._cache`).
"""
from .._scipy_blas import load_cython_blas

load_cython_blas()  # before Numba loads its linear algebra (see fastbp._scipy_blas)

from .._blas import init_from_environment  # noqa: E402

init_from_environment()  # the gemm table the compiled products call (see fastbp._blas)

from . import codes  # noqa: E402
from .api import (NetworkArrays, gradient, mean_loss, network_arrays, predict_proba,
                  unchecked_gradient, unchecked_mean_loss, unchecked_predict_proba)  # noqa: E402



def _load_without_refresh():
    """Every kernel module imported so far loads its cached entry points without Numba's
    registry refresh (see :func:`fastbp._cache.load_without_refresh`); the modules imported
    later (:mod:`.sequence`, :mod:`.sparse`) do the same for themselves at their end."""
    import sys

    from .._cache import load_without_refresh
    for name, module in list(sys.modules.items()):
        if module is not None and (name == __name__ or name.startswith(__name__ + ".")):
            load_without_refresh(vars(module))


_load_without_refresh()

__all__ = ["codes", "NetworkArrays", "network_arrays", "predict_proba", "mean_loss",
           "gradient", "unchecked_predict_proba", "unchecked_mean_loss", "unchecked_gradient"]
