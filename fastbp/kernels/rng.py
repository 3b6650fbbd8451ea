"""A tiny counter-based generator (SplitMix64) whose whole state is one uint64.

The kernels carry the state in a 1-element ``uint64`` array, so shuffling and dropout are
reproducible from a seed, independent of NumPy's and Numba's global generators, and identical
in every process.
"""
import numpy as np
from numba import njit

from .._config import JIT

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(**JIT)
def next_u64(state):
    """Advance ``state`` (uint64[1]) and return the next 64 random bits."""
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(**JIT)
def uniform(state):
    """A float64 uniform in [0, 1)."""
    return np.float64(next_u64(state) >> _S11) * _INV53


@njit(**JIT)
def below(state, n):
    """An integer uniform in [0, n) (n >= 1); modulo bias < n / 2**64."""
    return np.int64(next_u64(state) % np.uint64(n))


@njit(**JIT)
def shuffle(order, state):
    """Fisher-Yates shuffle of the int64 array ``order`` in place."""
    for i in range(order.shape[0] - 1, 0, -1):
        j = below(state, i + 1)
        t = order[i]
        order[i] = order[j]
        order[j] = t


@njit(**JIT)
def mix64(z):
    """SplitMix64's finalizer: 64 well-mixed bits from ``z``."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(**JIT)
def keyed(key, a, b):
    """A generator start state that depends only on (key, a, b): so a dropout mask is a
    function of the seed, the update number, the layer and the sample's position in the
    global batch, and two MPI ranks draw what one rank would."""
    return mix64(mix64(key ^ mix64(np.uint64(a) * _GOLDEN)) + np.uint64(b) * _MIX1)


@njit(**JIT)
def uniform_at(state, k):
    """The k-th float64 uniform in [0, 1) of the stream that starts at ``state``."""
    return np.float64(mix64(state + np.uint64(k + 1) * _GOLDEN) >> _S11) * _INV53
