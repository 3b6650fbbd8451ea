"""Digits classification: fastbp's MLPClassifier inside a scikit-learn Pipeline with
StandardScaler, tuned by GridSearchCV, then scored on a stratified hold-out.

    python examples/digits_pipeline.py
"""
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(max_iter=60, random_state=0, dtype="float32"))])
    grid = {"mlp__hidden_layer_sizes": [(32,), (64,)], "mlp__alpha": [1e-4, 1e-2]}
    search = GridSearchCV(pipe, grid, cv=3)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    print(f"grid search over {len(search.cv_results_['params'])} settings x 3 folds in "
          f"{seconds:.1f} s")
    print(f"best: {search.best_params_}, cross-validated accuracy {search.best_score_:.4f}")
    accuracy = search.score(X_test, y_test)
    print(f"test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
