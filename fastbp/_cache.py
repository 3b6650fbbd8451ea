"""Where the kernels' machine code is cached, if anywhere.

:mod:`fastbp._config` calls :func:`kernel_cache_setting` once, before any kernel module is
imported, and passes the answer to every ``@njit`` as ``cache=``.

Numba raises ``RuntimeError: cannot cache function ...: no locator available`` when it finds
no writable directory for a cached function (a read-only install with no writable
``NUMBA_CACHE_DIR`` or ``~/.cache``).  So fastbp asks Numba's own locator search, for each
kernel source file, where it would cache; if any file has no such directory, the kernels are
compiled in memory (``cache=False``) and a :class:`KernelCacheWarning` says how to get a
cache.
"""
import pathlib
import warnings

KERNELS = pathlib.Path(__file__).resolve().parent / "kernels"


class KernelCacheWarning(RuntimeWarning):
    """No writable directory for the compiled kernels: each process compiles them in memory."""


_warned = False


def kernel_modules(kernels=KERNELS):
    """Every module of the kernels package and its subpackages (``kernels/**/*.py``)."""
    return sorted(pathlib.Path(kernels).rglob("*.py"))


def _function_defined_in(path):
    """A plain function whose code claims to come from *path* (what Numba's locators look at)."""
    namespace = {}
    exec(compile("def probe():\n    pass\n", str(path), "exec"), namespace)
    return namespace["probe"]


def cache_directories(kernels=KERNELS):
    """The directories Numba would cache the kernels in, or None if some kernel has none.

    Asks Numba's own locator search (``NUMBA_CACHE_DIR``, then the in-tree ``__pycache__``,
    then the user-wide cache, or whatever ``NUMBA_CACHE_LOCATOR_CLASSES`` says) for a
    function in each kernel source file, and checks that the answer is writable (Numba reads
    a cache only where it can also write).
    """
    from numba.core.caching import CompileResultCacheImpl

    modules = kernel_modules(kernels)
    if not modules:  # installed without sources: Numba has nothing to key a cache to
        return None
    found = set()
    for path in modules:
        try:
            locator = CompileResultCacheImpl(_function_defined_in(path)).locator
            locator.ensure_cache_path()
        except (RuntimeError, OSError):
            return None
        found.add(pathlib.Path(locator.get_cache_path()))
    return sorted(found)


def kernel_cache_setting(kernels=KERNELS):
    """``cache=`` for the kernels: True if every kernel has a writable cache directory, else
    False, with one warning per process."""
    global _warned
    if cache_directories(kernels) is not None:
        return True
    if not _warned:
        _warned = True
        warnings.warn(
            f"fastbp: Numba has no writable directory to cache the compiled kernels of "
            f"{kernels} in, so every process compiles them in memory before its first fit "
            f"(many seconds). To cache them, set NUMBA_CACHE_DIR to a directory you can write, "
            f"or make the user-wide cache (~/.cache, or XDG_CACHE_HOME) writable; Numba reads "
            f"a cache only where it can write.", KernelCacheWarning, stacklevel=2)
    return False
