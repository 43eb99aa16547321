"""Experiments: a validated config (task × schedules × seeds), expanded into runs and run into a store.

The runner skips runs already finished in the results directory, redoes one that was interrupted, and
records a diverged run as such without stopping the sweep.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import lrlab
from lrlab.errors import ConfigError, short_repr
from lrlab.runs import RunMetrics, RunSpec, horizon_for
from lrlab.spec import SpecError, build
from lrlab.store import STORE_NAME, Store, WriterLock
from lrlab.tasks import DEFAULT_TASK, OptimizerDefaults, Task, load_task
from lrlab.trainer import train

# The study lrlab grew from: four classic schedules and warmup, against a constant-LR baseline.
DEFAULT_SCHEDULES: dict[str, str] = {
    "constant": "constant()",
    "step": "step(every_epochs=10, gamma=0.1)",
    "cosine": "cosine()",
    "plateau": "plateau(patience=2, factor=0.5)",
    "onecycle": "onecycle()",
    "warmup-cosine": "warmup(epochs=2) >> cosine()",
}
DEFAULT_SEEDS = 5
#: the largest seed: torch.manual_seed takes up to 2**64 - 1, the store's INTEGER column up to 2**63 - 1
MAX_SEED = 2**63 - 1


class OptimizerConfig(BaseModel):
    """Optimizer overrides; anything left out comes from the task's defaults (every number finite)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Literal["sgd", "adam", "adamw"] | None = None
    lr: float | None = Field(default=None, gt=0)
    momentum: float | None = Field(default=None, ge=0, lt=1)
    nesterov: bool | None = None
    weight_decay: float | None = Field(default=None, ge=0)
    betas: tuple[float, float] | None = None


class ExperimentConfig(BaseModel):
    """An experiment: which task, how long, which optimizer, which seeds, which schedules (name -> spec).

    ``epochs`` and ``batch_size`` default to the task's own. ``seeds`` is a count N (seeds 0..N-1) or a
    list. ``target_acc`` is the validation accuracy that time-to-target counts epochs to. ``peak_lr`` sets
    the optimizer's LR, which every schedule's LR parameters default to (OneCycle's max_lr, a warmup's target,
    cosine's start); ``auto`` takes it from the LR range test (:mod:`lrlab.finder`), run once per results
    directory.
    """

    model_config = ConfigDict(extra="forbid")
    task: str = DEFAULT_TASK
    title: str | None = None
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    seeds: int | list[int] = DEFAULT_SEEDS
    schedules: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    target_acc: float | None = Field(default=None, gt=0, le=1)
    peak_lr: float | str | None = None
    divergence_factor: float = Field(default=10.0, gt=1)
    trainer: Literal["auto", "sequential", "vectorized"] = "auto"
    max_members: int | None = Field(default=None, ge=1)

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("expected a count >= 1 or a list of seeds")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("expected a non-empty list of distinct seeds")
        if isinstance(value, list) and not all(0 <= seed <= MAX_SEED for seed in value):
            raise ValueError(f"expected seeds from 0 to {MAX_SEED} (2**63 - 1)")
        if isinstance(value, int) and value > MAX_SEED + 1:
            raise ValueError(f"expected a count of at most {MAX_SEED + 1} (seeds 0 to 2**63 - 1)")
        return value

    @field_validator("peak_lr")
    @classmethod
    def _peak_lr_valid(cls, value: float | str | None) -> float | str | None:
        if value is None or value == "auto" or (isinstance(value, float) and 0 < value < math.inf):
            return value
        raise ValueError("expected a number > 0 or 'auto'")

    @field_validator("schedules")
    @classmethod
    def _schedules_valid(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("expected at least one schedule")
        for name in value:
            shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
            if not name.strip():
                raise ValueError(f"the schedule name {shown} is empty: expected a name such as warmup-cosine")
            if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):  # ESC, newline, tab...: not for terminals
                raise ValueError(f"the schedule name {shown} has a control character: expected printable text")
        return value

    def seed_list(self) -> Sequence[int]:
        """The seeds in order (a ``range`` for a count: nothing is allocated per seed)."""
        return range(self.seeds) if isinstance(self.seeds, int) else list(self.seeds)


def _pydantic_error_line(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    return f"{field}={short_repr(first.get('input'))} is invalid: {first['msg'].removeprefix('Value error, ')}"


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a config mapping; raise :class:`ConfigError` with one line naming the field on a mistake."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_error_line(exc)) from None


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, stricter: no aliases (a config needs none, and they make "billion laughs" bombs),
    no duplicate keys (YAML would keep the last one silently, dropping a schedule of the same name)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in a config, line "
                                 f"{event.start_mark.line + 1}")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.YAMLError(f"duplicate key {short_repr(key)}, line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a mapping (validated later, after command-line overrides).

    A config is as powerful as code: its ``task:`` and any ``fn(path=module:attr)`` spec import that module.
    """
    name = short_repr(str(path))
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ConfigLoader)  # a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"config={name} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config={name} is not UTF-8 text (byte {exc.start}): expected a YAML file") from None
    except RecursionError:
        raise ConfigError(f"config={name} is nested too deeply: expected a flat YAML mapping") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config={name} is not valid YAML: {short_repr(str(exc).splitlines()[0], 200)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config={name} is invalid: expected a mapping of keys (task, epochs, schedules...)")
    return data


@dataclass(frozen=True)
class Experiment:
    """A validated config bound to its task: the runs to do, each fully specified."""

    config: ExperimentConfig
    task: Task
    peak_lr: float | None = None

    @property
    def optimizer(self) -> OptimizerDefaults:
        """The task's optimizer defaults with the config's overrides (and the resolved peak LR) applied."""
        overrides = self.config.optimizer.model_dump(exclude_none=True)
        if self.peak_lr is not None:
            overrides["lr"] = self.peak_lr
        return OptimizerDefaults(**{**self.task.optimizer.__dict__, **overrides})

    def runs(self) -> Iterator[tuple[str, RunSpec]]:
        """``(schedule name, run)`` for every schedule × seed, seeds inner."""
        epochs = self.config.epochs or self.task.epochs
        batch_size = self.config.batch_size or self.task.batch_size
        for name, spec in self.config.schedules.items():
            for seed in self.config.seed_list():
                yield name, RunSpec(spec, seed, epochs, batch_size, self.optimizer, self.config.divergence_factor)


def prepare(config: ExperimentConfig) -> Experiment:
    """Load the task and check that every schedule builds for this run length (one line per mistake)."""
    task = load_task(config.task)
    experiment = Experiment(config, task, config.peak_lr if isinstance(config.peak_lr, float) else None)
    if config.trainer == "vectorized":  # refused before anything starts, not when the sweep reaches it
        from lrlab.vectorized import can_vectorize

        ok, why = can_vectorize(task)
        if not ok:
            raise ConfigError(f"trainer='vectorized' is invalid for task {task.name!r}: {why}")
    _, first = next(experiment.runs())
    if first.batch_size > len(task.x_train):
        raise ConfigError(f"batch_size={first.batch_size} is invalid for task {task.name!r}: expected at most "
                          f"{len(task.x_train)}, the training set's size")
    for name, spec in config.schedules.items():  # the seed does not change the horizon: one check per schedule
        run = replace(first, schedule=spec)
        try:
            build(run.schedule, horizon_for(task, run))
        except SpecError as exc:
            raise ConfigError(f"schedules.{name}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"schedules.{name}={run.schedule!r} is invalid: {exc}") from None
    return experiment


#: a sweep of more optimizer steps than this, all runs together, is refused unless confirmed (``--yes``): about
#: 600 MB of per-step records, and hours of training even for the small built-in tasks
MAX_PLAN_STEPS = 10_000_000
#: store space one step's record takes (a row of per-step metrics and its index), in bytes, measured
STEP_ROW_BYTES = 60


@dataclass(frozen=True)
class PlanSize:
    """How big a sweep is: its runs and optimizer steps per run (computed, nothing is expanded per run)."""

    runs: int
    steps_per_run: int

    @property
    def steps(self) -> int:
        """Optimizer steps of all runs together: the store writes one row of metrics per step."""
        return self.runs * self.steps_per_run

    def describe(self) -> str:
        """``24 runs × 1,100 steps = 26,400 steps, ~1.6 MB of store``."""
        size = float(self.steps * STEP_ROW_BYTES)
        for unit in ("B", "kB", "MB", "GB", "TB"):
            if size < 1000 or unit == "TB":
                break
            size /= 1000
        return (f"{self.runs:,} run{'' if self.runs == 1 else 's'} × {self.steps_per_run:,} steps = "
                f"{self.steps:,} steps, ~{size:.3g} {unit} of store")


def plan_size(experiment: Experiment) -> PlanSize:
    """The size of every run of ``experiment`` (stored or not)."""
    _, first = next(experiment.runs())
    runs = len(experiment.config.schedules) * len(experiment.config.seed_list())
    return PlanSize(runs, horizon_for(experiment.task, first).total_steps)


def check_plan_size(size: PlanSize, confirmed: bool = False) -> None:
    """Refuse a sweep of more than :data:`MAX_PLAN_STEPS` steps unless ``confirmed`` (one line naming --yes)."""
    if size.steps > MAX_PLAN_STEPS and not confirmed:
        raise ConfigError(f"the sweep is {size.describe()}: above {MAX_PLAN_STEPS:,} steps, check seeds and "
                          "epochs, or confirm it with --yes")


def environment() -> dict[str, Any]:
    """Versions and revision stored with every run, so a result can be traced to what made it."""
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    return {"lrlab": lrlab.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "git_revision": revision, "torch_threads": torch.get_num_threads()}


def _experiment_identity(config: ExperimentConfig) -> dict[str, Any]:
    """The parts of a config that must not change between a run and its resumption."""
    return config.model_dump(exclude={"seeds", "schedules", "title", "target_acc", "trainer", "max_members"})


#: what ``lrlab compare`` and ``lrlab report`` write beside the store; ``--fresh`` deletes them with it
REPORT_OUTPUTS = ("report.html", "summary.csv", "figures")


def open_store(out: str | Path, config: ExperimentConfig, fresh: bool = False) -> Store:
    """Open the results directory's store for writing this config, holding the directory's lock until
    :meth:`Store.close`; ``fresh`` deletes the earlier store and report first (under the lock).

    The config is compared with the stored one and, in a store that has none, stored, in one transaction.
    Raises :class:`ConfigError` when another process writes the directory, or when it holds results of a
    different experiment.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(out)
    try:
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                (out / (STORE_NAME + suffix)).unlink(missing_ok=True)
            for name in REPORT_OUTPUTS:
                path = out / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        store = Store(out, lock=lock)
    except BaseException:
        lock.release()
        raise
    try:
        stored = store.claim_meta("config", config.model_dump())
        try:
            previous = _experiment_identity(ExperimentConfig.model_validate(stored))
        except ValidationError as exc:
            raise ConfigError(f"out={str(out)!r} holds a config this lrlab cannot read ({_pydantic_error_line(exc)}): "
                              "use --fresh to start over, or another --out") from None
        current = _experiment_identity(config)
        if previous != current:
            changed = sorted(k for k in previous if previous[k] != current[k])
            raise ConfigError(f"out={str(out)!r} holds results of a different experiment (changed: "
                              f"{', '.join(changed)}): use --fresh to start over, or another --out")
    except BaseException:
        store.close()
        raise
    return store


def resolve_peak_lr(experiment: Experiment, store: Store) -> Experiment:
    """With ``peak_lr: auto``, the experiment whose optimizer LR is the LR range test's recommendation.

    The test (:func:`lrlab.finder.find_lr_for_task`, up to 3 of the config's seeds) runs once; its result is
    stored (``peak_lr`` in the store's metadata, curves included) and reused when the sweep resumes.
    """
    if experiment.config.peak_lr != "auto":
        return experiment
    stored = store.meta("peak_lr")
    if stored is None:
        from lrlab.finder import find_lr_for_task

        config = experiment.config
        result = find_lr_for_task(experiment.task, seeds=config.seed_list()[:3], batch_size=config.batch_size,
                                  epochs=config.epochs, optimizer=experiment.optimizer)
        rec = result.recommendation
        stored = {"source": "LR range test (lrlab.finder)", "lr": rec.lr, "interval": [rec.low, rec.high],
                  "per_method": rec.per_method, "finder": result.to_dict()}
        store.set_meta("peak_lr", stored)
    return replace(experiment, peak_lr=float(stored["lr"]))


def pending_runs(experiment: Experiment, store: Store) -> list[tuple[str, RunSpec]]:
    """The runs of ``experiment`` not yet finished in ``store`` with the same spec (the ones to train)."""
    finished = store.finished_runs()
    return [(name, run) for name, run in experiment.runs() if finished.get((name, run.seed)) != run.schedule]


def run_experiment(experiment: Experiment, store: Store,
                   on_start: Callable[[str, int, int], None] | None = None,
                   on_step: Callable[[int], None] | None = None) -> str:
    """Train every run not yet finished in ``store`` and record it; return the trainer used and why.

    The trainer is the config's (``auto``: :func:`lrlab.vectorized.choose_trainer` decides). Sequentially,
    each run is stored when it ends. Vectorized, the runs train in groups (:func:`lrlab.vectorized.group_runs`,
    at most :func:`lrlab.vectorized.group_limit` runs each: ``max_members``, what pays, what memory holds),
    dealt over one forked single-thread process per core (:mod:`lrlab.workers`), and each group is stored when
    it ends: an interrupt or a kill loses only the runs in flight. ``on_start(label, done, total)`` is called
    before each run and as each group starts and ends (``done`` counts the runs finished so far),
    ``on_step(step)`` as training advances: hooks for a progress display.
    """
    from lrlab.vectorized import choose_trainer, group_limit, group_runs
    from lrlab.workers import process_count, train_groups

    experiment = resolve_peak_lr(experiment, store)
    config = experiment.config
    stored = config.model_dump()
    if stored["target_acc"] is None:
        stored["target_acc"] = experiment.task.target_acc  # the task's default target for time-to-target
    store.set_meta("config", stored)
    store.set_meta("task", {"name": experiment.task.name, "description": experiment.task.description,
                            "info": experiment.task.info})
    env = environment()
    _, first = next(experiment.runs())
    store.set_meta("horizon", asdict(horizon_for(experiment.task, first)))  # what the specs were built against
    total = len(config.schedules) * len(config.seed_list())
    pending = pending_runs(experiment, store)
    if not pending:
        return "none: every run is already stored"
    runs = [run for _, run in pending]
    processes = process_count(len(runs))
    limit, limited_by = group_limit(experiment.task, runs[0], processes, config.max_members)
    trainer, reason = choose_trainer(experiment.task, runs, config.trainer, limit)
    env = {**env, "trainer": trainer}
    store.set_meta("env", env)
    store.set_meta("trainer", {"name": trainer, "reason": reason})
    done = total - len(pending)
    if trainer == "sequential":
        for name, run in pending:
            if on_start is not None:
                on_start(f"{name} seed {run.seed}", done, total)
            run_id = store.start_run(name, run.schedule, run.seed, env)
            store.finish_run(run_id, train(experiment.task, run, on_step))
            done += 1
        return f"{trainer} ({reason})"
    groups = group_runs(runs, limit, processes)
    processes = min(processes, len(groups))
    largest = max(len(g) for g in groups)
    label = f"{len(runs)} runs in {_plural(len(groups), 'group')} of up to {largest}" + \
        (f" in {processes} processes" if processes > 1 else "")
    ids: dict[int, int] = {}

    def started(group: list[int]) -> None:
        for i in group:
            ids[i] = store.start_run(pending[i][0], runs[i].schedule, runs[i].seed, env)
        if on_start is not None:
            on_start(label, done, total)

    def finished(group: list[int], results: list[RunMetrics]) -> None:
        nonlocal done
        for i, metrics in zip(group, results, strict=True):
            store.finish_run(ids.pop(i), metrics)
        done += len(group)
        if on_start is not None and done < total:
            on_start(label, done, total)

    train_groups(experiment.task, runs, groups, processes, on_step, started, finished)
    return f"{trainer} ({reason}); trained as {label} (at most {limit} per group: {limited_by})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def set_threads_for_small_models() -> None:
    """Tiny models on a CPU train fastest on one thread; respect an explicit ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
