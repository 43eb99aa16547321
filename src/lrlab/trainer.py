"""The sequential trainer: one model, one schedule, one seed — the reference every other trainer must match.

A plain loop over epochs and minibatches. The learning rate is set by the scheduler in one visible line
after each optimizer step; the validation loss is measured after each epoch and fed to the schedule's
controller (ReduceLROnPlateau), if it has one. The rules it shares with the vectorized trainer (data order,
divergence, validation) are :mod:`lrlab.runs`'.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from lrlab.adapter import ScheduledLR
from lrlab.runs import DataOrder, RunMetrics, RunSpec, batch_slice, diverges, horizon_for, validation_metrics
from lrlab.spec import build
from lrlab.tasks import Task, make_optimizer
from lrlab.tasks.base import SCHEDULE_FREE

#: training batches that recompute BatchNorm statistics at a schedule-free optimizer's averaged weights (README)
BN_BATCHES = 50


@torch.no_grad()
def evaluate(task: Task, model: torch.nn.Module, averaging: torch.optim.Optimizer | None = None,
             batch_size: int = 1) -> tuple[float, float | None]:
    """Validation loss and accuracy (None when the task has no accuracy), over the whole validation set.

    ``averaging``: a schedule-free optimizer, whose averaged weights are validated (``averaging.eval()``, then
    ``train()`` again); BatchNorm's running statistics are first recomputed at them over the first
    :data:`BN_BATCHES` training batches of ``batch_size`` examples, as the ``schedulefree`` README says.
    """
    if averaging is not None:
        averaging.eval()
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            for i in range(min(BN_BATCHES, -(-len(task.x_train) // batch_size))):
                model(task.x_train[batch_slice(i, batch_size)])
    model.eval()
    metrics = validation_metrics(task, model(task.x_val))
    model.train()
    if averaging is not None:
        averaging.train()
    return metrics


def _momentum(group: dict) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


def train(task: Task, run: RunSpec, on_step: Callable[[int], None] | None = None) -> RunMetrics:
    """Train one model under one schedule; return its per-step and per-epoch metrics.

    ``on_step(step)`` is called after every optimizer step (for progress displays). A step that
    :func:`lrlab.runs.diverges` stops the run and records ``diverged_step``.
    """
    start = time.perf_counter()
    torch.manual_seed(run.seed)
    data_order = DataOrder(run.seed, len(task.x_train))
    model = task.make_model()
    optimizer = make_optimizer(run.optimizer, model.parameters())
    horizon = horizon_for(task, run)
    scheduler = ScheduledLR.from_plan(optimizer, build(run.schedule, horizon))
    metrics = RunMetrics()
    first_loss: float | None = None
    step = 0
    model.train()
    for epoch in range(1, run.epochs + 1):
        if step == run.stop_step:  # stopped at an epoch's end: validated there
            break
        epoch_losses = []
        order = data_order.next_epoch()
        for i in range(horizon.steps_per_epoch):
            if step == run.stop_step:  # a rung inside an epoch: validate the model as it is
                break
            batch = order[batch_slice(i, run.batch_size)]
            loss = task.loss_fn(model(task.x_train[batch]), task.y_train[batch])
            value = loss.item()
            group = optimizer.param_groups[0]
            lr = float(group["lr"])
            metrics.lr.append(lr)
            metrics.momentum.append(_momentum(group))
            metrics.train_loss.append(value)
            first_loss = value if first_loss is None else first_loss
            if diverges(run, value, first_loss, lr):
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
        averaging = optimizer if run.optimizer.name in SCHEDULE_FREE else None
        val_loss, val_acc = evaluate(task, model, averaging, run.batch_size)
        metrics.end_epoch(epoch, step, float(optimizer.param_groups[0]["lr"]), epoch_losses, val_loss, val_acc)
        if not math.isfinite(val_loss):
            metrics.diverged_step = step
            break
        if scheduler.controller is not None:
            scheduler.observe(val_loss)  # ReduceLROnPlateau watches the validation loss, once per epoch
    metrics.wall_s = time.perf_counter() - start
    return metrics
