"""Tuning a schedule's peak LR with real runs: a grid over the LR range test's bracket, trained as one sweep.

Each grid point is the schedule at one peak LR (the optimizer's LR, which the schedule's LR parameters default
to), trained with a few seeds. The grid is a results directory of its own: runs named ``lr=0.0316`` (and
``lr=0.0316@120`` for runs successive halving stopped after 120 updates), stored and resumed like any sweep
(:mod:`lrlab.runner`: batched where the task allows, a killed tuning loses only the runs in flight), so
``lrlab report`` on it compares the LRs. The pick, its good region, the widening rule, refining and successive
halving are :mod:`lrlab.tune`'s. Written beside the store: ``tune.json`` (the pick and the per-LR table) and
``lr_sensitivity.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab.config import Experiment, ExperimentConfig
from lrlab.report.files import replacing
from lrlab.report.sensitivity import SENSITIVITY_NAME, plot_sensitivity
from lrlab.runner import plan_sweep, run_sweep
from lrlab.store import STORE_NAME, Store
from lrlab.tune import (
    GridPoint,
    Pruned,
    TuneResult,
    halving_rungs,
    lr_grid,
    refine_lrs,
    survivor_count,
    survivors,
    tune_result,
    widen,
)

if TYPE_CHECKING:
    from lrlab.finder import Recommendation

TUNE_NAME = "tune.json"
#: ``compare --peak-lr tune`` tunes on seeds 1000, 1001, ...: held out from the verdict's seeds 0..N-1
TUNE_SEED_BASE = 1000


@dataclass(frozen=True)
class Bracket:
    """Where the grid starts: ``low``..``high`` (LRs) and where it came from (``source``)."""

    low: float
    high: float
    source: str


def range_test_bracket(experiment: Experiment, seeds: Sequence[int]) -> Bracket:
    """The LR range test's bracket (:func:`bracket_from`) for ``experiment``'s task and optimizer."""
    from lrlab.finder import find_lr_for_task

    config = experiment.config
    result = find_lr_for_task(experiment.task, seeds=seeds, batch_size=config.batch_size, epochs=config.epochs,
                              optimizer=experiment.optimizer, device=experiment.device, precision=config.precision)
    return bracket_from(result.recommendation)


def bracket_from(rec: Recommendation) -> Bracket:
    """A range test's recommendation as the grid's first bracket: its interval, clipped to a decade either side
    of its pick and widened to at least a factor 3 either side (the grid widens itself where the optimum lies
    beyond)."""
    low = min(max(rec.low, rec.lr / 10), rec.lr / 3)
    high = max(min(rec.high, rec.lr * 10), rec.lr * 3)
    return Bracket(low, high, f"LR range test (pick {rec.lr:.3g}, interval {rec.low:.3g} – {rec.high:.3g})")


def grid_name(lr: float, stop_step: int | None = None) -> str:
    """The run name of a grid point: ``lr=0.0316``, or ``lr=0.0316@120`` for its runs stopped after 120 updates
    (a successive-halving rung)."""
    return f"lr={lr:.3g}" + ("" if stop_step is None else f"@{stop_step}")


def grid_points(store: Store, lrs: Sequence[float], stop_step: int | None = None) -> dict[float, GridPoint]:
    """Each grid LR's final validation loss (``inf`` where a seed diverged) and accuracy, from ``store``: of the
    runs trained to the end, or of those stopped at ``stop_step``."""
    by_name: dict[str, tuple[list[float], list[float | None]]] = {grid_name(lr, stop_step): ([], []) for lr in lrs}
    for run in store.runs():
        if run.schedule not in by_name or run.status not in ("done", "diverged"):
            continue
        epochs = store.epoch_metrics(run.id)
        loss = epochs["val_loss"][-1] if run.status == "done" and epochs["val_loss"] else math.inf
        by_name[run.schedule][0].append(loss if loss is not None and math.isfinite(loss) else math.inf)
        by_name[run.schedule][1].append(epochs["val_acc"][-1] if run.status == "done" and epochs["val_acc"] else None)
    return {lr: GridPoint(lr, tuple(by_name[grid_name(lr, stop_step)][0]), tuple(by_name[grid_name(lr, stop_step)][1]))
            for lr in lrs}


@dataclass
class _Grid:
    """One schedule's grid in one results directory: trains (or reads back) its points at a length."""

    config: ExperimentConfig
    spec: str
    out: Path
    bracket: Bracket
    seeds: Sequence[int]
    on_sweep: Callable[[Any], None] | None

    def train(self, lrs: Sequence[float], stop_step: int | None = None) -> dict[float, GridPoint]:
        """The points at ``lrs``, trained to the end or stopped at ``stop_step`` (runs already stored are kept):
        one sweep, batched where the task allows."""
        names = {grid_name(lr, stop_step): lr for lr in lrs}
        grid = self.config.model_copy(update={
            "schedules": dict.fromkeys(names, self.spec), "seeds": list(self.seeds), "peak_lrs": names,
            "stop_steps": dict.fromkeys(names, stop_step) if stop_step is not None else {}, "peak_lr": None})
        with plan_sweep(grid, self.out) as sweep:
            sweep.store.set_meta("bracket", {"low": self.bracket.low, "high": self.bracket.high,
                                             "source": self.bracket.source})
            if sweep.pending:
                if self.on_sweep is not None:
                    self.on_sweep(sweep)
                else:
                    run_sweep(sweep)
            return grid_points(sweep.store, lrs, stop_step)


def peak_step(config: ExperimentConfig, spec: str) -> tuple[int, int]:
    """``(total updates, the first update at the schedule's highest LR)`` for ``spec`` on ``config``'s task."""
    from lrlab.config import prepare
    from lrlab.spec import build

    alone = config.model_copy(update={"schedules": {"tuned": spec}, "peak_lrs": {}, "stop_steps": {}})
    horizon = prepare(alone).horizon
    lrs = build(spec, horizon).lr_values()
    return horizon.total_steps, lrs.index(max(lrs))


def tune_schedule(config: ExperimentConfig, spec: str, out: str | Path, bracket: Bracket | Callable[[], Bracket],
                  *, seeds: Sequence[int], per_decade: int = 4, max_widen: int = 4, refine: bool = True,
                  halving: bool = False, on_sweep: Callable[[Any], None] | None = None) -> TuneResult:
    """Tune ``spec``'s peak LR on ``config``'s task into the results directory ``out``; return the pick.

    The grid over the bracket widens while its pick sits at an edge, then (``halving``) successive halving
    stops all but the best third at each rung, then (``refine``) the two LRs halfway to the pick's neighbours
    join it; see :mod:`lrlab.tune`. With halving, widening judges the first rung's runs.

    Args:
        config: the task, epochs, batch size, optimizer and trainer (its schedules and seeds are not used).
        spec: the schedule to tune.
        out: the grid's results directory (resumed: stored runs are not retrained).
        bracket: the first grid's bounds, or a function computing them (called only when ``out`` has none).
        seeds: each LR's seeds.
        per_decade: grid LRs per factor of 10.
        max_widen: how often the grid may grow past an edge its pick sits on.
        refine: add the half-spacing LRs beside the pick.
        halving: successive halving (for long runs): see :func:`lrlab.tune.halving_rungs`.
        on_sweep: called with each planned sweep before it trains (a progress display's hook); it must train it
            (``run_sweep``) or leave it to this function when None.
    """
    out = Path(out)
    stored = _stored_bracket(out)
    if stored is None:
        stored = bracket() if callable(bracket) else bracket
    grid = _Grid(config, spec, out, stored, seeds, on_sweep)
    rungs = halving_rungs(*peak_step(config, spec)) if halving else []
    screen = rungs[0] if rungs else None
    lrs = lr_grid(stored.low, stored.high, per_decade)
    for widened in range(max_widen + 1):
        points = grid.train(lrs, screen)
        more = widen(points, per_decade) if widened < max_widen else []
        if not more:
            break
        lrs = sorted({*lrs, *more})
    pruned: list[Pruned] = []
    for rung in rungs:
        if survivor_count(len(lrs)) >= len(lrs):
            break
        points = grid.train(lrs, rung)
        keep = survivors(list(points.values()))
        pruned += [Pruned(lr, rung, points[lr].mean) for lr in lrs if lr not in keep]
        lrs = keep
    points = grid.train(lrs)
    if refine:
        more = refine_lrs(points, per_decade)
        if more:
            points = grid.train(sorted({*lrs, *more}))
    result = tune_result(list(points.values()), pruned)
    write_tune_files(out, spec, result, stored)
    return result


def _stored_bracket(out: Path) -> Bracket | None:
    if not (out / STORE_NAME).is_file():
        return None
    with Store(out, readonly=True) as store:
        data = store.meta("bracket")
    return None if data is None else Bracket(float(data["low"]), float(data["high"]), str(data["source"]))


def write_tune_files(out: Path, spec: str, result: TuneResult, bracket: Bracket) -> None:
    """``tune.json`` (top-level ``peak_lr``, ``good_region``, the per-LR ``points``) and ``lr_sensitivity.png``."""
    data = {**result.to_dict(), "schedule": spec, "bracket": [bracket.low, bracket.high],
            "bracket_source": bracket.source}
    with replacing(out / TUNE_NAME) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    plot_sensitivity({spec: result}, out / SENSITIVITY_NAME)


def tune_peaks(config: ExperimentConfig, out: str | Path, dir_name: Callable[[str], str],
               on_tune: Callable[[str, int], None] | None = None,
               on_sweep: Callable[[Any], None] | None = None) -> tuple[ExperimentConfig, dict[str, TuneResult]]:
    """``peak_lr: tune``: every schedule of ``config`` tuned into ``out/tuning/<name>``; return the config with
    each schedule at its pick (``peak_lrs``) and the tuned grids.

    The grids use seeds ``TUNE_SEED_BASE + i`` (``config.tune.seeds`` of them), held out from the comparison's
    seeds, so a schedule's verdict is not measured on the runs its LR was picked on. The bracket is
    ``config.tune``'s, else the LR range test's, run once and shared by the schedules. ``on_tune(name, i)`` is
    called before schedule ``i``'s grid.
    """
    from lrlab.config import prepare

    out = Path(out)
    settings = config.tune
    seeds = range(TUNE_SEED_BASE, TUNE_SEED_BASE + settings.seeds)
    shared: list[Bracket] = []

    def bracket() -> Bracket:
        if not shared:
            if settings.min_lr is not None and settings.max_lr is not None:
                shared.append(Bracket(settings.min_lr, settings.max_lr, "config (tune.min_lr, tune.max_lr)"))
            else:
                shared.append(range_test_bracket(prepare(config.model_copy(update={"peak_lr": None})), seeds))
        return shared[0]

    base = config.model_copy(update={"peak_lr": None, "peak_lrs": {}})
    results: dict[str, TuneResult] = {}
    for i, (name, spec) in enumerate(config.schedules.items()):
        if on_tune is not None:
            on_tune(name, i)
        results[name] = tune_schedule(base, spec, out / "tuning" / dir_name(name), bracket, seeds=seeds,
                                      per_decade=settings.per_decade, max_widen=settings.max_widen,
                                      refine=settings.refine, halving=settings.halving, on_sweep=on_sweep)
    picks = {name: result.peak_lr for name, result in results.items()}
    return config.model_copy(update={"peak_lrs": {**picks, **config.peak_lrs}}), results
