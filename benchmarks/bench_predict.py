"""Prediction: the latency of one row and the time of a 1000-row batch (64-32-10 tanh net)."""
import functools

from .common import workload_data, workload_network


@functools.lru_cache(maxsize=None)
def _fixture(dtype):
    """A W1 network, one row and 1000 rows of digits in ``dtype``, the prediction kernel
    already compiled/loaded: built once per process (asv re-runs setup between calls)."""
    net = workload_network("W1", dtype)
    X, _ = workload_data("W1", dtype)
    one_row = X[:1].copy()
    batch = X[:1000].copy()
    net.predict_proba(one_row)
    net.predict(batch)
    return net, one_row, batch


class Predict:
    """``predict_proba`` of one row (call overhead: input checks, output allocation, kernel
    dispatch), and ``predict_proba``/``predict`` of 1000 rows."""

    params = (["float32", "float64"],)
    param_names = ["dtype"]
    repeat = (3, 10, 5.0)

    def setup(self, dtype):
        self.net, self.one_row, self.batch = _fixture(dtype)

    def time_predict_proba_one_row(self, dtype):
        self.net.predict_proba(self.one_row)

    time_predict_proba_one_row.number = 1000

    def time_predict_proba_1000_rows(self, dtype):
        self.net.predict_proba(self.batch)

    time_predict_proba_1000_rows.number = 20

    def time_predict_1000_rows(self, dtype):
        self.net.predict(self.batch)

    time_predict_1000_rows.number = 20
