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
