"""fastbp and its peers on the same work, in one process, from a checkout:

    python benchmarks/peers/compare.py [--workloads W1,W2] [--peers numpy,torch] [--rounds 3]

Workloads: those of ``python -m fastbp bench`` (``fastbp.bench.WORKLOADS``; float32,
softmax + cross-entropy, the same data and initial weights for all).

Peers (``benchmarks/peers/__init__.py``): a hand-written NumPy loop always; scikit-learn,
PyTorch, JAX (a jitted step per batch, and the whole epoch in ``lax.scan``) and FANN (its C
peer, ``fann_peer.c``, is compiled with gcc on first use; needs libfann-dev) when installed.
Each runs a warm-up first (compilation excluded), then ``epochs`` timed epochs; that is
repeated for ``rounds`` rounds that interleave the implementations.  The table gives the
median epoch's samples per second, the ratio fastbp / peer and the final loss of each (the
same math from the same start lands at the same loss).  Also measured: the latency of
predicting one row, the GEMM peak of the BLAS fastbp calls, and start-up time.

OpenBLAS reads ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` at start-up; to compare both
settings run the script twice, once under ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""
import argparse
import os
import sys

from fastbp import bench

if __package__:  # imported as benchmarks.peers.compare (asv imports every module it finds)
    from .. import peers
else:  # run as a script: benchmarks/ holds the peers package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import peers


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python benchmarks/peers/compare.py",
        description="Train the same networks from the same start with fastbp and every peer "
                    "installed; print samples/s, ratios and final losses, prediction latency "
                    "and start-up time.")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated subset of {','.join(peers.PEERS)} "
                             f"(default: all that are installed)")
    bench.add_arguments(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    names = peers.PEERS if args.peers is None else tuple(args.peers.split(","))
    for p in names:
        if p not in peers.PEERS:
            raise SystemExit(f"compare.py: unknown peer {p!r}; known: {', '.join(peers.PEERS)}")
    return bench.main(args, peers, names)


if __name__ == "__main__":
    sys.exit(main())
