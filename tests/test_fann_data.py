"""FANN training-data files: reading the real data sets, round trips, malformed files."""
import numpy as np
import pytest

import fastbp
from conftest import fann_path
from fastbp.fann import FannFormatError


def test_reads_fann_benchmark_files():
    X, Y = fastbp.read_fann_data(fann_path("thyroid.train"))
    assert X.shape == (3600, 21) and Y.shape == (3600, 3)
    assert np.all(Y.sum(axis=1) == 1)  # one-hot classes
    X, Y = fastbp.read_fann_data(fann_path("robot.train"), dtype=np.float32)
    assert X.shape == (374, 48) and Y.shape == (374, 3) and X.dtype == np.float32


def test_write_then_read_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.random((7, 2))
    path = tmp_path / "set.data"
    fastbp.write_fann_data(path, X, Y)
    assert path.read_text().splitlines()[0] == "7 3 2"
    X2, Y2 = fastbp.read_fann_data(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(Y2, Y)
    fastbp.write_fann_data(path, X, Y[:, 0])  # a 1-D target is one output
    assert fastbp.read_fann_data(path)[1].shape == (7, 1)


@pytest.mark.parametrize("text,message", [
    ("", "empty file"),
    ("3 2\n1 2\n3\n", "header of three integers"),
    ("two 2 1\n", "header of three integers"),
    ("0 2 1\n", "must be positive"),
    ("2 2 1\n1 2\n3\n4 5\n", r"promises 2 samples of 2 inputs and 1 outputs \(6 numbers\), "
                              r"but the file holds 5"),
    ("2 2 1\n1 2\n3\n4 five\n6\n", r"line 4: 'five' is not a number"),
    ("1 2 1\n1 nan\n0\n", "line 2: 'nan' is not a finite number"),
])
def test_malformed_files_get_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.data"
    path.write_text(text)
    with pytest.raises(FannFormatError, match=message):
        fastbp.read_fann_data(path)


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "bin.data"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(FannFormatError, match="not a FANN data file"):
        fastbp.read_fann_data(path)


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        fastbp.write_fann_data(tmp_path / "x", np.ones((3, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="finite"):
        fastbp.write_fann_data(tmp_path / "x", np.full((1, 2), np.nan), np.ones((1, 1)))
