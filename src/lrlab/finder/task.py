"""The LR range test of a task, repeated over seeds: one sweep per seed, or all seeds at once as one batched model.

Each seed fixes the model's init and the data order as the trainer does (:func:`task_batches`; a
:class:`~lrlab.tasks.LoaderTask`'s ``train_batches(seed, epoch)`` and its own optimizer and step);
:func:`find_lr_for_task` runs the sweeps (batched with :mod:`lrlab.batched`'s kernels where the task allows)
and combines them with :func:`~lrlab.finder.suggest.combine_suggestions`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lrlab.batched import MIN_MEMBERS, batched_step, can_vectorize, keep_rows, stack, vector_optimizer
from lrlab.devices import autocast, grad_scaler, to_device
from lrlab.errors import ConfigError
from lrlab.finder.curves import FinderResult, LRCurve, Recorder, curve_band
from lrlab.finder.suggest import combine_suggestions
from lrlab.finder.sweep import check_sweep, find_lr, preserved_rng, sweep_lrs
from lrlab.runs import steps_per_epoch
from lrlab.tasks import LoaderTask, OptimizerDefaults, Task, cross_entropy, make_optimizer
from lrlab.tasks.loop import build_optimizer, check_loss, default_step
from lrlab.trainer import evaluate, under

__all__ = ["find_lr_for_task", "sweep_steps", "task_batches"]

#: :func:`find_lr_for_task`'s default sweep: this fraction of the training run's updates (OneCycle's rise) ...
SWEEP_FRACTION = 0.3
#: ... but at least this many updates
MIN_SWEEP_STEPS = 100


def task_batches(task: Task, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The task's training batches in the trainer's order for ``seed``: a fresh permutation each epoch, full batches.

    Endless; the order comes from its own ``torch.Generator`` seeded with ``seed``, as in :func:`lrlab.trainer.train`.
    """
    generator = torch.Generator().manual_seed(seed)
    n = len(task.x_train)
    per_epoch = max(1, n // batch_size)
    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(per_epoch):
            index = order[i * batch_size:(i + 1) * batch_size]
            yield task.x_train[index], task.y_train[index]


def sweep_steps(task: Task | LoaderTask, batch_size: int | None = None, epochs: int | None = None) -> int:
    """The default length of a task's sweep: ``max(100, round(0.3 x the run's updates))``.

    A short sweep spends few updates near each LR, so a blow-up has no time to build and the curve turns up
    later than a full run can bear: on mnist1d-cnn a 100-update sweep put every suggestion beyond the LR at
    which OneCycle diverges (``bench/RESULTS.md``). Sweeping as long as OneCycle's own rise (30% of the run)
    ties the sweep's pace to the run it is for.

    Args:
        task: the task.
        batch_size, epochs: the run's (default: the task's).
    """
    per_epoch = steps_per_epoch(task, task.batch_size if batch_size is None else batch_size)
    return max(MIN_SWEEP_STEPS, round(SWEEP_FRACTION * (task.epochs if epochs is None else epochs) * per_epoch))


def _batch_seeds(task: Task, seeds: Sequence[int], val: bool, vectorize: bool | None) -> bool:
    """Whether :func:`find_lr_for_task` runs the seeds' sweeps as one batched model (see its ``vectorize``)."""
    if vectorize is not None and not isinstance(vectorize, bool):
        raise ValueError(f"vectorize={vectorize!r} is invalid: expected True, False or None (auto)")
    if vectorize is False:
        return False
    if val:
        problem = "val=True records the validation loss, which only the sequential sweep measures"
    elif vectorize is None and len(seeds) < MIN_MEMBERS:
        problem = f"fewer than {MIN_MEMBERS} seeds (a batched step does not pay for itself below that)"
    elif vectorize is None and task.loss_fn is not cross_entropy:
        problem = "the loss is not lrlab.tasks.cross_entropy"
    else:
        ok, why = can_vectorize(task)
        problem = None if ok else why
    if problem is not None and vectorize:
        raise ValueError(f"vectorize=True is invalid for task {task.name!r}: {problem}")
    return problem is None


def _loader_batches(task: LoaderTask, seed: int) -> Iterator[Any]:
    """A LoaderTask's training batches for ``seed``, epoch after epoch (``train_batches(seed, 1)``, then 2, ...)."""
    for epoch in itertools.count(1):
        empty = True
        for batch in task.train_batches(seed, epoch):
            empty = False
            yield batch
        if empty:
            raise ConfigError(f"task {task.name!r}: train_batches({seed}, {epoch}) yielded no batch: expected at "
                              "least one")


def _loader_sweep(task: LoaderTask, seed: int, schedule: Sequence[float], smooth: float, diverge_factor: float,
                  val: bool, device: str, precision: str) -> LRCurve:
    """:func:`find_lr`'s sweep for a LoaderTask, through its own optimizer (each group at its ratio) and step.

    The step's loss is measured before its update, so update ``k``'s loss is what step ``k + 1`` returns (the
    training-batch mode of :func:`find_lr`, which measures the next batch); one step more than ``schedule``.
    """
    torch.manual_seed(seed)
    model = task.make_model().to(device).train()
    optimizer, ratios = build_optimizer(task, model, schedule[0])
    cast = functools.partial(autocast, device, precision)
    step = under(cast, task.train_step) if task.train_step is not None else functools.partial(
        default_step, task, scaler=grad_scaler(device, precision), cast=cast)
    batches = _loader_batches(task, seed)
    recorder = Recorder(smooth, diverge_factor)
    for k in range(len(schedule) + (0 if val else 1)):
        lr = schedule[min(k, len(schedule) - 1)]
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            group["lr"] = lr * ratio
        loss = check_loss(task, step(model, to_device(next(batches), device), optimizer))
        if val:
            measured = (k, lr, evaluate(task, model, device, precision)[0])
        elif k > 0:
            measured = (k - 1, schedule[k - 1], loss)
        else:
            continue
        if not recorder.add(*measured):
            break
    return recorder.curve(seed)


def _batched_sweeps(task: Task, seeds: Sequence[int], defaults: OptimizerDefaults, batch_size: int,
                    schedule: Sequence[float], smooth: float, diverge_factor: float,
                    device: str = "cpu") -> list[LRCurve]:
    """:func:`find_lr`'s sweep (training-batch mode) for every seed at once, as one batched model.

    Member k is ``seeds[k]``'s sweep in :func:`find_lr_for_task`, step for step: the same init and data order,
    the same LR at each update, the optimizer's float operations one for one (:mod:`lrlab.vectorized`), the loss
    *value* of the next batch computed outside vmap as the sequential sweep computes it, and its own smoothing
    and divergence stop. A member that stops leaves the batch; the others go on unchanged. Each batched call
    gives the loss recorded for update k and the gradient update k + 1 starts from (the sequential sweep reuses
    that forward pass the same way).
    """
    models = []
    for seed in seeds:
        torch.manual_seed(seed)  # find_lr_for_task's init, seed by seed
        models.append(task.make_model().train())
    params, buffers = stack(models, device)
    step_fn, loss_value = batched_step(task, models[0])
    optimizer = vector_optimizer(defaults, params)
    momentum = defaults.momentum if defaults.name == "sgd" else defaults.betas[0]
    streams = [task_batches(task, batch_size, seed) for seed in seeds]
    recorders = [Recorder(smooth, diverge_factor) for _ in seeds]
    active = list(range(len(seeds)))  # members still sweeping, in batch order

    def measure() -> tuple[dict[str, Tensor], list[float]]:
        x, y = zip(*(next(streams[k]) for k in active), strict=True)
        grads, aux = step_fn(params, buffers, torch.stack(x).to(device), torch.stack(y).to(device))
        with torch.no_grad():  # each member's loss value exactly as the sequential sweep computes it
            losses = torch.stack([loss_value(a, t.to(device)) for a, t in zip(aux.unbind(0), y, strict=True)]).tolist()
        return grads, losses

    grads, _ = measure()  # the first batch: its loss is not recorded (no update has been made yet)
    for k, lr in enumerate(schedule):
        optimizer.step(params, grads, [lr] * len(active), [momentum] * len(active), k)
        grads, losses = measure()  # the next batch's loss, before its own update; and that update's gradient
        keep = [row for row, (member, measured) in enumerate(zip(active, losses, strict=True))
                if recorders[member].add(k, lr, measured)]
        if len(keep) < len(active):  # stopped members leave the batch, frozen where they are
            rows = torch.tensor(keep, dtype=torch.long)
            active = [active[r] for r in keep]
            if not active:
                break
            params, buffers, grads = keep_rows(params, rows), keep_rows(buffers, rows), keep_rows(grads, rows)
            optimizer.keep(rows)
    return [recorder.curve(seed) for recorder, seed in zip(recorders, seeds, strict=True)]


def find_lr_for_task(
    task: Task | LoaderTask,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int | None = None,
    mode: str = "exp",
    batch_size: int | None = None,
    epochs: int | None = None,
    optimizer: OptimizerDefaults | None = None,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    val: bool = False,
    on_seed: Callable[[int, LRCurve], None] | None = None,
    vectorize: bool | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> FinderResult:
    """Run :func:`find_lr` on a fresh model of ``task`` for each seed and combine the sweeps.

    Each seed fixes the model's init (``torch.manual_seed(seed)`` before ``task.make_model()``) and the data order
    (:func:`task_batches`), as the trainer does; the global RNG states are restored afterwards.

    Args:
        task: the task (``lrlab.tasks.load_task(name)``).
        seeds: one sweep per seed (at least one; distinct).
        min_lr, max_lr, mode, smooth, diverge_factor: as for :func:`find_lr`.
        num_steps: updates per sweep; None: :func:`sweep_steps` for the run (30% of its updates, >= 100).
        batch_size: examples per update (default: the task's).
        epochs: the length of the run the LR is for, used only by the default ``num_steps`` (default: the task's).
        optimizer: the optimizer to sweep (default: the task's); its ``lr`` is ignored.
        val: record the validation loss after each update instead of the next training batch's.
        on_seed: called with ``(seed, curve)`` after each sweep (progress display); with batched sweeps, for
            every seed in order once they have all finished.
        vectorize: run the seeds' sweeps at once as one batched model (``torch.func``, as
            :mod:`lrlab.vectorized` does), each seed's curve equal to its own sweep's (bitwise for MLPs on one
            thread). None (default): when :func:`lrlab.batched.can_vectorize` allows, there are at least
            ``MIN_MEMBERS`` (4) seeds, the loss is the built-in cross-entropy and ``val`` is False; False: one
            sweep after another; True: batched, or ValueError when the task or the settings do not allow it.
        device: where the sweeps train (resolved: ``cpu``, ``cuda:0``...; :func:`lrlab.devices.resolve_device`).
        precision: ``fp32``, or ``bf16``/``fp16`` autocast.

    Returns:
        A :class:`FinderResult` with the curves, the recommendation, the band and the settings.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} is invalid: expected a non-empty list of distinct seeds")
    if isinstance(task, LoaderTask) and batch_size is not None:
        raise ValueError(f"batch_size={batch_size!r} is invalid for task {task.name!r}: its train_batches decide "
                         "the batch size: expected none")
    batch_size = task.batch_size if batch_size is None else batch_size
    if isinstance(task, Task) and batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is invalid: expected an integer >= 1")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs={epochs!r} is invalid: expected an integer >= 1")
    num_steps = sweep_steps(task, batch_size, epochs) if num_steps is None else num_steps
    defaults = task.optimizer if optimizer is None else optimizer
    check_sweep(min_lr, max_lr, num_steps, mode, smooth, diverge_factor)

    def val_loss(model: nn.Module) -> float:
        return evaluate(task, model, device, precision)[0]

    if precision != "fp32":  # autocast is the sequential sweep's alone
        if vectorize:
            raise ValueError(f"vectorize=True is invalid with precision={precision!r}: expected precision='fp32'")
        vectorize = False
    batched = _batch_seeds(task, seeds, val, vectorize)
    with preserved_rng():
        if isinstance(task, LoaderTask):
            curves = []
            for seed in seeds:
                curves.append(_loader_sweep(task, seed, sweep_lrs(min_lr, max_lr, num_steps, mode), smooth,
                                            diverge_factor, val, device, precision))
                if on_seed is not None:
                    on_seed(seed, curves[-1])
        elif batched:
            curves = _batched_sweeps(task, seeds, defaults, batch_size, sweep_lrs(min_lr, max_lr, num_steps, mode),
                                     smooth, diverge_factor, device)
            for seed, curve in zip(seeds, curves, strict=True):
                if on_seed is not None:
                    on_seed(seed, curve)
        else:
            curves = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = task.make_model().to(device)
                model.train()
                opt = make_optimizer(defaults, model.parameters(), lr=min_lr)
                batches = (to_device(batch, device) for batch in task_batches(task, batch_size, seed))
                with autocast(device, precision):
                    curve = find_lr(model, opt, batches, task.loss_fn, min_lr=min_lr, max_lr=max_lr,
                                    num_steps=num_steps, mode=mode, smooth=smooth, diverge_factor=diverge_factor,
                                    val_fn=val_loss if val else None, seed=seed)
                curves.append(curve)
                if on_seed is not None:
                    on_seed(seed, curve)
    settings = {"seeds": seeds, "min_lr": min_lr, "max_lr": max_lr, "num_steps": num_steps, "mode": mode,
                "batch_size": batch_size, "smooth": smooth, "diverge_factor": diverge_factor, "val": val,
                "vectorized": batched and isinstance(task, Task), "device": device, "precision": precision,
                "optimizer": {**defaults.__dict__, "betas": list(defaults.betas), "lr": None}}
    return FinderResult(task.name, tuple(curves), combine_suggestions(curves), curve_band(curves), settings)
