"""Learning-rate schedules, applied between compiled epochs.

A schedule is asked for the learning rate of each epoch; the rate goes into the kernels'
hyperparameter vector, so changing it costs nothing.  ``fit(schedule=...)`` takes a name or an
object:

==================  =====================================================================
``"constant"``      the initial rate throughout
``"step"``          rate * gamma ** (epoch // step_size)
``"exponential"``   rate * gamma ** epoch
``"invscaling"``    rate / (samples_seen + 1) ** power_t, scikit-learn's ``invscaling``
``"plateau"``       multiply by ``factor`` when the monitored value stops improving for
                    more than ``patience`` epochs; stop training once the rate is at
                    ``min_lr`` or below (scikit-learn's ``adaptive``, also accepted as a name)
==================  =====================================================================
"""
from ._validation import check_number, check_positive_int


class Schedule:
    """Base class: a constant rate.  Subclasses override :meth:`rate`."""

    name = "constant"

    def start(self, learning_rate, resume=False):
        """Called once per ``fit`` with the initial rate.  With ``resume`` (a warm-started
        fit) a schedule that has run before continues where it stopped: its rate, its
        counts of epochs and samples seen, and its plateau state (scikit-learn's rule for
        ``partial_fit``: 30 one-epoch calls equal one 30-epoch fit)."""
        if resume and getattr(self, "initial", None) is not None:
            return
        self.initial = float(learning_rate)
        self.current = float(learning_rate)
        self.epochs_seen = 0
        self.samples_seen = 0

    def advance(self, samples):
        """Called after every epoch with the number of training samples it saw."""
        self.epochs_seen += 1
        self.samples_seen += samples

    def rate(self, epoch, samples_seen):
        """Learning rate for 0-based ``epoch`` after ``samples_seen`` training samples."""
        return self.initial

    def end_epoch(self, logs):
        """Called after each epoch with its logs; return True to stop training."""
        return False

    def __repr__(self):
        return f"{type(self).__name__}()"


Constant = Schedule


class StepDecay(Schedule):
    name = "step"

    def __init__(self, step_size=10, gamma=0.5):
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_number(gamma, "gamma", 0.0, 1.0, low_open=True)

    def rate(self, epoch, samples_seen):
        return self.initial * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    name = "exponential"

    def __init__(self, gamma=0.95):
        self.gamma = check_number(gamma, "gamma", 0.0, 1.0, low_open=True)

    def rate(self, epoch, samples_seen):
        return self.initial * self.gamma ** epoch


class InvScaling(Schedule):
    """scikit-learn's ``invscaling``: rate / (samples_seen + 1) ** power_t, updated per epoch."""

    name = "invscaling"

    def __init__(self, power_t=0.5):
        self.power_t = check_number(power_t, "power_t", 0.0)

    def rate(self, epoch, samples_seen):
        return self.initial / (samples_seen + 1) ** self.power_t


class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for more than ``patience`` epochs in a row; when that happens with the rate
    already at ``min_lr`` or below, stop training.

    With the defaults (factor 0.2, min_lr 1e-6, monitor "loss") this is scikit-learn's
    ``learning_rate="adaptive"``, where patience is ``n_iter_no_change`` and min_delta
    ``tol``.  ``monitor`` may also be "val_loss" or "val_score" (higher is better).
    """

    name = "plateau"

    def __init__(self, factor=0.2, patience=10, min_delta=1e-4, min_lr=1e-6, monitor="loss"):
        self.factor = check_number(factor, "factor", 0.0, 1.0, low_open=True, high_open=True)
        self.patience = check_positive_int(patience, "patience", minimum=0)
        self.min_delta = check_number(min_delta, "min_delta", 0.0)
        self.min_lr = check_number(min_lr, "min_lr", 0.0)
        if monitor not in ("loss", "val_loss", "val_score"):
            raise ValueError(f"monitor must be 'loss', 'val_loss' or 'val_score', got "
                             f"{monitor!r}")
        self.monitor = monitor

    def start(self, learning_rate, resume=False):
        if resume and getattr(self, "initial", None) is not None:
            return
        super().start(learning_rate)
        self.best = float("inf")
        self.bad_epochs = 0

    def rate(self, epoch, samples_seen):
        return self.current

    def end_epoch(self, logs):
        value = logs.get(self.monitor)
        if value is None or value != value:
            raise ValueError(f"ReduceOnPlateau monitors {self.monitor!r}, which this fit does "
                             f"not compute (give validation data)")
        if self.monitor == "val_score":
            value = -value
        self.bad_epochs = 0 if value < self.best - self.min_delta else self.bad_epochs + 1
        self.best = min(self.best, value)
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            if self.current <= self.min_lr:
                return True
            self.current *= self.factor
        return False


SCHEDULES = {"constant": Schedule, "step": StepDecay, "exponential": ExponentialDecay,
             "invscaling": InvScaling, "plateau": ReduceOnPlateau, "adaptive": ReduceOnPlateau}


def get_schedule(schedule):
    if schedule is None:
        return Schedule()
    if isinstance(schedule, Schedule):
        return schedule
    if not isinstance(schedule, str):
        raise TypeError(f"schedule must be a name or a Schedule, got {schedule!r}")
    cls = SCHEDULES.get(schedule)
    if cls is None:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    return cls()
