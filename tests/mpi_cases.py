"""Training set-ups shared by an MPI job (tests/mpi_job.py) and its one-rank reference."""
import numpy as np

import fastbp


def options_network():
    return fastbp.Network([5, fastbp.Dense(8, "tanh", normalization="layer"),
                           fastbp.Dense(6, "relu"), 3], dtype=np.float64, seed=0)


def options_case():
    """Data, validation data, sample weights and options shared with the one-rank run."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(96, 5)), rng.integers(0, 3, 96)
    Xv, yv = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    sw = rng.uniform(0.2, 2.0, 96)
    return X, y, dict(epochs=12, optimizer=fastbp.Adam(0.02), shuffle=False, seed=3,
                      dropout=0.2, schedule=fastbp.StepDecay(step_size=2, gamma=0.7),
                      validation_data=(Xv, yv), early_stopping=True, patience=3,
                      restore_best=True, sw=sw, alpha=1e-3, clip_norm=5.0)


def recurrent_case():
    """Sequences of varied lengths with per-step labels, for a recurrent network trained with
    dropout, sample weights, clipping and truncated BPTT; validation data with lengths."""
    rng = np.random.default_rng(1)
    X, lens = rng.normal(size=(96, 6, 3)), rng.integers(1, 7, 96)
    y = rng.integers(0, 3, (96, 6))
    Xv, lv, yv = rng.normal(size=(40, 6, 3)), rng.integers(1, 7, 40), rng.integers(0, 3, (40, 6))
    net = fastbp.Network([3, fastbp.GRU(5, return_sequences=True, bidirectional=True),
                          fastbp.LSTM(4, return_sequences=True), 3], seed=0)
    return net, X, y, lens, (Xv, yv, None, lv), dict(
        epochs=3, optimizer=fastbp.Adam(0.02), shuffle=False, seed=3, dropout=0.2,
        sw=rng.uniform(0.2, 2.0, 96), clip_norm=1.0, bptt_steps=4)
