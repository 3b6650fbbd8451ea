"""Many models at once: K=8 W1-sized networks (64-32-10 tanh/softmax, SGD, batch 1, the
bundled digits, 2 epochs) trained by ``fastbp.fit_many`` (over the cores) and by eight
sequential ``net.fit`` calls (the baseline it must beat: >= 1.8x on 2 cores).  Also K=8
64-128-10 networks with Adam and batches of 64, whose products go to BLAS on one thread per
network: the case where fit_many once ran slower than sequential fits (0.56x) because the
workers' BLAS kept every thread."""
import numpy as np

K = 8
EPOCHS = 2


class FitMany:
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180  # setup may have to compile the kernels

    def setup(self):
        import fastbp
        from fastbp.datasets import load_digits
        self.fastbp = fastbp
        X, y = load_digits()
        self.X, self.y = X.astype(np.float32), y
        fastbp.fit_many(self._nets()[:2], self.X[:20], self.y[:20], epochs=1, batch_size=1)
        self.nets = self._nets()

    def _nets(self):
        return [self.fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                                    dtype=np.float32, seed=s) for s in range(K)]

    def time_fit_many_8_W1(self):
        self.fastbp.fit_many(self.nets, self.X, self.y, epochs=EPOCHS, batch_size=1,
                             learning_rate=0.01, seed=list(range(K)))

    def time_sequential_8_W1(self):
        for s, net in enumerate(self.nets):
            net.fit(self.X, self.y, epochs=EPOCHS, batch_size=1, learning_rate=0.01, seed=s)


class FitManyMiniBatch:
    number = 1
    repeat = (3, 10, 10.0)
    timeout = 180

    def setup(self):
        import fastbp
        from fastbp.datasets import load_digits
        self.fastbp = fastbp
        X, y = load_digits()
        self.X, self.y = np.tile(X.astype(np.float32), (4, 1)), np.tile(y, 4)
        self.options = dict(epochs=EPOCHS, batch_size=64, optimizer="adam", seed=0)
        fastbp.fit_many(self._nets()[:2], self.X[:256], self.y[:256], **self.options)
        self.nets = self._nets()

    def _nets(self):
        return [self.fastbp.Network([64, 128, 10], output="softmax", dtype=np.float32, seed=s)
                for s in range(K)]

    def time_fit_many_8_minibatch(self):
        self.fastbp.fit_many(self.nets, self.X, self.y, n_jobs=2, **self.options)

    def time_sequential_8_minibatch(self):
        for net in self.nets:
            net.fit(self.X, self.y, **self.options)
