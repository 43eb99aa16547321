"""The vectorized trainer: the runs of a comparison trained at once, as one batched model (``torch.func``).

A schedule comparison trains one architecture many times (schedules × seeds). On a CPU a small model spends
most of a sequential step in Python and framework overhead, not arithmetic. Here the K runs' parameters are
stacked along a leading "member" axis and one batched step (:mod:`lrlab.batched`) pays that overhead once for
all K.

Member k is the sequential run ``train(task, runs[k])`` (:mod:`lrlab.trainer`), step for step: the same init
(``torch.manual_seed(seed)`` then ``task.make_model()``), its own data-order generator, its own schedule and
plateau controller, and an optimizer update that follows ``torch.optim``'s single-tensor (``foreach=False``)
float operations one for one, with the members' LRs and momenta as per-member tensors. For MLPs member k is
bitwise equal, in float32, to the sequential run on one thread (the CLI's setting for small models; on two
threads torch's own ``mm`` splits its sums differently, so the sequential runs themselves change).
Convolutions become grouped convolutions under vmap and round differently: ~1e-6 over the first hundred steps,
then chaotic drift (1e-12 in float64).

Differences from :func:`lrlab.trainer.train`, by design:

- ``wall_s`` of each run is its group's wall time divided by the group's members: the runs share every step,
  so that is the honest cost of one run (their sum is the sweep's time).
- ``on_step(step)`` is called once per batched step, for all the members of the group at once.
- A member that diverges leaves the batch: its parameters stay where they were and the others go on,
  unchanged (a member's arithmetic never depends on the others).

Speed (bench/RESULTS.md, 2-core CPU, one thread): the default study (6 schedules × 5 seeds of mnist1d-mlp) runs
about 2x faster than sequential runs, as fast as 2 single-thread processes; two processes each running half
the runs vectorized, about 3x. The first ``torch.func.grad`` call of a process imports ``torch._dynamo`` (1-3 s).
On a GPU (``RunSpec.device``) the stacked tensors, the data and the optimizer state live on the device: a small
model leaves a GPU mostly idle, so K runs in one batched step cost little more than one (``bench/vectorized.py
--device cuda`` measures it).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lrlab.adapter import controlled_lrs
from lrlab.batched import (
    MIN_MEMBERS,
    batched_forward,
    batched_step,
    keep_rows,
    stack,
    tune_allocator,
    vector_optimizer,
)
from lrlab.controllers import Plateau
from lrlab.errors import ConfigError
from lrlab.runs import (
    DataOrder,
    RunMetrics,
    RunSpec,
    batch_slice,
    diverges,
    horizon_for,
    steps_per_epoch,
    validation_metrics,
)
from lrlab.spec import Plan, build
from lrlab.tasks import Task

__all__ = ["MAX_GROUP", "available_memory", "group_key", "group_limit", "group_runs", "member_bytes", "train_many"]



# ------------------------------------------------------------------------------------------------- groups


def group_key(run: RunSpec) -> tuple:
    """What runs must share to train as one batched model: length (and where it stops), batch size, optimizer
    kind and device.

    LR, momentum (Adam's beta1), schedule, seed and divergence factor may differ per member.
    """
    opt = run.optimizer
    return (run.epochs, run.stop_step, run.batch_size, opt.name, opt.nesterov, opt.weight_decay, opt.betas[1],
            run.device)


def group_runs(runs: Sequence[RunSpec], max_members: int | None = None, processes: int = 1) -> list[list[int]]:
    """Split ``runs`` into groups that can train together; each group is a list of indices into ``runs``.

    Runs with the same :func:`group_key` form a group, in order of first appearance. One of more than
    ``max_members`` runs is dealt into the fewest groups of at most that many (run j to group j mod n),
    and, where each keeps :data:`MIN_MEMBERS` runs, into a multiple of ``processes`` groups, so that the
    processes they are dealt over finish together.
    """
    if max_members is not None and max_members < 1:
        raise ConfigError(f"max_members={max_members!r} is invalid: expected an integer >= 1")
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(group_key(run), []).append(i)
    size = max_members or len(runs) or 1
    split = []
    for group in groups.values():
        parts = -(-len(group) // size)
        balanced = -(-parts // processes) * processes
        if len(group) // balanced >= MIN_MEMBERS:
            parts = balanced
        split.extend(group[j::parts] for j in range(parts))
    return split


# ------------------------------------------------------------------------------------------- group size

#: the most runs in one group: a batched step's cost per member levels off by about 30 members
#: (bench/RESULTS.md: 0.34 ms at 18, 0.31 ms at 30 for mnist1d-mlp), and an interrupt loses the groups in flight
MAX_GROUP = 32
#: memory of one step's records in a run's metrics (three Python floats in lists), in bytes
_RECORD_BYTES = 100


def member_bytes(task: Task, run: RunSpec) -> int:
    """An estimate of one member's memory in a batched group, in bytes.

    Its parameters, gradients, optimizer state and the update's temporaries (5-6 copies of the parameters),
    three copies of its activations over a batch (the forward's, the saved ones, their gradients; measured by
    a forward pass of one example) and its per-step records (:data:`_RECORD_BYTES` per step of the run).
    """
    with torch.random.fork_rng(devices=[]):
        model = task.make_model()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    sizes = [task.x_train[:1].numel() * task.x_train.element_size()]

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        sizes.append(output.numel() * output.element_size() if isinstance(output, Tensor) else 0)

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(task.x_train[:1])
    finally:
        for hook in hooks:
            hook.remove()
    state = 2 if run.optimizer.name in ("adam", "adamw") else 1
    steps = horizon_for(task, run).total_steps
    return params * (4 + state) + 3 * sum(sizes) * run.batch_size + steps * _RECORD_BYTES


def available_memory() -> int | None:
    """Memory the system can give without swapping (Linux ``MemAvailable``), in bytes; None when unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def group_limit(task: Task, run: RunSpec, processes: int, requested: int | None = None) -> tuple[int, str]:
    """The most runs per group, and why: ``requested`` (``max_members``), :data:`MAX_GROUP`, or what half
    the available memory (on a CUDA device, its free memory) holds over ``processes`` processes
    (:func:`member_bytes`), the smallest (at least 1)."""
    limits = [(requested, "max_members"), (MAX_GROUP, "the most that pays (MAX_GROUP)")]
    cuda = run.device.startswith("cuda")
    memory = int(torch.cuda.mem_get_info(torch.device(run.device))[0]) if cuda else available_memory()
    if memory is not None:
        each = member_bytes(task, run)
        limits.append((memory // 2 // processes // each, f"half the {'free GPU' if cuda else 'available'} memory "
                       f"({memory / 2**30:.1f} GiB) at ~{each / 2**20:.1f} MiB per run"))
    size, why = min((limit, why) for limit, why in limits if limit is not None)
    return max(1, size), why



# ------------------------------------------------------------------------------------------------- members


@dataclass
class _Member:
    """One run inside a batched group: its plan (LR and momentum schedules), controller, data order and records.

    LRs are computed step by step, as the adapter does: nothing is stored per future step.
    """

    run: RunSpec
    plan: Plan
    default_momentum: float  # the optimizer's own momentum (Adam's beta1), where the plan schedules none
    controller: Plateau | None
    data_order: DataOrder
    metrics: RunMetrics = field(default_factory=RunMetrics)
    first_loss: float | None = None
    epoch_losses: list[float] = field(default_factory=list)

    def scheduled_lr(self, step: int) -> float:
        """The schedule's LR at ``step``, without the controller's scale."""
        return float(self.plan.lr(step))

    def lr(self, step: int) -> float:
        """The LR the adapter sets for ``step`` (:func:`lrlab.adapter.controlled_lrs`)."""
        return controlled_lrs([self.scheduled_lr(step)], self.controller)[0]

    def momentum(self, step: int) -> float:
        return float(self.plan.momentum(step)) if self.plan.momentum is not None else self.default_momentum


def _member(task: Task, run: RunSpec) -> _Member:
    plan = build(run.schedule, horizon_for(task, run))
    controller = plan.new_controller()
    if controller is not None:
        controller.bind(1)
    opt = run.optimizer
    return _Member(run=run, plan=plan,
                   default_momentum=float(opt.betas[0] if opt.name in ("adam", "adamw") else opt.momentum),
                   controller=controller, data_order=DataOrder(run.seed, len(task.x_train)))


# ------------------------------------------------------------------------------------------------- trainer


def train_group(task: Task, runs: Sequence[RunSpec], trainer: str,
                on_step: Callable[[int], None] | None = None) -> list[RunMetrics]:
    """Train ``runs`` with ``trainer``: ``sequential``, one after another (:func:`lrlab.trainer.train`), or
    ``vectorized``, as one batched model (:func:`train_many`); the unit of work of every executor."""
    if trainer == "sequential":
        from lrlab.trainer import train

        return [train(task, run, on_step) for run in runs]
    return train_many(task, runs, on_step, max_members=len(runs))


def train_many(task: Task, runs: Sequence[RunSpec], on_step: Callable[[int], None] | None = None,
               max_members: int | None = None) -> list[RunMetrics]:
    """Train every run of ``runs`` on ``task``; return their metrics, in order, as :func:`lrlab.trainer.train` would.

    Runs are grouped by :func:`group_runs` (same epochs, batch size and optimizer kind; at most
    ``max_members`` per group) and each group trains as one batched model. ``on_step(step)`` is called after
    every batched step. Raises :class:`ConfigError` when the task cannot be vectorized (see
    :func:`lrlab.batched.can_vectorize`, which this does not re-run: call it or :func:`lrlab.runner.choose_trainer`
    first).
    """
    if not isinstance(task, Task) or not task.vmappable:
        why = "it declares vmappable=False" if isinstance(task, Task) else "a LoaderTask trains one model at a time"
        raise ConfigError(f"trainer='vectorized' is invalid for task {task.name!r}: {why}")
    tune_allocator()
    results: list[RunMetrics | None] = [None] * len(runs)
    for group in group_runs(runs, max_members):
        for i, metrics in zip(group, _train_group(task, [runs[i] for i in group], on_step), strict=True):
            results[i] = metrics
    return [m for m in results if m is not None]


def _evaluate(task: Task, forward: Callable, params: dict, buffers: dict) -> list[tuple[float, float | None]]:
    """Each member's validation loss and accuracy (:func:`lrlab.runs.validation_metrics` of its output)."""
    with torch.no_grad():
        first = next(iter(params.values()))
        x_val, y_val = task.x_val.to(first.device), task.y_val.to(first.device)
        outputs = forward(params, buffers, x_val.unsqueeze(0).expand(first.shape[0], *x_val.shape))
        return [validation_metrics(task, out, y_val) for out in outputs.unbind(0)]


def _train_group(task: Task, runs: Sequence[RunSpec], on_step: Callable[[int], None] | None) -> list[RunMetrics]:
    """One batched model for runs that share epochs, batch size and optimizer kind (see :func:`group_key`)."""
    start = time.perf_counter()
    members, models = [], []
    for run in runs:
        torch.manual_seed(run.seed)  # the sequential trainer's init, run by run
        members.append(_member(task, run))
        models.append(task.make_model())
    device = runs[0].device
    params, buffers = stack(models, device)
    (step_fn, loss_value), forward = batched_step(task, models[0]), batched_forward(models[0])
    optimizer = vector_optimizer(runs[0].optimizer, params)
    epochs, batch_size = runs[0].epochs, runs[0].batch_size
    x_train, y_train = task.x_train.to(device), task.y_train.to(device)  # small in-memory data: moved once
    per_epoch = steps_per_epoch(task, batch_size)
    active = list(range(len(runs)))  # member indices still training, in batch order
    step = 0
    stop_step = runs[0].stop_step
    for epoch in range(1, epochs + 1):
        if not active or step == stop_step:
            break
        orders = torch.stack([members[k].data_order.next_epoch() for k in active]).to(device)
        for i in range(per_epoch):
            if step == stop_step:  # a rung inside an epoch: validate the members as they are
                break
            batch = orders[:, batch_slice(i, batch_size)]
            x, y = x_train[batch], y_train[batch]
            grads, aux = step_fn(params, buffers, x, y)
            with torch.no_grad():  # each member's loss value exactly as the sequential trainer computes it
                losses = torch.stack([loss_value(a, target) for a, target in
                                      zip(aux.unbind(0), y.unbind(0), strict=True)]).tolist()
            lrs, momenta, diverged = [], [], []
            for row, (k, value) in enumerate(zip(active, losses, strict=True)):
                m = members[k]
                lr, momentum = m.lr(step), m.momentum(step)
                m.metrics.lr.append(lr)
                m.metrics.momentum.append(momentum)
                m.metrics.train_loss.append(value)
                m.first_loss = value if m.first_loss is None else m.first_loss
                if diverges(m.run, value, m.first_loss, lr):
                    m.metrics.diverged_step = step
                    diverged.append(row)
                    continue
                m.epoch_losses.append(value)
                lrs.append(lr)
                momenta.append(momentum)
            if diverged:  # frozen where they are: out of the batch, the others untouched
                rows = torch.tensor([r for r in range(len(active)) if r not in diverged], dtype=torch.long)
                active = [active[r] for r in rows.tolist()]
                params, buffers = keep_rows(params, rows), keep_rows(buffers, rows)
                grads, orders = keep_rows(grads, rows), orders[rows]
                optimizer.keep(rows)
                if not active:
                    break
            optimizer.step(params, grads, lrs, momenta, step)
            step += 1
            if on_step is not None:
                on_step(step)
        if not active:
            break
        keep = []
        for row, (k, (val_loss, val_acc)) in enumerate(zip(active, _evaluate(task, forward, params, buffers),
                                                           strict=True)):
            m = members[k]
            m.metrics.end_epoch(epoch, step, m.lr(step), m.epoch_losses, val_loss, val_acc)
            m.epoch_losses = []
            if not math.isfinite(val_loss):
                m.metrics.diverged_step = step
                continue
            keep.append(row)
            if m.controller is not None:  # ReduceLROnPlateau on the validation loss, once per epoch
                m.controller.observe(val_loss, step, [m.scheduled_lr(step)])
        if len(keep) < len(active):
            rows = torch.tensor(keep, dtype=torch.long)
            active = [active[r] for r in keep]
            params, buffers = keep_rows(params, rows), keep_rows(buffers, rows)
            optimizer.keep(rows)
    wall_s = (time.perf_counter() - start) / len(runs)
    for m in members:
        m.metrics.wall_s = wall_s
    return [m.metrics for m in members]
