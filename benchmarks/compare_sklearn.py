"""fastbp's estimators against scikit-learn's MLP on the same data and hyperparameters:
test score and fit time (median of 3 fits, after one warm-up fit that loads the kernels).

    python benchmarks/compare_sklearn.py            # scores and fit times at convergence
    python benchmarks/compare_sklearn.py --parity   # scores at max_iter 10, 30, 200

``--parity``: mean and standard deviation over random_state 0-4 of the held-out score of
each library's estimator in a Pipeline (StandardScaler, MLP) at each budget: the
run-to-run noise is the standard deviation.
"""
import argparse
import statistics
import time
import warnings

from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp.sklearn import MLPClassifier, MLPRegressor

CASES = [
    ("digits", "accuracy", SkMLPClassifier, MLPClassifier,
     dict(hidden_layer_sizes=(64,), solver="adam", max_iter=200, random_state=0)),
    ("digits", "accuracy", SkMLPClassifier, MLPClassifier,
     dict(hidden_layer_sizes=(64,), solver="sgd", learning_rate_init=0.01, max_iter=200,
          random_state=0)),
    ("diabetes", "R^2", SkMLPRegressor, MLPRegressor,
     dict(hidden_layer_sizes=(16,), solver="lbfgs", alpha=10.0, max_iter=500,
          random_state=0)),
    ("diabetes", "R^2", SkMLPRegressor, MLPRegressor,
     dict(hidden_layer_sizes=(16,), solver="adam", alpha=1.0, learning_rate_init=0.01,
          max_iter=500, random_state=0)),
]


def data(name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def model(cls, params, regression):
    pipe = make_pipeline(StandardScaler(), cls(**params))
    return TransformedTargetRegressor(pipe, transformer=StandardScaler()) if regression \
        else pipe


def main(repeats=3):
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"{'data':9s} {'solver':7s} {'metric':8s} {'scikit-learn':>13s} {'fastbp':>8s}   "
          f"{'fit s (sklearn)':>15s} {'fit s (fastbp)':>14s} {'speed-up':>8s}")
    for name, metric, sk, fb, params in CASES:
        X_tr, X_te, y_tr, y_te = data(name)
        regression = metric == "R^2"
        model(fb, params, regression).fit(X_tr, y_tr)  # warm-up: kernels loaded
        row = {}
        for label, cls in (("sklearn", sk), ("fastbp", fb)):
            times = []
            for _ in range(repeats):
                m = model(cls, params, regression)
                t0 = time.perf_counter()
                m.fit(X_tr, y_tr)
                times.append(time.perf_counter() - t0)
            row[label] = (m.score(X_te, y_te), statistics.median(times))
        print(f"{name:9s} {params['solver']:7s} {metric:8s} {row['sklearn'][0]:13.4f} "
              f"{row['fastbp'][0]:8.4f}   {row['sklearn'][1]:15.3f} {row['fastbp'][1]:14.3f} "
              f"{row['sklearn'][1] / row['fastbp'][1]:7.1f}x")


PARITY = [
    ("digits", "accuracy", SkMLPClassifier, MLPClassifier,
     dict(hidden_layer_sizes=(64,), solver="adam")),
    ("digits", "accuracy", SkMLPClassifier, MLPClassifier,
     dict(hidden_layer_sizes=(64,), solver="sgd", learning_rate_init=0.01)),
    ("diabetes", "R^2", SkMLPRegressor, MLPRegressor,
     dict(hidden_layer_sizes=(16,), solver="adam", alpha=1.0, learning_rate_init=0.01)),
]


def parity(budgets=(10, 30, 200), seeds=range(5)):
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"{'data':9s} {'solver':7s} {'metric':8s} {'max_iter':>8s} "
          f"{'scikit-learn':>16s} {'fastbp':>16s}")
    for name, metric, sk, fb, params in PARITY:
        X_tr, X_te, y_tr, y_te = data(name)
        regression = metric == "R^2"
        for k in budgets:
            row = {}
            for label, cls in (("sklearn", sk), ("fastbp", fb)):
                scores = [model(cls, dict(params, max_iter=k, random_state=seed), regression)
                          .fit(X_tr, y_tr).score(X_te, y_te) for seed in seeds]
                row[label] = f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"
            print(f"{name:9s} {params['solver']:7s} {metric:8s} {k:8d} {row['sklearn']:>16s} "
                  f"{row['fastbp']:>16s}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parity", action="store_true",
                    help="scores at max_iter 10, 30, 200 over 5 seeds")
    parity() if ap.parse_args().parity else main()
