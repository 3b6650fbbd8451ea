"""The installed ``fastbp`` command, run in subprocesses as a user would."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import fann_path


def fastbp_cmd():
    exe = shutil.which("fastbp", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "fastbp"]


def run(*args, cwd=None):
    return subprocess.run(fastbp_cmd() + [str(a) for a in args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_the_command_is_installed():
    exe = shutil.which("fastbp", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
    assert exe, "the fastbp console script is not installed next to this Python"


def test_train_and_predict_on_fann_thyroid(tmp_path):
    model = tmp_path / "thyroid.npz"
    out = run("train", fann_path("thyroid.train"), "--hidden", "32", "--epochs", "40",
              "--optimizer", "adam", "--out", model, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "validation accuracy" in out.stderr and model.exists()
    pred = run("predict", model, fann_path("thyroid.test"))
    assert pred.returncode == 0, pred.stderr
    lines = pred.stdout.splitlines()
    assert lines[0] == "prediction,p_0,p_1,p_2" and len(lines) == 3601
    predicted = np.array([int(line.split(",")[0]) for line in lines[1:]])
    import fastbp
    _, Y = fastbp.read_fann_data(fann_path("thyroid.test"))
    accuracy = np.mean(predicted == Y.argmax(axis=1))
    assert accuracy >= 0.93  # the majority class alone gives 0.927
    assert f"accuracy {accuracy:.4f}" in pred.stderr


def test_train_and_predict_on_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    species = np.where(X[:, 0] + X[:, 1] > 0, "setosa", "virginica")
    csv = tmp_path / "data.csv"
    lines = ["a,b,species,c"] + [f"{x[0]},{x[1]},{s},{x[2]}" for x, s in zip(X, species)]
    csv.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.npz"
    out = run("train", csv, "--target", "species", "--epochs", "60", "--hidden", "8",
              "--learning-rate", "0.01",
              "--out", model, "--quiet")
    assert out.returncode == 0, out.stderr
    preds = tmp_path / "p.csv"
    pred = run("predict", model, csv, "--out", preds)
    assert pred.returncode == 0, pred.stderr
    rows = preds.read_text().splitlines()
    assert rows[0] == "prediction,p_setosa,p_virginica"
    got = np.array([r.split(",")[0] for r in rows[1:]])
    assert np.mean(got == species) > 0.9


def test_regression_csv(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = X[:, 0] * 2 - X[:, 1]
    csv = tmp_path / "r.csv"
    csv.write_text("u,v,y\n" + "\n".join(f"{a},{b},{t}" for (a, b), t in zip(X, y)) + "\n")
    model = tmp_path / "r.npz"
    assert run("train", csv, "--epochs", "80", "--hidden", "16", "--learning-rate", "0.01",
               "--out", model,
               "--quiet").returncode == 0
    pred = run("predict", model, csv)
    assert pred.returncode == 0 and pred.stdout.splitlines()[0] == "prediction"
    assert "R^2" in pred.stderr


@pytest.mark.parametrize("args,message", [
    (["train", "/no/such/file.csv"], "/no/such/file.csv: no such file"),
    (["predict", "/no/such/model.npz", "x.csv"], "/no/such/model.npz: no such file"),
])
def test_bad_paths_exit_nonzero_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"fastbp {args[0]}: error: {message}"]
    assert "Traceback" not in out.stderr


def test_bad_csv_and_mismatched_features(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,0\n3,oops,1\n")
    out = run("train", bad)
    assert out.returncode == 2 and "line 3: feature value 'oops' is not a number" in out.stderr
    assert "Traceback" not in out.stderr
    good = tmp_path / "good.csv"
    good.write_text("a,b,y\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(40)) + "\n")
    model = tmp_path / "m.npz"
    assert run("train", good, "--epochs", "2", "--out", model, "--quiet").returncode == 0
    three = tmp_path / "three.csv"
    three.write_text("a,b,c,y\n1,2,3,0\n")
    out = run("predict", model, three)
    assert out.returncode == 2 and "3 feature columns, the model expects 2" in out.stderr
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.ones(2))
    out = run("predict", foreign, good)
    assert out.returncode == 2 and "not a fastbp model file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "predict", "demo", "bench", "warmup"])
def test_every_command_has_help(command):
    out = run(command, "--help")
    assert out.returncode == 0 and "usage: fastbp " + command in out.stdout


def _one_line_error(out, *fragments):
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    from fastbp.cli import read_csv
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfa,b,y\n1,2,0\n3,4,1\n")
    features, X, target, _ = read_csv(bom)
    assert features == ["a", "b"] and target == "y" and X.tolist() == [[1, 2], [3, 4]]


def test_a_field_beyond_the_csv_limit_is_a_one_line_error(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text("a,b,y\n1,2,0\n1," + "9" * 200_000 + ",0\n")
    _one_line_error(run("train", long), "long.csv, line 3: field larger than field limit")


@pytest.mark.parametrize("option,value,message", [
    ("--hidden", "99999999999999", "argument --hidden: layer sizes must be in 1..2147483648"),
    ("--hidden", "8,x", "argument --hidden: 'x' is not a layer size"),
    ("--hidden", "100000,100000", "parameters, more than the 2147483648 fastbp allows"),
    ("--patience", "0", "argument --patience: the value must be >= 1, got 0"),
    ("--epochs", "0", "argument --epochs: the value must be >= 1"),
    ("--epochs", "1.5", "argument --epochs: '1.5' is not an integer"),
    ("--batch-size", "-3", "argument --batch-size: the value must be >= 1"),
    ("--validation-fraction", "1", "argument --validation-fraction: the value must be < 1"),
    ("--validation-fraction", "-0.1", "argument --validation-fraction: the value must be >= 0"),
    ("--learning-rate", "0", "argument --learning-rate: the value must be > 0"),
    ("--learning-rate", "nan", "argument --learning-rate: the value must be finite"),
])
def test_bad_option_values_are_one_line_errors_before_any_work(tmp_path, option, value,
                                                                 message):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(20)) + "\n")
    _one_line_error(run("train", data, option, value, "--quiet", "--out", tmp_path / "m.npz"),
                    message)


def test_predict_with_a_saved_classifier_prints_its_labels(tmp_path):
    from fastbp.sklearn import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.where(X[:, 0] > 0, "left", "right")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=80, random_state=0).fit(X, y)
    model = tmp_path / "clf.npz"
    clf.save(model)
    data = tmp_path / "x.csv"
    data.write_text("u,v\n" + "\n".join(f"{a},{b}" for a, b in X) + "\n")
    out = run("predict", model, data)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "prediction,p_left,p_right"
    got = [line.split(",")[0] for line in lines[1:]]
    assert got == clf.predict(X).tolist()
    _one_line_error(run("predict", model, fann_path("thyroid.test")),
                    "21 features per sample, the model expects 2")


_PEAK = r"""
import os, resource, sys
import numpy as np
from fastbp.cli import read_csv
pid = os.fork()  # a fresh process: ru_maxrss carried over an exec says nothing about ours
if pid == 0:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    features, X, target, y = read_csv(sys.argv[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) * 1024, X.nbytes, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_reading_a_big_csv_needs_about_twice_its_float_size(tmp_path):
    rng = np.random.default_rng(0)
    big = tmp_path / "big.csv"
    block = rng.normal(size=(20_000, 20))
    with open(big, "w") as f:
        f.write(",".join(f"x{i}" for i in range(20)) + ",y\n")
        for _ in range(4):
            np.savetxt(f, np.column_stack([block, block[:, 0] > 0]), delimiter=",",
                       fmt="%.17g")
    assert big.stat().st_size > 20e6
    out = subprocess.run([sys.executable, "-c", _PEAK, str(big)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    grown, data = map(int, out.stdout.split())
    assert data == 80_000 * 20 * 8
    assert grown <= 3 * data, f"reading grew memory by {grown / data:.1f}x the data"


@pytest.mark.parametrize("args,message", [
    (["bench", "--rounds", "0"], "argument --rounds: the value must be >= 1, got 0"),
    (["bench", "--workloads", "W1,W9"], "argument --workloads: unknown workload 'W9'"),
    (["demo", "--epochs", "0"], "argument --epochs: the value must be >= 1, got 0"),
    (["demo", "--learning-rate", "-1"], "argument --learning-rate: the value must be > 0"),
    ([], "the following arguments are required: COMMAND"),
])
def test_other_commands_check_their_options_at_parse_time(args, message):
    _one_line_error(run(*args), message)
