"""Start-up of fastbp over a bare ``python -c "import numpy"``, for one or more Pythons (e.g.
two virtualenvs with two fastbp versions), in interleaved fresh processes.

    python benchmarks/startup.py [PYTHON ...] [--rounds 7]

Each round runs ``import numpy`` once and, with every Python given (default: this one),
import fastbp + one W1 epoch on the bundled digits + a first predict (a warm kernel cache:
one untimed run first fills it).  Reports, per Python, the median and minimum of wall and CPU
(user + system) seconds over the numpy baseline.  CPU seconds move less than wall seconds on
a shared machine, where another process may hold the core.

The untimed first run also writes the modules' bytecode (``__pycache__/*.pyc``), as any
installation or first import does, even where ``PYTHONDONTWRITEBYTECODE`` is set: otherwise
every timed run of a checkout edited since its last import would compile its sources again.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

#: the children run here, not in the caller's directory: ``python -c`` puts its working
#: directory first on sys.path, so run from a checkout every Python would import that
#: checkout's fastbp instead of its own
NEUTRAL_DIR = tempfile.gettempdir()

SCRIPT = """
import numpy as np
import fastbp
from fastbp.datasets import load_digits
X, y = load_digits()
net = fastbp.Network([64, 32, 10], hidden_activation="tanh", output="softmax",
                     dtype=np.float32, seed=0)
net.fit(X, y, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01, seed=0)
net.predict(X[:5])
"""


def timed(python, code):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, cwd=NEUTRAL_DIR)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pythons", nargs="*", default=[sys.executable])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    writing = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for py in args.pythons:  # fill the kernel cache and write the bytecode, untimed
        subprocess.run([py, "-c", SCRIPT], check=True, env=writing, cwd=NEUTRAL_DIR)
    base = []
    runs = {py: [] for py in args.pythons}
    for _ in range(args.rounds):
        base.append(timed(args.pythons[0], "import numpy"))
        for py in args.pythons:
            runs[py].append(timed(py, SCRIPT))
    for py in args.pythons:  # what each Python imported
        where = subprocess.run([py, "-c", "import fastbp; print(fastbp.__file__)"], check=True,
                               cwd=NEUTRAL_DIR, capture_output=True, text=True).stdout.strip()
        print(f"{py}: {where}")
    bw = [b[0] for b in base]
    bc = [b[1] for b in base]
    print(f"python -c 'import numpy': wall median {statistics.median(bw):.3f} s, "
          f"CPU median {statistics.median(bc):.3f} s")
    for py, r in runs.items():
        w = [x[0] for x in r]
        c = [x[1] for x in r]
        print(f"{py}: over numpy: wall median {statistics.median(w) - statistics.median(bw):.3f}"
              f" s (min {min(w) - min(bw):.3f}), CPU median "
              f"{statistics.median(c) - statistics.median(bc):.3f} s (min {min(c) - min(bc):.3f})")


if __name__ == "__main__":
    main()
