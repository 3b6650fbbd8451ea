"""The ``fastbp`` command line (also ``python -m fastbp``)."""
import argparse
import sys


def _demo(args):
    from . import demo
    demo.run(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
             dtype=args.dtype, seed=args.seed)
    return 0


def _bench(args):
    from . import bench
    return bench.main(args)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastbp", description="Backpropagation for dense neural networks at C speed.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="train on the bundled digits; print accuracy and speed",
                       description="Train a 64-32-10 tanh/softmax network on the digits that "
                                   "install with fastbp, online (batch 1) and in mini-batches; "
                                   "print test accuracy and training samples per second.")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=0.1,
                   help="mini-batch rate; online training uses a tenth of it")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    p = sub.add_parser("bench", help="compare training speed with NumPy, scikit-learn, "
                                     "PyTorch, JAX and FANN in one run",
                       description="Train the same networks from the same start with fastbp "
                                   "and every peer installed; print samples/s, ratios and "
                                   "final losses, prediction latency and start-up time.")
    p.add_argument("--workloads", default="W1,W2,W3", help="comma-separated subset of W1,W2,W3")
    p.add_argument("--peers", default=None,
                   help="comma-separated subset of numpy,sklearn,torch,jax_step,jax_scan,fann "
                        "(default: all that are installed)")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs per workload")
    p.add_argument("--no-float64", action="store_true", help="skip the float64 rows")
    p.add_argument("--no-latency", action="store_true", help="skip prediction latency")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
