"""The sequential trainer: one model, one schedule, one seed — the reference every other trainer must match.

A plain loop over epochs and minibatches. The learning rate is set by the scheduler in one visible line
after each optimizer step; the validation loss is measured after each epoch and fed to the schedule's
controller (ReduceLROnPlateau), if it has one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lrlab.adapter import ScheduledLR
from lrlab.spec import Horizon, build
from lrlab.store import RunMetrics
from lrlab.tasks import OptimizerDefaults, Task, make_optimizer

#: the largest LR an update of float32 parameters can apply (torch refuses a larger scalar: "overflow")
MAX_LR = float(torch.finfo(torch.float32).max)


def lr_diverges(lr: float) -> bool:
    """Whether an LR marks divergence at its step: NaN, infinite, or beyond :data:`MAX_LR` in size.

    Both trainers stop such a run there and record it as diverged, as for a non-finite loss.
    """
    return not abs(lr) <= MAX_LR  # NaN compares false


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
    """

    schedule: str
    seed: int
    epochs: int
    batch_size: int
    optimizer: OptimizerDefaults
    divergence_factor: float = 10.0


def steps_per_epoch(task: Task, batch_size: int) -> int:
    """Optimizer steps in one epoch: full batches only (at least one)."""
    return max(1, len(task.x_train) // batch_size)


def horizon_for(task: Task, run: RunSpec) -> Horizon:
    """The run's length and base LR, against which a schedule spec's durations are resolved."""
    per_epoch = steps_per_epoch(task, run.batch_size)
    beta2 = run.optimizer.betas[1] if run.optimizer.name in ("adam", "adamw") else None
    return Horizon(total_steps=run.epochs * per_epoch, steps_per_epoch=per_epoch, base_lr=run.optimizer.lr,
                   beta2=beta2)


@torch.no_grad()
def evaluate(task: Task, model: torch.nn.Module) -> tuple[float, float | None]:
    """Validation loss and accuracy (None when the task has no accuracy), over the whole validation set."""
    model.eval()
    output = model(task.x_val)
    loss = float(task.loss_fn(output, task.y_val))
    acc = None if task.accuracy_fn is None else float(task.accuracy_fn(output, task.y_val))
    model.train()
    return loss, acc


def _momentum(group: dict) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


def train(task: Task, run: RunSpec, on_step: Callable[[int], None] | None = None) -> RunMetrics:
    """Train one model under one schedule; return its per-step and per-epoch metrics.

    ``on_step(step)`` is called after every optimizer step (for progress displays). A non-finite loss, one
    above ``divergence_factor`` times the first, or an LR that :func:`lr_diverges` stops the run and records
    ``diverged_step``.
    """
    start = time.perf_counter()
    torch.manual_seed(run.seed)
    data_order = torch.Generator().manual_seed(run.seed)
    model = task.make_model()
    optimizer = make_optimizer(run.optimizer, model.parameters())
    horizon = horizon_for(task, run)
    scheduler = ScheduledLR.from_plan(optimizer, build(run.schedule, horizon))
    metrics = RunMetrics()
    per_epoch, n = horizon.steps_per_epoch, len(task.x_train)
    first_loss: float | None = None
    step = 0
    model.train()
    for epoch in range(1, run.epochs + 1):
        order = torch.randperm(n, generator=data_order)
        epoch_losses = []
        for i in range(per_epoch):
            batch = order[i * run.batch_size:(i + 1) * run.batch_size]
            loss = task.loss_fn(model(task.x_train[batch]), task.y_train[batch])
            value = loss.item()
            group = optimizer.param_groups[0]
            lr = float(group["lr"])
            metrics.lr.append(lr)
            metrics.momentum.append(_momentum(group))
            metrics.train_loss.append(value)
            first_loss = value if first_loss is None else first_loss
            if not math.isfinite(value) or value > run.divergence_factor * first_loss or lr_diverges(lr):
                metrics.diverged_step = step
                break
            epoch_losses.append(value)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()  # the LR for the next update: schedule(step + 1) x controller scale
            step += 1
            if on_step is not None:
                on_step(step)
        if metrics.diverged_step is not None:
            break
        val_loss, val_acc = evaluate(task, model)
        metrics.epochs.append({"epoch": epoch, "step": step, "lr": float(optimizer.param_groups[0]["lr"]),
                               "train_loss": sum(epoch_losses) / len(epoch_losses), "val_loss": val_loss,
                               "val_acc": val_acc})
        if not math.isfinite(val_loss):
            metrics.diverged_step = step
            break
        if scheduler.controller is not None:
            scheduler.observe(val_loss)  # ReduceLROnPlateau watches the validation loss, once per epoch
    metrics.wall_s = time.perf_counter() - start
    return metrics
