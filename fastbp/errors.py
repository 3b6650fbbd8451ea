"""Every exception and warning fastbp defines (besides the usual ValueError/TypeError for bad
input)."""


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a NaN or infinite loss.

    Also a ``ValueError``: scikit-learn's contract for non-finite parameters during ``fit``
    (``except ValueError`` catches it, as with scikit-learn's MLP).

    Raised by ``fit``; the network keeps the weights (and optimizer state) of the last epoch
    whose loss was finite.  ``epoch`` is the 1-based epoch that diverged and ``history`` the
    training history up to the last good epoch.
    """

    def __init__(self, message, epoch=None, history=None):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


class ModelFileError(ValueError):
    """A model file is truncated, corrupt, foreign, tampered with or from a newer version."""


class FannFormatError(ValueError):
    """A FANN data file that does not follow the format (message names the file and line)."""


class CliError(Exception):
    """A command-line error to report as one line, without a traceback."""


class KernelCacheWarning(RuntimeWarning):
    """No writable directory for the compiled kernels: each process compiles them in memory."""


class MalformedModelFile(Exception):
    """Internal to :mod:`fastbp.io`: a problem found in a model file, before the file's name is
    added and it is raised as :class:`ModelFileError`."""
