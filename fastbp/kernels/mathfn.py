"""exp, tanh and logistic that LLVM can vectorize.

NumPy's ``np.exp``/``np.tanh`` compile to calls into the C math library, one element at a
time (Numba's SVML path needs an Intel runtime we do not depend on).  In a network with 32
tanh units, those calls cost more than the layer's multiply-adds.  The versions here are
polynomials and rational functions with no calls, so a loop over a layer becomes SIMD code.

Accuracy (checked against NumPy in ``tests/test_mathfn.py``): a few units in the last place for
float32 and float64 inputs.  Coefficients are the classic Cephes ones (S. Moshier, exp.c,
expf.c, tanh.c) and, for float32 tanh, the rational minimax fit used by Eigen and XLA.

Each function is overloaded on the argument type: float32 code never touches float64.
"""
import numpy as np
from numba import types
from numba.extending import intrinsic, overload


# no "reassoc": it would fold the two-constant range reductions below and lose precision
_OPTS = {"fastmath": {"nsz", "contract"}, "error_model": "numpy", "no_cpython_wrapper": True}


@intrinsic
def bits_to_float(typingctx, bits):
    """Reinterpret the bits of an int32 (int64) as a float32 (float64)."""
    if bits == types.int32:
        out = types.float32
    elif bits == types.int64:
        out = types.float64
    else:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(out))

    return out(bits), codegen


def exp(x):
    """e**x (vectorizable); for plain Python calls this is NumPy's."""
    return np.exp(x)


def tanh(x):
    """tanh(x) (vectorizable); for plain Python calls this is NumPy's."""
    return np.tanh(x)


def logistic(x):
    """1 / (1 + e**-x) (vectorizable)."""
    return 1.0 / (1.0 + np.exp(-x))


@overload(exp, jit_options=_OPTS)
def _exp(x):
    if x == types.float32:
        def impl(x):
            x = min(max(x, np.float32(-87.33654)), np.float32(88.72283))
            z = np.floor(np.float32(1.44269504088896341) * x + np.float32(0.5))
            x = x - z * np.float32(0.693359375)
            x = x - z * np.float32(-2.12194440e-4)
            n = np.int32(z)
            xx = x * x
            p = ((((((np.float32(1.9875691500e-4) * x + np.float32(1.3981999507e-3)) * x
                     + np.float32(8.3334519073e-3)) * x + np.float32(4.1665795894e-2)) * x
                   + np.float32(1.6666665459e-1)) * x + np.float32(5.0000001201e-1)) * xx
                 + x + np.float32(1.0))
            # 2**n as two factors, so n = 128 (x near the top of the range) does not overflow
            h = n >> 1
            a = bits_to_float(np.int32((h + 127) << 23))
            b = bits_to_float(np.int32((n - h + 127) << 23))
            return p * a * b
        return impl
    if x == types.float64:
        def impl(x):
            x = min(max(x, -708.3964185322641), 709.782712893384)
            z = np.floor(1.4426950408889634 * x + 0.5)
            x = x - z * 6.93145751953125e-1
            x = x - z * 1.42860682030941723212e-6
            n = np.int64(z)
            xx = x * x
            px = x * ((1.26177193074810590878e-4 * xx + 3.02994407707441961300e-2) * xx
                      + 9.99999999999999999910e-1)
            qx = (((3.00198505138664455042e-6 * xx + 2.52448340349684104192e-3) * xx
                   + 2.27265548208155028766e-1) * xx + 2.00000000000000000009e0)
            p = 1.0 + 2.0 * (px / (qx - px))
            h = n >> 1
            a = bits_to_float(np.int64((h + 1023) << 52))
            b = bits_to_float(np.int64((n - h + 1023) << 52))
            return p * a * b
        return impl


@overload(tanh, jit_options=_OPTS)
def _tanh(x):
    if x == types.float32:
        def impl(x):
            # rational minimax fit on [-7.9, 7.9]; tanh is +-1 in float32 beyond that
            x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
            x2 = x * x
            p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
            p = x2 * p + np.float32(-8.60467152213735e-11)
            p = x2 * p + np.float32(5.12229709037114e-08)
            p = x2 * p + np.float32(1.48572235717979e-05)
            p = x2 * p + np.float32(6.37261928875436e-04)
            p = x2 * p + np.float32(4.89352455891786e-03)
            p = x * p
            q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
            q = x2 * q + np.float32(2.26843463243900e-03)
            q = x2 * q + np.float32(4.89352518554385e-03)
            return p / q
        return impl
    if x == types.float64:
        def impl(x):
            a = abs(x)
            # small |x|: odd rational function (Cephes); large: 1 - 2 / (e^{2|x|} + 1)
            z = x * x
            small = x + x * z * (((-9.64399179425052238628e-1 * z
                                   - 9.92877231001918586564e1) * z
                                  - 1.61468768441708447952e3)
                                 / (((z + 1.12811678491632931402e2) * z
                                     + 2.23548839060100448583e3) * z
                                    + 4.84406305325125486048e3))
            e = exp(min(2.0 * a, 709.0))
            big = 1.0 - 2.0 / (e + 1.0)
            big = big if x >= 0.0 else -big
            return small if a < 0.625 else big
        return impl


@overload(logistic, jit_options=_OPTS)
def _logistic(x):
    if x == types.float32:
        def impl(x):
            return np.float32(1.0) / (np.float32(1.0) + exp(-x))
        return impl
    if x == types.float64:
        def impl(x):
            return 1.0 / (1.0 + exp(-x))
        return impl


def like(x, c):
    """The constant ``c`` in the float type of ``x`` (so float32 code stays float32)."""
    return type(x)(c)


@overload(like, jit_options=_OPTS)
def _like(x, c):
    if x == types.float32:
        return lambda x, c: np.float32(c)
    if x == types.float64:
        return lambda x, c: np.float64(c)
