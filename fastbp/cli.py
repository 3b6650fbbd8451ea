"""The ``fastbp`` command line (also ``python -m fastbp``).

    fastbp train DATA [--target COL] [--hidden 64,32] [--activation relu] [--optimizer adam]
                      [--epochs 50] [--out model.npz] ...
    fastbp predict MODEL DATA [--out predictions.csv]
    fastbp demo
    fastbp bench

DATA is a CSV file with a header row (the target column named by ``--target``, by default
the last one) or a FANN training-data file (first line ``N n_in n_out``).  Errors (missing
files, malformed data, mismatched feature counts, foreign model files) end the command with
one line on stderr and exit status 2, never a traceback.
"""
import argparse
import csv
import io
import sys
import time

import numpy as np


from .errors import CliError  # noqa: E402


# --- data files ---------------------------------------------------------------------------
def _is_fann_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 3 and all(t.isdigit() for t in first)


def read_csv(path, target=None, require_target=True):
    """(feature names, X float64, target name, raw target strings or None) of a CSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise CliError(f"{path}: a CSV file needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        raise CliError(f"{path}: duplicate column names in the header")
    if target is None and require_target:
        target = header[-1]
    if target is not None and target not in header and require_target:
        raise CliError(f"{path}: no column named {target!r} (columns: {', '.join(header)})")
    t_col = header.index(target) if target in header else None
    features = [h for i, h in enumerate(header) if i != t_col]
    if not features:
        raise CliError(f"{path}: no feature columns besides the target")
    X = np.empty((len(rows) - 1, len(features)))
    labels = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CliError(f"{path}, line {lineno}: {len(row)} fields, the header has "
                           f"{len(header)}")
        values = [c.strip() for i, c in enumerate(row) if i != t_col]
        try:
            X[lineno - 2] = [float(v) for v in values]
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise CliError(f"{path}, line {lineno}: feature value {bad!r} is not a number") \
                from None
        if t_col is not None:
            labels.append(row[t_col].strip())
    if not np.isfinite(X).all():
        raise CliError(f"{path}: features contain NaN or infinity")
    return features, X, target if t_col is not None else None, labels if t_col is not None \
        else None


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _task_of(labels, task):
    """'classification' or 'regression' for raw CSV targets."""
    if task != "auto":
        return task
    if not all(_is_number(v) for v in labels):
        return "classification"
    values = np.array([float(v) for v in labels])
    integral = np.all(values == np.round(values))
    return "classification" if integral and len(np.unique(values)) <= 20 else "regression"


def _fann_targets(Y):
    """('classification', labels) for one-hot (or 0/1, -1/1) FANN targets, else regression."""
    lo, hi = Y.min(), Y.max()
    binary = np.all((Y == lo) | (Y == hi)) and lo < hi
    if binary and Y.shape[1] == 1:
        return "classification", (Y[:, 0] == hi).astype(np.int64)
    if binary and np.all((Y == hi).sum(axis=1) == 1):
        return "classification", Y.argmax(axis=1)
    return "regression", None


def load_training_data(path, target, task):
    """X, targets for the network, and the metadata describing them."""
    from .fann import read_fann_data
    if _is_fann_file(path):
        X, Y = read_fann_data(path)
        kind, labels = _fann_targets(Y) if task != "regression" else ("regression", None)
        if task == "classification" and kind != "classification":
            raise CliError(f"{path}: the targets are not one-hot or binary class labels")
        meta = {"format": "fann", "features": [f"x{i}" for i in range(X.shape[1])]}
        if kind == "classification":
            classes = [str(c) for c in range(max(2, Y.shape[1]) if Y.shape[1] > 1 else 2)]
            meta.update(task="classification", classes=classes)
            return X, labels, meta
        meta.update(task="regression", outputs=[f"y{j}" for j in range(Y.shape[1])])
        return X, Y, meta
    features, X, target, raw = read_csv(path, target)
    kind = _task_of(raw, task)
    meta = {"format": "csv", "features": features, "target": target, "task": kind}
    if kind == "classification":
        classes = sorted(set(raw), key=lambda v: (not _is_number(v),
                                                   float(v) if _is_number(v) else 0, v))
        if len(classes) < 2:
            raise CliError(f"{path}: the target column {target!r} has a single class")
        index = {c: i for i, c in enumerate(classes)}
        meta["classes"] = classes
        return X, np.array([index[v] for v in raw]), meta
    try:
        y = np.array([float(v) for v in raw])
    except ValueError as e:
        raise CliError(f"{path}: target column {target!r}: {e}") from None
    meta["outputs"] = [target]
    return X, y.reshape(-1, 1), meta


def load_features(path, meta):
    """X (and true targets when the file has them) for prediction with a model's metadata."""
    from .fann import read_fann_data
    if _is_fann_file(path):
        X, Y = read_fann_data(path)
        truth = None
        if meta.get("task") == "classification":
            kind, labels = _fann_targets(Y)
            truth = labels if kind == "classification" else None
        elif meta.get("task") == "regression":
            truth = Y
        return X, truth
    target = meta.get("target")
    features, X, t, raw = read_csv(path, target, require_target=False)
    expected = meta.get("features")
    if expected and meta.get("format") == "csv" and features != expected:
        if len(features) != len(expected):
            raise CliError(f"{path}: {len(features)} feature columns, the model expects "
                           f"{len(expected)} ({', '.join(expected)})")
        raise CliError(f"{path}: feature columns {features} differ from the model's "
                       f"{expected}")
    truth = None
    if raw is not None and meta.get("task") == "classification":
        classes = meta.get("classes", [])
        truth = np.array([classes.index(v) if v in classes else -1 for v in raw])
    elif raw is not None and all(_is_number(v) for v in raw):
        truth = np.array([float(v) for v in raw]).reshape(-1, 1)
    return X, truth


# --- commands -----------------------------------------------------------------------------
def _train(args):
    from .network import Network
    X, y, meta = load_training_data(args.data, args.target, args.task)
    hidden = [int(h) for h in args.hidden.split(",") if h.strip()] if args.hidden else []
    if any(h < 1 for h in hidden):
        raise CliError(f"--hidden must list positive layer sizes, got {args.hidden!r}")
    if meta["task"] == "classification":
        n_out = len(meta["classes"])
        output = "softmax"
    else:
        n_out = y.shape[1]
        output = "identity"
    if args.standardize:
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        X = (X - mean) / scale
        meta["standardize"] = {"mean": mean.tolist(), "scale": scale.tolist()}
    net = Network([X.shape[1]] + hidden + [n_out], hidden_activation=args.activation,
                  output=output, dtype=args.dtype, seed=args.seed,
                  normalization=args.normalization)
    net.metadata = meta
    print(f"fastbp train: {args.data}: {X.shape[0]} samples, {X.shape[1]} features, "
          f"{meta['task']}" + (f" ({n_out} classes)" if output == "softmax" else ""),
          file=sys.stderr)
    print(f"  {net!r}, {args.optimizer}, {args.epochs} epochs", file=sys.stderr)
    t0 = time.perf_counter()
    history = net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=args.optimizer, learning_rate=args.learning_rate,
                      seed=args.seed, validation_fraction=args.validation_fraction or None,
                      early_stopping=args.patience is not None,
                      patience=args.patience or 10, verbose=not args.quiet)
    seconds = time.perf_counter() - t0
    metric = "accuracy" if meta["task"] == "classification" else "R^2"
    line = f"  {history.epochs} epochs in {seconds:.2f} s, training loss {history.loss[-1]:.5g}"
    if args.validation_fraction:
        line += f", validation {metric} {history.val_score[-1]:.4f}"
    print(line, file=sys.stderr)
    net.save(args.out)
    print(f"  saved {args.out}", file=sys.stderr)
    return 0


def _predict(args):
    from .loading import load
    net = load(args.model)
    from .network import Network
    if not isinstance(net, Network):
        net = net.network_  # an estimator's file: predict with its network
    meta = net.metadata or {}
    X, truth = load_features(args.data, meta)
    if X.shape[1] != net.n_inputs:
        raise CliError(f"{args.data}: {X.shape[1]} features per sample, the model expects "
                       f"{net.n_inputs}")
    if "standardize" in meta:
        X = (X - np.array(meta["standardize"]["mean"])) / np.array(meta["standardize"]["scale"])
    P = net.predict_proba(X)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if meta.get("task") == "classification" or net.output_activation == "softmax":
        classes = meta.get("classes") or [str(i) for i in range(P.shape[1])]
        pred = P.argmax(axis=1)
        writer.writerow(["prediction"] + [f"p_{c}" for c in classes])
        for k, row in zip(pred, P):
            writer.writerow([classes[k]] + [f"{v:.6g}" for v in row])
        if truth is not None and (truth >= 0).all():
            print(f"fastbp predict: accuracy {np.mean(pred == truth):.4f} on "
                  f"{len(truth)} samples", file=sys.stderr)
    else:
        names = meta.get("outputs") or [f"y{j}" for j in range(P.shape[1])]
        writer.writerow(["prediction"] if P.shape[1] == 1 else names)
        for row in P:
            writer.writerow([f"{v:.8g}" for v in row])
        if truth is not None and truth.shape == P.shape:
            from .training import score
            r2 = score(net, P, truth.astype(P.dtype), np.empty(0))
            print(f"fastbp predict: R^2 {r2:.4f} on {len(truth)} samples", file=sys.stderr)
    if args.out:
        from .io import atomic_write
        with atomic_write(args.out, "w") as f:
            f.write(buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def _demo(args):
    from . import demo
    demo.run(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
             dtype=args.dtype, seed=args.seed)
    return 0


def _bench(args):
    from . import bench
    return bench.main(args)


def build_parser():
    from .registry import ACTIVATIONS, OPTIMIZERS
    parser = argparse.ArgumentParser(
        prog="fastbp", description="Backpropagation at C speed.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a network on a CSV or FANN data file",
                       description="Train a network on DATA (a CSV file with a header row, or "
                                   "a FANN training-data file) and save it as a model file.")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--target", help="CSV column to predict (default: the last column)")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="default: classification for non-numeric or few integer targets "
                        "(one-hot targets in FANN files), regression otherwise")
    p.add_argument("--hidden", default="32", help="hidden layer sizes, e.g. 64,32")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS.choices(hidden=True))
    p.add_argument("--normalization", choices=["batch", "layer"], default=None,
                   help="normalize every hidden layer (batch norm needs --batch-size >= 2)")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS.names())
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="hold out this fraction to report the validation metric (0: none)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop early after this many epochs without validation improvement")
    p.add_argument("--standardize", action="store_true",
                   help="scale features to zero mean and unit variance (saved with the model)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="model.npz", help="model file to write (default model.npz)")
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", help="predict with a saved model; CSV to stdout or --out",
                       description="Predict every row of DATA (CSV or FANN file) with MODEL; "
                                   "write the predictions (and class probabilities) as CSV.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    p.set_defaults(func=_predict)

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

    p = sub.add_parser("bench", help="fastbp's own speed report: training samples/s, "
                                     "prediction latency, start-up",
                       description="Train the W1-W3 networks in float32 and float64 with "
                                   "fastbp; print samples/s and final losses, the GEMM peak "
                                   "of the BLAS it calls, prediction latency, start-up time. "
                                   "The comparison with NumPy, scikit-learn, PyTorch, JAX and "
                                   "FANN runs from a checkout: "
                                   "python benchmarks/peers/compare.py")
    from . import bench
    bench.add_arguments(p)
    p.set_defaults(func=_bench)
    return parser


def main(argv=None):
    from .errors import DivergenceError, ModelFileError
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ModelFileError, DivergenceError) as e:
        message = str(e)
    except FileNotFoundError as e:
        message = f"{e.filename}: no such file"
    except IsADirectoryError as e:
        message = f"{e.filename}: is a directory"
    except PermissionError as e:
        message = f"{e.filename}: permission denied"
    except UnicodeDecodeError:
        message = "the data file is not text (CSV or FANN data expected)"
    except (ValueError, TypeError, OSError) as e:
        message = str(e)
    print(f"fastbp {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
