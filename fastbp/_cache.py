"""Where the kernels' machine code is cached, and keeping that cache true to the sources.

:mod:`fastbp._config` calls :func:`kernel_cache_setting` once, before any kernel module is
imported, and passes the answer to every ``@njit`` as ``cache=``.

Two things go wrong with a plain ``cache=True``:

- Numba raises ``RuntimeError: cannot cache function ...: no locator available`` when it
  finds no writable directory for a cached function (a read-only install with no writable
  ``NUMBA_CACHE_DIR`` or ``~/.cache``).  So fastbp asks Numba's own locator search, for each
  kernel source file, where it would cache; if any file has no such directory, the kernels
  are compiled in memory (``cache=False``) and a :class:`KernelCacheWarning` says how to get a
  cache.
- Numba checks only a cached function's own source file, so after an edit of a module it
  calls (say ``codes.py``), a cached ``train_epoch`` would keep running the old code.  So
  each cache directory Numba uses for the kernels (in-tree ``__pycache__``, a subdirectory of
  ``NUMBA_CACHE_DIR``, or of the user-wide cache) holds a stamp with a digest of every kernel
  source; when it differs, the cached kernels there are deleted and compile afresh.

And one thing costs a fresh process more than it needs to: before Numba loads a function from
its cache, it refreshes its whole compiler registry (it imports some forty of its modules,
array, linear algebra, typed containers, random generators..., and installs every typing and
lowering template: about 0.1 s here), none of which loading machine code uses.
:func:`load_without_refresh` makes the kernels' entry points load without it (see
:class:`KernelCache`).
"""
import hashlib
import os
import pathlib
import uuid
import warnings

KERNELS = pathlib.Path(__file__).resolve().parent / "kernels"
STAMP = "fastbp-kernels.sha256"


from .errors import KernelCacheWarning  # noqa: E402  (re-exported for callers)


_warned = False


def kernel_modules(kernels=KERNELS):
    """Every module of the kernels package and its subpackages (``kernels/**/*.py``)."""
    return sorted(pathlib.Path(kernels).rglob("*.py"))


def kernel_sources(kernels=KERNELS):
    """Every source the cached machine code depends on: the kernel modules, ``_config.py``
    and ``registry.py`` (whose codes the kernels compile in as constants)."""
    package = pathlib.Path(kernels).parent
    return kernel_modules(kernels) + [p for p in (package / "_config.py",
                                                  package / "registry.py") if p.exists()]


def sources_digest(kernels=KERNELS):
    """SHA-256 of the kernel sources (names and contents) and the Numba and llvmlite versions."""
    import llvmlite
    import numba

    kernels = pathlib.Path(kernels)
    h = hashlib.sha256(f"numba {numba.__version__} llvmlite {llvmlite.__version__}".encode())
    for path in kernel_sources(kernels):
        data = path.read_bytes()
        h.update(f"\0{path.relative_to(kernels.parent).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


_installed_digest = []


def installed_digest():
    """:func:`sources_digest` of this fastbp's own kernels, computed once per process."""
    if not _installed_digest:
        _installed_digest.append(sources_digest())
    return _installed_digest[0]


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


def drop_stale(cache_dir, digest):
    """Delete the cached kernels in *cache_dir* unless its stamp says they come from *digest*.

    Safe when several processes start at once: each may delete the finished ``.nbi``/``.nbc``
    files (Numba treats a missing one as a cache miss) but never Numba's ``*.tmp.*`` files
    still being written, and the stamp is replaced atomically.  Raises OSError if the
    directory cannot be cleared and stamped.
    """
    stamp = pathlib.Path(cache_dir) / STAMP
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    for f in stamp.parent.glob("*.nb[ic]"):
        f.unlink(missing_ok=True)
    tmp = stamp.with_name(f".{STAMP}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    finally:
        tmp.unlink(missing_ok=True)


def kernel_cache_setting(kernels=KERNELS):
    """``cache=`` for the kernels: True if every kernel has a writable cache directory (each
    then cleared of code from other sources), else False, with one warning per process."""
    global _warned
    dirs = cache_directories(kernels)
    if dirs is not None:
        try:
            digest = installed_digest() if kernels == KERNELS else sources_digest(kernels)
            for d in dirs:
                drop_stale(d, digest)
            return True
        except OSError:
            pass
    if not _warned:
        _warned = True
        warnings.warn(
            f"fastbp: Numba has no writable directory to cache the compiled kernels of "
            f"{kernels} in, so every process compiles them in memory before its first fit "
            f"(many seconds). To cache them, set NUMBA_CACHE_DIR to a directory you can write, "
            f"or make the user-wide cache (~/.cache, or XDG_CACHE_HOME) writable; Numba reads "
            f"a cache only where it can write.", KernelCacheWarning, stacklevel=2)
    return False


def _kernel_cache_class():
    from numba.core.caching import FunctionCache
    from numba.core.runtime import rtsys

    class KernelCache(FunctionCache):
        """Numba's per-function cache, loading without the registry refresh.

        A cached kernel is machine code plus the names it calls: Numba's runtime (NRT, set up
        here by ``rtsys.initialize``, as the refresh would), Numba's C helpers, the C math
        functions and Python's C API (registered when Numba's CPU target is created, before
        any kernel exists), and code for ``parallel=True`` loops (reinstalled by the cached
        function's own ``reload_init``).  The refresh itself installs only what *compiling*
        uses, and Numba's compiler runs it before every compilation, so a cache miss or a
        new signature still compiles with the full registry.
        """

        def load_overload(self, sig, target_context):
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)

    return FunctionCache, KernelCache


_CLASSES = None

#: Numba releases whose cache loading was checked without the registry refresh (every external
#: symbol of the cached kernels resolved, tests/test_startup.py).  With any other release the
#: kernels load as Numba loads them: a missing symbol would abort the process, not raise.
REFRESH_FREE_NUMBA = ((0, 68),)


def _refresh_free_load_supported():
    import numba
    from numba.core.caching import FunctionCache
    try:
        release = tuple(int(p) for p in numba.__version__.split(".")[:2])
    except ValueError:
        return False
    return (release in REFRESH_FREE_NUMBA
            and hasattr(FunctionCache, "_load_overload")
            and hasattr(FunctionCache, "_guard_against_spurious_io_errors"))


def load_without_refresh(namespace):
    """Make every cached Numba dispatcher defined in *namespace* (a kernel module's globals)
    load from the cache without Numba's registry refresh (:class:`KernelCache`).  Idempotent;
    dispatchers without a cache (``cache=False``) and those of other modules are left alone."""
    from numba.core.dispatcher import Dispatcher

    module = namespace.get("__name__")
    for obj in list(namespace.values()):
        if isinstance(obj, Dispatcher) and getattr(obj.py_func, "__module__", None) == module:
            load_light(obj)


def load_light(compiled):
    """Make one Numba dispatcher or ``cfunc`` (before its ``compile()``) load from its cache
    without the registry refresh, where that is supported and it has a plain cache."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _kernel_cache_class() if _refresh_free_load_supported() else ()
    if _CLASSES and type(compiled._cache) is _CLASSES[0]:
        compiled._cache.__class__ = _CLASSES[1]
