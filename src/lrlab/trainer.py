"""The sequential trainer: one model, one schedule, one seed — the reference every other trainer must match.

A plain loop over epochs and batches. The learning rate is set by the scheduler in one visible line after
each step; the validation metrics are measured after each epoch and the loss fed to the schedule's controller
(ReduceLROnPlateau), if it has one. It trains both task forms: a :class:`~lrlab.tasks.Task` (tensors in memory,
lrlab's step) and a :class:`~lrlab.tasks.LoaderTask` (your loaders, optimizer, and optionally your step and
evaluation), on the run's device, each batch moved there as it comes. The rules it shares with the vectorized
trainer (data order, divergence, validation) are :mod:`lrlab.runs`'.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from lrlab.adapter import ScheduledLR
from lrlab.devices import autocast, grad_scaler, to_device
from lrlab.errors import ConfigError
from lrlab.runs import (
    DataOrder,
    RunMetrics,
    RunSpec,
    batch_slice,
    diverges,
    horizon_for,
    lr_diverges,
    validation_metrics,
)
from lrlab.spec import Plan, build
from lrlab.tasks import LoaderTask, Task, make_optimizer
from lrlab.tasks.base import SCHEDULE_FREE
from lrlab.tasks.loop import build_optimizer, check_loss, check_metrics, default_evaluate, default_loss, update

#: training batches that recompute BatchNorm statistics at a schedule-free optimizer's averaged weights (README)
BN_BATCHES = 50


@torch.no_grad()
def evaluate(task: Task | LoaderTask, model: torch.nn.Module, device: str = "cpu", precision: str = "fp32",
             averaging: torch.optim.Optimizer | None = None, batch_size: int = 1) -> tuple[float, float | None]:
    """Validation loss and accuracy (None when the task has no accuracy), over the whole validation set.

    ``averaging``: a schedule-free optimizer, whose averaged weights are validated (``averaging.eval()``, then
    ``train()`` again); BatchNorm's running statistics are first recomputed at them over the first
    :data:`BN_BATCHES` training batches of ``batch_size`` examples (in-memory tasks), as the ``schedulefree``
    README says.
    """
    if averaging is not None:
        averaging.eval()
        if isinstance(task, Task) and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                          for m in model.modules()):
            for i in range(min(BN_BATCHES, -(-len(task.x_train) // batch_size))):
                model(task.x_train[batch_slice(i, batch_size)].to(device))
    model.eval()
    with autocast(device, precision):
        if isinstance(task, LoaderTask):
            batches = (to_device(batch, device) for batch in task.val_batches())
            metrics = check_metrics(task, task.evaluate(model, batches) if task.evaluate is not None
                                    else default_evaluate(task, model, batches))
        else:
            metrics = validation_metrics(task, model(task.x_val.to(device)), task.y_val.to(device))
    model.train()
    if averaging is not None:
        averaging.train()
    return metrics


def _momentum(group: dict) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


def scheduled(optimizer: torch.optim.Optimizer, plan: Plan, ratios: list[float]) -> ScheduledLR:
    """The scheduler driving a LoaderTask's optimizer: group ``i``'s LR is ``plan.lr(t) x ratios[i]`` (times the
    controller's scale); momentum (beta1) follows ``plan.momentum`` only where the optimizer has one."""
    lrs = [plan.lr if ratio == 1 else plan.lr * ratio for ratio in ratios]
    has_momentum = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
    return ScheduledLR(optimizer, lrs, controller=plan.new_controller(),
                       momentum=plan.momentum if has_momentum else None)


def under(cast: Callable[[], Any], step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` run whole under ``cast()`` (autocast): a user's step does its own backward inside it."""
    def cast_step(*args: Any) -> Any:
        with cast():
            return step(*args)

    return cast_step


def _in_memory_batches(task: Task, run: RunSpec, per_epoch: int) -> Callable[[int], Iterator[tuple[Any, Any]]]:
    """An in-memory task's batches of each epoch, in :class:`lrlab.runs.DataOrder`'s order (full batches)."""
    data_order = DataOrder(run.seed, len(task.x_train))

    def epoch_batches(epoch: int) -> Iterator[tuple[Any, Any]]:
        order = data_order.next_epoch()
        for i in range(per_epoch):
            batch = order[batch_slice(i, run.batch_size)]
            yield task.x_train[batch], task.y_train[batch]

    return epoch_batches


def _loader_batches(task: LoaderTask, run: RunSpec, per_epoch: int) -> Callable[[int], Iterator[Any]]:
    """A LoaderTask's batches of each epoch: ``train_batches(seed, epoch)``, exactly ``per_epoch`` of them."""

    def epoch_batches(epoch: int) -> Iterator[Any]:
        batches: Iterable[Any] = task.train_batches(run.seed, epoch)
        try:
            stream = iter(batches)
        except TypeError:
            raise ConfigError(f"task {task.name!r}: train_batches(seed, epoch) returned {type(batches).__name__}: "
                              "expected an iterable of batches (e.g. a DataLoader)") from None
        n = 0
        for batch in itertools.islice(stream, per_epoch):
            n += 1
            yield batch
        if n < per_epoch:
            raise ConfigError(f"task {task.name!r}: train_batches({run.seed}, {epoch}) yielded {n} batches: expected "
                              f"steps_per_epoch={per_epoch}")

    return epoch_batches


def train(task: Task | LoaderTask, run: RunSpec, on_step: Callable[[int], None] | None = None) -> RunMetrics:
    """Train one model under one schedule; return its per-step and per-epoch metrics.

    ``on_step(step)`` is called after every optimizer step (for progress displays). A step whose loss or LR
    :func:`lrlab.runs.diverges` stops the run and records ``diverged_step``. The recorded LR is the schedule's
    (the first param group's LR over its ratio to the base LR).
    """
    start = time.perf_counter()
    torch.manual_seed(run.seed)  # the model's init (and a DataLoader's default shuffling) follow the run's seed
    model = task.make_model().to(run.device)
    horizon = horizon_for(task, run)
    plan = build(run.schedule, horizon)
    cast = functools.partial(autocast, run.device, run.precision)
    scaler = grad_scaler(run.device, run.precision)
    own_step = None  # a LoaderTask's train_step, run whole under autocast
    if isinstance(task, LoaderTask):
        optimizer, ratios = build_optimizer(task, model, run.optimizer.lr)
        scheduler = scheduled(optimizer, plan, ratios)
        epoch_batches = _loader_batches(task, run, horizon.steps_per_epoch)
        if task.train_step is not None:
            own_step = under(cast, task.train_step)
    else:
        optimizer, ratios = make_optimizer(run.optimizer, model.parameters()), [1.0]
        scheduler = ScheduledLR.from_plan(optimizer, plan)
        epoch_batches = _in_memory_batches(task, run, horizon.steps_per_epoch)
    metrics = RunMetrics()
    first_loss: float | None = None
    step = 0
    model.train()
    for epoch in range(1, run.epochs + 1):
        if step == run.stop_step:  # stopped at an epoch's end: validated there
            break
        epoch_losses = []
        for batch in epoch_batches(epoch):
            if step == run.stop_step:  # a rung inside an epoch: validate the model as it is
                break
            group = optimizer.param_groups[0]
            lr = float(group["lr"]) / ratios[0]
            metrics.lr.append(lr)
            metrics.momentum.append(_momentum(group))
            batch = to_device(batch, run.device)
            if own_step is None:  # lrlab's step: the loss is checked before the update it would make
                loss = default_loss(task, model, batch, cast)
                value = loss.item()
            else:  # the user's step has updated the model when its loss is seen; an LR beyond float32 is not tried
                value = math.nan if lr_diverges(lr) else check_loss(task, own_step(model, batch, optimizer))
            metrics.train_loss.append(value)
            first_loss = value if first_loss is None else first_loss
            if diverges(run, value, first_loss, lr):
                metrics.diverged_step = step
                break
            epoch_losses.append(value)
            if own_step is None:
                update(optimizer, loss, scaler)
            scheduler.step()  # the LR for the next update: schedule(step + 1) x controller scale
            step += 1
            if on_step is not None:
                on_step(step)
        if metrics.diverged_step is not None:
            break
        averaging = optimizer if run.optimizer.name in SCHEDULE_FREE else None
        val_loss, val_acc = evaluate(task, model, run.device, run.precision, averaging, run.batch_size)
        metrics.end_epoch(epoch, step, float(optimizer.param_groups[0]["lr"]) / ratios[0], epoch_losses, val_loss,
                          val_acc)
        if not math.isfinite(val_loss):
            metrics.diverged_step = step
            break
        if scheduler.controller is not None:
            scheduler.observe(val_loss)  # ReduceLROnPlateau watches the validation loss, once per epoch
    metrics.wall_s = time.perf_counter() - start
    return metrics
