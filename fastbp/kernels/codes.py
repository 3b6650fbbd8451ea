"""Integer codes shared by the kernels and the Python layer.

Kernels take plain integers instead of strings or objects; this module is the one table that
maps names to those integers.  Numba treats these module globals as compile-time constants.
"""

# --- activations (per layer) -------------------------------------------------------------
IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5

#: slope of leaky_relu for negative inputs
LEAKY_SLOPE = 0.01

ACTIVATIONS = {
    "identity": IDENTITY,
    "linear": IDENTITY,
    "logistic": LOGISTIC,
    "sigmoid": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}
#: canonical name of each code (the first spelling listed above)
ACTIVATION_NAMES = {IDENTITY: "identity", LOGISTIC: "logistic", TANH: "tanh", RELU: "relu",
                    LEAKY_RELU: "leaky_relu", SOFTMAX: "softmax"}

# --- losses --------------------------------------------------------------------------------
SQUARED_ERROR = 0
BINARY_CROSS_ENTROPY = 1
CROSS_ENTROPY = 2

LOSSES = {"squared_error": SQUARED_ERROR, "binary_cross_entropy": BINARY_CROSS_ENTROPY,
          "cross_entropy": CROSS_ENTROPY}
LOSS_NAMES = {v: k for k, v in LOSSES.items()}

# --- layer table ("spec"): one int64 row per layer -----------------------------------------
#: columns of the (n_layers, 6) int64 array that describes a network to the kernels
N_IN = 0    # inputs of the layer
N_OUT = 1   # outputs (units) of the layer
W_OFF = 2   # offset of the (N_IN, N_OUT) row-major weight matrix in the flat vector
B_OFF = 3   # offset of the N_OUT biases in the flat vector
ACT = 4     # activation code
A_OFF = 5   # per-row offset of the layer's block in the activation buffer (sum of N_OUT before)
SPEC_COLUMNS = 6

# --- optimizers ----------------------------------------------------------------------------
SGD = 0        # plain / momentum / Nesterov momentum (PyTorch's convention)
ADAM = 1       # Adam; AdamW when the decoupled weight decay is non-zero
RMSPROP = 2
RPROP = 3      # iRPROP-, full batch

#: slots (flat twins of the parameter vector) each optimizer keeps
OPTIMIZER_SLOTS = {SGD: 1, ADAM: 2, RMSPROP: 1, RPROP: 2}

# --- hyperparameter vector (float64) -------------------------------------------------------
#: indices into the float64 ``hyper`` array every training kernel takes; changing a value here
#: never triggers a recompilation.
H_LR = 0            # learning rate (current, after the schedule)
H_MOMENTUM = 1      # SGD momentum
H_NESTEROV = 2      # 1.0 for Nesterov momentum
H_BETA1 = 3         # Adam
H_BETA2 = 4         # Adam
H_EPS = 5           # Adam, RMSprop
H_WEIGHT_DECAY = 6  # AdamW decoupled weight decay
H_RHO = 7           # RMSprop decay
H_ALPHA = 8         # L2 penalty (scikit-learn's alpha convention)
H_CLIP = 9          # clip the gradient to this global norm (0 = off)
H_ETA_PLUS = 10     # RPROP step increase factor
H_ETA_MINUS = 11    # RPROP step decrease factor
H_STEP_MIN = 12     # RPROP smallest step
H_STEP_MAX = 13     # RPROP largest step
N_HYPER = 14
