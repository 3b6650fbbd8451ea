"""Every example runs (under a minute) and reaches the result it prints about."""
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import FANN_DIR, fann_path

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def run_example(name, *args, timeout=120):
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def number_after(text, label):
    return float(re.search(re.escape(label) + r"\s*([-0-9.]+)", text).group(1))


def test_digits_pipeline_with_grid_search():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    out = run_example("digits_pipeline.py")
    assert number_after(out, "test accuracy") >= 0.95


def test_fann_regression():
    fann_path("robot.train")  # skips where the data sets are absent
    out = run_example("fann_regression.py", FANN_DIR)
    assert number_after(out, "test MSE") < 0.012


def test_online_stream():
    out = run_example("online_stream.py")
    assert number_after(out, "prequential accuracy over the whole stream:") > 0.8
    last = re.findall(r"accuracy on the last 12 chunks ([0-9.]+)", out)
    assert float(last[-1]) > 0.9  # recovered after the drift


def test_njit_kernels_evolution_strategy():
    out = run_example("njit_kernels.py")
    start, end = map(float, re.search(r"loss ([0-9.]+) -> ([0-9.]+)", out).groups())
    assert end < 0.2 < start
    assert number_after(out, ", accuracy") > 0.9


def test_sunspots_lstm_beats_persistence():
    pytest.importorskip("statsmodels", reason="statsmodels is not installed (its sunspots "
                                              "data set; pip install '.[examples]')")
    # this file runs before the recurrent tests: with a cold kernel cache the example
    # compiles the recurrent kernels itself (minutes on a busy 2-core machine)
    out = run_example("sunspots_lstm.py", timeout=900)
    lstm = number_after(out, "LSTM test MSE")
    persistence = number_after(out, "persistence test MSE")
    assert lstm < persistence
