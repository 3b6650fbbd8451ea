"""Compiled kernels are cached on disk: a new process loads them instead of compiling."""
import json
import subprocess
import pathlib
import sys
import textwrap

import pytest

from fastbp import _cache

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import numba
    import fastbp
    from fastbp.kernels import training

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
    from fastbp.kernels import activations, training
    from fastbp._config import JIT
    if not JIT["cache"]:
        pytest.skip("no writable kernel cache in this environment")
    used = {pathlib.Path(d._cache.cache_path) for d in (training.train_epoch,
                                                        activations.activation_value)}
    assert used <= set(_cache.cache_directories())


def test_cached_code_from_older_kernel_sources_is_dropped(tmp_path):
    """Numba only checks a cached function's own file; an edit of a module it calls must
    still invalidate the cache (fastbp keeps a digest of all kernel sources)."""
    from fastbp.kernels import _drop_stale_cache
    pkg = tmp_path / "pkg"
    kernels = pkg / "kernels"
    cache = kernels / "__pycache__"
    cache.mkdir(parents=True)
    (pkg / "_config.py").write_text("FASTMATH = set()\n")
    (kernels / "mathfn.py").write_text("def tanh(x): return x\n")
    _drop_stale_cache(kernels)
    (cache / "training.train_epoch-1.py311.nbi").write_text("index")
    (cache / "training.train_epoch-1.py311.1.nbc").write_text("code")
    (cache / "training.cpython-311.pyc").write_text("bytecode")
    _drop_stale_cache(kernels)  # nothing changed: the cache stays
    assert (cache / "training.train_epoch-1.py311.nbi").exists()
    (kernels / "mathfn.py").write_text("def tanh(x): return 2 * x\n")  # a callee changes
    _drop_stale_cache(kernels)
    assert sorted(p.name for p in cache.iterdir()) == ["fastbp-kernels.sha256",
                                                      "training.cpython-311.pyc"]
