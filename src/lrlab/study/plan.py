"""What ``lrlab claims`` runs: a budget (seeds, epochs, tuning grid, tasks) and, per task, its experiments.

Per task, in one results directory ``OUT/<task>``:

- the **schedules** (``OUT/<task>``, each at its tuned peak LR: ``peak_lr: tune``, grids in ``tuning/``, or,
  where the budget does not tune a task, the task's own LR shared by every schedule);
- the **LR sweep** (``OUT/<task>/lr-sweep``, claims 6a and 6b): where the schedules were tuned, a constant LR
  at the tuned constant LR × 10^(k/2), k = -4..-1 and 1..6 (1/100× to 1000×), outside the tuning grid, on the
  grid's own held-out seeds: the grid stops widening once its edges are worse than its pick, which is before
  a run diverges, so this sweep carries it up to where training breaks and down to 100× below the pick;
- **schedule-free** (``OUT/<task>/schedulefree``): the task's optimizer as its schedule-free counterpart
  (SGD -> ``sgd-schedulefree``, Adam/AdamW -> ``adamw-schedulefree``) at a constant LR after a 5% warmup (the
  package's ``warmup_steps``, written as ``warmup(frac=0.05) >> constant()``), at its own tuned LR;
- **batch sizes** (``OUT/<task>/batch-16``, ``batch-512``): cosine with and without warmup at the task's LR scaled
  with the batch (``lr × batch / task batch``, the linear scaling rule), not tuned: the claim is that warmup
  is what makes the scaled LR trainable.

Every experiment is an ordinary config, run by ``lrlab compare``'s path and resumable like it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lrlab.config import ExperimentConfig, parse_config
from lrlab.errors import ConfigError

#: the study's schedules, with durations as fractions of the run so that they fit any number of epochs
SCHEDULES: dict[str, str] = {
    "constant": "constant()",
    "step": "step(every_frac=0.3, gamma=0.1)",
    "cosine": "cosine()",
    "plateau": "plateau(patience=2, factor=0.5)",
    "onecycle": "onecycle()",
    "warmup-cosine": "warmup(frac=0.05) >> cosine()",
    "sgdr": "sgdr(period_frac=0.25)",
}
#: the schedule-free contender's schedule: its LR is constant after the warmup its authors recommend
SCHEDULE_FREE_SPEC = "warmup(frac=0.05) >> constant()"
#: the batch-size claim's pair (and the Transformer warmup claim's, among the schedules)
WARMUP_PAIR = ("warmup-cosine", "cosine")
BATCH_SIZES = (16, 512)
#: claims 6a/6b's sweep: the tuned constant LR times these factors (half-decade steps, 1/100× to 1000×)
SWEEP_FACTORS = tuple(10 ** (k / 2) for k in (-4, -3, -2, -1, 1, 2, 3, 4, 5, 6))
SWEEP_DIR = "lr-sweep"
#: the Post-LN Transformer whose warmup effect the other tasks' is compared with
POST_LN_TASK = "charlm-transformer"


@dataclass(frozen=True)
class TaskPlan:
    """How a budget runs one task: ``schedules`` (names of :data:`SCHEDULES`), ``epochs`` (None: the task's),
    whether the schedules are ``tuned``, and whether the ``schedulefree`` and ``batch`` experiments run."""

    schedules: tuple[str, ...] = tuple(SCHEDULES)
    epochs: int | None = None
    tuned: bool = True
    schedulefree: bool = True
    batch: bool = False


@dataclass(frozen=True)
class Budget:
    """Seeds per schedule, the tuning grid (``config.TuneConfig`` fields), the default tasks and their plans;
    a task without a plan gets ``other``. The grid starts on the LR range test's bracket, or with ``bracket``
    ``(low, high)`` on ``low × lr .. high × lr`` around the task's LR (no range test)."""

    name: str
    seeds: int
    tune: dict[str, Any]
    plans: dict[str, TaskPlan]
    other: TaskPlan = field(default_factory=TaskPlan)
    bracket: tuple[float, float] | None = None

    def plan(self, task: str) -> TaskPlan:
        """The plan of ``task``."""
        return self.plans.get(task, self.other)

    def describe(self, tasks: Sequence[str]) -> str:
        """One line: seeds, grid and, per task, epochs and tuning."""
        grid = (f"{self.tune['per_decade']} LRs/decade × {self.tune['seeds']} held-out seeds, widened ≤ "
                f"{self.tune['max_widen']}×{', refined' if self.tune['refine'] else ''}")
        plans = [(task, self.plan(task)) for task in tasks]
        tasks = "; ".join(f"{name}: {plan.epochs or 'task'} epochs, {len(plan.schedules)} schedules"
                          f"{'' if plan.tuned else ' at the task LR (not tuned)'}" for name, plan in plans)
        return f"budget {self.name}: {self.seeds} seeds per schedule; tuning grid {grid}; {tasks}"


_TRANSFORMER_SMALL = TaskPlan(schedules=WARMUP_PAIR, tuned=False, schedulefree=False)
BUDGETS: dict[str, Budget] = {
    # a check that everything runs (seconds per task); its verdicts mean little
    "tiny": Budget("tiny", 2, {"per_decade": 1, "seeds": 1, "max_widen": 0, "refine": False},
                   {"digits-mlp": TaskPlan(epochs=2, batch=True)}, TaskPlan(epochs=2), bracket=(0.3, 3)),
    # minutes on a 2-core CPU: the MLPs tuned on a coarse grid, the Transformers' warmup pair at their own LR
    "small": Budget("small", 3, {"per_decade": 2, "seeds": 2, "max_widen": 2, "refine": False},
                    {"digits-mlp": TaskPlan(epochs=10, batch=True), "mnist1d-mlp": TaskPlan(epochs=15),
                     "charlm-transformer": _TRANSFORMER_SMALL, "charlm-transformer-pre": _TRANSFORMER_SMALL}),
    "full": Budget("full", 5, {"per_decade": 4, "seeds": 3, "max_widen": 4, "refine": True},
                   {"digits-mlp": TaskPlan(batch=True), "mnist1d-mlp": TaskPlan(batch=True),
                    "charlm-transformer": TaskPlan(), "charlm-transformer-pre": TaskPlan()}),
}


@dataclass(frozen=True)
class Part:
    """One experiment of the study: its ``kind`` (``schedules``, ``schedulefree``, ``batch-16``...), the task, the
    results directory relative to ``OUT`` and the config."""

    kind: str
    task: str
    directory: str
    config: ExperimentConfig


def budget_named(name: str) -> Budget:
    """The budget called ``name`` (one of :data:`BUDGETS`)."""
    if name not in BUDGETS:
        raise ConfigError(f"budget={name!r} is invalid: expected one of {list(BUDGETS)}")
    return BUDGETS[name]


def task_parts(budget: Budget, task: str, directory: str, optimizer: str, lr: float, batch_size: int) -> list[Part]:
    """The experiments of ``task`` (whose optimizer is ``optimizer`` at ``lr``, ``batch_size`` examples per
    step) under ``budget``, in order: the schedules, schedule-free, the batch sizes."""
    plan = budget.plan(task)
    common: dict[str, Any] = {"task": task, "seeds": budget.seeds, "epochs": plan.epochs}
    bracket = {} if budget.bracket is None else {"min_lr": budget.bracket[0] * lr, "max_lr": budget.bracket[1] * lr}
    tune = {"peak_lr": "tune", "tune": {**budget.tune, **bracket}}
    parts = [Part("schedules", task, directory, _config(
        {**common, **(tune if plan.tuned else {}), "title": f"The study's schedules on {task} ({budget.name})",
         "schedules": {name: SCHEDULES[name] for name in plan.schedules}}))]
    if plan.schedulefree:
        name = "sgd-schedulefree" if optimizer == "sgd" else "adamw-schedulefree"
        parts.append(Part("schedulefree", task, f"{directory}/schedulefree", _config(
            {**common, **tune, "title": f"Schedule-free on {task} ({budget.name})", "optimizer": {"name": name},
             "schedules": {name: SCHEDULE_FREE_SPEC}})))
    if plan.batch:
        for size in BATCH_SIZES:
            parts.append(Part(f"batch-{size}", task, f"{directory}/batch-{size}", _config(
                {**common, "batch_size": size, "optimizer": {"lr": lr * size / batch_size},
                 "title": f"Warmup at batch {size} on {task} ({budget.name})",
                 "schedules": {name: SCHEDULES[name] for name in WARMUP_PAIR}})))
    return parts


def sweep_part(budget: Budget, task: str, directory: str, pick: float, grid_lrs: Sequence[float],
               seeds: Sequence[int]) -> Part | None:
    """Claims 6a/6b's constant-LR sweep of ``task``: the tuned constant LR ``pick`` × each of
    :data:`SWEEP_FACTORS` that lies outside its tuning grid's LRs (``grid_lrs``), on the grid's ``seeds``, so
    that it extends the grid; None when the grid already spans them all."""
    low, high = min(grid_lrs) * 0.99, max(grid_lrs) * 1.01  # the grid's LRs are rounded to 3 digits
    lrs = {f"lr={pick * f:.3g}": pick * f for f in SWEEP_FACTORS if not low <= pick * f <= high}
    if not lrs:
        return None
    return Part(SWEEP_DIR, task, f"{directory}/{SWEEP_DIR}", _config(
        {"task": task, "seeds": list(seeds), "epochs": budget.plan(task).epochs,
         "title": f"Constant LR around the tuned one on {task} ({budget.name})",
         "schedules": {name: SCHEDULES["constant"] for name in lrs}, "peak_lrs": lrs}))


def _config(data: dict[str, Any]) -> ExperimentConfig:
    return parse_config({key: value for key, value in data.items() if value is not None})
