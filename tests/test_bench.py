"""``python -m fastbp bench``: what it reports, without running the (slow) report itself."""
import pathlib
import subprocess
import sys

import pytest

import fastbp
from fastbp import bench

W3 = bench.WORKLOADS["W3"]["sizes"]


def test_gemm_report_gives_the_fraction_of_the_best_peak():
    # 1000 samples/s on W3 computes (6 * weights - 2 * first layer) FLOPs per sample
    row, line = bench.gemm_report(1000.0, W3, [50.0, 200.0, 120.0])
    assert row["peak_gflops"] == 200.0  # the best measurement, not the median
    assert 0 < row["fraction_of_peak"] <= 1
    assert f"{100 * row['fraction_of_peak']:.0f}% of peak" in line
    assert "PROBLEM" not in line


def test_gemm_report_above_the_peak_is_a_measurement_problem():
    row, line = bench.gemm_report(10000.0, W3, [80.0, 89.0])  # ~290% "of peak"
    assert row["fraction_of_peak"] is None and row["peak_measurement_failed"]
    assert "MEASUREMENT PROBLEM" in line and "% of peak" not in line


def test_no_c_source_or_peers_in_the_package():
    package = pathlib.Path(fastbp.__file__).parent
    assert not list(package.glob("*.c")) and not (package / "_peers.py").exists()


SMOKE = ["--workloads", "W1", "--epochs", "1", "--rounds", "1", "--no-float64", "--no-latency",
         "--no-startup"]


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_fastbp_bench_reports_fastbp_alone():
    out = _run("-m", "fastbp", "bench", *SMOKE)
    assert out.returncode == 0, out.stderr
    rows = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
    assert "fastbp" in rows and "numpy" not in rows and "torch" not in rows


def test_peer_comparison_runs_from_the_checkout():
    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "compare.py"
    if not script.exists():
        pytest.skip("no checkout: benchmarks/peers/compare.py not found")
    out = _run(str(script), "--peers", "numpy", *SMOKE)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()
            if line.startswith("  ") and line.split()[0] in ("fastbp", "numpy")}
    # the same math from the same start (other shuffles): after one online epoch the final
    # losses agree within 10 % (shuffle-to-shuffle spread measured here: about 5 %)
    a, b = float(rows["fastbp"][-1]), float(rows["numpy"][-1])
    assert abs(a - b) < 0.1 * max(a, b)
    assert _run(str(script), "--peers", "nope").returncode != 0
