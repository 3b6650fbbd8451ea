"""fit_many: every network ends bit for bit as its own sequential ``net.fit`` leaves it."""
import numpy as np
import pytest

import fastbp
from fastbp import Dense, DivergenceError


def _data(n=300, n_in=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, classes, n)
    return X, y


def _nets():
    return [
        fastbp.Network([16, 12, 4], hidden_activation="tanh", dtype=np.float32, seed=0),
        fastbp.Network([16, 12, 4], hidden_activation="tanh", dtype=np.float32, seed=1),
        fastbp.Network([16, 24, 8, 4], hidden_activation="relu", dtype=np.float32, seed=2),
        fastbp.Network([16, Dense(12, activation="gelu", normalization="batch"), 4],
                       dtype=np.float32, seed=3),
        fastbp.Network([16, Dense(12, normalization="layer"), 4], dtype=np.float64, seed=4),
        fastbp.Network([16, 6, 4], hidden_activation="logistic", dtype=np.float64, seed=5),
    ]


def _same(a, b):
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.buffers, b.buffers)
    assert np.array_equal(a.optimizer.state, b.optimizer.state)
    assert a.optimizer.t == b.optimizer.t
    for key in ("loss", "val_loss", "val_score"):
        assert np.array_equal(getattr(a.history, key), getattr(b.history, key),
                              equal_nan=True), key


def test_bit_identical_to_sequential_fits_with_per_network_options():
    X, y = _data()
    options = dict(epochs=4, batch_size=[1, 8, 16, 32, 4, 300],
                   optimizer=["sgd", "adam", "nadam", "adam", "rmsprop", "rprop"],
                   learning_rate=[0.01, 0.001, 0.002, 0.01, 0.001, None],
                   seed=[0, 1, 2, 3, 4, 5], validation_fraction=[None, 0.2, None, 0.2, None,
                                                                 None],
                   dropout=[0.0, 0.1, (0.1, 0.2), 0.0, 0.0, 0.0], alpha=1e-4)
    sequential = _nets()
    for i, net in enumerate(sequential):
        net.fit(X, y, **{k: (v[i] if isinstance(v, list) else v) for k, v in options.items()})
    many = _nets()
    histories = fastbp.fit_many(many, X, y, n_jobs=2, **options)
    assert [h is n.history for h, n in zip(histories, many)] == [True] * len(many)
    for a, b in zip(sequential, many):
        _same(a, b)
    # and the training did something: the networks differ from their initial weights
    assert not np.array_equal(many[0].params, _nets()[0].params)


def test_bootstrap_samples_one_per_network():
    X, y = _data(seed=1)
    rng = np.random.default_rng(7)
    idx = [rng.integers(0, len(X), len(X)) for _ in range(4)]
    make = lambda: [fastbp.Network([16, 10, 4], seed=s) for s in range(4)]  # noqa: E731
    sequential = make()
    for net, i in zip(sequential, idx):
        net.fit(X[i], y[i], epochs=3, batch_size=16, optimizer="adam", seed=0)
    many = make()
    fastbp.fit_many(many, [X[i] for i in idx], [y[i] for i in idx], epochs=3, batch_size=16,
                    optimizer="adam", seed=0)
    for a, b in zip(sequential, many):
        _same(a, b)


def test_optimizer_objects_are_copied_per_network():
    X, y = _data(seed=2)
    opt = fastbp.Adam(learning_rate=0.003)
    nets = [fastbp.Network([16, 8, 4], seed=s) for s in range(3)]
    fastbp.fit_many(nets, X, y, epochs=2, batch_size=10, optimizer=opt, seed=0)
    assert len({id(n.optimizer) for n in nets}) == 3 and all(n.optimizer is not opt
                                                             for n in nets)
    ref = fastbp.Network([16, 8, 4], seed=1)
    ref.fit(X, y, epochs=2, batch_size=10, optimizer=fastbp.Adam(learning_rate=0.003), seed=0)
    _same(ref, nets[1])


def test_bad_calls_are_named():
    X, y = _data()
    nets = [fastbp.Network([16, 8, 4], seed=s) for s in range(3)]
    with pytest.raises(ValueError, match="learning_rate is a list.*needs 3 entries"):
        fastbp.fit_many(nets, X, y, learning_rate=[0.1, 0.2])
    with pytest.raises(ValueError, match="same network more than once"):
        fastbp.fit_many([nets[0], nets[0]], X, y)
    with pytest.raises(TypeError, match=r"nets\[1\] is not a fastbp.Network"):
        fastbp.fit_many([nets[0], "net"], X, y)
    with pytest.raises(ValueError, match="n_jobs must be a positive int"):
        fastbp.fit_many(nets, X, y, n_jobs=0)
    with pytest.raises(ValueError, match="X has 8 columns|8 features|expected 16"):
        fastbp.fit_many(nets, X[:, :8], y, epochs=1)


def test_a_failing_fit_stops_the_others_and_raises():
    X, y = _data()
    X = X * 1e3
    nets = [fastbp.Network([16, 8, 4], hidden_activation="relu", output="identity",
                           loss="squared_error", dtype=np.float32, seed=s) for s in range(3)]
    Y = np.ones((len(X), 4))
    with pytest.raises(DivergenceError):
        fastbp.fit_many(nets, X, Y, epochs=50, batch_size=1, learning_rate=[1e-9, 1e3, 1e-9],
                        optimizer="sgd", seed=0, n_jobs=2)
    # the diverging network kept its last finite epoch's weights
    assert np.isfinite(nets[1].params).all()


def test_small_products_run_on_one_blas_thread_in_worker_threads_too():
    """fit's "BLAS on one thread for small products" holds in fit_many's worker threads even
    after the main thread has fitted (threadpoolctl 3.8 ignores thread-count changes from any
    Python thread but the first one to make one, which was the main thread: the workers then
    ran on every BLAS thread each, two half-batch GRU trainings at 0.65x the throughput of
    one).  Every epoch of every network sees one thread, and the count is restored after."""
    import threading

    from fastbp._threads import _ONE_THREAD
    libs = _ONE_THREAD._controllers()
    if not libs or max(lib.get_num_threads() for lib in libs) < 2:
        pytest.skip("BLAS runs on one thread here: nothing to limit")
    before = [lib.get_num_threads() for lib in libs]
    X, y = _data(256)
    seen = []

    def record(net, logs):
        seen.append((threading.current_thread().name,
                     [lib.get_num_threads() for lib in libs]))

    def net(seed):  # 64 x 16 x 64 products: BLAS, but below the size for two threads
        return fastbp.Network([16, 64, 4], dtype=np.float32, seed=seed)

    options = dict(epochs=2, batch_size=64, optimizer="adam", callbacks=(record,), seed=0)
    net(0).fit(X, y, **options)  # the main thread changes the count first
    assert [lib.get_num_threads() for lib in libs] == before
    fastbp.fit_many([net(1), net(2)], X, y, n_jobs=2, **options)
    worker = threading.Thread(target=lambda: net(3).fit(X, y, **options))
    worker.start()
    worker.join()
    threads = {name for name, _ in seen}
    assert len(seen) == 8 and len(threads) >= 3, seen
    assert all(counts == [1] * len(libs) for _, counts in seen), seen
    assert [lib.get_num_threads() for lib in libs] == before
