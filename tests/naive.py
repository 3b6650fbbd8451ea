"""Slow, plain-NumPy references, written independently of the kernels.

Every formula is taken from the textbook definitions with derivatives written in terms of the
pre-activation z (the kernels use the activation output instead), and one layer's matrices are
separate arrays (the kernels use one flat vector).  Tests compare each kernel with these.
"""
import numpy as np

LEAKY_SLOPE = 0.01


def act(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "elu":  # alpha = 1
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":  # log(1 + e^z)
        return np.logaddexp(0.0, z)
    if name == "silu":
        return z * _sigmoid(z)
    if name == "gelu":  # Hendrycks & Gimpel's tanh approximation (torch approximate="tanh")
        # 0.5 z (1 + tanh u), with 0.5 (1 + tanh u) = sigmoid(2u) (no cancellation for u << 0)
        return z * _sigmoid(2.0 * _gelu_u(z))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def act_derivative(name, z):
    """f'(z) for the element-wise activations."""
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 / np.cosh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))
    if name == "softplus":  # d/dz log(1 + e^z) = e^z / (1 + e^z)
        return _sigmoid(z)
    if name == "exp":
        return np.exp(z)
    if name == "silu":  # s + z s (1 - s)
        s = _sigmoid(z)
        return s + z * s * (1.0 - s)
    if name == "gelu":  # 0.5 (1 + tanh u) + 0.5 z sech^2(u) u'
        u = _gelu_u(z)
        du = np.sqrt(2.0 / np.pi) * (1.0 + 3.0 * 0.044715 * z ** 2)
        with np.errstate(over="ignore"):
            sech2 = 1.0 / np.cosh(u) ** 2
        return _sigmoid(2.0 * u) + 0.5 * z * sech2 * du
    raise ValueError(name)


def _sigmoid(z):
    # 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) for z < 0: no overflow for either sign
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gelu_u(z):
    return np.sqrt(2.0 / np.pi) * (z + 0.044715 * z ** 3)


def forward(Ws, bs, acts, X, masks=None):
    """List of pre-activations and list of activations (input first)."""
    A = [X]
    Z = []
    for l, (W, b, a) in enumerate(zip(Ws, bs, acts)):
        z = A[-1] @ W + b
        Z.append(z)
        out = act(a, z)
        if masks is not None and l < len(Ws) - 1:
            out = out * masks[l]
        A.append(out)
    return Z, A


def per_sample_loss(loss, P, Y, z=None, huber_epsilon=1.0):
    """Loss per sample from outputs P; the log losses use the logits z when given (log P
    computed as log-sigmoid / log-softmax of z, which stays accurate when P rounds to 0 or 1)."""
    if loss == "squared_error":
        return 0.5 * ((P - Y) ** 2).sum(axis=1)
    if loss == "poisson":  # half the Poisson deviance: y log(y / p) - y + p (0 log 0 = 0)
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / P), 0.0)
        return (ylogy - Y + P).sum(axis=1)
    if loss == "absolute_error":
        return np.abs(P - Y).sum(axis=1)
    if loss == "huber":
        d = np.abs(P - Y)
        e = huber_epsilon
        return np.where(d <= e, 0.5 * d ** 2, e * d - 0.5 * e ** 2).sum(axis=1)
    if loss == "binary_cross_entropy":
        if z is None:
            return -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum(axis=1)
        # log p = -log(1 + e^-z), log(1 - p) = -log(1 + e^z)
        return (Y * np.logaddexp(0, -z) + (1 - Y) * np.logaddexp(0, z)).sum(axis=1)
    if loss == "cross_entropy":
        if z is None:
            return -(Y * np.log(P)).sum(axis=1)
        m = z.max(axis=1, keepdims=True)
        log_p = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        return -(Y * log_p).sum(axis=1)
    raise ValueError(loss)


def output_delta(out, loss, P, Y, z, huber_epsilon=1.0):
    """dL_r/dz of each sample's loss through the output activation ``out`` (outputs P,
    pre-activations z), from dL/dP and the activation's Jacobian."""
    if out == "softmax":
        dP = -Y / P  # cross entropy
        # Jacobian of softmax: J = diag(p) - p p^T, applied row by row
        return P * (dP - (dP * P).sum(axis=1, keepdims=True))
    if loss == "squared_error":
        dP = P - Y
    elif loss == "binary_cross_entropy":
        dP = -Y / P + (1 - Y) / (1 - P)
    elif loss == "poisson":
        dP = 1.0 - Y / P
    elif loss == "absolute_error":
        dP = np.sign(P - Y)
    elif loss == "huber":
        dP = np.clip(P - Y, -huber_epsilon, huber_epsilon)
    else:
        raise ValueError(loss)
    return dP * act_derivative(out, z)


def random_targets(rng, loss, batch, n_out):
    """Targets that suit ``loss``: one-hot rows, 0/1 labels, or real values."""
    if loss == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out, batch)]
    if loss == "binary_cross_entropy":
        return (rng.random((batch, n_out)) < 0.5).astype(float)
    if loss == "poisson":  # counts, zeros included
        return rng.poisson(1.5, size=(batch, n_out)).astype(float)
    return rng.normal(size=(batch, n_out))


def loss_and_grads(Ws, bs, acts, loss, X, Y, sw=None, alpha=0.0, masks=None,
                   huber_epsilon=1.0):
    """Mean loss (+ alpha/2 |W|^2 / norm) and per-layer gradients (dW list, db list).

    With sample weights the mean is weighted: sum(w L) / sum(w).  ``masks`` (one array per
    hidden layer, entries 0 or 1/(1-rate)) applies inverted dropout to the hidden outputs.
    """
    n = X.shape[0]
    w = np.ones(n) if sw is None else np.asarray(sw, dtype=float)
    norm = w.sum()
    Z, A = forward(Ws, bs, acts, X, masks)
    P = A[-1]
    value = (w * per_sample_loss(loss, P, Y, Z[-1], huber_epsilon)).sum() / norm
    value += 0.5 * alpha * sum((W ** 2).sum() for W in Ws) / norm
    # dL_r/dP for each sample, then through the output activation's Jacobian
    out = acts[-1]
    dZ = output_delta(out, loss, P, Y, Z[-1], huber_epsilon)
    dZ = dZ * (w / norm)[:, None]
    dWs = [None] * len(Ws)
    dbs = [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        dWs[l] = A[l].T @ dZ + alpha * Ws[l] / norm
        dbs[l] = dZ.sum(axis=0)
        if l > 0:
            dA = dZ @ Ws[l].T
            if masks is not None:
                dA = dA * masks[l - 1]
            dZ = dA * act_derivative(acts[l - 1], Z[l - 1])
    return value, dWs, dbs


def flatten(dWs, dbs):
    """Per-layer arrays into the flat layout: per layer, each output unit's incoming weights
    (the rows of W^T), then the biases."""
    return np.concatenate([np.concatenate([dW.T.ravel(), db]) for dW, db in zip(dWs, dbs)])


def numeric_gradient(f, p, h=1e-6):
    """Central finite differences of the scalar function f at the flat vector p."""
    g = np.empty_like(p)
    for k in range(p.size):
        old = p[k]
        p[k] = old + h
        fp = f(p)
        p[k] = old - h
        fm = f(p)
        p[k] = old
        g[k] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


# --- update rules, written from the papers / torch.optim's documentation ---------------------
def sgd(p, g, state, lr, momentum=0.0, nesterov=False):
    if momentum == 0.0:
        return p - lr * g
    v = state.get("v")
    v = g.copy() if v is None else momentum * v + g
    state["v"] = v
    return p - lr * (g + momentum * v if nesterov else v)


def adam(p, g, state, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    p = p * (1 - lr * weight_decay)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def rmsprop(p, g, state, lr, rho=0.99, eps=1e-8):
    v = rho * state.get("v", 0.0) + (1 - rho) * g * g
    state["v"] = v
    return p - lr * g / (np.sqrt(v) + eps)


def irprop_minus(p, g, state, eta_plus=1.2, eta_minus=0.5, step_init=0.1, step_min=1e-6,
                 step_max=50.0):
    """Igel & Huesken (2000), iRprop-: the step grows while the sign holds; on a sign change
    it shrinks and that weight's gradient is set to zero (no move now, no comparison next)."""
    prev = state.get("prev", np.zeros_like(p))
    step = state.get("step", np.full_like(p, step_init))
    g = g.copy()
    same = prev * g > 0
    flip = prev * g < 0
    step = np.where(same, np.minimum(step * eta_plus, step_max), step)
    step = np.where(flip, np.maximum(step * eta_minus, step_min), step)
    g[flip] = 0.0
    state.update(prev=g, step=step)
    return p - np.sign(g) * step


# --- networks with batch / layer normalization -------------------------------------------------
# Ioffe & Szegedy's placement: z = a W + b, x_hat = (z - mean) / sqrt(var + eps), y = scale x_hat
# + shift, a' = f(y).  PyTorch's conventions: biased variance to normalize, running statistics
# updated with momentum and the unbiased variance.  A layer is a dict: W (n_in, n), b, act, norm
# (None, "batch" or "layer") and for a normalized layer scale, shift, eps, momentum and (batch
# norm) running_mean, running_var.

def _norm_stats(layer, z, training):
    """(mean, var) that normalize z: over the batch (axis 0) or the units (axis 1)."""
    if layer["norm"] == "layer":
        return z.mean(axis=1, keepdims=True), z.var(axis=1, keepdims=True)
    if training:
        return z.mean(axis=0), z.var(axis=0)
    return layer["running_mean"], layer["running_var"]


def norm_forward(layers, X, training=True):
    """Per layer (z, x_hat, y, a, mean, var) -- x_hat, y, mean, var None when not normalized --
    in train mode (batch statistics) or eval mode (running statistics)."""
    cache = []
    a = X
    for layer in layers:
        z = a @ layer["W"] + layer["b"]
        if layer["norm"] is None:
            x_hat = mean = var = None
            y = z
        else:
            mean, var = _norm_stats(layer, z, training)
            x_hat = (z - mean) / np.sqrt(var + layer["eps"])
            y = layer["scale"] * x_hat + layer["shift"]
        a = act(layer["act"], y)
        cache.append((z, x_hat, y, a, mean, var))
    return cache


def norm_predict(layers, X, training=False):
    return norm_forward(layers, X, training)[-1][3]


def updated_running_stats(layers, X):
    """The running (mean, var) of every batch-norm layer after one training forward pass over
    the batch X: (1 - m) running + m batch, with the unbiased batch variance."""
    out = []
    for layer, (z, *_rest) in zip(layers, norm_forward(layers, X, True)):
        if layer["norm"] != "batch":
            out.append(None)
            continue
        m = layer["momentum"]
        out.append(((1 - m) * layer["running_mean"] + m * z.mean(axis=0),
                    (1 - m) * layer["running_var"] + m * z.var(axis=0, ddof=1)))
    return out


def _norm_backward(layer, z, x_hat, dy, training):
    """dL/dz from dL/dy through y = scale x_hat + shift, term by term as in Ioffe & Szegedy
    (Algorithm 1's backward: through the variance, then the mean); returns (dz, dscale,
    dshift)."""
    dscale = (dy * x_hat).sum(axis=0)
    dshift = dy.sum(axis=0)
    dx_hat = dy * layer["scale"]
    eps = layer["eps"]
    if layer["norm"] == "batch" and not training:  # an affine map per unit
        return dx_hat / np.sqrt(layer["running_var"] + eps), dscale, dshift
    axis = 0 if layer["norm"] == "batch" else 1
    m = z.shape[axis]
    mu = z.mean(axis=axis, keepdims=True)
    var = z.var(axis=axis, keepdims=True)
    dvar = (dx_hat * (z - mu) * -0.5 * (var + eps) ** -1.5).sum(axis=axis, keepdims=True)
    dmu = (-dx_hat / np.sqrt(var + eps)).sum(axis=axis, keepdims=True) \
        + dvar * (-2.0 * (z - mu)).mean(axis=axis, keepdims=True)
    dz = dx_hat / np.sqrt(var + eps) + dvar * 2.0 * (z - mu) / m + dmu / m
    return dz, dscale, dshift


def norm_loss_and_grads(layers, loss, X, Y, training=True):
    """Mean loss and its gradient, flattened in fastbp's layout (per layer: W^T row-major,
    b, then for a normalized layer its scales and shifts)."""
    cache = norm_forward(layers, X, training)
    n = X.shape[0]
    y_out = cache[-1][2]
    P = cache[-1][3]
    value = per_sample_loss(loss, P, Y, y_out).mean()
    out = layers[-1]["act"]
    dy = output_delta(out, loss, P, Y, y_out)
    dy = dy / n
    blocks = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        layer = layers[l]
        z, x_hat, _, _, _, _ = cache[l]
        if layer["norm"] is None:
            dz, extra = dy, []
        else:
            dz, dscale, dshift = _norm_backward(layer, z, x_hat, dy, training)
            extra = [dscale, dshift]
        a_in = X if l == 0 else cache[l - 1][3]
        blocks[l] = [(a_in.T @ dz).T.ravel(), dz.sum(axis=0)] + extra
        if l > 0:
            dy = (dz @ layer["W"].T) * act_derivative(layers[l - 1]["act"], cache[l - 1][2])
    return value, np.concatenate([np.concatenate(b) for b in blocks])


def adagrad(p, g, state, lr, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    """torch.optim.Adagrad's documented algorithm (no weight decay)."""
    t = state.get("t", 0) + 1
    s = state.get("sum", initial_accumulator_value) + g * g
    state.update(t=t, sum=s)
    clr = lr / (1 + (t - 1) * lr_decay)
    return p - clr * g / (np.sqrt(s) + eps)


def nadam(p, g, state, lr, beta1=0.9, beta2=0.999, eps=1e-8, momentum_decay=4e-3,
          weight_decay=0.0, decoupled_weight_decay=False):
    """torch.optim.NAdam's documented algorithm."""
    t = state.get("t", 0) + 1
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state.get("mu_product", 1.0) * mu
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state.update(t=t, m=m, v=v, mu_product=mu_product)
    denom = np.sqrt(v / (1 - beta2 ** t)) + eps
    return (p - lr * (1 - mu) / (1 - mu_product) * g / denom
            - lr * mu_next / (1 - mu_product * mu_next) * m / denom)


# --- FANN 2.2's full-batch rules, transcribed from fann_train.c ------------------------------
# FANN's train_slopes[i] is -dE/dw summed over the samples and its epsilon is
# learning_rate / num_data; with fastbp's mean gradient g that is train_slopes = -g and
# epsilon = lr (num_data folded into both).  The loops keep FANN's names and branches.

def fann_quickprop(p, g, state, lr=0.7, decay=-0.0001, mu=1.75):
    """fann_update_weights_quickprop."""
    weights = p.copy()
    train_slopes = -g
    prev_steps = state.setdefault("prev_steps", np.zeros_like(p))
    prev_train_slopes = state.setdefault("prev_train_slopes", np.zeros_like(p))
    epsilon = lr
    shrink_factor = mu / (1.0 + mu)
    for i in range(p.shape[0]):
        w = weights[i]
        prev_step = prev_steps[i]
        slope = train_slopes[i] + decay * w
        prev_slope = prev_train_slopes[i]
        next_step = 0.0
        if prev_step > 0.001:
            if slope > 0.0:
                next_step += epsilon * slope
            if slope > shrink_factor * prev_slope:
                next_step += mu * prev_step
            else:
                next_step += prev_step * slope / (prev_slope - slope)
        elif prev_step < -0.001:
            if slope < 0.0:
                next_step += epsilon * slope
            if slope < shrink_factor * prev_slope:
                next_step += mu * prev_step
            else:
                next_step += prev_step * slope / (prev_slope - slope)
        else:
            next_step += epsilon * slope
        prev_steps[i] = next_step
        w += next_step
        weights[i] = 1500 if w > 1500 else (-1500 if w < -1500 else w)
        prev_train_slopes[i] = slope
    return weights


def fann_sarprop(p, g, state, increase_factor=1.2, decrease_factor=0.5, delta_min=1e-6,
                 delta_max=50.0, weight_decay_shift=-6.644, step_error_threshold_factor=0.1,
                 step_error_shift=1.385, T=0.015):
    """fann_update_weights_sarprop.  ``state["loss"]`` is the mean loss at ``p``; FANN's
    MSE is taken as 2 loss (see fastbp.SARPROP).  Two deliberate differences from the C:
    rand()/RAND_MAX is fastbp's keyed generator, and the branch for same_sign == 0 keeps the
    weight's step where FANN stores a stale next_step of the previous weight."""
    from fastbp.kernels.optimizers import SARPROP_KEY
    from fastbp.kernels.rng import keyed, uniform_at
    t = state.get("t", 0) + 1
    state["t"] = t
    epoch = t - 1
    weights = p.copy()
    train_slopes = -g
    prev_steps = state.setdefault("prev_steps", np.zeros_like(p))
    prev_train_slopes = state.setdefault("prev_train_slopes", np.zeros_like(p))
    MSE = 2.0 * state["loss"]
    RMSE = np.sqrt(MSE)
    gen = keyed(SARPROP_KEY, t, 0)
    for i in range(p.shape[0]):
        prev_step = max(prev_steps[i], delta_min)
        slope = -train_slopes[i] - weights[i] * 2.0 ** (-T * epoch + weight_decay_shift)
        prev_slope = prev_train_slopes[i]
        same_sign = prev_slope * slope
        if same_sign > 0.0:
            next_step = min(prev_step * increase_factor, delta_max)
            if slope < 0.0:
                weights[i] += next_step
            else:
                weights[i] -= next_step
        elif same_sign < 0.0:
            if prev_step < step_error_threshold_factor * MSE:
                next_step = (prev_step * decrease_factor + uniform_at(gen, i) * RMSE
                             * 2.0 ** (-T * epoch + step_error_shift))
            else:
                next_step = max(prev_step * decrease_factor, delta_min)
            slope = 0.0
        else:
            next_step = prev_step  # FANN: the stale next_step of weight i - 1
            if slope < 0.0:
                weights[i] += prev_step
            else:
                weights[i] -= prev_step
        prev_steps[i] = next_step
        prev_train_slopes[i] = slope
    return weights


# --- recurrent networks: forward over time and backpropagation through time ------------------
# Written from PyTorch's documented equations (torch.nn.RNN / GRU / LSTM), gate by gate, with
# separate arrays per tensor and explicit loops over time; derivatives in terms of the gates'
# pre-activations.  A network is a list of layer dicts:
#
#   {"kind": "rnn"|"gru"|"lstm", "activation": "tanh"|"relu" (rnn), "bidirectional": bool,
#    "return_sequences": bool, "params": {"weight_ih": (G*H, n_in), "weight_hh": (G*H, H),
#    "bias_ih": (G*H,), "bias_hh": (G*H,), and "<name>_reverse" for the reverse direction}}
#   {"kind": "dense", "activation": name, "params": {"weight": (units, n_in), "bias": (units,)}}
#
# (G = 1, 3, 4 gates: RNN; GRU r, z, n; LSTM i, f, g, o.)  Conventions:
#
# - X is (n, steps, features); ``lengths`` (n,) ints in [1, steps], default all ``steps``.
#   Steps t >= length are not computed: the state passes through them unchanged, their
#   outputs are 0 (as torch's pad_packed_sequence) and they get no gradient.
# - The forward direction starts at step 0 from a zero state; the reverse direction starts
#   at each sample's last valid step (length - 1) from a zero state and ends at step 0 (as
#   torch's packed sequences).  A bidirectional layer's output at step t is [forward h_t,
#   reverse h_t] (2H features), torch's order.
# - return_sequences=False (many-to-one): the layer outputs its final states, torch's h_n:
#   the forward direction's h at step length - 1, and (bidirectional) the reverse direction's
#   h at step 0 (its last step), concatenated [forward, reverse].  ``many_to_one="last_step"``
#   instead takes the bidirectional output at step length - 1 ([forward h_{L-1}, reverse
#   h_{L-1}], torch's output[i, L-1]); the two agree for a unidirectional layer.
# - Dense layers after a sequence-returning layer apply to every step; the loss is fastbp's
#   per-row loss (per_sample_loss above: 1/2 sum over outputs for squared error) summed over
#   valid (sample, step) pairs, each weighted by its sample's weight, divided by the sum of
#   those weights (the number of valid pairs without sample weights).  Targets of invalid
#   steps are ignored (they may be NaN).  Many-to-one: a dense net's weighted mean over
#   samples.
# - Truncated BPTT, ``bptt_steps=k``: steps are cut into consecutive chunks [0, k), [k, 2k),
#   ... (absolute step numbers, the same for every sample and for both directions).  The
#   forward pass is the full one (the state carries across chunks); in the backward pass
#   the state entering a chunk is a constant: no gradient flows from a chunk into the one
#   before it (forward direction: from step jk to step jk - 1; reverse direction: from step
#   jk - 1 to step jk).  Gradients within a chunk and between layers at the same step flow
#   as usual; the result is the sum over chunks (one update per batch).  k >= steps is full
#   BPTT.

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
RECURRENT_TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid(z):
    return _sigmoid(z)


def recurrent_tensor_names(bidirectional):
    suffixes = ("", "_reverse") if bidirectional else ("",)
    return [t + s for s in suffixes for t in RECURRENT_TENSORS]


def init_recurrent_layer(rng, kind, n_in, units, bidirectional=False, scale=None):
    """torch's initialization, uniform(-1/sqrt(units), 1/sqrt(units)) (or +-``scale``),
    from a NumPy generator: a dict of torch-named tensors."""
    g = GATES[kind]
    k = 1.0 / np.sqrt(units) if scale is None else scale
    shapes = {"weight_ih": (g * units, n_in), "weight_hh": (g * units, units),
              "bias_ih": (g * units,), "bias_hh": (g * units,)}
    return {name: rng.uniform(-k, k, shapes[name.replace("_reverse", "")])
            for name in recurrent_tensor_names(bidirectional)}


def recurrent_net(rng, n_in, layers, scale=None):
    """A network of layer dicts from a compact description: ``layers`` is a list of
    ("rnn"|"gru"|"lstm", units, {"activation", "bidirectional", "return_sequences"}) or
    ("dense", units, activation); parameters drawn by ``init_recurrent_layer`` (dense:
    uniform(+-1/sqrt(n_in)), torch's nn.Linear)."""
    net = []
    width = n_in
    for kind, units, opts in layers:
        if kind == "dense":
            k = 1.0 / np.sqrt(width) if scale is None else scale
            net.append({"kind": "dense", "activation": opts,
                        "params": {"weight": rng.uniform(-k, k, (units, width)),
                                   "bias": rng.uniform(-k, k, units)}})
            width = units
        else:
            opts = dict(opts or {})
            bi = bool(opts.get("bidirectional", False))
            net.append({"kind": kind, "activation": opts.get("activation", "tanh"),
                        "bidirectional": bi,
                        "return_sequences": bool(opts.get("return_sequences", False)),
                        "params": init_recurrent_layer(rng, kind, width, units, bi, scale)})
            width = units * (2 if bi else 1)
    return net


def _cell_forward(kind, activation, x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One step for all rows: (h', c', cache).  c is None except for the LSTM."""
    H = W_hh.shape[1]
    gi = x @ W_ih.T + b_ih
    gh = h @ W_hh.T + b_hh
    if kind == "rnn":
        a = gi + gh
        return act(activation, a), None, (a,)
    if kind == "gru":
        ar = gi[:, :H] + gh[:, :H]
        az = gi[:, H:2 * H] + gh[:, H:2 * H]
        r, z = sigmoid(ar), sigmoid(az)
        ghn = gh[:, 2 * H:]
        an = gi[:, 2 * H:] + r * ghn
        n = np.tanh(an)
        return (1.0 - z) * n + z * h, None, (ar, az, an, r, z, n, ghn)
    a = gi + gh  # lstm
    ai, af, ag, ao = (a[:, k * H:(k + 1) * H] for k in range(4))
    i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new, (ai, af, ag, ao, i, f, g, o, c_new)


def _cell_backward(kind, activation, cache, x, h, c, dh, dc, W_ih, W_hh):
    """Gradients of one step from dL/dh' (and dL/dc'): (dx, dh, dc, dgi, dgh) where dgi and
    dgh are dL/d(x W_ih^T + b_ih) and dL/d(h W_hh^T + b_hh)."""
    if kind == "rnn":
        (a,) = cache
        da = dh * act_derivative(activation, a)
        dgi = dgh = da
        dc_prev = None
        dh_prev = dgh @ W_hh
    elif kind == "gru":
        ar, az, an, r, z, n, ghn = cache
        dn = dh * (1.0 - z)
        dz = dh * (h - n)
        dan = dn * act_derivative("tanh", an)
        dr = dan * ghn
        daz = dz * act_derivative("logistic", az)
        dar = dr * act_derivative("logistic", ar)
        dgi = np.concatenate([dar, daz, dan], axis=1)
        dgh = np.concatenate([dar, daz, dan * r], axis=1)
        dh_prev = dh * z + dgh @ W_hh
        dc_prev = None
    else:
        ai, af, ag, ao, i, f, g, o, c_new = cache
        do = dh * np.tanh(c_new)
        dcn = dc + dh * o * act_derivative("tanh", c_new)
        dgi = np.concatenate([dcn * g * act_derivative("logistic", ai),
                              dcn * c * act_derivative("logistic", af),
                              dcn * i * act_derivative("tanh", ag),
                              do * act_derivative("logistic", ao)], axis=1)
        dgh = dgi
        dh_prev = dgh @ W_hh
        dc_prev = dcn * f
    return dgi @ W_ih, dh_prev, dc_prev, dgi, dgh


def _direction_forward(layer, suffix, X, lengths):
    """One direction over all steps: outputs (n, T, H) (0 at invalid steps) and the caches."""
    p = layer["params"]
    W_ih, W_hh = p["weight_ih" + suffix], p["weight_hh" + suffix]
    b_ih, b_hh = p["bias_ih" + suffix], p["bias_hh" + suffix]
    n, T, _ = X.shape
    H = W_hh.shape[1]
    h = np.zeros((n, H))
    c = np.zeros((n, H)) if layer["kind"] == "lstm" else None
    out = np.zeros((n, T, H))
    steps = range(T - 1, -1, -1) if suffix else range(T)
    caches = {}
    for t in steps:
        valid = (t < lengths)[:, None]
        h_new, c_new, cache = _cell_forward(layer["kind"], layer["activation"], X[:, t], h,
                                            c, W_ih, W_hh, b_ih, b_hh)
        caches[t] = (h, c, cache)  # the state entering step t, and the step's values
        h = np.where(valid, h_new, h)
        if c is not None:
            c = np.where(valid, c_new, c)
        out[:, t] = np.where(valid, h_new, 0.0)
    return out, caches


def _direction_backward(layer, suffix, X, lengths, caches, dout, bptt_steps, grads):
    """BPTT of one direction given dL/d(outputs) (n, T, H); adds the weight gradients to
    ``grads`` and returns dL/dX."""
    p = layer["params"]
    W_ih, W_hh = p["weight_ih" + suffix], p["weight_hh" + suffix]
    n, T, _ = X.shape
    H = W_hh.shape[1]
    dX = np.zeros_like(X)
    dh = np.zeros((n, H))
    dc = np.zeros((n, H)) if layer["kind"] == "lstm" else None
    steps = range(T) if suffix else range(T - 1, -1, -1)  # backward: opposite order
    for t in steps:
        valid = (t < lengths)[:, None]
        h, c, cache = caches[t]
        dh_total = np.where(valid, dh + dout[:, t], 0.0)
        dc_total = np.where(valid, dc, 0.0) if dc is not None else None
        dx, dh_prev, dc_prev, dgi, dgh = _cell_backward(
            layer["kind"], layer["activation"], cache, X[:, t], h, c, dh_total, dc_total,
            W_ih, W_hh)
        grads["weight_ih" + suffix] += dgi.T @ X[:, t]
        grads["weight_hh" + suffix] += dgh.T @ h
        grads["bias_ih" + suffix] += dgi.sum(axis=0)
        grads["bias_hh" + suffix] += dgh.sum(axis=0)
        dX[:, t] = dx
        # invalid steps pass the state (and its gradient) through unchanged
        dh = np.where(valid, dh_prev, dh)
        if dc is not None:
            dc = np.where(valid, dc_prev, dc)
        # truncation: the state entering this step is a constant when it crosses a chunk
        # boundary (forward: t = jk; reverse: t + 1 = jk)
        if bptt_steps is not None and ((t + 1) if suffix else t) % bptt_steps == 0:
            dh = np.zeros_like(dh)
            if dc is not None:
                dc = np.zeros_like(dc)
    return dX


def _check_lengths(lengths, n, T):
    if lengths is None:
        return np.full(n, T)
    lengths = np.asarray(lengths)
    assert lengths.shape == (n,) and lengths.min() >= 1 and lengths.max() <= T
    return lengths


def recurrent_forward(net, X, lengths=None, many_to_one="state"):
    """(outputs, tape): outputs (n, n_out) or (n, T, n_out), tape the values the backward
    pass needs.  Outputs at invalid steps are whatever the dense layers make of a zero
    input: compare valid steps only."""
    X = np.asarray(X, dtype=float)
    n, T, _ = X.shape
    lengths = _check_lengths(lengths, n, T)
    rows = np.arange(n)
    # steps past a length are never read (they may hold anything, NaN included)
    a = np.where((np.arange(T)[None, :] < lengths[:, None])[:, :, None], X, 0.0)
    tape = []
    for layer in net:
        if layer["kind"] == "dense":
            W, b = layer["params"]["weight"], layer["params"]["bias"]
            z = a @ W.T + b
            tape.append((a, z))
            a = act(layer["activation"], z.reshape(-1, z.shape[-1])).reshape(z.shape)
            continue
        if a.ndim != 3:
            raise ValueError("a recurrent layer needs sequences: its input returned none")
        outs, caches = [], []
        for suffix in ("", "_reverse") if layer["bidirectional"] else ("",):
            o, cache = _direction_forward(layer, suffix, a, lengths)
            outs.append(o)
            caches.append(cache)
        seq = np.concatenate(outs, axis=2)
        tape.append((a, caches))
        if layer["return_sequences"]:
            a = seq
        else:
            last = lengths - 1
            parts = [outs[0][rows, last]]
            if layer["bidirectional"]:
                parts.append(outs[1][rows, 0] if many_to_one == "state"
                             else outs[1][rows, last])
            a = np.concatenate(parts, axis=1)
    return a, (tape, lengths)


def recurrent_predict(net, X, lengths=None, many_to_one="state"):
    return recurrent_forward(net, X, lengths, many_to_one)[0]


def recurrent_loss_and_grads(net, loss, X, Y, lengths=None, sample_weight=None,
                             bptt_steps=None, many_to_one="state"):
    """(mean loss, grads): grads a list parallel to ``net`` of dicts of torch-named arrays.

    Y: (n, n_out) for a many-to-one network, (n, T, n_out) for a sequence output (one-hot /
    0-1 / real targets as ``loss`` needs; labels must be one-hot encoded by the caller)."""
    X = np.asarray(X, dtype=float)
    n, T, _ = X.shape
    out, (tape, lengths) = recurrent_forward(net, X, lengths, many_to_one)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    z_out = tape[-1][1]
    n_out = z_out.shape[-1]
    seq = out.ndim == 3
    if seq:
        valid = np.arange(T)[None, :] < lengths[:, None]
        row_w = (w[:, None] * valid).reshape(-1)
        Yr = np.where(valid[:, :, None], np.asarray(Y, dtype=float), 0.0).reshape(-1, n_out)
    else:
        row_w = w
        Yr = np.asarray(Y, dtype=float)
    Zr = z_out.reshape(-1, n_out)
    Pr = out.reshape(-1, n_out)
    norm = row_w.sum()
    per_row = per_sample_loss(loss, Pr, Yr, Zr)
    value = (row_w * per_row).sum() / norm
    dz = output_delta(net[-1]["activation"], loss, Pr, Yr, Zr) * (row_w / norm)[:, None]
    dz = dz.reshape(z_out.shape)
    grads = [None] * len(net)
    da = None
    for li in range(len(net) - 1, -1, -1):
        layer = net[li]
        if layer["kind"] == "dense":
            a_in, z = tape[li]
            if da is not None:  # a hidden dense layer: through its activation
                dz = da * act_derivative(layer["activation"],
                                         z.reshape(-1, z.shape[-1])).reshape(z.shape)
            a2 = a_in.reshape(-1, a_in.shape[-1])
            d2 = dz.reshape(-1, dz.shape[-1])
            grads[li] = {"weight": d2.T @ a2, "bias": d2.sum(axis=0)}
            da = dz @ layer["params"]["weight"]
            continue
        a_in, caches = tape[li]
        H = layer["params"]["weight_hh"].shape[1]
        suffixes = ("", "_reverse") if layer["bidirectional"] else ("",)
        if layer["return_sequences"]:
            dseq = da
        else:  # scatter the final-state gradient to the steps it came from
            dseq = np.zeros((n, T, H * len(suffixes)))
            rows = np.arange(n)
            dseq[rows, lengths - 1, :H] = da[:, :H]
            if layer["bidirectional"]:
                if many_to_one == "state":
                    dseq[rows, 0, H:] += da[:, H:]
                else:
                    dseq[rows, lengths - 1, H:] += da[:, H:]
        g = {k: np.zeros_like(v) for k, v in layer["params"].items()}
        da = np.zeros_like(a_in)
        for d, suffix in enumerate(suffixes):
            da += _direction_backward(layer, suffix, a_in, lengths, caches[d],
                                      dseq[:, :, d * H:(d + 1) * H], bptt_steps, g)
        grads[li] = g
    return value, grads


def recurrent_mean_loss(net, loss, X, Y, lengths=None, sample_weight=None,
                        many_to_one="state"):
    """The loss alone (for finite differences): the forward pass and the same averaging."""
    return recurrent_loss_and_grads(net, loss, X, Y, lengths, sample_weight, None,
                                    many_to_one)[0]


def recurrent_numeric_gradient(net, loss, X, Y, lengths=None, h=1e-6, **kw):
    """Central finite differences of the mean loss for every tensor (same structure as the
    grads of ``recurrent_loss_and_grads``)."""
    out = []
    for layer in net:
        g = {}
        for name, arr in layer["params"].items():
            flat = arr.reshape(-1)

            def f(v, flat=flat):
                saved = flat.copy()
                flat[:] = v
                val = recurrent_loss_and_grads(net, loss, X, Y, lengths, **kw)[0]
                flat[:] = saved
                return val

            g[name] = numeric_gradient(f, flat.copy(), h).reshape(arr.shape)
        out.append(g)
    return out


def flat_grads(grads):
    """All tensors of a grads list, concatenated in a fixed order (for one rel_error)."""
    return np.concatenate([g[k].ravel() for g in grads for k in sorted(g)])


# --- recurrent test cases shared by the reference's and fastbp's tests ------------------------
RECURRENT_CELLS = [("rnn", {"activation": "tanh"}), ("rnn", {"activation": "relu"}),
                   ("gru", {}), ("lstm", {})]
RECURRENT_CELL_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]


def _opts(base, **kw):
    d = dict(base)
    d.update(kw)
    return d


def recurrent_topology(name, kind, opts, n_out=3):
    """Layer descriptions (:func:`recurrent_net`'s format) and the loss of the test case
    ``name``: one or two recurrent layers (stacked, bidirectional, returning sequences or
    not) followed by one or two dense layers."""
    H = 5
    if name == "single":
        return [(kind, H, _opts(opts)), ("dense", n_out, "softmax")], "cross_entropy"
    if name == "stacked":
        return [(kind, H, _opts(opts, return_sequences=True)), (kind, 4, _opts(opts)),
                ("dense", 4, "tanh"), ("dense", n_out, "identity")], "squared_error"
    if name == "bidirectional":
        return [(kind, H, _opts(opts, bidirectional=True)),
                ("dense", n_out, "logistic")], "binary_cross_entropy"
    if name == "stacked_bidirectional":
        return [(kind, H, _opts(opts, bidirectional=True, return_sequences=True)),
                (kind, 4, _opts(opts, bidirectional=True)), ("dense", n_out, "softmax")], \
            "cross_entropy"
    if name == "sequences":  # many-to-many, a hidden dense layer on every step
        return [(kind, H, _opts(opts, return_sequences=True)), ("dense", 4, "tanh"),
                ("dense", n_out, "identity")], "squared_error"
    if name == "stacked_bidirectional_sequences":
        return [(kind, H, _opts(opts, bidirectional=True, return_sequences=True)),
                (kind, 4, _opts(opts, return_sequences=True)),
                ("dense", n_out, "softmax")], "cross_entropy"
    raise ValueError(name)


RECURRENT_TOPOLOGIES = ["single", "stacked", "bidirectional", "stacked_bidirectional", "sequences",
              "stacked_bidirectional_sequences"]
