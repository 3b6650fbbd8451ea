"""Recurrent workloads R1-R3 of issue 10: fastbp against PyTorch eager and a JAX whole-epoch
``lax.scan``, from the same initial weights on the same data, in one process.

    python benchmarks/peers/compare.py --recurrent [R1,R2,R3] [--peers torch,jax_scan]
                                       [--rounds 3] [--epochs N] [--no-latency] [--json F]

Workloads (float32, many-to-one: the last step's hidden state feeds a dense softmax layer of
10 classes, mean cross-entropy over each mini-batch; every sequence has all its steps):

* R1: GRU 8 -> 64, 50 steps, batch 32, Adam(1e-3), 2048 sequences;
* R2: Elman RNN (tanh) 8 -> 32, 20 steps, batch 1 (online), plain SGD(0.01), 1024 sequences;
* R3: LSTM 16 -> 128, 100 steps, batch 64, Adam(1e-3), 1024 sequences.

Implementations:

* ``fastbp``: ``Network([n_in, GRU/RNN/LSTM(units), 10], output="softmax")``, ``fit`` (one
  compiled call per epoch); needs fastbp's recurrent layers (``fastbp.GRU`` ...), skipped
  with the reason otherwise;
* ``torch``: ``nn.GRU`` / ``nn.RNN`` / ``nn.LSTM`` (batch_first) + ``nn.Linear``,
  ``F.cross_entropy``, ``torch.optim``, a Python loop over mini-batches (eager mode;
  ``nn.LSTM`` runs oneDNN's fused kernel on a CPU); one thread for R1 and R2, whose
  per-step products are far too small to share (with 2 threads on a busy 2-core machine,
  R1 ran 60x slower: every step's ops wait for a thread that has no core), 2 for R3;
* ``jax_scan``: the same cells written out in ``jax.numpy`` (torch's equations and gate
  order), the time steps in an inner ``lax.scan`` and the mini-batches of the whole epoch in
  an outer ``lax.scan``, one jitted call per epoch, Adam or SGD by hand.

Each implementation runs a warm-up on a copy of the weights first (compilation excluded),
then ``epochs`` timed epochs; ``rounds`` rounds interleave the implementations.  Reported:
the median epoch's sequences per second, fastbp / peer, and the final loss (mean
cross-entropy over all sequences of the final weights, from one shared NumPy forward pass in
float64: equal losses mean the same math was done).  Epoch orders are drawn from
``np.random.default_rng(0)``, the same for all three (fastbp gets each epoch's data gathered
in that order, ``shuffle=False``, gather timed).  jax drops the last partial batch (none here: the
sample counts are multiples of the batch sizes).  Also: the latency of predicting one R1
sequence (1, 50, 8) with each.

This module imports with NumPy and fastbp only (asv imports every module under
``benchmarks/``); torch and jax are imported inside the functions that use them.
"""
from __future__ import annotations

import functools
import statistics
import time

import numpy as np

PEERS = ("torch", "jax_scan")
#: "fastbp_mkl": fastbp with MKL's gemm (``fastbp.set_blas("mkl")``), run where PyPI's
#: ``mkl`` is installed, on the workloads whose products go to BLAS (not R2's batch of one)
IMPLEMENTATIONS = ("fastbp", "fastbp_mkl") + PEERS

WORKLOADS = {
    "R1": dict(name="R1", cell="gru", activation="tanh", n_in=8, units=64, steps=50, n_out=10,
               optimizer="adam", learning_rate=1e-3, batch_size=32, samples=2048, epochs=2,
               torch_threads=1),
    "R2": dict(name="R2", cell="rnn", activation="tanh", n_in=8, units=32, steps=20, n_out=10,
               optimizer="sgd", learning_rate=0.01, batch_size=1, samples=1024, epochs=2,
               torch_threads=1),
    "R3": dict(name="R3", cell="lstm", activation="tanh", n_in=16, units=128, steps=100,
               n_out=10, optimizer="adam", learning_rate=1e-3, batch_size=64, samples=1024,
               epochs=2, torch_threads=2),
}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_SEED = 0
PAUSE = 1.0


def describe(wl):
    cell = {"gru": "GRU", "lstm": "LSTM", "rnn": f"RNN({wl['activation']})"}[wl["cell"]]
    return (f"{cell} {wl['n_in']} -> {wl['units']}, {wl['steps']} steps, dense softmax "
            f"{wl['n_out']}, {wl['optimizer']}({wl['learning_rate']:g}), batch "
            f"{wl['batch_size']}, {wl['samples']} sequences")


@functools.lru_cache(maxsize=None)
def workload_data(name, seed=0):
    """(X (n, steps, n_in), Y one-hot (n, 10)), float32: Gaussian sequences labelled by a
    random linear teacher of the mean of their last 10 steps (learnable, not trivial)."""
    wl = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(wl["samples"], wl["steps"], wl["n_in"])).astype(np.float32)
    teacher = rng.normal(size=(wl["n_in"], wl["n_out"]))
    y = (X[:, -10:].mean(axis=1) @ teacher
         + rng.normal(scale=0.5, size=(wl["samples"], wl["n_out"]))).argmax(axis=1)
    return X, np.eye(wl["n_out"], dtype=np.float32)[y]


@functools.lru_cache(maxsize=None)
def workload_init(name, seed=42):
    """Initial weights every implementation starts from, torch-named and torch-shaped:
    recurrent tensors uniform(+-1/sqrt(units)) (torch's rule), the dense layer ``weight``
    (n_out, units) Glorot-uniform and ``bias`` zero.  Read-only float32 arrays."""
    wl = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    G, H = GATES[wl["cell"]] * wl["units"], wl["units"]
    k = 1.0 / np.sqrt(H)
    shapes = {"weight_ih": (G, wl["n_in"]), "weight_hh": (G, H), "bias_ih": (G,),
              "bias_hh": (G,)}
    init = {n: rng.uniform(-k, k, s).astype(np.float32) for n, s in shapes.items()}
    g = np.sqrt(6.0 / (H + wl["n_out"]))
    init["weight"] = rng.uniform(-g, g, (wl["n_out"], H)).astype(np.float32)
    init["bias"] = np.zeros(wl["n_out"], np.float32)
    for v in init.values():
        v.flags.writeable = False
    return init


def _copy(init):
    return {k: np.array(v, dtype=np.float32, copy=True) for k, v in init.items()}


def _epoch_orders(n, epochs):
    rng = np.random.default_rng(_SEED)
    return [rng.permutation(n) for _ in range(epochs)]


# --- the shared NumPy forward pass (final losses) ---------------------------------------
def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def numpy_logits(wl, p, X):
    """Logits of the many-to-one network with weights ``p`` (torch-named), float64."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    X = np.asarray(X, dtype=np.float64)
    n, H = X.shape[0], wl["units"]
    h = np.zeros((n, H))
    c = np.zeros((n, H))
    gi_all = X @ p["weight_ih"].T + p["bias_ih"]
    for t in range(X.shape[1]):
        gi = gi_all[:, t]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        if wl["cell"] == "rnn":
            a = gi + gh
            h = np.tanh(a) if wl["activation"] == "tanh" else np.maximum(a, 0.0)
        elif wl["cell"] == "gru":
            r = _sig(gi[:, :H] + gh[:, :H])
            z = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            nn_ = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1.0 - z) * nn_ + z * h
        else:
            a = gi + gh
            i, f = _sig(a[:, :H]), _sig(a[:, H:2 * H])
            g, o = np.tanh(a[:, 2 * H:3 * H]), _sig(a[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
    return h @ p["weight"].T + p["bias"]


def cross_entropy(wl, p, X, Y, chunk=512):
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        z = numpy_logits(wl, p, X[s:s + chunk])
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= float((Y[s:s + chunk] * logp).sum())
    return total / X.shape[0]


def _result(wl, seconds, samples, params, X, Y, note):
    return {"seconds": [float(s) for s in seconds], "samples_per_epoch": int(samples),
            "final_loss": cross_entropy(wl, params, X, Y), "note": note}


# --- availability -------------------------------------------------------------------------
def available(impl):
    """(ok, reason): whether ``impl`` can run here."""
    if impl == "fastbp":
        import fastbp
        missing = [c for c in ("RNN", "GRU", "LSTM") if not hasattr(fastbp, c)]
        if missing:
            return False, (f"this fastbp ({fastbp.__version__}) has no recurrent layers "
                           f"(fastbp.{', fastbp.'.join(missing)})")
        return True, ""
    if impl == "fastbp_mkl":
        ok, reason = available("fastbp")
        if not ok:
            return ok, reason
        try:
            from fastbp._blas import mkl_installed
        except ImportError:
            return False, "this fastbp has no BLAS choice (fastbp.set_blas)"
        if not mkl_installed():
            return False, "MKL is not installed (pip install 'fastbp[mkl]')"
        return True, ""
    module = {"torch": "torch", "jax_scan": "jax"}.get(impl)
    if module is None:
        return False, f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATIONS)}"
    try:
        __import__(module)
    except Exception as exc:  # ImportError, or a broken install
        return False, f"cannot import {module}: {type(exc).__name__}: {exc}"
    return True, ""


def run(impl, name, epochs):
    """Train ``epochs`` timed epochs of workload ``name`` with ``impl``."""
    wl = WORKLOADS[name]
    X, Y = workload_data(name)
    init = _copy(workload_init(name))
    return {"fastbp": _run_fastbp, "fastbp_mkl": _run_fastbp_mkl, "torch": _run_torch,
            "jax_scan": _run_jax_scan}[impl](wl, X, Y, init, int(epochs))


# --- fastbp -------------------------------------------------------------------------------
def fastbp_network(wl, init, dtype=np.float32):
    """A fastbp network of the workload holding the weights ``init``."""
    import fastbp
    cls = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[wl["cell"]]
    kw = {"activation": wl["activation"]} if wl["cell"] == "rnn" else {}
    net = fastbp.Network([wl["n_in"], getattr(fastbp, cls)(wl["units"], **kw), wl["n_out"]],
                         output="softmax", dtype=dtype, seed=0)
    rec, dense = net.layers
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(rec, k)[...] = init[k]
    dense.weight[...] = init["weight"]
    dense.bias[...] = init["bias"]
    return net


def fastbp_params(net):
    rec, dense = net.layers
    p = {k: np.array(getattr(rec, k)) for k in ("weight_ih", "weight_hh", "bias_ih",
                                                "bias_hh")}
    p.update(weight=np.array(dense.weight), bias=np.array(dense.bias))
    return p


def fit_options(wl):
    return dict(batch_size=wl["batch_size"], optimizer=wl["optimizer"],
                learning_rate=wl["learning_rate"])


def _run_fastbp(wl, X, Y, init, epochs):
    """One ``fit(epochs=1, shuffle=False)`` per epoch on the data gathered in the peers'
    order (``warm_start`` keeps Adam's moments and step count), timed with the gather, so
    fastbp does the same updates as torch and jax and lands on the same final loss."""
    rows = 2 * wl["batch_size"] + 1  # full batches and a partial one: every kernel loaded
    fastbp_network(wl, init).fit(X[:rows], Y[:rows], epochs=1, seed=0, **fit_options(wl))
    net = fastbp_network(wl, init)
    seconds = []
    for i, perm in enumerate(_epoch_orders(X.shape[0], epochs)):
        t0 = time.perf_counter()
        net.fit(X[perm], Y[perm], epochs=1, shuffle=False, warm_start=i > 0, seed=0,
                **fit_options(wl))
        seconds.append(time.perf_counter() - t0)
    return _result(wl, seconds, X.shape[0], fastbp_params(net), X, Y,
                   "fastbp, float32, one fit call (one compiled call) per epoch in the "
                   "peers' order")


def _run_fastbp_mkl(wl, X, Y, init, epochs):
    from fastbp import set_blas
    before = set_blas("mkl")
    try:
        result = _run_fastbp(wl, X, Y, init, epochs)
    finally:
        set_blas(before)
    result["note"] += ", MKL's gemm"
    return result


# --- PyTorch eager ------------------------------------------------------------------------
def _torch_model(wl, init):
    import torch
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[wl["cell"]]
    kw = {"nonlinearity": wl["activation"]} if wl["cell"] == "rnn" else {}
    rnn = cls(wl["n_in"], wl["units"], batch_first=True, **kw)
    lin = torch.nn.Linear(wl["units"], wl["n_out"])
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn, k + "_l0").copy_(torch.from_numpy(init[k]))
        lin.weight.copy_(torch.from_numpy(init["weight"]))
        lin.bias.copy_(torch.from_numpy(init["bias"]))
    return rnn, lin


def _torch_params(rnn, lin):
    p = {k: getattr(rnn, k + "_l0").detach().numpy().copy()
         for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    p.update(weight=lin.weight.detach().numpy().copy(), bias=lin.bias.detach().numpy().copy())
    return p


def _run_torch(wl, X, Y, init, epochs):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(wl["torch_threads"])
    n, bs = X.shape[0], wl["batch_size"]
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(Y.argmax(axis=1).astype(np.int64))

    def make(init):
        rnn, lin = _torch_model(wl, init)
        params = list(rnn.parameters()) + list(lin.parameters())
        if wl["optimizer"] == "adam":
            opt = torch.optim.Adam(params, lr=wl["learning_rate"], betas=(_BETA1, _BETA2),
                                   eps=_EPS)
        else:
            opt = torch.optim.SGD(params, lr=wl["learning_rate"])
        return rnn, lin, opt

    def train(rnn, lin, opt, xs, ys, rows):
        for s in range(0, rows, bs):
            opt.zero_grad()
            out, _ = rnn(xs[s:s + bs])
            loss = F.cross_entropy(lin(out[:, -1]), ys[s:s + bs])
            loss.backward()
            opt.step()

    train(*make(init), Xt, yt, min(n, 8 * bs))  # warm-up on a copy
    rnn, lin, opt = make(init)
    seconds = []
    for perm in _epoch_orders(n, epochs):
        t0 = time.perf_counter()
        idx = torch.from_numpy(perm)
        train(rnn, lin, opt, Xt[idx], yt[idx], n)
        seconds.append(time.perf_counter() - t0)
    return _result(wl, seconds, n, _torch_params(rnn, lin), X, Y,
                   f"torch {torch.__version__} eager, {torch.get_num_threads()} threads, "
                   f"nn.{type(rnn).__name__} + nn.Linear, F.cross_entropy")


# --- JAX: the whole epoch in lax.scan -----------------------------------------------------
def _jax_cell(wl):
    """step(p, carry, x_t) -> carry for the workload's cell, torch's equations."""
    import jax
    import jax.numpy as jnp

    H = wl["units"]
    sig = jax.nn.sigmoid
    act = jnp.tanh if wl["activation"] == "tanh" else jax.nn.relu

    if wl["cell"] == "rnn":
        def step(p, carry, gi):
            (h,) = carry
            return (act(gi + h @ p["weight_hh"].T + p["bias_hh"]),)
    elif wl["cell"] == "gru":
        def step(p, carry, gi):
            (h,) = carry
            gh = h @ p["weight_hh"].T + p["bias_hh"]
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = jnp.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            return ((1.0 - z) * n + z * h,)
    else:
        def step(p, carry, gi):
            h, c = carry
            a = gi + h @ p["weight_hh"].T + p["bias_hh"]
            i, f = sig(a[:, :H]), sig(a[:, H:2 * H])
            g, o = jnp.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
            c = f * c + i * g
            return (o * jnp.tanh(c), c)
    return step


def _jax_forward(wl):
    """logits(p, x (batch, steps, n_in)): input projection of all steps in one product,
    the recurrence in lax.scan over time."""
    import jax
    import jax.numpy as jnp

    step = _jax_cell(wl)
    n_state = 2 if wl["cell"] == "lstm" else 1

    def logits(p, x):
        gi = jnp.einsum("btf,gf->tbg", x, p["weight_ih"]) + p["bias_ih"]
        h0 = jnp.zeros((x.shape[0], wl["units"]), x.dtype)
        carry, _ = jax.lax.scan(lambda c, g: (step(p, c, g), None), (h0,) * n_state, gi)
        return carry[0] @ p["weight"].T + p["bias"]
    return logits


def _run_jax_scan(wl, X, Y, init, epochs):
    import warnings

    import jax
    import jax.numpy as jnp

    n, bs = X.shape[0], wl["batch_size"]
    nb = n // bs
    logits = _jax_forward(wl)
    lr = wl["learning_rate"]
    tmap = jax.tree_util.tree_map

    def loss(p, x, y):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits(p, x)), axis=1))

    if wl["optimizer"] == "adam":
        def update(p, opt, x, y):
            m, v, t = opt
            g = jax.grad(loss)(p, x, y)
            t = t + 1.0
            m = tmap(lambda a, d: _BETA1 * a + (1.0 - _BETA1) * d, m, g)
            v = tmap(lambda a, d: _BETA2 * a + (1.0 - _BETA2) * d * d, v, g)
            bc1, bc2 = 1.0 - _BETA1 ** t, 1.0 - _BETA2 ** t
            p = tmap(lambda q, a, s: q - lr * (a / bc1) / (jnp.sqrt(s / bc2) + _EPS), p, m, v)
            return p, (m, v, t)

        def init_opt(p):
            return (tmap(jnp.zeros_like, p), tmap(jnp.zeros_like, p),
                    jnp.zeros((), jnp.float32))
    else:
        def update(p, opt, x, y):
            g = jax.grad(loss)(p, x, y)
            return tmap(lambda q, d: q - lr * d, p, g), opt

        def init_opt(p):
            return ()

    def epoch(p, opt, Xall, Yall, perm):
        idx = perm[:nb * bs]
        xs = jnp.take(Xall, idx, axis=0).reshape(nb, bs, *Xall.shape[1:])
        ys = jnp.take(Yall, idx, axis=0).reshape(nb, bs, -1)
        (p, opt), _ = jax.lax.scan(lambda c, b: (update(c[0], c[1], *b), None), (p, opt),
                                   (xs, ys))
        return p, opt

    run_epoch = jax.jit(epoch, donate_argnums=(0, 1))
    Xd, Yd = jax.device_put(X), jax.device_put(Y)

    def params():
        return {k: jnp.array(v) for k, v in init.items()}

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*donated buffers.*")
        wp = params()
        wp, wo = run_epoch(wp, init_opt(wp), Xd, Yd, np.arange(n, dtype=np.int32))
        jax.block_until_ready(wp)
        del wp, wo
        p = params()
        opt = init_opt(p)
        seconds = []
        for perm in _epoch_orders(n, epochs):
            t0 = time.perf_counter()
            p, opt = run_epoch(p, opt, Xd, Yd, perm.astype(np.int32))
            jax.block_until_ready(p)
            seconds.append(time.perf_counter() - t0)
    final = {k: np.asarray(v) for k, v in p.items()}
    return _result(wl, seconds, nb * bs, final, X, Y,
                   f"jax {jax.__version__} ({jax.default_backend()}), one jit(lax.scan over "
                   f"batches of lax.scan over steps) per epoch, shuffled inside by a host "
                   f"permutation (timed); {n - nb * bs} sequences dropped per epoch")


# --- one-sequence prediction latency (R1) -----------------------------------------------
def latency_calls(impls, name="R1"):
    """{impl: (predict one sequence of ``name``, calls per timing sample)}."""
    wl = WORKLOADS[name]
    init = _copy(workload_init(name))
    x = workload_data(name)[0][:1].copy()
    calls = {}
    if "fastbp" in impls and available("fastbp")[0]:
        net = fastbp_network(wl, init)
        calls["fastbp"] = (lambda: net.predict_proba(x), 500)
    if "torch" in impls and available("torch")[0]:
        import torch
        torch.set_num_threads(wl["torch_threads"])
        rnn, lin = _torch_model(wl, init)
        xt = torch.from_numpy(x)

        def torch_predict():
            with torch.inference_mode():
                out, _ = rnn(xt)
                return torch.softmax(lin(out[:, -1]), dim=1).numpy()
        calls["torch"] = (torch_predict, 200)
    if "jax_scan" in impls and available("jax_scan")[0]:
        import jax
        import jax.numpy as jnp
        logits = _jax_forward(wl)
        p = {k: jnp.asarray(v) for k, v in init.items()}
        forward = jax.jit(lambda p, x: jax.nn.softmax(logits(p, x), axis=1))
        calls["jax"] = (lambda: np.asarray(forward(p, x)), 200)
    return calls


def _per_call(fn, calls, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def prediction_latency(impls, name="R1", rounds=3):
    calls = latency_calls(impls, name)
    samples = {k: [] for k in calls}
    for _ in range(rounds):
        for k, (fn, n) in calls.items():
            samples[k].append(_per_call(fn, n))
    return {k: statistics.median(v) for k, v in samples.items()}


# --- the report ---------------------------------------------------------------------------
def main(names=("R1", "R2", "R3"), impls=IMPLEMENTATIONS, epochs=None, rounds=3,
         latency=True, out=print):
    """Print the comparison; return it as a dict."""
    import os
    import platform
    out(f"recurrent workloads on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, numpy {np.__version__}")
    report = {"workloads": {}}
    skipped = {}
    for impl in impls:
        ok, reason = available(impl)
        if not ok:
            skipped[impl] = reason
            out(f"  {impl:10s} skipped: {reason}")
    active = [i for i in impls if i not in skipped]
    for name in names:
        wl = WORKLOADS[name]
        todo = [i for i in active if not (i == "fastbp_mkl" and wl["batch_size"] == 1)]
        n_epochs = epochs or wl["epochs"]
        out(f"\n{name}: {describe(wl)}; median of {rounds} rounds x {n_epochs} epochs")
        results = {}
        failed = set()
        for _ in range(rounds):
            for impl in todo:
                if impl in failed:
                    continue
                time.sleep(PAUSE)
                try:
                    r = run(impl, name, n_epochs)
                except Exception as e:  # a broken install must not end the comparison
                    out(f"  {impl:10s} failed: {type(e).__name__}: {e}")
                    failed.add(impl)
                    continue
                if impl in results:
                    results[impl]["seconds"] += r["seconds"]
                    results[impl]["final_loss"] = r["final_loss"]
                else:
                    results[impl] = r
        base = None
        if "fastbp" in results:
            base = results["fastbp"]["samples_per_epoch"] / statistics.median(
                results["fastbp"]["seconds"])
        out(f"  {'implementation':12s} {'sequences/s':>12s} {'fastbp/this':>12s} "
            f"{'final loss':>11s}")
        rows = {}
        for impl, r in results.items():
            rate = r["samples_per_epoch"] / statistics.median(r["seconds"])
            ratio = base / rate if base else float("nan")
            rows[impl] = {"sequences_per_s": rate, "ratio": ratio,
                          "final_loss": r["final_loss"], "note": r["note"]}
            out(f"  {impl:12s} {rate:12,.0f} {ratio:12.2f} {r['final_loss']:11.5f}   "
                f"({r['note']})")
        report["workloads"][name] = rows
    if latency:
        lat = prediction_latency([i for i in active if i != "fastbp_mkl"])
        out("\nPredicting one R1 sequence (1, 50, 8), median per call:")
        for impl, s in lat.items():
            extra = (f"   fastbp is {s / lat['fastbp']:.1f}x faster"
                     if "fastbp" in lat and impl != "fastbp" else "")
            out(f"  {impl:12s} {s * 1e6:9.1f} us{extra}")
        report["latency_s"] = lat
    report["skipped"] = skipped
    return report
