"""Sparse (CSR) input: one epoch of a 10,000-64-2 relu/softmax network on 2,000 synthetic
bag-of-words documents (``sparse_bow.corpus``: Zipf vocabulary, about 55 nonzeros per row,
log counts, float32).

Plain SGD takes the fused sparse step (layer 0 moves only its nonzeros' columns), online and
with batches of 32; Adam must step every parameter after each batch, so its batch of 200 is
bound by the 640,000 first-layer weights, not by the nonzeros.
"""
import functools


@functools.lru_cache(maxsize=None)
def _data():
    from .sparse_bow import corpus
    return corpus(2000, 10000)


class SparseEpoch:
    params = (["sgd-1", "sgd-32", "adam-200"],)
    param_names = ["optimizer-batch"]
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180  # setup may have to compile the sparse kernels

    def setup(self, case):
        import fastbp
        optimizer, batch = case.split("-")
        self.X, self.y = _data()
        self.options = dict(optimizer=optimizer, batch_size=int(batch),
                            learning_rate=0.05 if optimizer == "sgd" else 1e-3, seed=0)
        self.net = fastbp.Network([10000, 64, 2], hidden_activation="relu", seed=0)
        self.net.copy().fit(self.X[:40], self.y[:40], epochs=1, **self.options)  # compile

    def time_epoch(self, case):
        self.net.fit(self.X, self.y, epochs=1, **self.options)

