"""fastbp and its peers on the same work, in one process, from a checkout:

    python benchmarks/peers/compare.py [--workloads W1,W2] [--peers numpy,torch] [--rounds 3]
    python benchmarks/peers/compare.py --recurrent [R1,R2,R3] [--peers torch,jax_scan]

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

``--recurrent`` runs the recurrent workloads of issue 10 instead (R1 GRU, R2 Elman RNN
online, R3 LSTM; ``benchmarks/peers/recurrent.py``): fastbp, PyTorch eager and a JAX
whole-epoch ``lax.scan``, sequences per second, ratios, final losses and the latency of one
R1 sequence; ``--epochs``, ``--rounds``, ``--no-latency`` and ``--json`` apply.

OpenBLAS reads ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` at start-up; to compare both
settings run the script twice, once under ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""
import argparse
import os
import sys

from fastbp import bench

if __package__:  # imported as benchmarks.peers.compare (asv imports every module it finds)
    from .. import peers
    from . import recurrent
else:  # run as a script: benchmarks/ holds the peers package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import peers
    from peers import recurrent


def _recurrent_workloads(text):
    names = tuple(w.strip() for w in text.split(",") if w.strip())
    unknown = [w for w in names if w not in recurrent.WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown recurrent workload {unknown[0] if unknown else text!r}; known: "
            f"{', '.join(recurrent.WORKLOADS)}")
    return names


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python benchmarks/peers/compare.py",
        description="Train the same networks from the same start with fastbp and every peer "
                    "installed; print samples/s, ratios and final losses, prediction latency "
                    "and start-up time.")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated subset of {','.join(peers.PEERS)} "
                             f"(default: all that are installed)")
    parser.add_argument("--recurrent", nargs="?", const=tuple(recurrent.WORKLOADS),
                        default=None, type=_recurrent_workloads, metavar="R1,R2,R3",
                        help="run the recurrent workloads (all, or a comma-separated subset) "
                             f"instead; peers: {','.join(recurrent.PEERS)}")
    bench.add_arguments(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.recurrent is not None:
        names = recurrent.PEERS if args.peers is None else tuple(args.peers.split(","))
        for p in names:
            if p not in recurrent.PEERS:
                raise SystemExit(f"compare.py: unknown recurrent peer {p!r}; known: "
                                 f"{', '.join(recurrent.PEERS)}")
        report = recurrent.main(args.recurrent, ("fastbp", "fastbp_mkl") + names,
                                epochs=args.epochs,
                                rounds=args.rounds, latency=not args.no_latency)
        if args.json:
            import json
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1, default=float)
        return 0
    names = peers.PEERS if args.peers is None else tuple(args.peers.split(","))
    for p in names:
        if p not in peers.PEERS:
            raise SystemExit(f"compare.py: unknown peer {p!r}; known: {', '.join(peers.PEERS)}")
    return bench.main(args, peers, names)


if __name__ == "__main__":
    sys.exit(main())
