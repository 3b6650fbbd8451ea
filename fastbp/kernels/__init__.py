"""Numba kernels on flat arrays.

Where each idea lives:

- :mod:`.layers`: one module per layer kind with its forward and backward kernels
  (:mod:`.layers.dense`, :mod:`.layers.norm`);
- :mod:`.model`: forward and backward over the layer table (dispatch on the kind column);
- :mod:`.losses`: losses fused with the output activation (the output delta);
- :mod:`.activations`, :mod:`.mathfn`: activations, their derivatives, vectorizable exp/tanh;
- :mod:`.optimizers`: every optimizer's update rule on the flat vector;
- :mod:`.epoch`: the batch gradient, whole-epoch, whole-data-set and prediction kernels;
- :mod:`.codes`: the layer table's columns (names and codes come from
  :mod:`fastbp.registry`).

Public API for a user's own ``@njit`` code (see :mod:`.api`): :func:`network_arrays`,
:func:`predict_proba`, :func:`mean_loss`, :func:`gradient`, and the codes.
"""
import hashlib
import os
import pathlib


def _drop_stale_cache(here=None):
    """Delete cached machine code compiled from older versions of these modules.

    Numba checks only the cached function's own source file, so after an edit of a module it
    calls (say ``mathfn.py``), a cached ``train_epoch`` would keep running the old code.  A
    digest of every kernel source, kept next to the cache, catches that: when it changes the
    cache is cleared and the kernels compile afresh.  (Only for the default cache location;
    with ``NUMBA_CACHE_DIR`` set, clear that directory after editing kernels.)
    """
    here = pathlib.Path(here or pathlib.Path(__file__).resolve().parent)
    sources = sorted(here.rglob("*.py")) + [here.parent / "_config.py",
                                            here.parent / "registry.py"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    cache = here / "__pycache__"
    stamp = cache / "fastbp-kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for f in cache.glob("*.nb[ic]"):
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f".{os.getpid()}.sha256"
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: Numba caches elsewhere anyway
        pass


if not os.environ.get("NUMBA_CACHE_DIR"):
    _drop_stale_cache()

from . import codes  # noqa: E402
from .api import NetworkArrays, gradient, mean_loss, network_arrays, predict_proba  # noqa: E402

__all__ = ["codes", "NetworkArrays", "network_arrays", "predict_proba", "mean_loss",
           "gradient"]
