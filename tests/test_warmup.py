"""``fastbp.warmup`` fills the kernel cache so that a fresh process fits with no compilation.

Both processes point NUMBA_CACHE_DIR at one new empty directory, so the first really
compiles (this test takes as long as a cold start) and the second can only load what the
first stored.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fastbp import _config

WARMUP = "import fastbp; r = fastbp.warmup(dtypes=['float32'], optimizers=['sgd', 'adam'], " \
         "recurrent=False, sparse=False)\n" \
         "assert r['cached'] and r['compiled'] > 0, r"

FIT = textwrap.dedent("""
    import json
    import numpy as np
    import fastbp
    from fastbp import Dense, kernels
    from fastbp._warmup import kernel_statistics
    rng = np.random.default_rng(1)
    X = rng.random((200, 16)).astype(np.float32)
    y = rng.integers(0, 4, 200)
    net = fastbp.Network([16, 8, 4], hidden_activation="relu", dtype=np.float32, seed=3)
    net.fit(X, y, epochs=2, batch_size=1, optimizer="sgd", learning_rate=0.01, seed=0)
    net.fit(X, y, epochs=2, batch_size=32, optimizer="adam", validation_fraction=0.2,
            early_stopping=True, seed=0)
    net.predict(X); net.predict_proba(X[:1]); net.evaluate(X, y); net.gradient(X, y)
    bn = fastbp.Network([16, Dense(8, normalization="batch"), 4], dtype=np.float32, seed=0)
    bn.fit(X, y, epochs=1, batch_size=16, optimizer="adam", seed=0)
    bn.predict(X)
    after_fit = kernel_statistics()
    # a kernel warmup does not cover (the public kernels for the user's own code): proves that
    # the statistics see a compilation
    params, buffers, spec, loss = kernels.network_arrays(net)
    kernels.predict_proba(X, params, buffers, spec)
    print(json.dumps({"after_fit": after_fit, "after_public": kernel_statistics()}))
""")


@pytest.mark.skipif(not _config.JIT["cache"], reason="Numba has no writable cache directory")
def test_a_fresh_process_fits_with_no_compilation_after_warmup(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    subprocess.run([sys.executable, "-c", WARMUP], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", FIT], env=env, check=True,
                         capture_output=True, text=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    after_fit = stats["after_fit"]
    compiled = {k: v for k, v in after_fit.items() if v[1] > 0}
    assert not compiled, f"compiled in the fresh process despite warmup: {compiled}"
    for kernel in ("train_epoch", "predict_into", "predict_into_buffered", "evaluate",
                   "gradient_sums"):
        assert after_fit[f"fastbp.kernels.epoch.{kernel}"][0] >= 1, after_fit
    later = stats["after_public"]
    assert any(v[1] > 0 for v in later.values()), later


COVERAGE = textwrap.dedent("""
    import json
    import numpy as np
    import scipy.sparse
    import fastbp
    from fastbp._warmup import _dispatchers
    fastbp.warmup(dtypes=["float32"], optimizers=["adam"])
    before = {k: len(d.signatures) for k, d in _dispatchers().items()}
    rng = np.random.default_rng(1)
    X = rng.random((64, 16)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    sp = fastbp.Network([16, 8, 4], dtype=np.float32, seed=0)
    sp.fit(scipy.sparse.csr_matrix(X), y, epochs=1, batch_size=16, optimizer="adam", seed=0)
    sp.predict(scipy.sparse.csr_matrix(X))
    S = rng.random((40, 5, 2)).astype(np.float32)
    lengths = rng.integers(1, 6, 40)
    rnn = fastbp.Network([2, fastbp.LSTM(6, bidirectional=True), 4], dtype=np.float32, seed=0)
    rnn.fit(S, y[:40], epochs=1, batch_size=8, optimizer="adam", lengths=lengths, seed=0)
    rnn.predict(S, lengths=lengths); rnn.predict_proba(S[:1]); rnn.gradient(S, y[:40])
    seq = fastbp.Network([2, fastbp.GRU(5, return_sequences=True), 3], dtype=np.float32, seed=0)
    seq.fit(S, rng.integers(0, 3, (40, 5)), epochs=1, batch_size=8, lengths=lengths, seed=0)
    after = {k: len(d.signatures) for k, d in _dispatchers().items()}
    print(json.dumps({k: (before[k], after[k]) for k in after if after[k] != before[k]}))
""")


def test_warmup_covers_the_recurrent_and_sparse_kernels_a_fit_uses():
    # no new specialization (compiled or loaded) after warmup: the recurrent and sparse fits
    # of the user run on exactly the signatures warmup prepared (a cheap check with a warm
    # cache; the cold-cache, two-process check above covers the dense path)
    out = subprocess.run([sys.executable, "-c", COVERAGE], check=True, capture_output=True,
                         text=True)
    grown = json.loads(out.stdout.strip().splitlines()[-1])
    assert grown == {}, f"specializations that warmup did not prepare: {grown}"


def test_warmup_names_bad_choices():
    import fastbp
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        fastbp.warmup(dtypes=["float32"], optimizers=["adma"])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fastbp.warmup(dtypes=["int8"])


def test_the_command_line_rejects_unknown_names():
    out = subprocess.run([sys.executable, "-m", "fastbp", "warmup", "--optimizers", "sgd,adma"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown optimizer 'adma'" in out.stderr


def test_warmup_command_with_defaults_covers_every_optimizer_and_dtype():
    # the defaults (every registered optimizer, both dtypes) must run through: e.g. dropout
    # is refused by the full-batch optimizers, so warmup must not ask for it there
    out = subprocess.run([sys.executable, "-m", "fastbp", "warmup", "--quiet"],
                         capture_output=True, text=True)
    assert out.returncode == (0 if _config.JIT["cache"] else 1), out.stderr
    from fastbp.registry import OPTIMIZERS
    import fastbp.optimizers  # noqa: F401  (registers them)
    for name in OPTIMIZERS.names():
        assert name in out.stdout, out.stdout
    assert "float32, float64" in out.stdout, out.stdout
