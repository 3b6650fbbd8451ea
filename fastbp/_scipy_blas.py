"""SciPy's BLAS for Numba, without importing all of ``scipy.linalg``.

Numba's matrix products (``np.dot`` and fastbp's :func:`~fastbp.kernels.blas.gemm`) call the
BLAS functions that the extension module ``scipy.linalg.cython_blas`` exports, and Numba
checks that this module imports (``numba.np.linalg.ensure_blas``) when it loads its array
functions, which it does before the first kernel runs, even one loaded from the cache.
Importing ``scipy.linalg.cython_blas`` the usual way first runs ``scipy/linalg/__init__.py``,
which imports all of ``scipy.linalg`` and SciPy's array-API layer: 0.15-0.25 s of a fresh
process's start-up here, for nothing the kernels use.

:func:`load_cython_blas` loads the extension module alone (a 3 ms import: it needs only
``scipy``'s top level, which Numba imports anyway) and registers it in ``sys.modules``, where
Numba and threadpoolctl find it.  A later ``import scipy.linalg`` still runs normally; a
one-shot import hook then sets its ``cython_blas`` attribute, as a normal import of the
submodule would have.  Anything unexpected (no SciPy, another layout of its files) leaves
the import to Python's usual machinery.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

NAME = "scipy.linalg.cython_blas"
PARENT = "scipy.linalg"


class _SetAttributeOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing; when ``scipy.linalg`` is imported, wraps its loader so that the package
    gets its ``cython_blas`` attribute once it has run, then removes itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PARENT:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # the package's real loader, as a plain import would leave it
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        blas = sys.modules.get(NAME)
        if blas is not None and not hasattr(module, "cython_blas"):
            module.cython_blas = blas


def load_cython_blas():
    """Make ``scipy.linalg.cython_blas`` importable without importing ``scipy.linalg``
    (see the module docstring); returns whether it is loaded."""
    if NAME in sys.modules:
        return True
    if PARENT in sys.modules:  # the ordinary import is cheap now
        try:
            importlib.import_module(NAME)
            return True
        except ImportError:
            return False
    try:
        import scipy
        folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "cython_blas" + suffix)
            if os.path.exists(path):
                break
        else:
            return False
        loader = importlib.machinery.ExtensionFileLoader(NAME, path)
        spec = importlib.util.spec_from_file_location(NAME, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[NAME]
            raise
    except Exception:
        return False
    sys.meta_path.insert(0, _SetAttributeOnImport())
    return True
