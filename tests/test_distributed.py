"""Data-parallel training under ``mpiexec -n 2`` (skipped where mpi4py/mpiexec are missing)."""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastbp

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'fastbp[mpi]')")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
if MPIEXEC is None:
    pytest.skip("no mpiexec found (pip install 'fastbp[mpi]' brings MPICH's)",
                allow_module_level=True)
JOB = pathlib.Path(__file__).with_name("mpi_job.py")


def mpirun(case, out, ranks=2, timeout=120):
    """Run the job in its own process group, so that a timeout kills every rank."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",  # 2 ranks, 2 cores
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="^ofi")  # harmless for MPICH; what Open MPI needs here
    t0 = time.perf_counter()
    proc = subprocess.Popen([MPIEXEC, "-n", str(ranks), sys.executable, str(JOB), case,
                             str(out)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return result, time.perf_counter() - t0


@pytest.mark.parametrize("case,opt", [("sgd_momentum", fastbp.SGD(0.1, momentum=0.9)),
                                      ("adam", fastbp.Adam(0.01))])
def test_two_ranks_match_one_rank_on_whole_batches(tmp_path, case, opt):
    out = tmp_path / "params.npy"
    result, _ = mpirun(case, out)
    assert result.returncode == 0, result.stdout + result.stderr
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(96, 5)), rng.integers(0, 3, 96)
    net = fastbp.Network([5, 8, 3], hidden_activation="tanh", dtype=np.float64, seed=0)
    net.fit(X, y, epochs=3, batch_size=16, optimizer=opt, shuffle=False)
    np.testing.assert_allclose(np.load(out), net.params, rtol=0, atol=1e-5)
    assert np.abs(np.load(out) - net.params).max() < 1e-12  # in fact to rounding


@pytest.mark.parametrize("case", ["options", "empty_shard"])
def test_two_ranks_match_one_rank_with_every_option(tmp_path, case):
    """Layer norm, dropout, sample weights, L2, clipping, a schedule, a callback,
    validation split over the ranks and early stopping with restore_best; or one rank with
    no rows at all.  Two ranks end where one rank does."""
    import mpi_cases as job
    out = tmp_path / "result.npz"
    result, _ = mpirun(case, out)
    assert result.returncode == 0, result.stdout + result.stderr
    got = np.load(out)
    X, y, kw = job.options_case()
    net = job.options_network()
    seen = []
    kw["batch_size"] = 16
    history = net.fit(X, y, sample_weight=kw.pop("sw"),
                      callbacks=[lambda n, logs: seen.append(logs["epoch"]) or
                                 logs["epoch"] >= 7], **kw)
    assert str(got["stop"]) == history.stop_reason and int(got["best"]) == history.best_epoch
    assert list(got["seen"]) == seen
    np.testing.assert_allclose(got["loss"], history.loss, rtol=1e-12)
    np.testing.assert_allclose(got["val_loss"], history.val_loss, rtol=1e-12)
    np.testing.assert_allclose(got["lr"], history.learning_rate, rtol=0)
    assert np.abs(got["params"] - net.params).max() < 1e-12


def test_recurrent_network_two_ranks_match_one_rank(tmp_path):
    """BPTT with lengths, per-step labels, dropout (masks keyed by sample and step), sample
    weights, clipping and truncation: two ranks end where one rank does."""
    import mpi_cases as job
    # compile (and cache) here, once, the sequence kernels that the ranks' steps run, instead
    # of in both ranks at once on a cold cache: a gradient and an evaluation of the same types
    net, X, y, lens, val, kw = job.recurrent_case()
    net.gradient(X, y, lengths=lens, bptt_steps=4)
    net.evaluate(val[0], val[1], lengths=val[3])
    out = tmp_path / "result.npz"
    result, _ = mpirun("recurrent", out, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    got = np.load(out)
    net, X, y, lens, val, kw = job.recurrent_case()
    history = net.fit(X, y, lengths=lens, batch_size=16, sample_weight=kw.pop("sw"),
                      validation_data=val, **kw)
    # float32 (the suite's one sequence-training specialization): the ranks sum a batch's
    # gradient in another order than one rank does, so the two agree to float32 rounding
    # (measured: 5e-8 relative in the losses, 1.1e-5 in the weights after Adam's 18 steps of
    # 0.02); a wrong mask, weight or shard would be off by orders of magnitude more
    np.testing.assert_allclose(got["loss"], history.loss, rtol=1e-6)
    np.testing.assert_allclose(got["val_loss"], history.val_loss, rtol=1e-6)
    np.testing.assert_array_equal(got["val_score"], history.val_score)
    assert np.abs(got["params"] - net.params).max() < 1e-4


def test_batch_norm_ranks_end_with_the_same_weights_and_rank_0s_statistics(tmp_path):
    result, _ = mpirun("batch_norm", tmp_path / "buffers.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert np.load(tmp_path / "buffers.npy").shape == (16,)


def test_disagreeing_ranks_fail_at_start_with_a_clear_error(tmp_path):
    result, seconds = mpirun("disagree", tmp_path / "x")
    assert result.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank}: MPI ranks disagree on" in result.stdout
    assert "layer_sizes" in result.stdout and "dtype" in result.stdout


def test_a_rank_that_raises_stops_the_others(tmp_path):
    result, seconds = mpirun("raise", tmp_path / "x", timeout=60)
    assert result.returncode != 0
    assert "rank 1 failed while loading its shard" in result.stderr
