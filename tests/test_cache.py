"""Compiled kernels are cached on disk: a new process loads them instead of compiling.

The cache must never serve code compiled from other kernel sources, wherever Numba keeps it
(the in-tree ``__pycache__``, ``NUMBA_CACHE_DIR`` or the user-wide cache), and it must never
be required: without a writable cache directory the kernels compile in memory.
"""
import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from fastbp import _cache

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import numba
    import fastbp
    from fastbp.kernels import epoch as training

    rng = np.random.default_rng(0)
    X = rng.random((300, 64)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                         dtype=np.float32, seed=0)
    net.fit(X, y, epochs=1, batch_size=1, learning_rate=0.01, seed=0)
    net.predict_proba(X[:1])
    stats = {}
    for name in ("train_epoch", "predict_into"):
        d = getattr(training, name)
        stats[name] = {"hits": sum(d.stats.cache_hits.values()),
                       "misses": sum(d.stats.cache_misses.values())}
    print(json.dumps(stats))
""")


def run_fresh_process():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_process_reuses_the_cached_kernels():
    run_fresh_process()  # compiles and stores whatever this machine has not cached yet
    stats = run_fresh_process()
    for name, s in stats.items():
        assert s["misses"] == 0, f"{name} was recompiled in a fresh process: {s}"
        assert s["hits"] >= 1, f"{name} was not loaded from the cache: {s}"


def test_the_probe_agrees_with_numba():
    """fastbp decides ``cache=`` by asking Numba's locator search; it must name the very
    directories the kernels' dispatchers use."""
    from numba.core.caching import NullCache

    from fastbp._config import JIT
    from fastbp._warmup import _dispatchers
    if not JIT["cache"]:
        pytest.skip("no writable kernel cache in this environment")
    used = {pathlib.Path(d._cache.cache_path) for d in _dispatchers().values()
            if not isinstance(d._cache, NullCache)}
    assert len(used) >= 1 and used <= set(_cache.cache_directories())


# -- the stale-code guard, on a copy of the package ------------------------------------------

def make_fake_kernels(root):
    kernels = root / "pkg" / "kernels"
    (kernels / "layers").mkdir(parents=True)
    (root / "pkg" / "_config.py").write_text("FASTMATH = set()\n")
    (kernels / "mathfn.py").write_text("def tanh(x): return x\n")
    (kernels / "layers" / "dense.py").write_text("WIDTH = 1\n")
    return kernels


def test_cached_code_from_older_kernel_sources_is_dropped(tmp_path):
    """Numba only checks a cached function's own file; an edit of a module it calls, in any
    subpackage, must still invalidate the cache (fastbp keeps a digest of all kernel sources
    next to it)."""
    kernels = make_fake_kernels(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    _cache.drop_stale(cache, _cache.sources_digest(kernels))
    (cache / "training.train_epoch-1.py311.nbi").write_text("index")
    (cache / "training.train_epoch-1.py311.1.nbc").write_text("code")
    (cache / "training.cpython-311.pyc").write_text("bytecode")
    _cache.drop_stale(cache, _cache.sources_digest(kernels))  # nothing changed: it stays
    assert (cache / "training.train_epoch-1.py311.nbi").exists()
    (kernels / "mathfn.py").write_text("def tanh(x): return 2 * x\n")  # a callee changes
    _cache.drop_stale(cache, _cache.sources_digest(kernels))
    assert sorted(p.name for p in cache.iterdir()) == ["fastbp-kernels.sha256",
                                                      "training.cpython-311.pyc"]


def test_the_digest_covers_subpackages_config_and_numba(tmp_path, monkeypatch):
    kernels = make_fake_kernels(tmp_path)
    seen = {_cache.sources_digest(kernels)}
    (kernels / "layers" / "dense.py").write_text("WIDTH = 2\n")
    seen.add(_cache.sources_digest(kernels))
    (kernels / "layers" / "conv").mkdir()
    (kernels / "layers" / "conv" / "im2col.py").write_text("")
    seen.add(_cache.sources_digest(kernels))
    (tmp_path / "pkg" / "_config.py").write_text("FASTMATH = {'nsz'}\n")
    seen.add(_cache.sources_digest(kernels))
    import numba
    monkeypatch.setattr(numba, "__version__", numba.__version__ + "+other")
    seen.add(_cache.sources_digest(kernels))
    assert len(seen) == 5


def test_clearing_leaves_files_numba_is_still_writing(tmp_path):
    """Another process may be writing a cache entry (Numba writes ``*.tmp.<id>`` and renames
    it); deleting that file would make its rename fail and crash it."""
    kernels = make_fake_kernels(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fastbp-kernels.sha256").write_text("an older digest")
    writing = cache / "training.train_epoch-1.py311.1.nbc.tmp.0123456789abcdef"
    writing.write_text("half written")
    _cache.drop_stale(cache, _cache.sources_digest(kernels))
    assert writing.exists()
    assert [p.name for p in cache.glob(".*")] == []  # no temporary stamp left behind

