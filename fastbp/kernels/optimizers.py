"""Update rules on the flat parameter vector, one loop over all parameters each.

To add an optimizer: give it a code and a rule here, with a branch in :func:`apply_update`,
and a class in :mod:`fastbp.optimizers` (which registers its name and lists its
hyperparameters).  Nothing else changes.

Each rule is compiled on first use, not with the training kernels.  :func:`update_rule` makes
a C function (a Numba ``cfunc``, cached on disk like the kernels) that calls
:func:`apply_update` with its code as a constant, so that only that rule's branch is compiled;
the training kernels take its address as an argument and call it through :func:`update` once
per step.  Compiling every rule into every training kernel cost the demo (which uses SGD only)
about 4 s of its cold compile, and every other training kernel (sequences, sparse input) the
same again.

``state`` is a (slots, n_params) array: each row is a flat twin of the parameter vector
(velocity, first/second moments, previous gradient, step sizes).  ``hyper`` is a float64
vector: the learning rate, then the optimizer's own hyperparameters in the order its class
lists them (``Optimizer.hyper_names``), so changing a value never recompiles anything.  ``t``
is the 1-based number of this update (Adam's bias correction).  ``loss`` is the mean loss
(with the L2 penalty, as the trainer reports it) of the batch the gradient was taken on, at
the weights before this update: most rules ignore it; SARPROP's step-error term needs it.

Conventions follow ``torch.optim`` (checked against it in the tests):

- SGD:      v = mu v + g;  p -= lr (g + mu v) with Nesterov, p -= lr v without (v = g if mu=0)
- Adam(W):  p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
            p -= lr / (1-b1^t) * m / (sqrt(v / (1-b2^t)) + eps)
- RMSprop:  v = rho v + (1-rho) g^2;  p -= lr g / (sqrt(v) + eps)
- iRPROP-:  per weight, step *= eta+ (bounded by step_max) while the gradient keeps its sign,
            step *= eta- (bounded by step_min) and the gradient is forgotten when it flips;
            p -= sign(g) step.  Full-batch gradients only.
- Adagrad:  s += g^2;  p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(s) + eps)
- NAdam:    g += wd p (or p *= 1 - lr wd, decoupled);  mu_t = b1 (1 - 0.5 * 0.96^(t psi));
            P *= mu_t (P, the product of all mu so far, is state: row 2, element 0);
            m, v as Adam;  d = sqrt(v / (1-b2^t)) + eps;
            p -= lr (1-mu_t)/(1-P) g/d + lr mu_{t+1}/(1 - P mu_{t+1}) m/d

FANN's full-batch rules, transcribed from FANN 2.2's ``fann_train.c`` with FANN's slope
(-dE/dw, summed over samples) replaced by -grad (grad: dE/dw of the mean loss), so FANN's
``learning_rate / num_data`` is ``lr`` here:

- Quickprop (``fann_update_weights_quickprop``): s = -g + decay p;  the step is lr s when
  the previous step d was ~0 (|d| <= 0.001); otherwise mu d when s has not shrunk below
  mu/(1+mu) of the previous slope, else the parabola's d s / (s_prev - s), plus lr s while s
  points the way d went;  p += step, clamped to +-1500.
- SARPROP (``fann_update_weights_sarprop``): iRPROP- on s = g - p 2^(wd_shift - T epoch)
  (FANN's sign), with epoch = t - 1; on a sign change the shrunk step gets a random
  rng * RMSE * 2^(err_shift - T epoch) added while it is below thresh * MSE, with
  MSE = 2 loss (the mean over samples of sum_j (p_j - y_j)^2 for ``squared_error``).
"""
import threading

import numpy as np
from numba import carray, njit, types
from numba.core.ccallback import CFunc
from numba.core.sigutils import normalize_signature
from numba.np.numpy_support import from_dtype

from .._cache import load_light
from .._config import JIT, JIT_INLINE
from .borrow import call_address, data_pointer
from .rng import keyed, uniform_at

# --- codes ---------------------------------------------------------------------------------
SGD = 0        # plain / momentum / Nesterov momentum (PyTorch's convention)
ADAM = 1       # Adam; AdamW when the decoupled weight decay is non-zero
RMSPROP = 2
RPROP = 3      # iRPROP-, full batch
ADAGRAD = 4
NADAM = 5
QUICKPROP = 6  # full batch
SARPROP = 7    # full batch

#: key of SARPROP's random numbers: uniform_at(keyed(SARPROP_KEY, t, 0), k) for weight k
SARPROP_KEY = np.uint64(0x5A4B4012)


@njit(**JIT)
def clip_by_global_norm(grad, max_norm):
    """Scale ``grad`` so that its Euclidean norm is at most ``max_norm``; returns the norm
    before clipping."""
    s = 0.0
    for k in range(grad.shape[0]):
        s += np.float64(grad[k]) * grad[k]
    norm = np.sqrt(s)
    if norm > max_norm:
        scale = grad.dtype.type(max_norm / norm)
        for k in range(grad.shape[0]):
            grad[k] *= scale
    return norm


@njit(**JIT)
def sgd(params, grad, velocity, lr, mu, nesterov):
    n = params.shape[0]
    lr_ = params.dtype.type(lr)
    mu_ = params.dtype.type(mu)
    if mu == 0.0:
        for k in range(n):
            params[k] -= lr_ * grad[k]
    elif nesterov:
        for k in range(n):
            g = grad[k]
            v = mu_ * velocity[k] + g
            velocity[k] = v
            params[k] -= lr_ * (g + mu_ * v)
    else:
        for k in range(n):
            v = mu_ * velocity[k] + grad[k]
            velocity[k] = v
            params[k] -= lr_ * v


@njit(**JIT)
def moment_coefficients(params, b1, b2, eps, t):
    """Adam's and NAdam's constants in the parameters' dtype: b1, 1 - b1, b2, 1 - b2, eps
    and 1 / sqrt(1 - b2^t) (the second moment's bias correction, as a factor on sqrt(v))."""
    dt = params.dtype.type
    return (dt(b1), dt(1.0 - b1), dt(b2), dt(1.0 - b2), dt(eps),
            dt(1.0 / np.sqrt(1.0 - b2 ** t)))


@njit(**JIT)
def adam(params, grad, m, v, lr, b1, b2, eps, wd, t):
    dt = params.dtype.type
    step = dt(lr / (1.0 - b1 ** t))
    decay = dt(1.0 - lr * wd)
    b1_, c1, b2_, c2, eps_, inv_c2 = moment_coefficients(params, b1, b2, eps, t)
    for k in range(params.shape[0]):
        g = grad[k]
        mk = b1_ * m[k] + c1 * g
        vk = b2_ * v[k] + c2 * g * g
        m[k] = mk
        v[k] = vk
        params[k] = params[k] * decay - step * mk / (np.sqrt(vk) * inv_c2 + eps_)


@njit(**JIT)
def rmsprop(params, grad, v, lr, rho, eps):
    dt = params.dtype.type
    lr_ = dt(lr)
    rho_ = dt(rho)
    c = dt(1.0 - rho)
    eps_ = dt(eps)
    for k in range(params.shape[0]):
        g = grad[k]
        vk = rho_ * v[k] + c * g * g
        v[k] = vk
        params[k] -= lr_ * g / (np.sqrt(vk) + eps_)


@njit(**JIT)
def irprop_minus(params, grad, prev_grad, steps, eta_plus, eta_minus, step_min, step_max):
    dt = params.dtype.type
    up = dt(eta_plus)
    down = dt(eta_minus)
    lo = dt(step_min)
    hi = dt(step_max)
    zero = dt(0)
    for k in range(params.shape[0]):
        g = grad[k]
        s = prev_grad[k] * g
        step = steps[k]
        if s > zero:
            step = min(step * up, hi)
        elif s < zero:
            step = max(step * down, lo)
            g = zero
        steps[k] = step
        prev_grad[k] = g
        if g > zero:
            params[k] -= step
        elif g < zero:
            params[k] += step


@njit(**JIT)
def adagrad(params, grad, acc, lr, lr_decay, eps, t):
    dt = params.dtype.type
    clr = dt(lr / (1.0 + (t - 1) * lr_decay))
    eps_ = dt(eps)
    for k in range(params.shape[0]):
        g = grad[k]
        s = acc[k] + g * g
        acc[k] = s
        params[k] -= clr * g / (np.sqrt(s) + eps_)


@njit(**JIT)
def nadam(params, grad, m, v, mu_product, lr, b1, b2, eps, psi, wd, decoupled, t):
    dt = params.dtype.type
    mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product[0] = mu_product[0] * mu  # kept in the state's dtype, as torch keeps it
    prod = np.float64(mu_product[0])
    c_g = dt(lr * (1.0 - mu) / (1.0 - prod))
    c_m = dt(lr * mu_next / (1.0 - prod * mu_next))
    decay = dt(1.0 - lr * wd) if decoupled else dt(1.0)
    l2 = dt(0.0) if decoupled else dt(wd)
    b1_, c1, b2_, c2, eps_, inv_c2 = moment_coefficients(params, b1, b2, eps, t)
    for k in range(params.shape[0]):
        p = params[k]
        g = grad[k] + l2 * p
        mk = b1_ * m[k] + c1 * g
        vk = b2_ * v[k] + c2 * g * g
        m[k] = mk
        v[k] = vk
        d = np.sqrt(vk) * inv_c2 + eps_
        params[k] = p * decay - c_g * g / d - c_m * mk / d


@njit(**JIT)
def quickprop(params, grad, prev_steps, prev_slopes, lr, decay, mu):
    dt = params.dtype.type
    eps_ = dt(lr)
    decay_ = dt(decay)
    mu_ = dt(mu)
    shrink = dt(mu / (1.0 + mu))
    zero = dt(0)
    tiny = dt(0.001)
    bound = dt(1500)
    for k in range(params.shape[0]):
        w = params[k]
        prev_step = prev_steps[k]
        slope = -grad[k] + decay_ * w  # FANN's slope: -dE/dw, plus its (negative) decay
        prev_slope = prev_slopes[k]
        step = zero
        if prev_step > tiny:
            if slope > zero:
                step += eps_ * slope
            if slope > shrink * prev_slope:
                step += mu_ * prev_step
            else:
                step += prev_step * slope / (prev_slope - slope)
        elif prev_step < -tiny:
            if slope < zero:
                step += eps_ * slope
            if slope < shrink * prev_slope:
                step += mu_ * prev_step
            else:
                step += prev_step * slope / (prev_slope - slope)
        else:
            step += eps_ * slope
        prev_steps[k] = step
        params[k] = min(max(w + step, -bound), bound)
        prev_slopes[k] = slope


@njit(**JIT)
def sarprop(params, grad, prev_steps, prev_slopes, eta_plus, eta_minus, step_min, step_max,
            wd_shift, threshold_factor, err_shift, temperature, t, loss):
    dt = params.dtype.type
    epoch = np.float64(t - 1)  # FANN's sarprop_epoch: 0 at the first update
    mse = 2.0 * loss
    rmse = np.sqrt(max(mse, 0.0))
    decay = dt(2.0 ** (wd_shift - temperature * epoch))
    noise = rmse * 2.0 ** (err_shift - temperature * epoch)
    threshold = dt(threshold_factor * mse)
    up = dt(eta_plus)
    down = dt(eta_minus)
    lo = dt(step_min)
    hi = dt(step_max)
    zero = dt(0)
    gen = keyed(SARPROP_KEY, t, 0)
    for k in range(params.shape[0]):
        prev_step = max(prev_steps[k], lo)
        slope = grad[k] - params[k] * decay  # FANN: -slope - w 2^(...), slope being -dE/dw
        same_sign = prev_slopes[k] * slope
        if same_sign > zero:
            step = min(prev_step * up, hi)
            if slope < zero:
                params[k] += step
            else:
                params[k] -= step
        elif same_sign < zero:
            if prev_step < threshold:
                step = prev_step * down + dt(uniform_at(gen, k) * noise)
            else:
                step = max(prev_step * down, lo)
            slope = zero
        else:
            # FANN stores a stale ``next_step`` here (the previous weight's, 0 for the first):
            # that depends on FANN's memory order, so the step is kept, as in RPROP
            step = prev_step
            if slope < zero:
                params[k] += prev_step
            else:
                params[k] -= prev_step
        prev_steps[k] = step
        prev_slopes[k] = slope


@njit(**JIT_INLINE)
def apply_update(opt, params, grad, state, hyper, t, loss):
    """One update of the flat ``params`` from the flat ``grad`` by optimizer code ``opt``
    (``hyper``: see the module docstring).  Inlined where it is called, so that a constant
    ``opt`` (:func:`update_rule`) leaves only its own branch to compile."""
    lr = hyper[0]
    if opt == SGD:
        sgd(params, grad, state[0], lr, hyper[1], hyper[2] != 0.0)
    elif opt == ADAM:
        adam(params, grad, state[0], state[1], lr, hyper[1], hyper[2], hyper[3], hyper[4], t)
    elif opt == RMSPROP:
        rmsprop(params, grad, state[0], lr, hyper[1], hyper[2])
    elif opt == RPROP:
        irprop_minus(params, grad, state[0], state[1], hyper[1], hyper[2], hyper[3], hyper[4])
    elif opt == ADAGRAD:
        adagrad(params, grad, state[0], lr, hyper[1], hyper[2], t)
    elif opt == NADAM:
        nadam(params, grad, state[0], state[1], state[2], lr, hyper[1], hyper[2], hyper[3],
              hyper[4], hyper[5], hyper[6] != 0.0, t)
    elif opt == QUICKPROP:
        quickprop(params, grad, state[0], state[1], lr, hyper[1], hyper[2])
    elif opt == SARPROP:
        sarprop(params, grad, state[0], state[1], hyper[1], hyper[2], hyper[3], hyper[4],
                hyper[5], hyper[6], hyper[7], hyper[8], t, loss)


def _rule(code):
    """The C-callable body of :func:`update_rule`: ``code`` is a constant of the closure, so
    :func:`apply_update` is compiled with its branch alone."""
    def rule(p, g, s, h, n, state_rows, state_cols, n_hyper, t, loss):
        apply_update(code, carray(p, n), carray(g, n), carray(s, (state_rows, state_cols)),
                     carray(h, n_hyper), t, loss)
    return rule


def _signature(dtype):
    """What every compiled rule of ``dtype`` takes: pointers to params, grad, state (C order)
    and hyper (float64), their sizes, the step count t and the loss."""
    p = types.CPointer(from_dtype(np.dtype(dtype)))
    return types.void(p, p, p, types.CPointer(types.float64), types.intp, types.intp,
                      types.intp, types.intp, types.int64, types.float64)


_rules = {}
_rules_lock = threading.Lock()


def update_rule(code, dtype):
    """The compiled update rule of optimizer ``code`` for parameters of ``dtype``: compiled
    (or loaded from the cache) at its first use in this process, then kept."""
    key = (int(code), np.dtype(dtype).name)
    rule = _rules.get(key)
    if rule is None:
        with _rules_lock:
            rule = _rules.get(key)
            if rule is None:
                options = {k: v for k, v in JIT.items() if k not in ("cache", "nogil")}
                rule = CFunc(_rule(key[0]), normalize_signature(_signature(dtype)), {}, options)
                if JIT["cache"]:
                    rule.enable_caching()
                    load_light(rule)  # as the kernels load (fastbp._cache)
                rule.compile()
                _rules[key] = rule
    return rule


@njit(**JIT_INLINE)
def plain_sgd(opt, hyper, clip, alpha):
    """Whether a training step is plain SGD (no momentum, clipping or L2 penalty): the step
    the training kernels may fuse into the backward pass."""
    return opt == SGD and hyper[1] == 0.0 and clip == 0.0 and alpha == 0.0


def made_rules():
    """{(optimizer code, dtype name): compiled rule} of every rule made in this process so
    far (a copy; for ``fastbp.warmup``'s statistics)."""
    return dict(_rules)


@njit(**JIT)
def update(rule, params, grad, state, hyper, t, loss):
    """One update of the flat ``params`` from the flat ``grad`` by the compiled rule at
    address ``rule`` (``update_rule(...).address``); ``state`` is C-contiguous (slots,
    n_params).  ``t`` is the 1-based step count."""
    call_address(rule, (data_pointer(params), data_pointer(grad), data_pointer(state),
                        data_pointer(hyper), params.shape[0], state.shape[0], state.shape[1],
                        hyper.shape[0], np.int64(t), np.float64(loss)))
