"""Each update rule, step by step, against NumPy references and against torch.optim."""
import numpy as np
import pytest

import fastbp
import naive

STEPS = 3

# (fastbp optimizer, NumPy reference update with its keyword arguments)
RULES = {
    "sgd": (fastbp.SGD(learning_rate=0.1), naive.sgd, dict(lr=0.1)),
    "momentum": (fastbp.SGD(learning_rate=0.1, momentum=0.9), naive.sgd,
                 dict(lr=0.1, momentum=0.9)),
    "nesterov": (fastbp.SGD(learning_rate=0.1, momentum=0.8, nesterov=True), naive.sgd,
                 dict(lr=0.1, momentum=0.8, nesterov=True)),
    "adam": (fastbp.Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, eps=1e-7), naive.adam,
             dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7)),
    "adamw": (fastbp.AdamW(learning_rate=0.01, weight_decay=0.1), naive.adam,
              dict(lr=0.01, weight_decay=0.1)),
    "rmsprop": (fastbp.RMSprop(learning_rate=0.01, rho=0.9, eps=1e-6), naive.rmsprop,
                dict(lr=0.01, rho=0.9, eps=1e-6)),
    "rprop": (fastbp.RPROP(eta_plus=1.3, eta_minus=0.4, step_init=0.05), naive.irprop_minus,
              dict(eta_plus=1.3, eta_minus=0.4, step_init=0.05)),
    "adagrad": (fastbp.Adagrad(learning_rate=0.05, lr_decay=0.1,
                               initial_accumulator_value=0.2), naive.adagrad,
                dict(lr=0.05, lr_decay=0.1, initial_accumulator_value=0.2)),
    "adagrad_defaults": (fastbp.Adagrad(), naive.adagrad, dict(lr=0.01)),
    "nadam": (fastbp.NAdam(), naive.nadam, dict(lr=2e-3)),
    "nadam_l2": (fastbp.NAdam(learning_rate=0.01, beta1=0.8, momentum_decay=0.1,
                              weight_decay=0.1), naive.nadam,
                 dict(lr=0.01, beta1=0.8, momentum_decay=0.1, weight_decay=0.1)),
    "nadam_decoupled": (fastbp.NAdam(learning_rate=0.01, weight_decay=0.1,
                                     decoupled_weight_decay=True), naive.nadam,
                        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    "quickprop": (fastbp.Quickprop(), naive.fann_quickprop, {}),
    "quickprop_strong": (fastbp.Quickprop(learning_rate=2.0, decay=-0.01, mu=2.0),
                         naive.fann_quickprop, dict(lr=2.0, decay=-0.01, mu=2.0)),
    "sarprop": (fastbp.SARPROP(), naive.fann_sarprop, {}),
    # large first steps and a high threshold: sign changes, with their random term, happen
    "sarprop_noisy": (fastbp.SARPROP(step_min=0.05, step_error_threshold_factor=10.0,
                                     temperature=0.5),
                      naive.fann_sarprop, dict(delta_min=0.05, step_error_threshold_factor=10.0,
                                               T=0.5)),
}


def problem(seed=0):
    rng = np.random.default_rng(seed)
    net = fastbp.Network([4, 6, 3], hidden_activation="tanh", output="softmax",
                         dtype=np.float64, seed=seed)
    X = rng.normal(size=(20, 4))
    y = rng.integers(0, 3, 20)
    return net, X, y


def reference_steps(net, X, y, update, kwargs, steps=STEPS, alpha=0.0):
    p = net.params.copy()
    Y = np.eye(net.n_outputs)[y]
    state = {}
    for _ in range(steps):
        Ws, bs = net.layout.weights(p), net.layout.biases(p)
        loss, dW, db = naive.loss_and_grads(Ws, bs, net.activations, net.loss, X, Y,
                                            alpha=alpha)
        state["loss"] = loss  # what apply_update is given (SARPROP's MSE)
        p = update(p, naive.flatten(dW, db), state, **kwargs)
    return p


@pytest.mark.parametrize("rule", sorted(RULES))
def test_three_steps_match_numpy_reference(rule):
    opt, update, kwargs = RULES[rule]
    net, X, y = problem()
    expected = reference_steps(net, X, y, update, kwargs)
    # full batch, no shuffle: each epoch is exactly one update
    net.fit(X, y, epochs=STEPS, batch_size=len(X), shuffle=False, optimizer=opt)
    assert net.optimizer.t == STEPS
    np.testing.assert_allclose(net.params, expected, rtol=1e-6, atol=1e-12)
    assert np.abs(net.params - expected).max() < 1e-6


def _torch_step_run(net, X, y, make_optimizer):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    layers = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(*W.shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if l < len(net.weights) - 1:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    opt = make_optimizer(torch, model.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(Xt), yt).backward()
        opt.step()
    # torch's Linear.weight is (out, in): unit by unit, the layout of the flat vector
    return np.concatenate([np.concatenate([lin.weight.detach().numpy().ravel(),
                                           lin.bias.detach().numpy()])
                           for lin in model if isinstance(lin, torch.nn.Linear)])


TORCH = {
    "sgd": lambda t, p: t.optim.SGD(p, lr=0.1),
    "momentum": lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True),
    "adam": lambda t, p: t.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7),
    "adamw": lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6),
    "rprop": lambda t, p: t.optim.Rprop(p, lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-6, 50)),
    "adagrad": lambda t, p: t.optim.Adagrad(p, lr=0.05, lr_decay=0.1,
                                            initial_accumulator_value=0.2),
    "adagrad_defaults": lambda t, p: t.optim.Adagrad(p),
    "nadam": lambda t, p: t.optim.NAdam(p),
    "nadam_l2": lambda t, p: t.optim.NAdam(p, lr=0.01, betas=(0.8, 0.999), momentum_decay=0.1,
                                           weight_decay=0.1),
    "nadam_decoupled": lambda t, p: t.optim.NAdam(p, lr=0.01, weight_decay=0.1,
                                                  decoupled_weight_decay=True),
}


@pytest.mark.parametrize("rule", sorted(TORCH))
def test_three_steps_match_torch_optim(rule):
    opt, _, _ = RULES[rule]
    net, X, y = problem(1)
    expected = _torch_step_run(net, X, y, TORCH[rule])
    net.fit(X, y, epochs=STEPS, batch_size=len(X), shuffle=False, optimizer=opt)
    np.testing.assert_allclose(net.params, expected, rtol=1e-6, atol=1e-10)


def test_l2_penalty_step_matches_reference():
    net, X, y = problem(2)
    expected = reference_steps(net, X, y, naive.sgd, dict(lr=0.1), steps=2, alpha=0.5)
    h = net.fit(X, y, epochs=2, batch_size=len(X), shuffle=False, learning_rate=0.1,
                alpha=0.5)
    np.testing.assert_allclose(net.params, expected, rtol=1e-10, atol=1e-13)
    assert h.loss[0] > 0


def test_gradient_clipping_rescales_to_the_global_norm():
    net, X, y = problem(3)
    p0 = net.params.copy()
    _, g = net.gradient(X, y)
    norm = np.linalg.norm(g)
    net.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, learning_rate=0.1,
            clip_norm=0.25 * norm)
    np.testing.assert_allclose(net.params, p0 - 0.1 * g * 0.25, rtol=1e-12, atol=1e-15)
    # a bound above the norm changes nothing
    net2, _, _ = problem(3)
    net2.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, learning_rate=0.1,
             clip_norm=2 * norm)
    np.testing.assert_allclose(net2.params, p0 - 0.1 * g, rtol=1e-12, atol=1e-15)


def test_warm_start_continues_the_optimizer_state():
    net_a, X, y = problem(4)
    net_b, _, _ = problem(4)
    net_c, _, _ = problem(4)
    kw = dict(batch_size=len(X), shuffle=False)
    net_a.fit(X, y, epochs=4, optimizer=fastbp.Adam(0.01), **kw)
    net_b.fit(X, y, epochs=2, optimizer=fastbp.Adam(0.01), **kw)
    net_b.fit(X, y, epochs=2, optimizer=fastbp.Adam(0.01), warm_start=True, **kw)
    net_c.fit(X, y, epochs=2, optimizer=fastbp.Adam(0.01), **kw)
    net_c.fit(X, y, epochs=2, optimizer=fastbp.Adam(0.01), **kw)  # fresh moments
    assert net_b.optimizer.t == 4
    np.testing.assert_array_equal(net_a.params, net_b.params)
    assert not np.allclose(net_a.params, net_c.params)
    with pytest.raises(ValueError, match="warm_start continues the previous optimizer"):
        net_b.fit(X, y, epochs=1, optimizer="sgd", warm_start=True)


def test_rprop_on_fann_mushroom_reaches_fann_test_mse():
    """FANN's mushroom example: 125-32-2, tanh hidden, logistic output, squared error, RPROP,
    300 epochs; FANN 2.2 reaches test MSE 0.00025.  The bar is 0.001."""
    from conftest import fann_path
    from fastbp.fann import read_fann_data
    X, Y = read_fann_data(fann_path("mushroom.train"), np.float32)
    Xt, Yt = read_fann_data(fann_path("mushroom.test"), np.float32)
    net = fastbp.Network([125, 32, 2], hidden_activation="tanh", output="logistic",
                         loss="squared_error", dtype=np.float32, seed=0)
    net.fit(X, Y, epochs=300, optimizer="rprop")
    mse = float(np.mean((net.predict_proba(Xt) - Yt) ** 2))  # over samples and outputs
    assert mse <= 0.001


def test_lbfgs_on_digits_reaches_95_percent(digits):
    X_train, X_test, y_train, y_test = digits
    net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                         dtype=np.float64, seed=0)
    history = net.fit(X_train, y_train, epochs=200, optimizer="lbfgs", alpha=1e-3)
    assert 1 <= history.epochs <= 200
    assert history.loss[-1] < history.loss[0]
    assert np.mean(net.predict(X_test) == y_test) >= 0.95


# --- the FANN rules learn; every new rule's state is saved and continued ---------------------
def disc(seed, n):
    """Points in [-1, 1]^2, target 1 inside the disc of radius sqrt(0.5): not linearly
    separable, so the hidden layer has to learn."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, (np.sum(X ** 2, axis=1) < 0.5).astype(float)[:, None]


def _fann_rule(name, n_samples):
    if name == "quickprop":
        return fastbp.Quickprop()
    # FANN's weight term is relative to the gradient summed over the samples; fastbp's is the
    # mean, so FANN's default shift on N samples is -6.644 - log2(N) here (see SARPROP)
    return fastbp.SARPROP(weight_decay_shift=-6.644 - np.log2(n_samples))


@pytest.mark.parametrize("name", ["quickprop", "sarprop"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fann_rules_learn_a_disc_and_generalize(name, dtype):
    """2-8-1 tanh/logistic, squared error, 300 full-batch epochs on 200 points; the bar is 93 %
    on 1000 held-out points (both reach about 95 %; a linear model gets about 60 %)."""
    X, Y = disc(0, 200)
    Xt, Yt = disc(1, 1000)
    net = fastbp.Network([2, 8, 1], hidden_activation="tanh", output="logistic",
                         loss="squared_error", dtype=dtype, seed=0)
    h = net.fit(X, Y, epochs=300, optimizer=_fann_rule(name, len(X)))
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert np.mean((net.predict_proba(Xt) > 0.5) == (Yt > 0.5)) >= 0.93


def test_quickprop_on_fann_diabetes_matches_fann():
    """FANN's diabetes set, 8-16-2, tanh hidden, logistic output, squared error, 300 epochs
    of Quickprop with FANN's defaults.  FANN 2.2 (built from libfann/fann's tag 2.2.0, same
    net, linear error function, five seeds) ends at training MSE 0.141 and test MSE
    0.169-0.174; fastbp's mean loss 1/2 sum_j d_j^2 over two outputs is FANN's MSE.  The bar
    is test MSE 0.18."""
    from conftest import fann_path
    from fastbp.fann import read_fann_data
    X, Y = read_fann_data(fann_path("diabetes.train"), np.float64)
    Xt, Yt = read_fann_data(fann_path("diabetes.test"), np.float64)
    net = fastbp.Network([8, 16, 2], hidden_activation="tanh", output="logistic",
                         loss="squared_error", dtype=np.float64, seed=0)
    h = net.fit(X, Y, epochs=300, optimizer="quickprop")
    assert h.loss[-1] < 0.6 * h.loss[0]
    assert float(np.mean((net.predict_proba(Xt) - Yt) ** 2)) <= 0.18


NEW = {
    "adagrad": lambda: fastbp.Adagrad(learning_rate=0.05, lr_decay=0.01,
                                      initial_accumulator_value=0.1),
    "nadam": lambda: fastbp.NAdam(learning_rate=0.01, momentum_decay=0.1, weight_decay=0.01),
    "quickprop": lambda: fastbp.Quickprop(learning_rate=0.5),
    "sarprop": lambda: fastbp.SARPROP(step_min=0.01, step_error_threshold_factor=1.0),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_rules_state_is_saved_loaded_and_continued(name, tmp_path):
    kw = dict(batch_size=20, shuffle=False)
    straight, X, y = problem(5)
    straight.fit(X, y, epochs=4, optimizer=NEW[name](), **kw)
    net, _, _ = problem(5)
    net.fit(X, y, epochs=2, optimizer=NEW[name](), **kw)
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert type(back.optimizer) is type(net.optimizer) and back.optimizer.t == 2
    assert back.optimizer.get_params() == net.optimizer.get_params()
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)
    if name == "nadam":  # the product of the momentum schedule is part of the state
        mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.1)) for t in (1, 2)]
        assert back.optimizer.state[2, 0] == pytest.approx(mu[0] * mu[1], rel=1e-15)
    back.fit(X, y, epochs=2, optimizer=NEW[name](), warm_start=True, **kw)
    assert back.optimizer.t == 4
    np.testing.assert_array_equal(back.params, straight.params)
    fresh, _, _ = problem(5)
    fresh.fit(X, y, epochs=2, optimizer=NEW[name](), **kw)
    fresh.fit(X, y, epochs=2, optimizer=NEW[name](), **kw)  # state (and t) start over
    assert not np.allclose(fresh.params, straight.params)


@pytest.mark.parametrize("solver", ["adagrad", "nadam", "quickprop", "sarprop"])
def test_estimators_and_cli_offer_the_new_rules(solver):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from fastbp.cli import build_parser
    from fastbp.sklearn import MLPClassifier
    net, X, y = problem(6)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.network_.optimizer.name == solver
    assert hasattr(clf, "partial_fit") != fastbp.registry.OPTIMIZERS.get(solver).full_batch
    args = build_parser().parse_args(["train", "data.csv", "--optimizer", solver])
    assert args.optimizer == solver


RULE_ALONE = """
import json
import numpy as np
from fastbp.kernels import optimizers as k

def compiled():
    return sorted(n for n, f in vars(k).items() if getattr(f, "signatures", None))

first = k.update_rule(k.SGD, np.float32)
after_sgd = compiled()
again = k.update_rule(k.SGD, np.float32)
k.update_rule(k.ADAM, np.float64)
print(json.dumps({"same": first is again, "after_sgd": after_sgd, "after_adam": compiled()}))
"""


def test_an_update_rule_compiles_alone_on_first_use(tmp_path):
    """The training kernels call each optimizer's rule through its address
    (kernels.optimizers.update_rule), compiled when first asked for: SGD's rule compiles SGD's
    loop and no other rule, Adam's then adds Adam's (in a fresh process with an empty cache,
    so that nothing else has compiled them)."""
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", RULE_ALONE], env=env, check=True,
                         capture_output=True, text=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["same"]
    assert found["after_sgd"] == ["sgd"]
    assert found["after_adam"] == ["adam", "moment_coefficients", "sgd"]
