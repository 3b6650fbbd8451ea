"""Two fastbp versions in one process, interleaved, on the recurrent latency workloads of
issue 10: one R1 sequence predicted (GRU 8 -> 64, 50 steps; ``predict_proba`` of a (1, 50,
8) float32 array, 500 calls per sample) and an R2 epoch of online training (Elman tanh 8 ->
32, 20 steps, batch 1, SGD, 1024 sequences), from the peers' data and weights.

    python benchmarks/compare_versions_recurrent.py OLD_CHECKOUT [ROUNDS] [R1,R2]

OLD_CHECKOUT holds the other version's ``fastbp/`` (copied as ``fastbp_old``, as
``benchmarks/compare_versions.py`` does); ``-`` times this version alone.  Prints medians,
the median of the paired new/old ratios and the largest difference of the outputs (R1) and
trained weights (R2) between the versions.
"""
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.compare_versions import load_old  # noqa: E402
from benchmarks.peers import recurrent as rec  # noqa: E402


def make(mod, name, init):
    wl = rec.WORKLOADS[name]
    cls = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[wl["cell"]]
    kw = {"activation": wl["activation"]} if wl["cell"] == "rnn" else {}
    net = mod.Network([wl["n_in"], getattr(mod, cls)(wl["units"], **kw), wl["n_out"]],
                      output="softmax", dtype=np.float32, seed=0)
    r, d = net.layers
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(r, k)[...] = init[k]
    d.weight[...] = init["weight"]; d.bias[...] = init["bias"]
    return net


def latency_r1(mods, rounds):
    """One R1 sequence predicted, 500 calls per round and version."""
    init = rec.workload_init("R1")
    x = rec.workload_data("R1")[0][:1].copy()
    nets = {k: make(m, "R1", init) for k, m in mods.items()}
    outs = {k: n.predict_proba(x) for k, n in nets.items()}
    if len(outs) > 1:
        print("R1 predict max |new-old|", np.abs(outs["new"] - outs["old"]).max())
    lat = {k: [] for k in nets}
    for _ in range(rounds):
        for k, n in nets.items():
            t0 = time.perf_counter()
            for _ in range(500):
                n.predict_proba(x)
            lat[k].append((time.perf_counter() - t0) / 500 * 1e6)
    for k in lat:
        print(f"R1 predict {k}: median {statistics.median(lat[k]):.1f} us  {['%.1f' % v for v in lat[k]]}")
    if len(lat) > 1:
        print("  new/old time ratio median", statistics.median([a / b for a, b in zip(lat["new"], lat["old"])]))


def train_r2(mods, rounds):
    """An R2 epoch of online training per round and version, from the same start."""
    wl = rec.WORKLOADS["R2"]
    init = rec.workload_init("R2")
    X, Y = rec.workload_data("R2")
    kw = dict(batch_size=1, optimizer="sgd", learning_rate=wl["learning_rate"])
    for m in mods.values():
        make(m, "R2", init).fit(X[:3], Y[:3], epochs=1, seed=0, **kw)
    rate = {k: [] for k in mods}
    final = {}
    for r in range(rounds):
        for k, m in mods.items():
            net = make(m, "R2", init)
            t0 = time.perf_counter()
            net.fit(X, Y, epochs=1, shuffle=False, seed=0, **kw)
            rate[k].append(X.shape[0] / (time.perf_counter() - t0) / 1e3)
            final[k] = net.params.copy()
    if len(final) > 1:
        print("R2 params max |new-old|", np.abs(final["new"] - final["old"]).max())
    for k in rate:
        print(f"R2 train {k}: median {statistics.median(rate[k]):.1f} k seq/s  {['%.1f' % v for v in rate[k]]}")
    if len(rate) > 1:
        print("  new/old rate ratio median", statistics.median([a / b for a, b in zip(rate["new"], rate["old"])]))


def main(argv):
    import fastbp
    mods = {"new": fastbp}
    if len(argv) > 1 and argv[1] != "-":
        mods["old"] = load_old(argv[1])
    rounds = int(argv[2]) if len(argv) > 2 else 5
    what = argv[3] if len(argv) > 3 else "R1,R2"
    if "R1" in what:
        latency_r1(mods, rounds)
    if "R2" in what:
        train_r2(mods, rounds)


if __name__ == "__main__":  # asv imports every module of benchmarks/: nothing runs on import
    main(sys.argv)
