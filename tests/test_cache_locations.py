"""The kernel cache on a copy of the package, where Numba can keep it nowhere.

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

import fastbp

LAYERS = {  # a kernel subpackage, as other developers add them
    "__init__.py": "",
    "consts.py": "FACTOR = 2.0\n",
    "dense.py": textwrap.dedent("""
        from numba import njit

        from ..._config import JIT
        from ..activations import activation_value
        from .consts import FACTOR


        @njit(**JIT)
        def dense(z, code):
            return FACTOR * activation_value(z, code)
    """),
}

PROBE = textwrap.dedent("""
    import json
    import fastbp
    from fastbp.kernels import activations, codes
    from fastbp.kernels.layers import dense

    kernels = {"activation_value": activations.activation_value, "dense": dense.dense}
    values = {name: k(-1.0, codes.LEAKY_RELU) for name, k in kernels.items()}
    print(json.dumps({
        "file": fastbp.__file__,
        "values": values,
        "hits": {n: sum(k.stats.cache_hits.values()) for n, k in kernels.items()},
        "misses": {n: sum(k.stats.cache_misses.values()) for n, k in kernels.items()},
    }))
""")


def copy_package(tmp_path):
    """``fastbp/`` (without caches) plus a ``kernels/layers`` subpackage under tmp/site."""
    site = tmp_path / "site"
    shutil.copytree(pathlib.Path(fastbp.__file__).parent, site / "fastbp",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    layers = site / "fastbp" / "kernels" / "layers"
    layers.mkdir()
    for name, text in LAYERS.items():
        (layers / name).write_text(text)
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


def block_in_tree_caches(site):
    """Make every kernel directory's ``__pycache__`` a file: Numba cannot cache in-tree."""
    for d in {p.parent for p in (site / "fastbp" / "kernels").rglob("*.py")}:
        (d / "__pycache__").write_text("not a directory")


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
