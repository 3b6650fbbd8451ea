"""Peer implementations for the peer comparison (``python benchmarks/peers/compare.py``).

Every peer trains the same multilayer perceptron from the same initial weights
on the same data and reports per-epoch wall time.  This folder is not part of the
installed package: it runs from a checkout, next to an installed fastbp.  The module
imports with NumPy and fastbp only; torch, jax and scikit-learn are imported lazily
inside the functions that use them, and the FANN peer compiles ``fann_peer.c`` (next to
this file) with gcc into a temporary directory on first use.

Workloads: ``fastbp.bench.WORKLOADS`` (float32, mean softmax cross-entropy over each
mini-batch):

* W1 "online":    64-32-10,         tanh, plain SGD, batch 1
* W2 "minibatch": 784-256-128-10,   relu, Adam(0.9, 0.999, 1e-8), batch 64
* W3 "wide":      784-2048-2048-10, relu, plain SGD, batch 512

Interface (what ``fastbp.bench.run`` calls when given this module as ``peers``)::

    available(peer, workload) -> (ok, reason)
    run(peer, workload, X, Y, init, epochs) -> {"seconds", "samples_per_epoch",
                                                "final_loss", "note"}
    latency_calls(x, init, peers) -> {name: (predict one row, calls per sample)}
    startup_imports(peers) -> {label: code whose start-up is timed beside fastbp's}

``available`` also accepts just the workload name ("W1"/"W2"/"W3").
Each timed epoch includes that epoch's shuffle: numpy, torch and jax gather
the data by a permutation drawn from ``np.random.default_rng(0)`` (the same
orders for all of them); sklearn and FANN shuffle internally, inside the timed
call.  Compilation and warm-up (always on a copy of the weights) are untimed.
``final_loss`` is the mean cross-entropy over all of X, Y computed by one
shared NumPy forward pass (float64 log-softmax, ``fastbp.bench.cross_entropy``,
the same as for fastbp's rows) on the peer's final weights.
"""
from __future__ import annotations

import atexit
import math
import os
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np

from fastbp.bench import cross_entropy

PEERS = ("numpy", "sklearn", "torch", "jax_step", "jax_scan", "fann")

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_SEED = 0  # seed of the numpy Generator that draws the epoch orders


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------
def _copy_init(init):
    """Private float32 C-contiguous copies of the caller's (W, b) pairs."""
    return [(np.array(W, dtype=np.float32, order="C", copy=True),
             np.array(b, dtype=np.float32, order="C", copy=True)) for W, b in init]


def _epoch_orders(n, epochs):
    """The shuffled sample order of every epoch (shared by numpy/torch/jax)."""
    rng = np.random.default_rng(_SEED)
    return [rng.permutation(n) for _ in range(epochs)]


def _resolve_workload(workload):
    return workload["name"] if isinstance(workload, dict) else str(workload)


# --------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------
def available(peer: str, workload) -> tuple[bool, str]:
    """Whether ``peer`` can run ``workload`` here; reason is "" when it can."""
    name = _resolve_workload(workload)
    if peer not in PEERS:
        return False, f"unknown peer {peer!r}; known: {', '.join(PEERS)}"
    if name not in ("W1", "W2", "W3"):
        return False, f"unknown workload {name!r}"
    if peer == "numpy":
        return True, ""
    if peer == "sklearn":
        if name == "W3":
            return False, ("sklearn MLPClassifier is skipped on W3 (784-2048-2048-10, "
                           "batch 512): too slow to be worth timing")
        return _importable("sklearn.neural_network")
    if peer == "torch":
        return _importable("torch")
    if peer in ("jax_step", "jax_scan"):
        return _importable("jax")
    # fann: only the W1 shape of problem (tanh, plain SGD, batch 1) maps onto it
    if isinstance(workload, dict):
        w1_like = (workload.get("hidden"), workload.get("optimizer"),
                   workload.get("batch_size")) == ("tanh", "sgd", 1)
    else:
        w1_like = name == "W1"
    if not w1_like:
        return False, ("FANN 2.2 has no softmax/cross-entropy, no ReLU, no Adam and "
                       "no mini-batches (only per-sample or full-batch training), so "
                       "only W1 is approximated (tanh hidden, sigmoid output, MSE)")
    exe, reason = _fann_binary()
    return (exe is not None), reason


def _importable(module):
    try:
        __import__(module)
    except Exception as exc:  # ImportError, or a broken install
        return False, f"cannot import {module}: {type(exc).__name__}: {exc}"
    return True, ""


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------
def run(peer: str, workload: dict, X: np.ndarray, Y: np.ndarray,
        init: list, epochs: int) -> dict:
    """Train ``epochs`` epochs with ``peer``; see the module docstring."""
    ok, reason = available(peer, workload)
    if not ok:
        raise RuntimeError(f"peer {peer!r} cannot run {_resolve_workload(workload)}: {reason}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    Y = np.ascontiguousarray(Y, dtype=np.float32)
    sizes = list(workload["sizes"])
    if len(init) != len(sizes) - 1 or X.shape[1] != sizes[0] or Y.shape[1] != sizes[-1]:
        raise ValueError("X, Y or init do not match workload['sizes']")
    if X.shape[0] != Y.shape[0] or X.shape[0] < workload["batch_size"]:
        raise ValueError("X and Y need the same number (>= batch_size) of rows")
    runner = {"numpy": _run_numpy, "sklearn": _run_sklearn, "torch": _run_torch,
              "jax_step": _run_jax_step, "jax_scan": _run_jax_scan, "fann": _run_fann}[peer]
    return runner(workload, X, Y, _copy_init(init), int(epochs))


# --------------------------------------------------------------------------
# prediction latency and start-up, beside fastbp's
# --------------------------------------------------------------------------
def latency_calls(x, init, peers=PEERS):
    """Callables that predict the row ``x`` (1, 64) with the W1 network (64-32-10
    tanh/softmax, weights ``init``), with the number of calls per timing sample: a NumPy
    forward pass always; PyTorch and a jitted JAX function when among ``peers`` and
    installed."""
    W = [w for w, _ in init]
    b = [v for _, v in init]

    def numpy_forward():
        h = np.tanh(x @ W[0] + b[0])
        z = h @ W[1] + b[1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    calls = {"numpy": (numpy_forward, 2000)}
    if "torch" in peers and available("torch", "W1")[0]:
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                                    torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))
        xt = torch.from_numpy(x)

        def torch_forward():
            with torch.inference_mode():
                return model(xt).numpy()

        calls["torch"] = (torch_forward, 500)
    if any(p.startswith("jax") for p in peers) and available("jax_step", "W1")[0]:
        import jax
        import jax.numpy as jnp
        params = [(jnp.asarray(w), jnp.asarray(v)) for w, v in init]

        @jax.jit
        def jax_forward(params, x):
            h = jnp.tanh(x @ params[0][0] + params[0][1])
            return jax.nn.softmax(h @ params[1][0] + params[1][1], axis=1)

        calls["jax"] = (lambda: np.asarray(jax_forward(params, x)), 500)
    return calls


def startup_imports(peers=PEERS):
    """Code whose start-up time is reported beside fastbp's: importing PyTorch."""
    if "torch" in peers and available("torch", "W1")[0]:
        return {"torch_import": "import torch"}
    return {}


def _result(seconds, samples, final_loss, note):
    return {"seconds": [float(s) for s in seconds], "samples_per_epoch": int(samples),
            "final_loss": float(final_loss), "note": note}


# --------------------------------------------------------------------------
# numpy: the hand-written vectorised NumPy loop
# --------------------------------------------------------------------------
def _numpy_train_batch(params, opt, xb, yb, hidden, lr, adam):
    """One forward/backward/update on a mini-batch; updates params in place."""
    acts = [xb]
    h = xb
    for W, b in params[:-1]:
        h = h @ W + b
        h = np.tanh(h, out=h) if hidden == "tanh" else np.maximum(h, 0, out=h)
        acts.append(h)
    z = h @ params[-1][0] + params[-1][1]
    z -= z.max(axis=1, keepdims=True)                 # stable softmax
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - yb) / xb.shape[0]                    # d(mean CE)/d(logits)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((acts[l].T @ delta, delta.sum(axis=0)))
        if l > 0:                                     # back through W_l (old W)
            delta = delta @ params[l][0].T
            a = acts[l]
            delta *= (1.0 - a * a) if hidden == "tanh" else (a > 0)
    grads.reverse()
    if not adam:
        for (W, b), (gW, gb) in zip(params, grads):
            W -= lr * gW
            b -= lr * gb
        return
    opt["t"] += 1
    t = opt["t"]
    # p -= lr * m_hat / (sqrt(v_hat) + eps), rewritten as
    # p -= step * m / (sqrt(v) + eps_hat) to avoid temporaries for m_hat, v_hat
    step = float(lr) * math.sqrt(1.0 - _BETA2 ** t) / (1.0 - _BETA1 ** t)
    eps_hat = _EPS * math.sqrt(1.0 - _BETA2 ** t)
    for (W, b), (gW, gb), (mW, mb), (vW, vb) in zip(params, grads, opt["m"], opt["v"]):
        for prm, g, m, v in ((W, gW, mW, vW), (b, gb, mb, vb)):
            m *= _BETA1
            m += (1.0 - _BETA1) * g
            v *= _BETA2
            v += (1.0 - _BETA2) * (g * g)
            prm -= step * m / (np.sqrt(v) + eps_hat)


def _numpy_opt(params):
    return {"t": 0, "m": [(np.zeros_like(W), np.zeros_like(b)) for W, b in params],
            "v": [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]}


def _run_numpy(wl, X, Y, params, epochs):
    n, bs, lr = X.shape[0], wl["batch_size"], np.float32(wl["learning_rate"])
    adam = wl["optimizer"] == "adam"
    # warm-up on a copy (BLAS thread pool, page faults): a few batches
    wp = _copy_init(params)
    wo = _numpy_opt(wp)
    for s in range(0, min(n, 8 * bs), bs):
        _numpy_train_batch(wp, wo, X[s:s + bs], Y[s:s + bs], wl["hidden"], lr, adam)
    opt = _numpy_opt(params)
    seconds = []
    for perm in _epoch_orders(n, epochs):
        t0 = time.perf_counter()
        Xs, Ys = X[perm], Y[perm]
        for s in range(0, n, bs):                      # last partial batch kept
            _numpy_train_batch(params, opt, Xs[s:s + bs], Ys[s:s + bs],
                               wl["hidden"], lr, adam)
        seconds.append(time.perf_counter() - t0)
    return _result(seconds, n, cross_entropy(params, X, Y, wl["hidden"]),
                   "vectorised NumPy, float32; shuffled order from "
                   "default_rng(0); last partial batch kept")


# --------------------------------------------------------------------------
# sklearn: MLPClassifier.partial_fit, one call per epoch
# --------------------------------------------------------------------------
def _run_sklearn(wl, X, Y, params, epochs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    n, bs = X.shape[0], wl["batch_size"]
    labels = Y.argmax(axis=1)          # integer labels -> softmax output layer
    classes = np.arange(Y.shape[1])
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(wl["sizes"][1:-1]), activation=wl["hidden"],
        solver=wl["optimizer"], alpha=0.0, batch_size=bs,
        learning_rate="constant", learning_rate_init=wl["learning_rate"],
        momentum=0.0, nesterovs_momentum=False,
        beta_1=_BETA1, beta_2=_BETA2, epsilon=_EPS,
        shuffle=True, tol=0.0, n_iter_no_change=10**9, max_iter=1,
        # partial_fit always continues from the current weights; warm_start only
        # matters for fit() and, if True, makes partial_fit demand every class
        # in each call (the warm-up slice may lack some).
        warm_start=False,
        random_state=np.random.RandomState(_SEED))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # warm-up: first partial_fit builds the model; then overwrite weights
        # with init and drop the optimizer so timed training starts fresh.
        m = min(n, 4 * bs)
        clf.partial_fit(X[:m], labels[:m], classes=classes)
        clf.coefs_ = [W for W, _ in params]
        clf.intercepts_ = [b for _, b in params]
        del clf._optimizer
        # A RandomState *instance* so each partial_fit draws a new order
        # (an int seed would replay the same permutation every epoch).
        clf.random_state = np.random.RandomState(_SEED)
        seconds = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            clf.partial_fit(X, labels)
            seconds.append(time.perf_counter() - t0)
    final = [(np.asarray(W, np.float32), np.asarray(b, np.float32))
             for W, b in zip(clf.coefs_, clf.intercepts_)]
    dtype = clf.coefs_[0].dtype
    return _result(seconds, n, cross_entropy(final, X, Y, wl["hidden"]),
                   f"MLPClassifier.partial_fit once per epoch (max_iter=1, "
                   f"warm_start=False; sklearn's own shuffle, RandomState(0)); alpha=0; "
                   f"weights {dtype}; integer labels; last partial batch kept; timing "
                   f"includes sklearn's per-batch loss and input validation"
                   + ("; sklearn's Adam adds eps to sqrt(v) before bias correction "
                      "(larger effective eps early on than torch/numpy/jax)"
                      if wl["optimizer"] == "adam" else ""))


# --------------------------------------------------------------------------
# torch: nn.Sequential + torch.optim, Python loop over mini-batches
# --------------------------------------------------------------------------
def _run_torch(wl, X, Y, params, epochs):
    import copy

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    n, bs = X.shape[0], wl["batch_size"]
    act = torch.nn.Tanh if wl["hidden"] == "tanh" else torch.nn.ReLU
    layers = []
    for i, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))    # torch stores (out, in)
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(act())
    model = torch.nn.Sequential(*layers)

    def make_opt(m):
        if wl["optimizer"] == "adam":
            return torch.optim.Adam(m.parameters(), lr=wl["learning_rate"],
                                    betas=(_BETA1, _BETA2), eps=_EPS)
        return torch.optim.SGD(m.parameters(), lr=wl["learning_rate"], momentum=0.0)

    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(Y.argmax(axis=1).astype(np.int64))   # class indices

    def train(m, opt, xs, ys, n_rows):
        for s in range(0, n_rows, bs):
            opt.zero_grad()
            loss = F.cross_entropy(m(xs[s:s + bs]), ys[s:s + bs])
            loss.backward()
            opt.step()

    warm = copy.deepcopy(model)                        # warm-up on a copy
    train(warm, make_opt(warm), Xt, yt, min(n, 8 * bs))
    del warm
    opt = make_opt(model)
    seconds = []
    for perm in _epoch_orders(n, epochs):
        t0 = time.perf_counter()
        idx = torch.from_numpy(perm)
        train(model, opt, Xt[idx], yt[idx], n)         # last partial batch kept
        seconds.append(time.perf_counter() - t0)
    with torch.inference_mode():
        logits = model(Xt)
        torch_loss = float(F.cross_entropy(logits, yt))
    final = [(lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy())
             for lin in model if isinstance(lin, torch.nn.Linear)]
    return _result(seconds, n, cross_entropy(final, X, Y, wl["hidden"]),
                   f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
                   f"F.cross_entropy on class indices; last partial batch kept; "
                   f"torch's own final loss {torch_loss:.6f}")


# --------------------------------------------------------------------------
# jax: shared loss / update builders
# --------------------------------------------------------------------------
def _jax_update(wl):
    """Return (update, init_opt_state): update(params, opt, x, y) -> (params, opt)."""
    import jax
    import jax.numpy as jnp

    act = jnp.tanh if wl["hidden"] == "tanh" else jax.nn.relu
    lr = wl["learning_rate"]
    tmap = jax.tree_util.tree_map

    def loss(params, x, y):
        h = x
        for W, b in params[:-1]:
            h = act(h @ W + b)
        logits = h @ params[-1][0] + params[-1][1]
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=1))

    if wl["optimizer"] == "sgd":
        def update(params, opt, x, y):
            g = jax.grad(loss)(params, x, y)
            return tmap(lambda p, d: p - lr * d, params, g), opt

        def init_opt(params):
            return ()
        return update, init_opt

    def update(params, opt, x, y):  # Adam, by hand (no optax)
        m, v, t = opt
        g = jax.grad(loss)(params, x, y)
        t = t + 1.0
        m = tmap(lambda a, d: _BETA1 * a + (1.0 - _BETA1) * d, m, g)
        v = tmap(lambda a, d: _BETA2 * a + (1.0 - _BETA2) * d * d, v, g)
        bc1, bc2 = 1.0 - _BETA1 ** t, 1.0 - _BETA2 ** t
        params = tmap(lambda p, a, s: p - lr * (a / bc1) / (jnp.sqrt(s / bc2) + _EPS),
                      params, m, v)
        return params, (m, v, t)

    def init_opt(params):
        z = tmap(jnp.zeros_like, params)
        return (z, tmap(jnp.zeros_like, params), jnp.zeros((), jnp.float32))
    return update, init_opt


def _jax_params(params):
    import jax.numpy as jnp
    return tuple((jnp.array(W), jnp.array(b)) for W, b in params)


def _jax_result(wl, X, Y, params, seconds, trained, how):
    """The result of a jax peer that trained ``trained`` samples per epoch (whole batches
    only) to ``params``; ``how`` describes the way it ran."""
    import jax

    final = [(np.asarray(W, np.float32), np.asarray(b, np.float32)) for W, b in params]
    dropped = X.shape[0] - trained
    return _result(seconds, trained, cross_entropy(final, X, Y, wl["hidden"]),
                   f"jax {jax.__version__} ({jax.default_backend()}); {how}; "
                   f"{'no partial batch' if not dropped else f'{dropped} samples dropped per epoch'}")


# --------------------------------------------------------------------------
# jax_step: one jitted step per mini-batch, driven from Python
# --------------------------------------------------------------------------
def _run_jax_step(wl, X, Y, params, epochs):
    import jax

    n, bs = X.shape[0], wl["batch_size"]
    nb = n // bs                                       # fixed shape: drop partial
    update, init_opt = _jax_update(wl)
    step = jax.jit(update, donate_argnums=(0, 1))

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*donated buffers.*")
        # warm-up (compiles): a few steps on a copy of the weights
        wp = _jax_params(params)
        wo = init_opt(wp)
        for i in range(min(nb, 8)):
            wp, wo = step(wp, wo, X[i * bs:(i + 1) * bs], Y[i * bs:(i + 1) * bs])
        jax.block_until_ready(wp)
        del wp, wo

        p = _jax_params(params)
        opt = init_opt(p)
        seconds = []
        for perm in _epoch_orders(n, epochs):
            t0 = time.perf_counter()
            # shuffle on the host, hand numpy views to the jitted step
            Xs, Ys = X[perm[:nb * bs]], Y[perm[:nb * bs]]
            for s in range(0, nb * bs, bs):
                p, opt = step(p, opt, Xs[s:s + bs], Ys[s:s + bs])
            jax.block_until_ready(p)
            seconds.append(time.perf_counter() - t0)
    return _jax_result(wl, X, Y, p, seconds, nb * bs,
                       "jit step with donate_argnums=(0, 1), one call per batch on numpy "
                       "slices")


# --------------------------------------------------------------------------
# jax_scan: the whole epoch as one jitted lax.scan
# --------------------------------------------------------------------------
def _run_jax_scan(wl, X, Y, params, epochs):
    import jax
    import jax.numpy as jnp

    n, bs = X.shape[0], wl["batch_size"]
    nb = n // bs
    update, init_opt = _jax_update(wl)

    def epoch(params, opt, Xall, Yall, perm):
        # shuffle inside the jitted function: gather by the permutation and
        # reshape to (n_batches, batch, features); the last partial batch is dropped
        idx = perm[:nb * bs]
        xs = jnp.take(Xall, idx, axis=0).reshape(nb, bs, -1)
        ys = jnp.take(Yall, idx, axis=0).reshape(nb, bs, -1)

        def body(carry, batch):
            return update(carry[0], carry[1], *batch), None
        (params, opt), _ = jax.lax.scan(body, (params, opt), (xs, ys))
        return params, opt

    run_epoch = jax.jit(epoch, donate_argnums=(0, 1))
    Xd, Yd = jax.device_put(X), jax.device_put(Y)
    orders = _epoch_orders(n, epochs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*donated buffers.*")
        # warm-up (compiles): one full epoch on a copy of the weights
        wp = _jax_params(params)
        wp, wo = run_epoch(wp, init_opt(wp), Xd, Yd, np.arange(n, dtype=np.int32))
        jax.block_until_ready(wp)
        del wp, wo

        p = _jax_params(params)
        opt = init_opt(p)
        seconds = []
        for perm in orders:
            t0 = time.perf_counter()
            p, opt = run_epoch(p, opt, Xd, Yd, perm.astype(np.int32))
            jax.block_until_ready(p)
            seconds.append(time.perf_counter() - t0)
    return _jax_result(wl, X, Y, p, seconds, nb * bs,
                       "one jit(lax.scan) per epoch, data resident on device, shuffled "
                       "inside the jitted function by a host permutation (timed)")


# --------------------------------------------------------------------------
# fann: C program against libfloatfann, W1 only
# --------------------------------------------------------------------------
_FANN_CACHE: dict = {}


def _fann_binary():
    """Compile fann_peer.c once per process; return (path or None, reason)."""
    if "result" in _FANN_CACHE:
        return _FANN_CACHE["result"]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fann_peer.c")
    cc = shutil.which("gcc") or shutil.which("cc")
    if not os.path.exists(src):
        result = (None, f"FANN peer source missing: {src}")
    elif cc is None:
        result = (None, "no C compiler (gcc) found to build the FANN peer")
    else:
        tmp = tempfile.mkdtemp(prefix="fastbp_fann_")
        atexit.register(shutil.rmtree, tmp, True)
        exe = os.path.join(tmp, "fann_peer")
        proc = subprocess.run([cc, "-O2", src, "-o", exe, "-lfloatfann", "-lm"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            result = (exe, "")
        else:
            err = proc.stderr.strip().splitlines()
            hint = " (install libfann-dev)" if "fann" in proc.stderr else ""
            result = (None, f"cannot build FANN peer{hint}: " + " | ".join(err[-3:]))
    _FANN_CACHE["result"] = result
    return result


def _run_fann(wl, X, Y, params, epochs):
    exe, reason = _fann_binary()
    if exe is None:
        raise RuntimeError(reason)
    n = X.shape[0]
    with tempfile.TemporaryDirectory(prefix="fastbp_fann_run_") as tmp:
        data, w_in, w_out = (os.path.join(tmp, f) for f in ("data.train", "w_in.f32", "w_out.f32"))
        with open(data, "w") as f:                     # FANN text training file
            f.write(f"{n} {X.shape[1]} {Y.shape[1]}\n")
            for x, y in zip(X, Y):
                f.write(" ".join(f"{v:.9g}" for v in x) + "\n")
                f.write(" ".join(f"{v:.9g}" for v in y) + "\n")
        flat = np.concatenate([a.ravel() for W, b in params for a in (W, b)])
        flat.astype("<f4").tofile(w_in)
        cmd = [exe, data, w_in, w_out, str(epochs), repr(float(wl["learning_rate"]))]
        proc = subprocess.run(cmd + [str(s) for s in wl["sizes"]],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"FANN peer failed: {proc.stderr.strip()}")
        final_flat = np.fromfile(w_out, dtype="<f4")
    seconds, rec = [], {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "epoch":
            seconds.append(float(parts[2]))
        elif len(parts) == 2:
            rec[parts[0]] = float(parts[1])
    # Per-output MSE of the final weights from a NumPy forward pass with FANN's
    # activations (tanh hidden, logistic output), as a cross-check.
    final, o = [], 0
    for W, _ in params:
        k, m = W.shape
        final.append((final_flat[o:o + k * m].reshape(k, m), final_flat[o + k * m:o + k * m + m]))
        o += k * m + m
    h = X
    for W, b in final[:-1]:
        h = np.tanh(h @ W + b)
    out = 1.0 / (1.0 + np.exp(-(h @ final[-1][0] + final[-1][1])))
    np_mse = float(np.mean((out - Y) ** 2))
    return _result(seconds, n, float("nan"),
                   f"FANN 2.2 floatfann, FANN_TRAIN_INCREMENTAL (per-sample SGD), "
                   f"tanh hidden + logistic output trained on squared error "
                   f"(FANN_ERRORFUNC_LINEAR): no softmax/cross-entropy, so final_loss "
                   f"is NaN; FANN MSE init {rec.get('init_mse', float('nan')):.6f} -> "
                   f"final {rec.get('final_mse', float('nan')):.6f} (NumPy per-output MSE "
                   f"of final weights {np_mse:.6f}); fann_shuffle_train_data each epoch "
                   f"(timed, rand() seeded 0)")
