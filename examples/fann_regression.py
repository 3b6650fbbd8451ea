"""Regression on a FANN benchmark data set (robot arm: 48 inputs, 3 outputs), read from
FANN's training-file format, trained with a fastbp Network, evaluated on FANN's test file.

    python examples/fann_regression.py [path/to/datasets/fann]

The data sets are not part of fastbp; by default they are looked up in
../shared/datasets/fann next to the repository (or $FASTBP_FANN_DATA).
"""
import os
import pathlib
import sys

import numpy as np

import fastbp

DEFAULT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fann"


def main(directory=None):
    directory = pathlib.Path(directory or os.environ.get("FASTBP_FANN_DATA", DEFAULT))
    X, Y = fastbp.read_fann_data(directory / "robot.train")
    X_test, Y_test = fastbp.read_fann_data(directory / "robot.test")
    # FANN's robot example: 96 hidden tanh units; here a smooth output and Adam
    net = fastbp.Network([X.shape[1], 96, Y.shape[1]], hidden_activation="tanh",
                         output="identity", dtype=np.float64, seed=0)
    history = net.fit(X, Y, epochs=300, batch_size=16, optimizer="adam", learning_rate=1e-3,
                      seed=0, validation_data=(X_test, Y_test))
    P = net.predict(X_test)
    mse = float(np.mean((P - Y_test) ** 2))  # FANN's MSE: mean over samples and outputs
    print(f"robot: {X.shape[0]} training / {X_test.shape[0]} test samples, "
          f"{history.epochs} epochs in {sum(history.seconds):.2f} s")
    print(f"test MSE {mse:.4f} (FANN 2.2's robot example: 0.0066), test R^2 "
          f"{history.val_score[-1]:.3f}")
    return mse


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
