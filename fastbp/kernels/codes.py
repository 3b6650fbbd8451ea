"""The layer table ("spec") the kernels read, and the registry's codes under one roof.

A network is described to the kernels by an int64 table with one row per *layer row*: a dense
layer, or a normalization of the dense layer before it.  Every row computes its operation and
then its activation (identity for a dense row followed by a normalization).  The names and
codes of activations, losses and layer kinds come from :mod:`fastbp.registry` (re-exported
here for kernels written against this module).
"""
from ..registry import (ABSOLUTE_ERROR, BATCH_NORM, BINARY_CROSS_ENTROPY,  # noqa: F401
                        CROSS_ENTROPY, DENSE, ELU, EXP, GELU, HUBER, IDENTITY, LAYER_NORM,
                        LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, POISSON, RELU, SILU, SOFTMAX,
                        SOFTPLUS, SQUARED_ERROR, TANH)

# --- layer table ("spec"): one int64 row per layer row -------------------------------------
KIND = 0    # layer kind (registry.LAYER_KINDS): DENSE, BATCH_NORM, LAYER_NORM
N_IN = 1    # inputs of the row
N_OUT = 2   # outputs (units) of the row (N_IN for a normalization)
W_OFF = 3   # dense: offset of the unit-by-unit (N_OUT, N_IN) weights; norm: of the scales
B_OFF = 4   # dense: offset of the N_OUT biases; norm: of the N_OUT shifts
ACT = 5     # activation code, applied after the row's operation
A_OFF = 6   # per-row offset of the row's block in the activation buffer (sum of N_OUT before)
S_OFF = 7   # batch norm: offset of running_mean (then running_var) in the buffer vector
T_OFF = 8   # norm: per-row offset of its statistics block in the workspace's ``stats``
EPS = 9     # norm: epsilon, as the bits of a float64 (see mathfn.bits_to_float); the output
            # layer's dense row: the loss's parameter (huber's epsilon), same encoding
MOMENTUM = 10  # batch norm: running-statistics momentum, float64 bits
SPEC_COLUMNS = 11

# --- forward-pass modes ------------------------------------------------------------------
EVAL = 0         # normalization by running statistics (prediction, evaluation)
TRAIN = 1        # batch statistics, running statistics updated (fit)
TRAIN_PURE = 2   # batch statistics, running statistics left alone (gradient checks)
