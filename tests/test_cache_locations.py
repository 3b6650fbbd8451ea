"""The kernel cache on a copy of the package, in each place Numba may keep it, and nowhere.

Each test copies ``fastbp/`` to a temporary directory and runs fresh processes on the copy
(``PYTHONPATH``), with the cache in a temporary place, so editing a kernel is safe.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

import fastbp

LAYERS = {  # a kernel subpackage, beside the real ones
    "__init__.py": "",
    "consts.py": "FACTOR = 2.0\n",
    "dense.py": textwrap.dedent("""
        from numba import njit

        from ..._config import JIT
        from ..activations import value
        from .consts import FACTOR


        @njit(**JIT)
        def dense(z, code):
            return FACTOR * value(z, code)
    """),
}

#: a cached kernel in kernels/ itself, beside the real ones, that calls activations.activate
VALUE = textwrap.dedent("""
    import numpy as np
    from numba import njit

    from .._config import JIT
    from .activations import activate


    @njit(**JIT)
    def value(z, code):
        buf = np.empty(1)
        buf[0] = z
        activate(buf, 0, 1, 1, code)
        return buf[0]
""")

PROBE = textwrap.dedent("""
    import json
    import fastbp
    from fastbp.kernels import codes, probe_value
    from fastbp.kernels.probe import dense

    kernels = {"value": probe_value.value, "dense": dense.dense}
    values = {"value": probe_value.value(-1.0, codes.LEAKY_RELU),
              "dense": dense.dense(-1.0, codes.LEAKY_RELU)}
    print(json.dumps({
        "file": fastbp.__file__,
        "values": values,
        "hits": {n: sum(k.stats.cache_hits.values()) for n, k in kernels.items()},
        "misses": {n: sum(k.stats.cache_misses.values()) for n, k in kernels.items()},
    }))
""")


def copy_package(tmp_path):
    """``fastbp/`` (without caches) plus a ``kernels/probe`` subpackage and a
    ``kernels/probe_value`` module under tmp/site."""
    site = tmp_path / "site"
    shutil.copytree(pathlib.Path(fastbp.__file__).parent, site / "fastbp",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    layers = site / "fastbp" / "kernels" / "probe"
    layers.mkdir()
    for name, text in LAYERS.items():
        (layers / name).write_text(text)
    (layers.parent / "probe_value.py").write_text(VALUE)
    return site


def environment(site, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "XDG_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run(site, env, script=PROBE, prefix=()):
    out = subprocess.run([*prefix, sys.executable, "-c", script], env=env, cwd=site,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["file"] == str(site / "fastbp" / "__init__.py")  # the copy, not this tree
    return result


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def block_in_tree_caches(site):
    """Make every kernel directory's ``__pycache__`` a file: Numba cannot cache in-tree."""
    for d in {p.parent for p in (site / "fastbp" / "kernels").rglob("*.py")}:
        (d / "__pycache__").write_text("not a directory")


@pytest.mark.parametrize("where", ["in-tree", "NUMBA_CACHE_DIR", "user-wide"])
def test_edited_kernel_sources_are_never_served_from_the_cache(tmp_path, where):
    site = copy_package(tmp_path)
    kernels = site / "fastbp" / "kernels"
    extra = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    if where == "NUMBA_CACHE_DIR":
        extra["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
        expected = tmp_path / "numba-cache"
    elif where == "user-wide":
        block_in_tree_caches(site)
        expected = tmp_path / "xdg" / "numba"
    else:
        expected = kernels
    env = environment(site, **extra)

    first = run(site, env)
    assert first["values"] == {"value": -0.01, "dense": -0.02}
    assert all(n >= 1 for n in first["misses"].values())
    stored = sorted(expected.rglob("*.nbi"))
    assert {p.name.split(".")[1].split("-")[0] for p in stored} >= {"value", "dense"}

    again = run(site, env)  # unchanged sources: loaded, not compiled
    assert again["values"] == first["values"]
    assert again["misses"] == {"value": 0, "dense": 0}, again
    assert all(n >= 1 for n in again["hits"].values()), again

    # a constant in a module the cached kernels only call: Numba alone would not notice
    edit(kernels.parent / "registry.py", "LEAKY_SLOPE = 0.01", "LEAKY_SLOPE = 0.25")
    assert run(site, env)["values"] == {"value": -0.25, "dense": -0.5}
    # the same in a subpackage module, for a kernel cached in that subpackage's directory
    edit(kernels / "probe" / "consts.py", "FACTOR = 2.0", "FACTOR = 3.0")
    assert run(site, env)["values"] == {"value": -0.25, "dense": -0.75}
    # the digest is kept with each cache directory: one per kernel source directory
    # (kernels/, kernels/layers/, kernels/probe/)
    assert len(list(expected.rglob("fastbp-kernels.sha256"))) == len(
        {p.parent for p in kernels.rglob("*.py")})


def test_processes_starting_together_after_an_edit_all_get_the_new_code(tmp_path):
    """MPI ranks or joblib workers start at once and find a stale cache together."""
    site = copy_package(tmp_path)
    env = environment(site, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
                      XDG_CACHE_HOME=str(tmp_path / "xdg"))
    run(site, env)
    edit(site / "fastbp" / "registry.py", "LEAKY_SLOPE = 0.01", "LEAKY_SLOPE = 0.25")
    procs = [subprocess.Popen([sys.executable, "-c", PROBE], env=env, cwd=site,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        values = json.loads(out.strip().splitlines()[-1])["values"]
        assert values == {"value": -0.25, "dense": -0.5}
    assert run(site, env)["values"] == {"value": -0.25, "dense": -0.5}


# -- no writable cache anywhere ------------------------------------------------------------

def _read_only_mount_works(path):
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    check = 'mount --bind -o ro "$0" "$0" && ! touch "$0/.probe" 2>/dev/null'
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", check, str(path)],
                               capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def read_only_install(tmp_path):
    """(site, env, command prefix) for a package and every cache location Numba could use
    that cannot be written: a read-only bind mount in a private mount namespace when the
    system allows it (as root, permission bits would not stop writes), else regular files
    where the cache directories would have to be created."""
    root = tmp_path / "root"
    root.mkdir()
    site = copy_package(root)
    if _read_only_mount_works(root):
        env = environment(site, NUMBA_CACHE_DIR=str(root / "numba-cache"),
                          XDG_CACHE_HOME=str(root / "xdg"))
        return site, env, ("unshare", "-m", "sh", "-c",
                           'mount --bind -o ro "$0" "$0" && exec "$@"', str(root))
    block_in_tree_caches(site)
    blocker = root / "blocker"
    blocker.write_text("a file, so no directory can be made under it")
    env = environment(site, NUMBA_CACHE_DIR=str(blocker / "numba-cache"),
                      XDG_CACHE_HOME=str(blocker / "xdg"))
    return site, env, ()


FIT = textwrap.dedent("""
    import json
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numpy as np
        import fastbp
        from fastbp import _cache, _config

        rng = np.random.default_rng(0)
        X = rng.random((40, 4))
        y = (X[:, 0] > X[:, 1]).astype(int)
        net = fastbp.Network([4, 3, 2], hidden_activation="tanh", output="softmax", seed=0)
        net.fit(X, y, epochs=2, batch_size=8, learning_rate=0.1, seed=0)
        proba = net.predict_proba(X)
        _cache.kernel_cache_setting()  # asked again: still one warning in this process
    print(json.dumps({
        "file": fastbp.__file__,
        "cache": _config.JIT["cache"],
        "finite": bool(np.isfinite(proba).all()),
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    }))
""")


def test_a_read_only_install_without_a_writable_cache_still_fits(tmp_path):
    site, env, prefix = read_only_install(tmp_path)
    result = run(site, env, FIT, prefix)
    assert result["cache"] is False
    assert result["finite"]
    assert len(result["warnings"]) == 1, result["warnings"]
    category, message = result["warnings"][0]
    assert category == "KernelCacheWarning"
    assert "NUMBA_CACHE_DIR" in message
    assert list(site.rglob("*.nbi")) == []

    cli = subprocess.run([*prefix, sys.executable, "-m", "fastbp", "--help"], env=env,
                         cwd=site, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.count("KernelCacheWarning") == 1, cli.stderr
