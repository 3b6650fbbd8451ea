"""The scikit-learn estimators: scikit-learn's own estimator checks, and parity with
scikit-learn's MLP on the same data and hyperparameters."""
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: checks expected to fail, with the reason (also listed in the README)
EXPECTED_FAILED = {}


def _expected(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0),
                          MLPRegressor(max_iter=100, random_state=0)],
                         expected_failed_checks=_expected)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
