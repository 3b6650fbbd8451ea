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


from ._validation import check_number, check_positive_int  # noqa: E402
from ._config import CSV_CHUNK_ROWS, CSV_MAX_CLASSES, MAX_UNITS  # noqa: E402
from .errors import CliError  # noqa: E402


# --- data files ---------------------------------------------------------------------------
def _is_fann_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 3 and all(t.isdigit() for t in first)


class CsvTargets:
    """A CSV file's target column without a Python string per row: ``values`` (float64, NaN
    where a value is not a number), ``numeric`` (every value parsed as a float), ``codes``
    (int32 index of each row's string in ``names``, the distinct strings in order of first
    appearance; None when there are more than ``CSV_MAX_CLASSES`` of them)."""

    def __init__(self, values, numeric, codes, names):
        self.values, self.numeric, self.codes, self.names = values, numeric, codes, names

    def __len__(self):
        return len(self.values)


class _Columns:
    """Rows of floats appended in fixed-size chunks: the file's data is held once as float
    arrays (and copied once, at the end), never as lists of strings."""

    def __init__(self, width, dtype=np.float64):
        self.width, self.dtype, self.chunks, self.n = width, dtype, [], 0

    def _current(self):
        rows = self.n % CSV_CHUNK_ROWS
        if rows == 0:
            shape = (CSV_CHUNK_ROWS, self.width) if self.width else (CSV_CHUNK_ROWS,)
            self.chunks.append(np.empty(shape, dtype=self.dtype))
        return self.chunks[-1], rows

    def append(self, value):
        chunk, row = self._current()
        chunk[row] = value
        self.n += 1

    def array(self):
        if not self.chunks:
            return np.empty((0, self.width) if self.width else 0, dtype=self.dtype)
        last = self.n - (len(self.chunks) - 1) * CSV_CHUNK_ROWS
        self.chunks[-1] = self.chunks[-1][:last]
        out = np.concatenate(self.chunks)
        self.chunks = []
        return out


def _rows(path, f):
    """(line number, row) of the non-blank rows of a CSV file; a malformed file (a field
    longer than csv.field_size_limit(), a NUL byte) is a CliError naming the line."""
    reader = csv.reader(f)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise CliError(f"{path}, line {reader.line_num}: {e}") from None
        if row and any(row):
            yield reader.line_num, row


def read_csv(path, target=None, require_target=True):
    """(feature names, X float64, target name, :class:`CsvTargets` or None) of a CSV file,
    read row by row into float chunks (memory about twice the features' float64 size)."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is not a name
        rows = _rows(path, f)
        first = next(rows, None)
        if first is None or not any(c.strip() for c in first[1]):
            raise CliError(f"{path}: a CSV file needs a header row and at least one data row")
        header = [h.strip() for h in first[1]]
        if len(set(header)) != len(header):
            raise CliError(f"{path}: duplicate column names in the header")
        if target is None and require_target:
            target = header[-1]
        if target is not None and target not in header and require_target:
            raise CliError(f"{path}: no column named {target!r} (columns: "
                           f"{', '.join(header)})")
        t_col = header.index(target) if target in header else None
        features = [h for i, h in enumerate(header) if i != t_col]
        if not features:
            raise CliError(f"{path}: no feature columns besides the target")
        X = _Columns(len(features))
        values, codes, names = _Columns(0), _Columns(0, np.int32), {}
        numeric = True
        width = len(header)
        for lineno, row in rows:
            if len(row) != width:
                if not any(c.strip() for c in row):
                    continue
                raise CliError(f"{path}, line {lineno}: {len(row)} fields, the header has "
                               f"{width}")
            label = row.pop(t_col) if t_col is not None else None
            try:
                X.append([float(v) for v in row])
            except ValueError:
                if not any(c.strip() for c in row) and not (label or "").strip():
                    continue
                bad = next(v.strip() for v in row if not _is_number(v))
                raise CliError(f"{path}, line {lineno}: feature value {bad!r} is not a "
                               f"number") from None
            if label is None:
                continue
            label = label.strip()
            try:
                values.append(float(label))
            except ValueError:
                values.append(np.nan)
                numeric = False
            if names is not None:
                code = names.setdefault(label, len(names))
                if len(names) > CSV_MAX_CLASSES:
                    names = None
                else:
                    codes.append(code)
    X = X.array()
    if X.shape[0] == 0:
        raise CliError(f"{path}: a CSV file needs a header row and at least one data row")
    if not np.isfinite(X).all():
        raise CliError(f"{path}: features contain NaN or infinity")
    if t_col is None:
        return features, X, None, None
    if names is None and not numeric:
        raise CliError(f"{path}: the target column {target!r} has more than "
                       f"{CSV_MAX_CLASSES} distinct non-numeric values")
    labels = CsvTargets(values.array(), numeric, codes.array() if names is not None else None,
                        list(names) if names is not None else None)
    return features, X, target, labels


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _task_of(labels, task):
    """'classification' or 'regression' for a CSV file's targets."""
    if task != "auto":
        return task
    if not labels.numeric:
        return "classification"
    values = labels.values
    integral = np.all(values == np.round(values))
    return "classification" if integral and len(np.unique(values)) <= 20 else "regression"


def _class_order(names):
    """Class names sorted as before: numbers by value first, then the other strings."""
    return sorted(names, key=lambda v: (not _is_number(v), float(v) if _is_number(v) else 0,
                                        v))


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
        if raw.names is None:
            raise CliError(f"{path}: the target column {target!r} has more than "
                           f"{CSV_MAX_CLASSES} distinct values: too many for classes")
        classes = _class_order(raw.names)
        if len(classes) < 2:
            raise CliError(f"{path}: the target column {target!r} has a single class")
        rank = np.empty(len(classes), dtype=np.int64)
        rank[[raw.names.index(c) for c in classes]] = np.arange(len(classes))
        meta["classes"] = classes
        return X, rank[raw.codes], meta
    if not raw.numeric:
        raise CliError(f"{path}: target column {target!r} has values that are not numbers")
    meta["outputs"] = [target]
    return X, raw.values.reshape(-1, 1), meta


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
    if raw is not None and meta.get("task") == "classification" and raw.names is not None:
        classes = meta.get("classes", [])
        index = np.array([classes.index(v) if v in classes else -1 for v in raw.names],
                         dtype=np.int64)
        truth = index[raw.codes]
    elif raw is not None and raw.numeric:
        truth = raw.values.reshape(-1, 1)
    return X, truth


# --- commands -----------------------------------------------------------------------------
def _train(args):
    from .network import Network
    X, y, meta = load_training_data(args.data, args.target, args.task)
    hidden = args.hidden
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
                      patience=args.patience if args.patience is not None else 10,
                      verbose=not args.quiet)
    seconds = time.perf_counter() - t0
    metric = "accuracy" if meta["task"] == "classification" else "R^2"
    line = f"  {history.epochs} epochs in {seconds:.2f} s, training loss {history.loss[-1]:.5g}"
    if args.validation_fraction:
        line += f", validation {metric} {history.val_score[-1]:.4f}"
    print(line, file=sys.stderr)
    net.save(args.out)
    print(f"  saved {args.out}", file=sys.stderr)
    return 0


def _estimator_rows(est, X, writer):
    """Predictions of a scikit-learn estimator saved by fastbp, in its own terms: the labels
    it was trained on (``classes_``), not the network's output indices."""
    if X.shape[1] != est.n_features_in_:
        raise CliError(f"{X.shape[1]} features per sample, the model expects "
                       f"{est.n_features_in_}")
    if not hasattr(est, "classes_"):  # MLPRegressor
        P = est.predict(X).reshape(X.shape[0], -1)
        writer.writerow(["prediction"] if P.shape[1] == 1 else
                        [f"y{j}" for j in range(P.shape[1])])
        for row in P:
            writer.writerow([f"{v:.8g}" for v in row])
        return
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        raise CliError("the model is a multi-label MLPClassifier: predict with it from "
                       "Python (fastbp.load(...).predict)")
    P = est.predict_proba(X)
    classes = [str(c) for c in est.classes_]
    writer.writerow(["prediction"] + [f"p_{c}" for c in classes])
    for k, row in zip(P.argmax(axis=1), P):
        writer.writerow([classes[k]] + [f"{v:.6g}" for v in row])


def _predict(args):
    from .loading import load
    from .network import Network
    model = load(args.model)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not isinstance(model, Network):  # an estimator's file (fastbp.load semantics)
        X, _ = load_features(args.data, {})
        try:
            _estimator_rows(model, X, writer)
        except CliError as e:
            raise CliError(f"{args.data}: {e}") from None
        return _write_predictions(args, buf)
    net = model
    meta = net.metadata or {}
    X, truth = load_features(args.data, meta)
    if X.shape[1] != net.n_inputs:
        raise CliError(f"{args.data}: {X.shape[1]} features per sample, the model expects "
                       f"{net.n_inputs}")
    if "standardize" in meta:
        X = (X - np.array(meta["standardize"]["mean"])) / np.array(meta["standardize"]["scale"])
    P = net.predict_proba(X)
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
    return _write_predictions(args, buf)


def _write_predictions(args, buf):
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


def _warmup(args):
    from . import _warmup
    return _warmup.main(args)


def _bench(args):
    from . import bench
    return bench.main(args)


# --- option values, checked when the command line is parsed ------------------------------
def _option(convert, what, check, **limits):
    """An argparse type: ``convert`` the text (else "is not {what}"), then the library's own
    ``check`` (fastbp._validation) with ``limits``; its message becomes argparse's."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        try:
            return check(value, "the value", **limits)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = what
    return parse


def _layer_sizes(text):
    """--hidden: comma-separated layer sizes, each in 1..MAX_UNITS (the total is bounded by
    the network itself, fastbp._config.MAX_PARAMS)."""
    sizes = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a layer size") from None
        if not 1 <= size <= MAX_UNITS:
            raise argparse.ArgumentTypeError(f"layer sizes must be in 1..{MAX_UNITS}, got "
                                             f"{size}")
        sizes.append(size)
    return sizes


def _names(choices, what):
    """An argparse type: a comma-separated list of names from ``choices``."""
    def parse(text):
        names = [t.strip() for t in text.split(",") if t.strip()]
        for n in names:
            if n not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {n!r}; choose from "
                                                 f"{', '.join(choices)}")
        if not names:
            raise argparse.ArgumentTypeError(f"no {what} given")
        return names
    parse.__name__ = f"{what} list"
    return parse


POSITIVE_INT = _option(int, "an integer", check_positive_int, minimum=1)
_RATE = _option(float, "a number", check_number, low=0, low_open=True)  # finite, too
_FRACTION = _option(float, "a number", check_number, low=0, high=1, high_open=True)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2 (as every other CLI error)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    from .registry import ACTIVATIONS, OPTIMIZERS
    parser = _Parser(
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
    p.add_argument("--hidden", default=[32], type=_layer_sizes,
                   help="hidden layer sizes, e.g. 64,32")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS.choices(hidden=True))
    p.add_argument("--normalization", choices=["batch", "layer"], default=None,
                   help="normalize every hidden layer (batch norm needs --batch-size >= 2)")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS.names())
    p.add_argument("--learning-rate", type=_RATE, default=None)
    p.add_argument("--epochs", type=POSITIVE_INT, default=50)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    p.add_argument("--validation-fraction", type=_FRACTION, default=0.1,
                   help="hold out this fraction to report the validation metric (0: none)")
    p.add_argument("--patience", type=POSITIVE_INT, default=None,
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
    p.add_argument("--epochs", type=POSITIVE_INT, default=30)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=16)
    p.add_argument("--learning-rate", type=_RATE, default=0.1,
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

    p = sub.add_parser("warmup", help="compile the kernels ahead of time into the on-disk cache",
                       description="Compile (or load) every kernel that training and "
                                   "prediction use, for the dtypes and optimizers given, and "
                                   "cache the machine code on disk, e.g. in a Docker build or "
                                   "CI cache step. Exit status 1 when Numba has no writable "
                                   "cache directory (set NUMBA_CACHE_DIR).")
    p.add_argument("--dtypes", type=_names(["float32", "float64"], "dtype"),
                   default=["float32", "float64"],
                   help="comma-separated, default: float32,float64")
    p.add_argument("--optimizers", type=_names(OPTIMIZERS.names(), "optimizer"), default=None,
                   help=f"comma-separated, default: all ({','.join(OPTIMIZERS.names())})")
    p.add_argument("--no-recurrent", action="store_true",
                   help="leave out the recurrent layers' kernels")
    p.add_argument("--no-sparse", action="store_true",
                   help="leave out the kernels for sparse (CSR) input")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_warmup)
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
    except MemoryError:
        message = "not enough memory"
    except (ValueError, TypeError, OSError) as e:
        message = str(e)
    print(f"fastbp {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
