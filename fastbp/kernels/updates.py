"""Update rules on the flat parameter vector, one loop over all parameters each.

``state`` is a (slots, n_params) array: each row is a flat twin of the parameter vector
(velocity, first/second moments, previous gradient, step sizes).  ``hyper`` is the float64
hyperparameter vector indexed by the ``H_*`` codes, so changing a learning rate or a momentum
never recompiles anything.  ``t`` is the 1-based number of this update (Adam's bias
correction).

Conventions follow ``torch.optim`` (checked against it in the tests):

- SGD:      v = mu v + g;  p -= lr (g + mu v) with Nesterov, p -= lr v without (v = g if mu=0)
- Adam(W):  p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
            p -= lr / (1-b1^t) * m / (sqrt(v / (1-b2^t)) + eps)
- RMSprop:  v = rho v + (1-rho) g^2;  p -= lr g / (sqrt(v) + eps)
- iRPROP-:  per weight, step *= eta+ (bounded by step_max) while the gradient keeps its sign,
            step *= eta- (bounded by step_min) and the gradient is forgotten when it flips;
            p -= sign(g) step.  Full-batch gradients only.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .codes import (ADAM, H_BETA1, H_BETA2, H_CLIP, H_EPS, H_ETA_MINUS, H_ETA_PLUS, H_LR,
                    H_MOMENTUM, H_NESTEROV, H_RHO, H_STEP_MAX, H_STEP_MIN, H_WEIGHT_DECAY, N_IN,
                    N_OUT, RMSPROP, RPROP, SGD, W_OFF)


@njit(**JIT)
def add_l2(params, grad, spec, coef):
    """grad_W += coef * W for every weight matrix (not the biases); returns sum of W**2."""
    c = params.dtype.type(coef)
    total = 0.0
    for l in range(spec.shape[0]):
        w0 = spec[l, W_OFF]
        count = spec[l, N_IN] * spec[l, N_OUT]
        W = params[w0:w0 + count]
        G = grad[w0:w0 + count]
        s = params.dtype.type(0)
        for k in range(count):
            w = W[k]
            G[k] += c * w
            s += w * w
        total += s
    return total


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
def adam(params, grad, m, v, lr, b1, b2, eps, wd, t):
    dt = params.dtype.type
    step = dt(lr / (1.0 - b1 ** t))
    inv_c2 = dt(1.0 / np.sqrt(1.0 - b2 ** t))
    decay = dt(1.0 - lr * wd)
    b1_ = dt(b1)
    b2_ = dt(b2)
    c1 = dt(1.0 - b1)
    c2 = dt(1.0 - b2)
    eps_ = dt(eps)
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
def apply_update(opt, params, grad, state, hyper, t):
    """One update of the flat ``params`` from the flat ``grad`` by optimizer code ``opt``."""
    if hyper[H_CLIP] > 0.0:
        clip_by_global_norm(grad, hyper[H_CLIP])
    lr = hyper[H_LR]
    if opt == SGD:
        sgd(params, grad, state[0], lr, hyper[H_MOMENTUM], hyper[H_NESTEROV] != 0.0)
    elif opt == ADAM:
        adam(params, grad, state[0], state[1], lr, hyper[H_BETA1], hyper[H_BETA2],
             hyper[H_EPS], hyper[H_WEIGHT_DECAY], t)
    elif opt == RMSPROP:
        rmsprop(params, grad, state[0], lr, hyper[H_RHO], hyper[H_EPS])
    elif opt == RPROP:
        irprop_minus(params, grad, state[0], state[1], hyper[H_ETA_PLUS], hyper[H_ETA_MINUS],
                     hyper[H_STEP_MIN], hyper[H_STEP_MAX])
