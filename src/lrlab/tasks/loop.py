"""The task protocol's second form: your own data loaders, optimizer and training step (:class:`LoaderTask`).

Where a :class:`~lrlab.tasks.Task` holds its data in memory and trains with SGD/Adam/AdamW by lrlab's own loop
(the form the vectorized trainer batches), a :class:`LoaderTask` hands lrlab factories: the batches of an epoch
(a ``DataLoader`` or any iterable), any ``torch.optim.Optimizer`` (param groups included) and, optionally, the
step and the evaluation. lrlab keeps the schedule, the seeding, the device, the store and divergence detection.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lrlab.errors import ConfigError, short_repr
from lrlab.tasks.base import CUSTOM, OptimizerDefaults

__all__ = ["EVAL_KEYS", "LoaderTask", "build_optimizer", "check_loss", "check_metrics", "default_evaluate",
           "default_loss", "default_step", "update"]

#: the metrics an ``evaluate`` may return: the validation loss (required) and accuracy, a fraction 0..1
EVAL_KEYS = ("loss", "acc")


def _takes(fn: Callable, *args: object) -> bool:
    """Whether ``fn`` can be called with ``args`` positionally (a callable without a signature passes)."""
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        return False
    except ValueError:  # some builtins have no signature
        return True
    return True


@dataclass(frozen=True, eq=False)
class LoaderTask:
    """A training task given as factories: data loaders, a model, an optimizer, and optionally the step.

    Args:
        name: the name results are stored under (e.g. ``"my-task"``).
        description: one or two sentences: data, model, what the task is for.
        make_model: builds a fresh model, drawing its init from torch's global RNG (lrlab seeds it per run).
        train_batches: ``(seed, epoch) -> iterable of batches``, e.g. a ``DataLoader`` whose shuffling draws from
            a ``torch.Generator().manual_seed(seed * 1000 + epoch)``: the data order of a run's epoch (from 1).
            A batch is whatever ``train_step`` takes; lrlab moves the tensors in it to the device.
        val_batches: ``() -> iterable of batches``, the validation set (the same every call).
        make_optimizer: ``(model, lr) -> torch.optim.Optimizer`` over ``model``'s parameters, any optimizer and
            any param groups; a group's ``lr`` must be ``lr`` or a fixed multiple of it (its ratio, which the
            schedule keeps: group LR = schedule(t) x ratio).
        lr: the base (peak) LR a schedule starts from (``--peak-lr`` overrides it).
        epochs: passes over the training data of the default run.
        steps_per_epoch: optimizer steps per epoch; None: ``len(train_batches(0, 1))`` (a DataLoader has one).
        loss_fn: ``(model output, targets) -> scalar`` mean loss, for the default step and evaluation; None when
            ``train_step`` and ``evaluate`` are both given.
        accuracy_fn: ``(model output, targets) -> scalar`` fraction correct, for the default evaluation, or None.
        train_step: ``(model, batch, optimizer) -> loss``: one optimizer step (zero the gradients, backward,
            ``optimizer.step()``; clip, accumulate micro-batches, sum several losses as you need) returning the
            loss measured before the update (a scalar). None: ``x, y = batch``, ``loss_fn(model(x), y)``, then
            backward and step. Never call a scheduler in it: lrlab sets the LR after it returns.
        evaluate: ``(model, val batches) -> {"loss": ..., "acc": ...}`` (``acc`` optional, 0..1), called in
            ``torch.no_grad()`` and ``model.eval()`` after each epoch. None: the example-weighted mean of
            ``loss_fn`` (and ``accuracy_fn``) over ``val_batches()``.
        batch_size: examples per optimizer step, for the record (the loader decides); None when not one number.
        info: provenance for the store (dataset, version...), all strings.
        target_acc: validation accuracy (0..1) that "epochs to target" counts to by default, or None.
    """

    name: str
    description: str
    make_model: Callable[[], nn.Module]
    train_batches: Callable[[int, int], Iterable[Any]]
    val_batches: Callable[[], Iterable[Any]]
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer]
    lr: float
    epochs: int
    steps_per_epoch: int | None = None
    loss_fn: Callable[[Any, Any], Tensor] | None = None
    accuracy_fn: Callable[[Any, Any], Tensor] | None = None
    train_step: Callable[[nn.Module, Any, torch.optim.Optimizer], Tensor | float] | None = None
    evaluate: Callable[[nn.Module, Iterable[Any]], Mapping[str, float]] | None = None
    batch_size: int | None = None
    info: dict[str, str] = field(default_factory=dict)
    target_acc: float | None = None

    def __post_init__(self) -> None:
        shapes = (("make_model", ()), ("train_batches", (0, 1)), ("val_batches", ()),
                  ("make_optimizer", (None, 0.1)))
        expected = {"make_model": "a function () -> nn.Module",
                    "train_batches": "a function (seed, epoch) -> an iterable of batches (e.g. a DataLoader)",
                    "val_batches": "a function () -> an iterable of batches",
                    "make_optimizer": "a function (model, lr) -> torch.optim.Optimizer",
                    "train_step": "a function (model, batch, optimizer) -> loss",
                    "evaluate": "a function (model, batches) -> {'loss': ..., 'acc': ...}"}
        optional = (("train_step", (None, None, None)), ("evaluate", (None, None)))
        for name, args in (*shapes, *optional):
            fn = getattr(self, name)
            if fn is None and name in ("train_step", "evaluate"):
                continue
            if not callable(fn) or not _takes(fn, *args):
                raise ConfigError(f"task {self.name!r}: {name}={short_repr(fn)} is invalid: expected {expected[name]}")
        if self.loss_fn is None and (self.train_step is None or self.evaluate is None):
            missing = "train_step" if self.train_step is None else "evaluate"
            raise ConfigError(f"task {self.name!r}: loss_fn=None is invalid without {missing}: expected a loss "
                              "function (output, targets) -> scalar, or your own train_step and evaluate")
        if not (isinstance(self.lr, int | float) and 0 < self.lr < math.inf):
            raise ConfigError(f"task {self.name!r}: lr={self.lr!r} is invalid: expected a number > 0")
        for name in ("epochs", "steps_per_epoch", "batch_size"):
            value = getattr(self, name)
            if (value is not None or name == "epochs") and not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"task {self.name!r}: {name}={value!r} is invalid: expected an integer >= 1")

    @property
    def optimizer(self) -> OptimizerDefaults:
        """The optimizer as a run records it: ``custom`` (this task's ``make_optimizer``) at the base LR."""
        return OptimizerDefaults(name=CUSTOM, lr=float(self.lr))

    def epoch_steps(self) -> int:
        """Optimizer steps per epoch: ``steps_per_epoch``, else ``len(train_batches(0, 1))`` (ConfigError when the
        iterable has no length)."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        batches = self.train_batches(0, 1)
        try:
            n = len(batches)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigError(f"task {self.name!r}: steps_per_epoch=None is invalid when train_batches(0, 1) returns "
                              f"{type(batches).__name__}, which has no len(): expected an integer >= 1") from None
        if n < 1:
            raise ConfigError(f"task {self.name!r}: train_batches(0, 1) has {n} batches: expected at least 1")
        return n


def build_optimizer(task: LoaderTask, model: nn.Module, lr: float) -> tuple[torch.optim.Optimizer, list[float]]:
    """``task.make_optimizer(model, lr)`` and each param group's ratio to ``lr`` (group LR / ``lr``).

    The factory is called a second time at ``2 * lr`` to check that every group's LR follows ``lr``; one that
    ignores it (a fixed LR) raises ConfigError naming the group, since no schedule could drive it.
    """
    optimizer = task.make_optimizer(model, lr)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"task {task.name!r}: make_optimizer returned {type(optimizer).__name__}: expected a "
                          "torch.optim.Optimizer")
    probe = task.make_optimizer(model, 2 * lr)
    ratios = []
    for i, (group, twice) in enumerate(zip(optimizer.param_groups, probe.param_groups, strict=True)):
        got = float(group["lr"])
        if not (got > 0 and math.isclose(float(twice["lr"]), 2 * got, rel_tol=1e-9)):
            raise ConfigError(f"task {task.name!r}: make_optimizer ignores lr: make_optimizer(model, lr={lr:g}) gave "
                              f"param_groups[{i}]['lr']={got:g} and lr={2 * lr:g} gave {float(twice['lr']):g}: "
                              "expected every group's lr to be lr or a fixed multiple of it")
        ratios.append(got / lr)
    return optimizer, ratios


def check_loss(task: LoaderTask, loss: Tensor | float) -> float:
    """The value of the loss ``train_step`` returned; ConfigError when it is not a scalar."""
    if isinstance(loss, Tensor) and loss.numel() == 1:
        return float(loss.detach())
    if isinstance(loss, int | float) and not isinstance(loss, bool):
        return float(loss)
    shown = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
    raise ConfigError(f"task {task.name!r}: train_step returned {shown}: expected the step's loss, a scalar "
                      "(a one-element tensor or a float)")


def default_loss(task: LoaderTask | Any, model: nn.Module, batch: Any,
                 cast: Callable[[], AbstractContextManager] = nullcontext) -> Tensor:
    """The loss of ``batch = (inputs, targets)``: ``loss_fn(model(inputs), targets)``, under ``cast()`` (e.g.
    autocast)."""
    inputs, targets = batch
    with cast():
        return task.loss_fn(model(inputs), targets)


def update(optimizer: torch.optim.Optimizer, loss: Tensor, scaler: torch.amp.GradScaler | None = None) -> None:
    """Backward from ``loss`` and one optimizer step (through ``scaler`` when given, for fp16)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def default_step(task: LoaderTask | Any, model: nn.Module, batch: Any, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None = None,
                 cast: Callable[[], AbstractContextManager] = nullcontext) -> Tensor:
    """:func:`default_loss` then :func:`update`: the step of a task without a ``train_step``; returns the loss
    (before the update)."""
    loss = default_loss(task, model, batch, cast)
    update(optimizer, loss, scaler)
    return loss


def default_evaluate(task: LoaderTask, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
    """The example-weighted mean ``loss`` (and ``acc`` with an ``accuracy_fn``) over ``(inputs, targets)``
    batches."""
    total, loss, correct = 0, 0.0, 0.0
    for inputs, targets in batches:
        out = model(inputs)
        n = len(targets)
        total += n
        loss += float(task.loss_fn(out, targets)) * n
        if task.accuracy_fn is not None:
            correct += float(task.accuracy_fn(out, targets)) * n
    if total == 0:
        raise ConfigError(f"task {task.name!r}: val_batches() yielded no examples: expected at least one batch")
    metrics = {"loss": loss / total}
    if task.accuracy_fn is not None:
        metrics["acc"] = correct / total
    return metrics


def check_metrics(task: LoaderTask, metrics: Any) -> tuple[float, float | None]:
    """``(val loss, val acc or None)`` from what ``evaluate`` returned; ConfigError for another shape."""
    if not isinstance(metrics, Mapping) or "loss" not in metrics or set(metrics) - set(EVAL_KEYS):
        raise ConfigError(f"task {task.name!r}: evaluate returned {short_repr(metrics)}: expected a dict with 'loss' "
                          "and optionally 'acc' (0..1)")
    acc = metrics.get("acc")
    return float(metrics["loss"]), None if acc is None else float(acc)
