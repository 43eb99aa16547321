"""How an experiment is run: plan the sweep once (:func:`plan_sweep`), then run it (:func:`run_sweep`).

The plan opens the results directory's store (holding its writer lock), finds the runs not yet stored,
resolves the peak LR, checks the sweep's size and chooses the trainer; running it trains the pending runs,
sequentially or as vectorized groups over worker processes (:mod:`lrlab.workers`), and stores each run (or
group) as it ends: a killed sweep loses only the runs in flight, a diverged run is recorded and the sweep goes
on. A sweep whose every run is already stored is planned from its store alone: no task, no torch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import lrlab
from lrlab.config import Experiment, ExperimentConfig, parse_config, prepare
from lrlab.errors import ConfigError
from lrlab.runs import RunMetrics, RunSpec
from lrlab.store import STORE_NAME, Store, WriterLock

if TYPE_CHECKING:
    from lrlab.tasks import Task

TRAINERS = ("auto", "sequential", "vectorized")
#: a sweep of more optimizer steps than this, all runs together, is refused unless confirmed (``--yes``): about
#: 600 MB of per-step records, and hours of training even for the small built-in tasks
MAX_PLAN_STEPS = 10_000_000
#: store space one step's record takes (a row of per-step metrics and its index), in bytes, measured
STEP_ROW_BYTES = 60
#: what ``lrlab compare`` and ``lrlab report`` write beside the store; ``--fresh`` deletes them with it
REPORT_OUTPUTS = ("report.html", "summary.csv", "figures")


# ------------------------------------------------------------------------------------------------ the plan


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


def check_plan_size(size: PlanSize, confirmed: bool = False) -> None:
    """Refuse a sweep of more than :data:`MAX_PLAN_STEPS` steps unless ``confirmed`` (one line naming --yes)."""
    if size.steps > MAX_PLAN_STEPS and not confirmed:
        raise ConfigError(f"the sweep is {size.describe()}: above {MAX_PLAN_STEPS:,} steps, check seeds and "
                          "epochs, or confirm it with --yes")


@dataclass(frozen=True)
class TrainerChoice:
    """How the pending runs will train: ``sequential`` or ``vectorized`` (at most ``limit`` runs per group, over
    ``processes`` worker processes), and why."""

    name: str
    reason: str
    processes: int = 1
    limit: int | None = None
    limited_by: str = ""


@dataclass
class Sweep:
    """A planned sweep: the results directory's store, held open with its writer lock until :meth:`close`, the
    runs still to train (``(schedule name, run)``), and how they will train.

    ``experiment`` (the config bound to its task) and ``trainer`` are None when nothing is to train: the task
    is then never loaded. ``peak_lr`` is the optimizer's LR, resolved (``peak_lr: auto``) or configured.
    """

    config: ExperimentConfig
    out: Path
    store: Store
    size: PlanSize
    pending: list[tuple[str, RunSpec]] = field(default_factory=list)
    experiment: Experiment | None = None
    trainer: TrainerChoice | None = None
    peak_lr: float | None = None

    def close(self) -> None:
        """Close the store and give the results directory back."""
        self.store.close()

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def plan_sweep(config: ExperimentConfig, out: str | Path, *, fresh: bool = False, confirmed: bool = False,
               on_finder: Callable[[], None] | None = None) -> Sweep:
    """Plan ``config``'s sweep into the results directory ``out``; close it with :meth:`Sweep.close`.

    Every check that can refuse the sweep (the config on its task, the sweep's size, ``--yes``, a vectorized
    trainer the task cannot use, another writer, a different experiment in ``out``) runs before anything is
    written; ``fresh`` then deletes the earlier store and report. With ``peak_lr: auto`` the LR range test runs
    once per results directory (``on_finder()`` is called just before it). Raises :class:`ConfigError`.
    """
    out = Path(out)
    if not fresh:
        finished = _finished_sweep(config, out, confirmed)
        if finished is not None:
            return finished
    experiment = prepare(config)
    size = PlanSize(config.run_count(), experiment.horizon.total_steps)
    check_plan_size(size, confirmed)
    vectorizable = None
    if config.trainer == "vectorized":  # refused before anything starts, not when the sweep reaches it
        vectorizable = _vectorizable(experiment.task, config.precision)
        if not vectorizable[0]:
            raise ConfigError(f"trainer='vectorized' is invalid for task {experiment.task.name!r}: {vectorizable[1]}")
    store = open_store(out, config, fresh=fresh)
    try:
        check_resolved(experiment, store)
        experiment = resolve_peak_lr(experiment, store, on_finder)
        finished = store.finished_runs()
        pending = [(name, run) for name, run in experiment.runs() if finished.get((name, run.seed)) != run.schedule]
        trainer = _choose(experiment, [run for _, run in pending], vectorizable) if pending else None
    except BaseException:
        store.close()
        raise
    return Sweep(config, out, store, size, pending, experiment, trainer, experiment.optimizer.lr)


def _all_stored(config: ExperimentConfig, store: Store) -> bool:
    """Whether ``store`` holds this very experiment (its config, horizon and, for ``auto``, peak LR) with every
    run of ``config`` finished under its spec."""
    stored = store.meta("config")
    if stored is None or store.meta("horizon") is None or (config.peak_lr == "auto" and store.meta("peak_lr") is None):
        return False
    try:
        if parse_config(stored).identity() != config.identity():
            return False
    except ConfigError:
        return False
    finished = store.finished_runs()
    return all(finished.get((name, seed)) == spec for name, spec in config.schedules.items()
               for seed in config.seed_list())


def _finished_sweep(config: ExperimentConfig, out: Path, confirmed: bool) -> Sweep | None:
    """The plan of a sweep whose every run is already stored, from the store alone (the task is not loaded),
    or None when a run is missing or the store cannot tell."""
    if not (out / STORE_NAME).is_file():
        return None
    with Store(out, readonly=True) as peek:  # read-only: nothing is written for a sweep planned in full
        if not _all_stored(config, peek):
            return None
    store = open_store(out, config)
    try:
        if not _all_stored(config, store):  # another process changed it in between: plan in full
            store.close()
            return None
        size = PlanSize(config.run_count(), int(store.meta("horizon")["total_steps"]))
        check_plan_size(size, confirmed)
        peak = store.meta("peak_lr") if config.peak_lr == "auto" else None
    except BaseException:
        store.close()
        raise
    return Sweep(config, out, store, size, peak_lr=float(peak["lr"]) if peak else None)


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
            previous = parse_config(stored).identity()
        except ConfigError as exc:
            raise ConfigError(f"out={str(out)!r} holds a config this lrlab cannot read ({exc}): "
                              "use --fresh to start over, or another --out") from None
        current = config.identity()
        if previous != current:
            changed = sorted(k for k in previous if previous[k] != current[k])
        else:  # a schedule may be added with its own peak LR, but one already there keeps its LR
            before = stored.get("peak_lrs") or {}
            changed = [f"peak_lrs.{name}" for name, lr in config.peak_lrs.items() if before.get(name, lr) != lr]
        if changed:
            raise ConfigError(f"out={str(out)!r} holds results of a different experiment (changed: "
                              f"{', '.join(changed)}): use --fresh to start over, or another --out")
    except BaseException:
        store.close()
        raise
    return store


def check_resolved(experiment: Experiment, store: Store) -> None:
    """Refuse to resume a results directory whose runs were trained with other task defaults than the config now
    resolves to (the optimizer a task defaults to, its data's provenance: a built-in task changed by an upgrade, a
    user's task module edited), which a config's own keys cannot show. The first sweep stores them."""
    resolved = json.loads(json.dumps({"optimizer": asdict(experiment.optimizer), "task": experiment.task.info}))
    stored = store.claim_meta("resolved", resolved)
    changed = [f"{part}.{key}" for part in ("optimizer", "task")
               for key in sorted({*stored.get(part, {}), *resolved[part]})
               if stored.get(part, {}).get(key) != resolved[part].get(key)]
    if changed:
        raise ConfigError(f"out={str(store.directory)!r} holds runs of task {experiment.task.name!r} with other "
                          f"defaults (changed: {', '.join(changed)}): use --fresh to start over, or another --out")


def resolve_peak_lr(experiment: Experiment, store: Store, on_finder: Callable[[], None] | None = None) -> Experiment:
    """With ``peak_lr: auto``, the experiment whose optimizer LR is the LR range test's recommendation.

    The test (:func:`lrlab.finder.find_lr_for_task`, up to 3 of the config's seeds) runs once; its result is
    stored (``peak_lr`` in the store's metadata, curves included) and reused when the sweep resumes.
    """
    config = experiment.config
    if config.peak_lr != "auto":
        return experiment
    stored = store.meta("peak_lr")
    if stored is None:
        from lrlab.finder import find_lr_for_task

        if on_finder is not None:
            on_finder()
        result = find_lr_for_task(experiment.task, seeds=config.seed_list()[:3], batch_size=config.batch_size,
                                  epochs=config.epochs, optimizer=experiment.optimizer, device=experiment.device,
                                  precision=config.precision)
        rec = result.recommendation
        stored = {"source": "LR range test (lrlab.finder)", "lr": rec.lr, "interval": [rec.low, rec.high],
                  "per_method": rec.per_method, "finder": result.to_dict()}
        store.set_meta("peak_lr", stored)
    return experiment.with_peak_lr(float(stored["lr"]))


# ------------------------------------------------------------------------------------------ choosing a trainer


def _choose(experiment: Experiment, runs: list[RunSpec], vectorizable: tuple[bool, str] | None) -> TrainerChoice:
    """The trainer for the pending ``runs``, and for a vectorized one its group size and processes."""
    from lrlab.vectorized import group_limit
    from lrlab.workers import process_count

    config = experiment.config
    if config.trainer == "sequential":
        return TrainerChoice(*choose_trainer(experiment.task, runs, "sequential"))
    if vectorizable is None:
        vectorizable = _vectorizable(experiment.task, config.precision)
    if not vectorizable[0]:  # trains sequentially: no group to size
        return TrainerChoice(*choose_trainer(experiment.task, runs, config.trainer, None, vectorizable))
    # one process per core on a CPU; a GPU is driven by one process (CUDA does not survive a fork)
    processes = process_count(len(runs)) if experiment.device == "cpu" else 1
    limit, limited_by = group_limit(experiment.task, runs[0], processes, config.max_members)
    name, reason = choose_trainer(experiment.task, runs, config.trainer, limit, vectorizable)
    return TrainerChoice(name, reason, processes, limit, limited_by)


def _vectorizable(task: Task, precision: str) -> tuple[bool, str]:
    """:func:`lrlab.batched.can_vectorize`, and no for bf16/fp16 (autocast is the sequential trainer's alone)."""
    from lrlab.batched import can_vectorize

    if precision != "fp32":
        return False, f"precision={precision!r} trains under autocast, which only the sequential trainer applies"
    return can_vectorize(task)


def choose_trainer(task: Task, runs: Sequence[RunSpec], requested: str = "auto", max_members: int | None = None,
                   vectorizable: tuple[bool, str] | None = None) -> tuple[str, str]:
    """``("sequential" | "vectorized", reason)``: the trainer for these runs, given what the user asked for.

    ``auto`` picks vectorized when :func:`lrlab.batched.can_vectorize` says yes and the runs train in fp32
    (``vectorizable``: that answer, when already known), the model has no convolution when on a CPU (vmap makes
    it a grouped convolution, no faster there than separate runs) and the largest group has at least
    :data:`lrlab.batched.MIN_MEMBERS` runs (below that a batched step costs about as much as separate runs),
    else sequential. ``vectorized`` for a task that cannot be vectorized, or runs with a schedule-free
    optimizer (``tasks.base.SCHEDULE_FREE``), raises :class:`ConfigError`.
    """
    if requested not in TRAINERS:
        raise ConfigError(f"trainer={requested!r} is invalid: expected one of {list(TRAINERS)}")
    if requested == "sequential":
        return "sequential", "requested"
    import torch

    from lrlab.batched import MIN_MEMBERS
    from lrlab.tasks.base import SCHEDULE_FREE
    from lrlab.vectorized import group_runs

    precision = runs[0].precision if runs else "fp32"
    averaging = next((run.optimizer.name for run in runs if run.optimizer.name in SCHEDULE_FREE), None)
    if averaging is not None:
        ok, why = False, (f"optimizer {averaging!r} validates at its averaged weights (optimizer.eval()), which "
                          "the vectorized trainer's batched optimizers do not have")
    else:
        ok, why = vectorizable if vectorizable is not None else _vectorizable(task, precision)
    if requested == "vectorized":
        if not ok:
            raise ConfigError(f"trainer='vectorized' is invalid for task {task.name!r}: {why}")
        return "vectorized", "requested"
    if not ok:
        return "sequential", why
    with torch.random.fork_rng(devices=[]):
        model = task.make_model()
    # vmap makes a convolution a grouped one, which oneDNN runs no faster on a CPU than separate runs
    # (bench/RESULTS.md: 1.0-1.1x for mnist1d-cnn): ``auto`` leaves them sequential there
    conv = next((name for name, m in model.named_modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)
    if conv is not None and all(run.device == "cpu" for run in runs):
        return "sequential", (f"module {conv!r} ({type(model.get_submodule(conv)).__name__}) becomes a grouped "
                              "convolution under vmap, no faster on a CPU than separate runs; "
                              "trainer='vectorized' forces it")
    largest = max((len(g) for g in group_runs(runs, max_members)), default=0)
    if largest < MIN_MEMBERS:
        return "sequential", (f"at most {largest} runs train together: below {MIN_MEMBERS} a batched step "
                              "does not pay for itself")
    return "vectorized", f"{len(runs)} runs in groups of up to {largest}; {why}"



# ---------------------------------------------------------------------------------------------- running it


def run_sweep(sweep: Sweep, on_start: Callable[[str, int, int], None] | None = None,
              on_step: Callable[[int], None] | None = None) -> str:
    """Train every pending run of ``sweep`` and store it; return the trainer used and why.

    The runs train through the executor of the config's ``backend`` (:func:`lrlab.executors.open_executor`):
    sequentially, one run per group; vectorized, in groups (:func:`lrlab.vectorized.group_runs`, at most
    ``sweep.trainer.limit`` runs each) dealt over the executor's slots (locally, one forked single-thread process
    per core). Each group is stored here, by the driver alone, as it ends: an interrupt or a kill loses only the
    runs in flight. ``on_start(label, done, total)`` is called as each group starts and ends (``done`` counts the
    runs finished so far), ``on_step(step)`` as training advances where the executor reports it: hooks for a
    progress display.
    """
    experiment, trainer, store = sweep.experiment, sweep.trainer, sweep.store
    if experiment is None or trainer is None or not sweep.pending:
        return "none: every run is already stored"
    from lrlab.executors import Job, open_executor
    from lrlab.vectorized import group_runs

    config = sweep.config
    stored = config.model_dump()
    if stored["target_acc"] is None:
        stored["target_acc"] = experiment.task.target_acc  # the task's default target for time-to-target
    store.set_meta("config", stored)
    store.set_meta("task", {"name": experiment.task.name, "description": experiment.task.description,
                            "info": experiment.task.info})
    store.set_meta("horizon", asdict(experiment.horizon))  # what the specs were built against
    env = {**environment(), "trainer": trainer.name}
    store.set_meta("env", env)
    store.set_meta("trainer", {"name": trainer.name, "reason": trainer.reason})
    pending, total = sweep.pending, sweep.size.runs
    runs = [run for _, run in pending]
    done = total - len(pending)
    ids: dict[int, int] = {}
    executor = open_executor(config.backend, config.address, trainer.name, trainer.processes, len(runs),
                             experiment.device)
    try:
        if trainer.name == "sequential":
            groups = [[i] for i in range(len(runs))]
            label, summary = None, f"{trainer.name} ({trainer.reason})"
        else:
            groups = group_runs(runs, trainer.limit, executor.slots)
            slots = min(executor.slots, len(groups))
            label = f"{len(runs)} runs in {_plural(len(groups), 'group')} of up to {max(len(g) for g in groups)}" + \
                (f" in {slots} processes" if slots > 1 else "")
            summary = (f"{trainer.name} ({trainer.reason}); trained as {label} (at most {trainer.limit} per group: "
                       f"{trainer.limited_by})")
        if config.backend != "local":
            summary += f"; backend {config.backend}" + (f" at {config.address}" if config.address else "")

        def started(group: list[int]) -> None:
            for i in group:
                ids[i] = store.start_run(pending[i][0], runs[i].schedule, runs[i].seed, env)
            if on_start is not None:
                on_start(label or f"{pending[group[0]][0]} seed {runs[group[0]].seed}", done, total)

        def finished(group: list[int], results: list[RunMetrics]) -> None:
            nonlocal done
            for i, metrics in zip(group, results, strict=True):
                store.finish_run(ids.pop(i), metrics)  # a run is stored once: its id is gone after
            done += len(group)
            if on_start is not None and label is not None and done < total:
                on_start(label, done, total)

        executor.train(Job(experiment.task, config.task, runs, trainer.name), groups, started, on_step, finished)
    finally:
        executor.close()
    return summary


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def environment() -> dict[str, Any]:
    """Versions and revision stored with every run, so a result can be traced to what made it."""
    import torch

    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    return {"lrlab": lrlab.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "git_revision": revision, "torch_threads": torch.get_num_threads()}


def set_threads_for_small_models() -> None:
    """Tiny models on a CPU train fastest on one thread; respect an explicit ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)
