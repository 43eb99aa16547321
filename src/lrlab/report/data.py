"""Load a results store into per-schedule, per-seed series: the one place the report reads the store.

Everything else in :mod:`lrlab.report` works on the :class:`Study` this module returns, so a report can
always be recomputed from the store alone. Missing values (a metric not recorded, or a NaN that SQLite
stored as NULL) become ``nan`` in the arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import ConfigError
from lrlab.store import STORE_NAME, RunRecord, Store


@dataclass(frozen=True)
class RunSeries:
    """One finished run's metrics as arrays.

    Per step (index = optimizer updates already done): ``lr``, ``momentum`` (None when the optimizer has
    none), ``train_loss``. Per epoch: ``epoch`` (1 = after the first epoch), ``val_loss``, ``val_acc``
    (None for tasks without accuracy). A diverged run's series stop where it diverged.
    """

    schedule: str
    spec: str
    seed: int
    status: str
    diverged_step: int | None
    wall_s: float | None
    env: dict[str, Any]
    lr: np.ndarray
    momentum: np.ndarray | None
    train_loss: np.ndarray
    epoch: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray | None

    @property
    def diverged(self) -> bool:
        """Whether the run was stopped for divergence."""
        return self.status == "diverged"

    @property
    def final_val_loss(self) -> float:
        """Validation loss after the last recorded epoch (``nan`` when none was recorded)."""
        return float(self.val_loss[-1]) if len(self.val_loss) else math.nan

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy after the last recorded epoch (``nan`` when not available)."""
        return float(self.val_acc[-1]) if self.val_acc is not None and len(self.val_acc) else math.nan

    @property
    def best_val_loss(self) -> float:
        """Lowest validation loss over the recorded epochs: what early stopping would keep (``nan`` when none)."""
        return float(np.nanmin(self.val_loss)) if np.isfinite(self.val_loss).any() else math.nan

    @property
    def best_val_loss_epoch(self) -> float:
        """The epoch (1 = after the first) of :attr:`best_val_loss`, the first such on a tie (``nan`` when none)."""
        return float(self.epoch[np.nanargmin(self.val_loss)]) if np.isfinite(self.val_loss).any() else math.nan

    @property
    def final_train_loss(self) -> float:
        """Mean training loss over the last epoch's steps (``nan`` when not recorded).

        A run's steps per epoch are its steps over its recorded epochs; for a run that trained to the end this is
        the horizon's. The training loss of a step is its mini-batch's, taken before that step's update.
        """
        steps = len(self.train_loss) // len(self.epoch) if len(self.epoch) else 0
        last = self.train_loss[len(self.train_loss) - steps:] if steps else self.train_loss[:0]
        return float(np.nanmean(last)) if np.isfinite(last).any() else math.nan

    @property
    def best_val_acc(self) -> float:
        """Highest validation accuracy over the recorded epochs (``nan`` when not available)."""
        if self.val_acc is None or not np.isfinite(self.val_acc).any():
            return math.nan
        return float(np.nanmax(self.val_acc))


@dataclass(frozen=True)
class ScheduleRuns:
    """The finished runs of one schedule (display name and spec), in seed order."""

    name: str
    spec: str
    runs: tuple[RunSeries, ...]

    @property
    def done(self) -> tuple[RunSeries, ...]:
        """Runs that trained to the end (the ones means and bands are computed over)."""
        return tuple(r for r in self.runs if not r.diverged)

    @property
    def diverged(self) -> tuple[RunSeries, ...]:
        """Runs stopped for divergence."""
        return tuple(r for r in self.runs if r.diverged)

    def final_val_loss(self) -> np.ndarray:
        """Final validation loss of every run that trained to the end."""
        return np.array([r.final_val_loss for r in self.done], dtype=float)

    def final_val_acc(self) -> np.ndarray:
        """Final validation accuracy of every run that trained to the end (empty without accuracy)."""
        return np.array([r.final_val_acc for r in self.done if r.val_acc is not None], dtype=float)

    def best_val_loss(self) -> np.ndarray:
        """Best-epoch validation loss of every run that trained to the end."""
        return np.array([r.best_val_loss for r in self.done], dtype=float)


@dataclass(frozen=True)
class Study:
    """Everything the report shows: the experiment's metadata and every finished run, by schedule.

    ``schedules`` is in display order (the config's order, then any other schedule found in the store).
    ``running`` lists runs still in flight (or interrupted); they are ignored. ``epochs`` is the configured
    number of epochs (or the longest run's). ``target_acc`` is the config's, or None.
    """

    directory: Path
    config: dict[str, Any]
    task: dict[str, Any]
    env: dict[str, Any]
    peak_lr: Any
    schedules: dict[str, ScheduleRuns]
    horizon: dict[str, Any] | None = None
    running: tuple[RunRecord, ...] = ()
    epochs: int = 0
    target_acc: float | None = None
    notes: tuple[str, ...] = field(default=())
    tuned: dict[str, Any] | None = None  # compare --peak-lr tune: schedule name -> its grid (TuneResult.to_dict)
    optimizer: dict[str, Any] | None = None  # the optimizer the runs trained with (task defaults + overrides)

    def peak_lr_of(self, name: str) -> float | None:
        """The peak LR (the optimizer's LR) schedule ``name`` ran at: its own (``peak_lrs``, tuned or set), else
        the one every schedule shared (None when the store does not say)."""
        own = (self.config.get("peak_lrs") or {}).get(name)
        if own is not None:
            return float(own)
        return None if not self.horizon else float(self.horizon["base_lr"])

    @property
    def has_accuracy(self) -> bool:
        """Whether any finished run recorded a validation accuracy (classification tasks)."""
        return any(r.val_acc is not None for s in self.schedules.values() for r in s.runs)

    @property
    def has_momentum(self) -> bool:
        """Whether any finished run recorded a momentum (or Adam beta1) value."""
        return any(r.momentum is not None for s in self.schedules.values() for r in s.runs)

    @property
    def seeds(self) -> list[int]:
        """Every seed that has a finished run, sorted."""
        return sorted({r.seed for s in self.schedules.values() for r in s.runs})

    @property
    def title(self) -> str:
        """The config's title, or one made from the task's name."""
        title = self.config.get("title")
        return str(title) if title else f"Learning-rate schedules on {self.task_name}"

    @property
    def task_name(self) -> str:
        """The task's name (from the task metadata, else the config)."""
        return str(self.task.get("name") or self.config.get("task") or "unknown task")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its control characters escaped as Python writes them (ESC -> ``\\x1b``), safe for a terminal.

    Schedule names and specs read from a store pass through it: a store may come from anyone.
    """
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def _array(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _optional_array(values: list[Any]) -> np.ndarray | None:
    return None if all(v is None for v in values) else _array(values)


def _series(store: Store, run: RunRecord) -> RunSeries:
    steps, epochs = store.step_metrics(run.id), store.epoch_metrics(run.id)
    return RunSeries(
        schedule=printable(run.schedule), spec=printable(run.spec), seed=run.seed, status=run.status,
        diverged_step=run.diverged_step, wall_s=run.wall_s, env=run.env, lr=_array(steps["lr"]),
        momentum=_optional_array(steps["momentum"]), train_loss=_array(steps["train_loss"]),
        epoch=np.array(epochs["epoch"], dtype=int),
        val_loss=_array(epochs["val_loss"]), val_acc=_optional_array(epochs["val_acc"]))


def load_study(directory: str | Path) -> Study:
    """Read the store in ``directory`` into a :class:`Study`.

    Raises :class:`~lrlab.errors.ConfigError` when the directory holds no store or no finished run.
    """
    directory = Path(directory)
    if not (directory / STORE_NAME).is_file():
        raise ConfigError(f"directory={str(directory)!r} holds no results ({STORE_NAME}): run `lrlab compare` first")
    store = Store(directory, readonly=True)  # a reader: no lock, nothing written
    try:
        config = store.meta("config") or {}
        task = store.meta("task") or {}
        env = store.meta("env") or {}
        peak_lr = store.meta("peak_lr")
        tuned = store.meta("tuned")
        horizon = store.meta("horizon")
        optimizer = (store.meta("resolved") or {}).get("optimizer")
        records = store.runs()
        finished = [r for r in records if r.status in ("done", "diverged")]
        series = [_series(store, r) for r in finished]
    finally:
        store.close()
    if not finished:
        raise ConfigError(f"directory={str(directory)!r} has no finished run yet: wait for `lrlab compare`")

    configured = [printable(name) for name in config.get("schedules") or {}]
    order = list(configured)
    order += [name for name in dict.fromkeys(s.schedule for s in series) if name not in order]
    schedules: dict[str, ScheduleRuns] = {}
    for name in order:
        runs = tuple(sorted((s for s in series if s.schedule == name), key=lambda s: s.seed))
        if runs:
            spec = runs[0].spec
            schedules[name] = ScheduleRuns(name, spec, runs)

    running = tuple(r for r in records if r.status not in ("done", "diverged"))
    notes = []
    if running:
        names = ", ".join(f"{printable(r.schedule)} (seed {r.seed})" for r in running)
        notes.append(f"{len(running)} run(s) not finished (still running or interrupted) are ignored: {names}.")
    missing = [name for name in configured if name not in schedules]
    if missing:
        notes.append(f"No finished run yet for: {', '.join(missing)} (left out of every table, figure and claim).")
    longest = max((len(s.epoch) for s in series), default=0)
    epochs = max(int(config.get("epochs") or 0), longest)
    target = config.get("target_acc")
    return Study(directory=directory, config=config, task=task, env=env, peak_lr=peak_lr, schedules=schedules,
                 horizon=horizon, tuned=tuned, optimizer=optimizer, running=running, epochs=epochs,
                 target_acc=None if target is None else float(target), notes=tuple(notes))


def epoch_matrix(runs: tuple[RunSeries, ...], metric: str, epochs: int) -> np.ndarray:
    """``runs × epochs`` array of a per-epoch metric (``val_loss`` or ``val_acc``), aligned by epoch.

    Column ``j`` holds epoch ``j + 1``; epochs a run did not reach (it diverged) are ``nan``.
    """
    out = np.full((len(runs), epochs), math.nan)
    for i, run in enumerate(runs):
        values = getattr(run, metric)
        if values is None:
            continue
        for epoch, value in zip(run.epoch, values, strict=True):
            if 1 <= epoch <= epochs:
                out[i, epoch - 1] = value
    return out
