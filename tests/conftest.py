import os
import pathlib

import numpy as np
import pytest

FANN_DIR = pathlib.Path(os.environ.get(
    "FASTBP_FANN_DATA", pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fann"))


def fann_path(name):
    """Path of a FANN benchmark file from ../shared/datasets/fann, or skip the test."""
    p = FANN_DIR / name
    if not p.exists():
        pytest.skip(f"FANN data set {name} not found under {FANN_DIR} (set FASTBP_FANN_DATA)")
    return p


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, scaled to [0, 1], split 75/25 stratified (seed 0)."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    d = datasets.load_digits()
    X = d.data / 16.0
    return model_selection.train_test_split(X, d.target, test_size=0.25, stratify=d.target,
                                            random_state=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
