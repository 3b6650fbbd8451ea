"""Start-up loads only what a call needs, and what it skips still works when asked for.

Each check runs in a fresh interpreter (what is imported depends on the whole process).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

FIT_THEN_REPORT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastbp
    rng = np.random.default_rng(0)
    X = rng.random((40, 8)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    net = fastbp.Network([8, 4, 3], dtype=np.float32, seed=0)
    net.fit(X, y, epochs=1, batch_size=1, seed=0)
    net.predict(X[:2])
    loaded = {m: m in sys.modules for m in ("scipy.linalg", "scipy.linalg.cython_blas",
                                           "sklearn", "scipy.optimize", "tqdm")}
    # what a dense fit from arrays does not use: the sequence and sparse kernels, model
    # files and formats, many models, the estimators
    unused = [m for m in sys.modules if m in (
        "fastbp.kernels.sequence", "fastbp.kernels.sparse", "fastbp.io", "fastbp.fann",
        "fastbp.many", "fastbp.ensemble", "fastbp.sklearn", "fastbp.cli", "fastbp._warmup",
        "scipy.sparse") or m.startswith("fastbp.formats.")]
    # ... and what it skipped is there when asked for, its kernels loading as the others do
    from fastbp.kernels import sequence, sparse
    light = {type(k._cache).__name__ for k in (sequence.train_epoch, sparse.train_epoch,
                                               sequence.predict_into)}
    fann = fastbp.read_fann_data.__module__
    # what was skipped still imports normally afterwards, with the attribute a plain
    # import of the submodule would have set
    import scipy.linalg
    import scipy.linalg.cython_blas as cb
    from scipy.linalg import cython_blas as cb2
    x = scipy.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0]))
    print(json.dumps({"loaded": loaded,
                      "attribute": scipy.linalg.cython_blas is sys.modules[
                          "scipy.linalg.cython_blas"],
                      "same": cb is cb2, "loader": type(scipy.linalg.__loader__).__name__,
                      "solve": x.tolist(), "unused": unused, "light": sorted(light),
                      "fann": fann}))
""")


def run(code, env=None):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=None if env is None else {**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_small_fit_loads_neither_scipy_linalg_nor_sklearn_nor_other_paths():
    r = run(FIT_THEN_REPORT)
    assert r["loaded"] == {"scipy.linalg": False, "scipy.linalg.cython_blas": True,
                           "sklearn": False, "scipy.optimize": False, "tqdm": False}
    assert r["attribute"] and r["same"]
    assert r["loader"] == "SourceFileLoader"  # the package's own loader, not the hook's
    assert r["solve"] == [0.5, 0.25]
    assert r["unused"] == []
    assert r["light"] == ["KernelCache"] and r["fann"] == "fastbp.fann"


def test_scipy_linalg_imported_first_is_left_alone():
    r = run("import scipy.linalg\n" + FIT_THEN_REPORT.replace(
        '"scipy.linalg": False', '"scipy.linalg": True'))
    assert r["loaded"]["scipy.linalg"] and r["attribute"] and r["same"]
    assert r["solve"] == [0.5, 0.25]


def test_a_bigger_fit_calls_blas_through_the_preloaded_module():
    """Batch products above BLAS_MIN_MACS go through SciPy's BLAS: the preloaded module must
    serve Numba's gemm (a wrong binding would crash or give wrong numbers)."""
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        import fastbp
        rng = np.random.default_rng(1)
        X = rng.standard_normal((256, 64))
        y = rng.integers(0, 10, 256)
        net = fastbp.Network([64, 128, 10], dtype=np.float64, seed=0)
        loss, grad = net.gradient(X, y)
        print(json.dumps({"linalg": "scipy.linalg" in sys.modules,
                          "params": net.params.tolist(), "grad": grad.tolist(),
                          "loss": loss}))
    """)
    r = run(code)
    assert not r["linalg"]
    # the same gradient from a NumPy reference (tests/naive.py)
    import numpy as np

    import fastbp
    from naive import flatten, loss_and_grads
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, 64))
    y = rng.integers(0, 10, 256)
    net = fastbp.Network([64, 128, 10], dtype=np.float64, seed=0)
    assert np.array_equal(net.params, np.array(r["params"]))
    Ws = [np.array(W) for W in net.weights]
    bs = [np.array(b) for b in net.biases]
    loss, dWs, dbs = loss_and_grads(Ws, bs, ["relu", "softmax"], "cross_entropy", X,
                                    np.eye(10)[y])
    grad = flatten(dWs, dbs)
    np.testing.assert_allclose(r["loss"], loss, rtol=1e-10)
    np.testing.assert_allclose(np.array(r["grad"]), grad, rtol=1e-8, atol=1e-12)


# -- loading cached kernels without Numba's registry refresh (fastbp._cache.KernelCache) -----

LOAD_THEN_REPORT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastbp
    from fastbp.kernels import epoch
    if sys.argv[1] == "refresh":  # what Numba itself does before loading from its cache
        from numba.core.registry import cpu_target
        cpu_target.target_context.refresh()
    rng = np.random.default_rng(0)
    X = rng.random((300, 64)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                         dtype=np.float32, seed=0)
    net.fit(X, y, epochs=2, batch_size=1, learning_rate=0.01, seed=0)
    proba = net.predict_proba(X[:7])  # 7 x 64 x 32 multiply-adds: the BLAS path
    big = fastbp.Network([64, 128, 10], dtype=np.float64, seed=0)
    loss, grad = big.gradient(X.astype(np.float64), y)
    stats = {name: [sum(getattr(epoch, name).stats.cache_hits.values()),
                    sum(getattr(epoch, name).stats.cache_misses.values())]
             for name in ("train_epoch", "predict_into")}
    print(json.dumps({"params": net.params.tolist(), "proba": proba.tolist(),
                      "loss": loss, "grad": grad.tolist(), "stats": stats,
                      "refreshed": "numba.np.polynomial" in sys.modules}))
""")


def test_cached_kernels_load_without_the_registry_refresh_and_compute_the_same():
    """Numba refreshes its whole compiler registry before loading from its cache (0.1 s of a
    fresh process); fastbp's kernels load without it.  The machine code loaded either way
    must compute the very same numbers."""
    def fresh(mode):
        out = subprocess.run([sys.executable, "-c", LOAD_THEN_REPORT, mode],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    from fastbp._cache import _refresh_free_load_supported
    fresh("refresh")  # compiles into the cache whatever is not cached yet
    light, full = fresh("light"), fresh("refresh")
    # only on the Numba releases it was checked on; elsewhere Numba loads as it always does
    assert full["refreshed"] and light["refreshed"] != _refresh_free_load_supported()
    for name, (hits, misses) in light["stats"].items():
        assert hits >= 1 and misses == 0, f"{name} was not loaded from the cache"
    for key in ("params", "proba", "loss", "grad"):
        assert light[key] == full[key], key
    assert np.isfinite(light["loss"]) and not np.allclose(light["grad"], 0.0)


def test_the_import_leaves_the_garbage_collector_as_it_found_it():
    """``import fastbp`` pauses the cyclic collector while it runs (see fastbp/__init__.py);
    it must be back as found afterwards, also when the import fails."""
    code = textwrap.dedent("""
        import gc, json, sys
        states = []
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            for name in [m for m in sys.modules if m == "fastbp" or m.startswith("fastbp.")]:
                del sys.modules[name]
            import fastbp
            states.append(gc.isenabled())
        gc.enable()
        for name in [m for m in sys.modules if m == "fastbp" or m.startswith("fastbp.")]:
            del sys.modules[name]
        sys.modules["fastbp.network"] = None  # makes the import fail half-way
        try:
            import fastbp
        except ImportError:
            states.append(gc.isenabled())
        print(json.dumps(states))
    """)
    assert run(code) == [True, False, True]


def test_the_import_freezes_what_it_made_and_garbage_made_later_is_still_collected():
    """After ``import fastbp`` the objects alive then sit in the collector's permanent
    generation (they are never walked again); cyclic garbage made afterwards is reclaimed as
    usual; FASTBP_GC_FREEZE=0 leaves the collector's default (nothing frozen); a failed import
    freezes nothing."""
    code = textwrap.dedent("""
        import gc, json, sys, weakref
        out = {"before": gc.get_freeze_count()}
        import fastbp
        out["after"] = gc.get_freeze_count()
        # gc.get_objects() lists the three generations, not the permanent one
        out["class_frozen"] = not any(fastbp.network.Network is o for o in gc.get_objects())
        class Node:
            pass
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        out["cycle_collected"] = gone() is None
        print(json.dumps(out))
    """)
    out = run(code)
    assert out["before"] == 0 and out["after"] > 10_000
    assert out["class_frozen"]
    assert out["cycle_collected"]
    default = run(code, env={"FASTBP_GC_FREEZE": "0"})
    assert default["after"] == 0 and not default["class_frozen"] and default["cycle_collected"]
    failed = textwrap.dedent("""
        import gc, json, sys
        sys.modules["fastbp.network"] = None
        try:
            import fastbp
        except ImportError:
            pass
        print(json.dumps(gc.get_freeze_count()))
    """)
    assert run(failed) == 0


def test_dense_rows_compile_once_for_read_only_and_writable_inputs(tmp_path):
    """The forward and backward passes read every dense row's input through one read-only
    array type (fastbp.kernels.borrow.borrow_readonly), so a read-only data array, a
    writable one and the activation buffer of the rows above all use one compiled dense
    kernel (each extra type was another compilation of it and of everything it calls).
    Compiled from an empty cache in a fresh interpreter: cached code lists no signatures."""
    code = textwrap.dedent("""
        import json
        import numpy as np
        import fastbp
        from fastbp.kernels import model
        from fastbp.kernels.layers import dense
        net = fastbp.Network([4, 5, 3, 2], dtype=np.float64, seed=0)
        L = net.layout
        rows = 2
        acts = np.zeros(rows * int(L.spec[-1, 6] + L.spec[-1, 2]))  # A_OFF + N_OUT
        tmp = np.zeros(64)
        none = np.zeros(0)
        X = np.random.default_rng(0).normal(size=rows * 4)
        X_ro = X.copy()
        X_ro.setflags(write=False)
        for x in (X, X_ro):
            model.forward(x, 0, net.params, net.buffers, L.spec, acts, none, none, rows, 0,
                          False, none, none, np.uint64(0), 0, 0)
            model.backward(x, 0, net.params, np.zeros_like(net.params), L.spec, acts, none,
                           none, tmp, rows, 0, none, none, 0.0)
        print(json.dumps([len(dense.forward.signatures), len(dense.backward.signatures),
                          len(dense.dense_loops.signatures)]))
    """)
    assert run(code, env={"NUMBA_CACHE_DIR": str(tmp_path)}) == [1, 1, 1]
