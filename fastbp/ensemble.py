"""Many estimators at once, on one machine: bagging and hyperparameter grids.

Built on :func:`fastbp.many.run_concurrently`, the machinery of :func:`fastbp.fit_many`:
estimators are fitted by worker threads (the kernels release the GIL), so K small MLPs use
every core without the start-up of new processes (joblib's default for ``n_jobs``), and each
ends exactly as its own ``fit`` would have left it.

- :class:`BaggingClassifier` / :class:`BaggingRegressor`: ``n_estimators`` copies of a fastbp
  estimator, each fitted on a bootstrap sample (or a subsample) of the rows with its own
  seed; they average the members' probabilities / predictions.
- :func:`param_grid` and :func:`fit_estimators`: one clone of an estimator per point of a
  parameter grid (scikit-learn's ``ParameterGrid``), all fitted concurrently: a grid search
  without process start-up.  GridSearchCV itself gets the same spread with joblib's threading
  backend (``with joblib.parallel_backend("threading", n_jobs=2): search.fit(X, y)``).

Needs scikit-learn (``pip install fastbp[sklearn]``).
"""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import ParameterGrid
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._config import BLAS_THREADS_MIN_MACS
from .many import cpu_count, run_concurrently
from .sklearn import MLPClassifier, MLPRegressor

__all__ = ["BaggingClassifier", "BaggingRegressor", "param_grid", "fit_estimators"]


def _serial(est, n_features, n_outputs, n_rows):
    """Whether fitting ``est`` would give BLAS all its threads (then it runs alone)."""
    try:
        hidden = est._hidden_sizes()
    except Exception:  # let fit raise the clear error
        return False
    sizes = [n_features, *hidden, n_outputs]
    rows = n_rows if est.solver in ("lbfgs", "rprop", "quickprop", "sarprop") else \
        (min(200, n_rows) if est.batch_size == "auto" else min(int(est.batch_size), n_rows))
    rows = min(rows, 1024)
    return rows * max(a * b for a, b in zip(sizes, sizes[1:])) >= BLAS_THREADS_MIN_MACS


def _check_n_jobs(n_jobs):
    if n_jobs is None:
        return cpu_count()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or None, got {n_jobs!r}")
    return int(n_jobs)


def fit_estimators(estimators, X, y, *, n_jobs=None):
    """Fit every estimator of ``estimators`` on (X, y), spread over ``n_jobs`` threads
    (default: every core this process may use); returns them, fitted, in order.  Each ends
    as its own ``est.fit(X, y)`` would have left it."""
    estimators = list(estimators)
    n_jobs = _check_n_jobs(n_jobs)
    X = np.asarray(X) if not hasattr(X, "shape") else X
    n_rows = X.shape[0] if X.ndim else 0
    n_features = X.shape[1] if X.ndim == 2 else 1
    n_outputs = max(1, len(np.unique(y)) if np.ndim(y) == 1 else np.shape(y)[1])
    serial = [_serial(e, n_features, n_outputs, n_rows) for e in estimators]
    run_concurrently([(lambda e=e: e.fit(X, y)) for e in estimators], serial, n_jobs)
    return estimators


def param_grid(estimator, grid):
    """One unfitted clone of ``estimator`` per point of ``grid`` (a dict of lists, or a list
    of such dicts, as scikit-learn's ``ParameterGrid``), in ``ParameterGrid``'s order."""
    return [clone(estimator).set_params(**params) for params in ParameterGrid(grid)]


class _BaseBagging(BaseEstimator):
    _default = None

    def __init__(self, estimator=None, n_estimators=10, *, max_samples=1.0, bootstrap=True,
                 random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _samples(self, n):
        m = self.max_samples
        if isinstance(m, (int, np.integer)) and not isinstance(m, bool):
            if not 1 <= m <= n:
                raise ValueError(f"max_samples must be in 1..{n} (the number of rows), got {m}")
            return int(m)
        if isinstance(m, (float, np.floating)) and 0.0 < m <= 1.0:
            return max(1, int(round(m * n)))
        raise ValueError(f"max_samples must be an int in 1..{n} or a float in (0, 1], "
                         f"got {m!r}")

    def fit(self, X, y):
        """Fit ``n_estimators`` members, each on its own sample of the rows."""
        if isinstance(self.n_estimators, bool) or not isinstance(
                self.n_estimators, (int, np.integer)) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be a positive int, got {self.n_estimators!r}")
        base = self.estimator if self.estimator is not None else self._default()
        if not isinstance(base, (MLPClassifier, MLPRegressor)):
            raise TypeError(f"estimator must be a fastbp MLPClassifier or MLPRegressor, got "
                            f"{base!r}")
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=self._y_numeric)
        y = self._encode(y)
        n = X.shape[0]
        m = self._samples(n)
        rng = check_random_state(self.random_state)
        members, samples = [], []
        for _ in range(self.n_estimators):
            idx = (rng.randint(0, n, m) if self.bootstrap else
                   np.sort(rng.permutation(n)[:m]))
            seed = int(rng.randint(np.iinfo(np.int32).max))
            members.append(clone(base).set_params(random_state=seed))
            samples.append(idx)
        n_outputs = len(self.classes_) if hasattr(self, "classes_") else (
            1 if y.ndim == 1 else y.shape[1])
        serial = [_serial(e, X.shape[1], n_outputs, m) for e in members]
        run_concurrently([(lambda e=e, i=i: e.fit(X[i], y[i]))
                          for e, i in zip(members, samples)], serial,
                         _check_n_jobs(self.n_jobs))
        self.estimators_ = members
        self.estimators_samples_ = samples
        return self

    def _encode(self, y):
        return y


class BaggingClassifier(ClassifierMixin, _BaseBagging):
    """Bootstrap aggregation of fastbp classifiers (default member: ``MLPClassifier()``):
    each member is fitted on its own bootstrap sample with its own seed, all of them
    concurrently; ``predict_proba`` averages the members' probabilities (a member whose
    sample missed a class gives it probability 0)."""

    _default = MLPClassifier
    _y_numeric = False

    def _encode(self, y):
        if y.ndim != 1:
            raise ValueError("BaggingClassifier takes one label per row (a 1-D y), got "
                             f"shape {y.shape}")
        self.classes_, codes = np.unique(y, return_inverse=True)
        return codes

    def predict_proba(self, X):
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False)
        proba = np.zeros((X.shape[0], len(self.classes_)))
        for est in self.estimators_:
            proba[:, est.classes_] += est.predict_proba(X)
        return proba / len(self.estimators_)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class BaggingRegressor(RegressorMixin, _BaseBagging):
    """Bootstrap aggregation of fastbp regressors (default member: ``MLPRegressor()``);
    ``predict`` averages the members' predictions."""

    _default = MLPRegressor
    _y_numeric = True

    def predict(self, X):
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False)
        return np.mean([est.predict(X) for est in self.estimators_], axis=0)
