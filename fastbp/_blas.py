"""Which BLAS the kernels' matrix products call: SciPy's (the default) or Intel's MKL.

Every matrix product in the kernels goes through :func:`fastbp.kernels.blas.gemm`, which
calls the Fortran ``sgemm``/``dgemm`` whose addresses sit in a two-entry table,
``fastbp_gemm_table``, registered with LLVM by name.  Compiled (and cached) machine code
holds the name, never an address, so the table can be filled in each process and switched
at any time between two calls:

- ``"scipy"``: the ``sgemm``/``dgemm`` that ``scipy.linalg.cython_blas`` exports, the same
  functions Numba's own ``np.dot`` calls (SciPy's wheels bundle OpenBLAS);
- ``"mkl"``: Intel's oneMKL from PyPI's ``mkl`` package (``pip install "fastbp[mkl]"``),
  loaded from its ``libmkl_rt``.  Its conditional-numerical-reproducibility mode is switched
  on in strict form (``MKL_CBWR_Set(MKL_CBWR_AUTO | MKL_CBWR_STRICT)``) before its first
  call, so that a product gives the same bits from run to run, whatever the number of
  threads and the alignment of the arrays (Intel documents strict CNR for ``?gemm`` on AVX2
  and AVX-512 code paths).

Choose with :func:`set_blas` (also ``fastbp.set_blas``) or the environment variable
``FASTBP_BLAS=mkl`` (read when the kernels are first imported).  The two libraries round
differently, so the same seed gives the same weights only with the same BLAS; for networks
whose products all stay below the BLAS sizes (``BLAS_MIN_MACS``) the choice changes nothing.
"""
import ctypes
import ctypes.util
import glob
import os
import sys
import threading

#: the BLAS fastbp can call, by the names set_blas and FASTBP_BLAS take
BLAS_NAMES = ("scipy", "mkl")
#: the symbol the compiled kernels load the gemm addresses from: [sgemm, dgemm]
TABLE_SYMBOL = "fastbp_gemm_table"
#: MKL_CBWR_AUTO | MKL_CBWR_STRICT (mkl_types.h)
_MKL_CBWR_AUTO_STRICT = 0x10002
_MKL_CBWR_SUCCESS = 0

_TABLE = (ctypes.c_void_p * 2)()
_lock = threading.Lock()
_state = {"name": None, "mkl": None}


def _capsule_address(capsule):
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype = ctypes.c_char_p
    name.argtypes = [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype = ctypes.c_void_p
    pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return pointer(capsule, name(capsule))


def _scipy_addresses():
    from ._scipy_blas import load_cython_blas
    if not load_cython_blas():
        raise ImportError("SciPy's BLAS (scipy.linalg.cython_blas) cannot be loaded")
    capi = sys.modules["scipy.linalg.cython_blas"].__pyx_capi__
    return _capsule_address(capi["sgemm"]), _capsule_address(capi["dgemm"])


def _mkl_candidates():
    """Paths where PyPI's ``mkl`` package (or a system MKL) keeps ``libmkl_rt``."""
    found = []
    try:  # the files the installed 'mkl' distribution lists (it installs into <prefix>/lib)
        from importlib import metadata
        for f in metadata.files("mkl") or ():
            if os.path.basename(str(f)).startswith("libmkl_rt.so"):
                found.append(str(f.locate()))
    except Exception:
        pass
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")), reverse=True)
    system = ctypes.util.find_library("mkl_rt")
    if system:
        found.append(system)
    return list(dict.fromkeys(found))


def mkl_installed():
    """Whether a ``libmkl_rt`` is there to load (``fastbp[mkl]`` installed)."""
    return bool(_mkl_candidates())


def _load_mkl():
    if _state["mkl"] is not None:
        return _state["mkl"]
    errors = []
    for path in _mkl_candidates():
        try:
            lib = ctypes.CDLL(path)
            lib.sgemm_, lib.dgemm_, lib.MKL_CBWR_Set  # noqa: B018  (all three must exist)
            break
        except (OSError, AttributeError) as e:
            errors.append(f"{path}: {e}")
    else:
        raise ImportError("BLAS 'mkl' needs Intel's oneMKL: pip install 'fastbp[mkl]' (the "
                          "PyPI package 'mkl')" + (f"; tried {'; '.join(errors)}" if errors
                                                   else "; no libmkl_rt found"))
    lib.MKL_CBWR_Set.restype = ctypes.c_int
    lib.MKL_CBWR_Set.argtypes = [ctypes.c_int]
    status = lib.MKL_CBWR_Set(_MKL_CBWR_AUTO_STRICT)
    if status != _MKL_CBWR_SUCCESS:
        raise ImportError(f"MKL refused its strict reproducible mode (MKL_CBWR_Set returned "
                          f"{status}; it must be set before MKL's first call in the process), "
                          f"so fastbp does not use it: its results would depend on the "
                          f"number of threads")
    _state["mkl"] = lib
    return lib


def _register():
    from llvmlite import binding
    binding.add_symbol(TABLE_SYMBOL, ctypes.addressof(_TABLE))


def set_blas(name):
    """Make the kernels' matrix products call ``name``'s gemm: ``"scipy"`` (SciPy's BLAS,
    the default) or ``"mkl"`` (Intel's oneMKL, ``pip install "fastbp[mkl]"``).  Takes effect
    with the next product; returns the name of the BLAS used before.  An unknown name is a
    ValueError; "mkl" without MKL installed is an ImportError that says what to install."""
    if name not in BLAS_NAMES:
        raise ValueError(f"unknown BLAS {name!r}: choose one of "
                         f"{', '.join(map(repr, BLAS_NAMES))}")
    with _lock:
        if name == "mkl":
            lib = _load_mkl()
            addresses = (ctypes.cast(lib.sgemm_, ctypes.c_void_p).value,
                         ctypes.cast(lib.dgemm_, ctypes.c_void_p).value)
        else:
            addresses = _scipy_addresses()
        before = _state["name"]
        if before is None:
            _register()
        _TABLE[0], _TABLE[1] = addresses
        _state["name"] = name
    from ._threads import forget_blas_libraries
    forget_blas_libraries()  # the "one BLAS thread" switch must see a newly loaded library
    return before


def current_blas():
    """The name of the BLAS the kernels call ("scipy" or "mkl")."""
    return _state["name"]


def init_from_environment():
    """Fill the table at the kernels' import: ``FASTBP_BLAS`` if set, else SciPy's."""
    if _state["name"] is not None:
        return
    wanted = os.environ.get("FASTBP_BLAS", "").strip().lower() or "scipy"
    if wanted not in BLAS_NAMES:
        raise ValueError(f"FASTBP_BLAS={os.environ['FASTBP_BLAS']!r} is not a BLAS fastbp "
                         f"knows: use one of {', '.join(map(repr, BLAS_NAMES))}")
    set_blas(wanted)


def blas_threads_local(n):
    """Limit the products this thread makes to ``n`` BLAS threads where the BLAS has a
    per-thread setting (MKL: ``mkl_set_num_threads_local``; its OpenMP team belongs to the
    calling thread, so the process-wide limit of :mod:`fastbp._threads` does not reach a
    helper thread).  Returns the previous setting to pass back (``None``: nothing done)."""
    lib = _state["mkl"] if _state["name"] == "mkl" else None
    if lib is None:
        return None
    fn = lib.MKL_Set_Num_Threads_Local
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int]
    return fn(n)
