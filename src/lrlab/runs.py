"""One training run: what defines it (:class:`RunSpec`), what it records (:class:`RunMetrics`), and the rules
every trainer shares: its horizon, its data order, when it diverges, how it is validated.

Both trainers (:mod:`lrlab.trainer`, :mod:`lrlab.vectorized`) follow these rules and the store writes
:class:`RunMetrics`, so each rule is written here once. Importing this module does not import torch (the store
and the report read it); :class:`DataOrder` imports torch when a run is trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lrlab.spec import Horizon

if TYPE_CHECKING:
    from torch import Tensor

    from lrlab.tasks import LoaderTask, OptimizerDefaults, Task

#: the largest LR an update of float32 parameters can apply, ``torch.finfo(torch.float32).max`` (torch refuses a
#: larger scalar: "overflow")
MAX_LR = 3.4028234663852886e38


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run.

    Args:
        schedule: the schedule spec string (see :mod:`lrlab.spec`).
        seed: fixes the model's init, the data order and dropout.
        epochs: passes over the training set.
        batch_size: examples per optimizer step (the last, smaller batch of an epoch is dropped).
        optimizer: optimizer name and hyper-parameters; ``optimizer.lr`` is the peak LR schedules start from.
        divergence_factor: a training loss above this multiple of the first batch's loss marks divergence.
        device: where it trains, resolved (``cpu``, ``cuda:0``...: :func:`lrlab.devices.resolve_device`).
        precision: ``fp32``, or ``bf16``/``fp16`` autocast (:mod:`lrlab.devices`).
        stop_step: train only the first ``stop_step`` updates of the ``epochs``-long run, validate there and end
            (successive halving's rungs, :mod:`lrlab.tuner`); None trains every update.
    """

    schedule: str
    seed: int
    epochs: int
    batch_size: int
    optimizer: OptimizerDefaults
    divergence_factor: float = 10.0
    device: str = "cpu"
    precision: str = "fp32"
    stop_step: int | None = None


@dataclass
class RunMetrics:
    """What a trainer produced for one run: per-step and per-epoch series (steps count optimizer updates)."""

    lr: list[float] = field(default_factory=list)
    momentum: list[float | None] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epochs: list[dict[str, float | None]] = field(default_factory=list)  # epoch, step, lr, train/val loss, val_acc
    diverged_step: int | None = None
    wall_s: float = 0.0

    def end_epoch(self, epoch: int, step: int, lr: float, train_losses: list[float], val_loss: float,
                  val_acc: float | None) -> None:
        """Record an epoch: the step reached, the LR for the next update, the mean of its training losses."""
        self.epochs.append({"epoch": epoch, "step": step, "lr": lr, "train_loss": sum(train_losses) / len(train_losses),
                            "val_loss": val_loss, "val_acc": val_acc})


def steps_per_epoch(task: Task | LoaderTask, batch_size: int) -> int:
    """Optimizer steps in one epoch: full batches only (at least one); a LoaderTask's own count."""
    if not hasattr(task, "x_train"):  # a LoaderTask (duck-typed: this module does not import torch)
        return task.epoch_steps()
    return max(1, len(task.x_train) // batch_size)


def horizon_for(task: Task | LoaderTask, run: RunSpec) -> Horizon:
    """The run's length and base LR, against which a schedule spec's durations are resolved."""
    per_epoch = steps_per_epoch(task, run.batch_size)
    beta2 = run.optimizer.betas[1] if run.optimizer.name in ("adam", "adamw") else None
    return Horizon(total_steps=run.epochs * per_epoch, steps_per_epoch=per_epoch, base_lr=run.optimizer.lr,
                   beta2=beta2)


def lr_diverges(lr: float) -> bool:
    """Whether an LR marks divergence at its step: NaN, infinite, or beyond :data:`MAX_LR` in size."""
    return not abs(lr) <= MAX_LR  # NaN compares false


def diverges(run: RunSpec, loss: float, first_loss: float, lr: float) -> bool:
    """Whether a training step marks divergence: a non-finite loss, one above ``divergence_factor`` times the
    run's first, or an LR that :func:`lr_diverges`. The run stops there and is recorded as diverged."""
    return not math.isfinite(loss) or loss > run.divergence_factor * first_loss or lr_diverges(lr)


class DataOrder:
    """The order a run visits its ``n`` training examples: a fresh permutation each epoch, drawn from the run's
    own generator seeded with its seed (so the model's init and dropout do not shift it)."""

    def __init__(self, seed: int, n: int) -> None:
        import torch

        self.n = n
        self._generator = torch.Generator().manual_seed(seed)

    def next_epoch(self) -> Tensor:
        """The next epoch's permutation of ``range(n)``."""
        import torch

        return torch.randperm(self.n, generator=self._generator)


def batch_slice(i: int, batch_size: int) -> slice:
    """Where the ``i``-th batch of an epoch lies in its permutation: full batches of consecutive positions (the
    rest of the epoch, less than a batch, is never reached)."""
    return slice(i * batch_size, (i + 1) * batch_size)


def validation_metrics(task: Task, output: Tensor, targets: Tensor | None = None) -> tuple[float, float | None]:
    """Validation loss and accuracy (None when the task has no accuracy) of a model's output on ``task.x_val``
    (``targets``: ``task.y_val`` where the output lies, default ``task.y_val`` itself)."""
    targets = task.y_val if targets is None else targets
    acc = None if task.accuracy_fn is None else float(task.accuracy_fn(output, targets))
    return float(task.loss_fn(output, targets)), acc
