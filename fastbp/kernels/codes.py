"""The layer table ("spec") the kernels read, and the registry's codes under one roof.

A network is described to the kernels by an int64 table with one row per *layer row*: a dense
layer, or a normalization of the dense layer before it.  Every row computes its operation and
then its activation (identity for a dense row followed by a normalization).  The names and
codes of activations, losses and layer kinds come from :mod:`fastbp.registry` (re-exported
here for kernels written against this module).
"""
from ..registry import (ABSOLUTE_ERROR, BATCH_NORM, BINARY_CROSS_ENTROPY,  # noqa: F401
                        CROSS_ENTROPY, DENSE, ELU, EXP, GELU, GRU, HUBER, IDENTITY, LAYER_NORM,
                        LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, LSTM, POISSON, RELU, RNN, SILU,
                        SOFTMAX, SOFTPLUS, SQUARED_ERROR, TANH)

# --- layer table ("spec"): one int64 row per layer row -------------------------------------
KIND = 0    # layer kind (registry.LAYER_KINDS): DENSE, BATCH_NORM, LAYER_NORM, RNN, GRU, LSTM
N_IN = 1    # inputs of the row (per step for a recurrent row)
N_OUT = 2   # outputs (units) of the row (N_IN for a normalization; DIRS x units recurrent)
W_OFF = 3   # dense: offset of the unit-by-unit (N_OUT, N_IN) weights; norm: of the scales;
#             recurrent: of weight_ih (then weight_hh, bias_ih, bias_hh, then the reverse set)
B_OFF = 4   # dense: offset of the N_OUT biases; norm: of the N_OUT shifts; recurrent: the
#             end of the layer's parameters
ACT = 5     # activation code, applied after the row's operation (identity: recurrent)
A_OFF = 6   # per-row offset of the row's block in the activation buffer (sum of N_OUT before;
#             recurrent rows keep their states in the sequence scratch instead: 0)
S_OFF = 7   # batch norm: offset of running_mean (then running_var) in the buffer vector
T_OFF = 8   # norm: per-row offset of its statistics block in the workspace's ``stats``
EPS = 9     # norm: epsilon, as the bits of a float64 (see mathfn.bits_to_float); the output
            # layer's dense row: the loss's parameter (huber's epsilon), same encoding
MOMENTUM = 10  # batch norm: running-statistics momentum, float64 bits
DIRS = 11   # recurrent: 1, or 2 when bidirectional (0 for other rows)
CELL_ACT = 12  # recurrent: the Elman cell's activation code (tanh or relu; GRU/LSTM: tanh)
SEQ = 13    # recurrent: 1 when the row returns the whole sequence, 0 for the last step
SPEC_COLUMNS = 14

# --- forward-pass modes ------------------------------------------------------------------
EVAL = 0         # normalization by running statistics (prediction, evaluation)
TRAIN = 1        # batch statistics, running statistics updated (fit)
TRAIN_PURE = 2   # batch statistics, running statistics left alone (gradient checks)
