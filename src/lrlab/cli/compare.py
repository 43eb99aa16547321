"""The commands that train and report: ``compare`` (and its tuning), ``tune-lr``, ``report``."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lrlab.cli.common import (
    console_for,
    dir_name,
    interrupted_code,
    plural,
    raise_terminated,
)
from lrlab.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from lrlab.config import ExperimentConfig
    from lrlab.report import Report
    from lrlab.runner import Sweep

# ------------------------------------------------------------------------------------------------ compare


def cmd_compare(args: argparse.Namespace) -> int:
    """Train every schedule × seed of the experiment not yet in ``--out``, then write and print the report."""
    from lrlab.config import config_from

    overrides = {"task": args.task, "epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds,
                 "trainer": args.trainer, "peak_lr": args.peak_lr, "max_members": args.max_members,
                 "backend": args.backend, "address": args.address, "device": args.device, "precision": args.precision}
    config = config_from(args.config, overrides, args.schedules or ())
    out = Path(args.out) if args.out else Path("results") / dir_name(config.task)
    console = console_for()
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        code = train_experiment(config, out, console, fresh=args.fresh, confirmed=args.yes)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code != 0:
        return code
    if not args.no_report:
        from lrlab.report import make_report

        _print_report(make_report(out), console)
    return 0


def train_experiment(config: ExperimentConfig, out: Path, console: Console, *, fresh: bool = False,
                     confirmed: bool = False) -> int:
    """Tune (``peak_lr: tune``), plan and train ``config``'s runs not yet in ``out``, printing progress; return 0,
    or the exit code of a stop (the finished runs are stored). Raises :class:`ConfigError`."""
    from lrlab.runner import plan_sweep, set_threads_for_small_models

    def on_finder() -> None:
        set_threads_for_small_models()
        console.print("peak LR: auto, running the LR range test (once per results directory)")

    try:
        tuned = None
        if config.peak_lr == "tune":
            if fresh:
                shutil.rmtree(out / "tuning", ignore_errors=True)
            config, tuned = _tune_peaks(config, out, console)
        with plan_sweep(config, out, fresh=fresh, confirmed=confirmed, on_finder=on_finder) as sweep:
            if config.peak_lr == "auto":
                console.print(f"peak LR: {sweep.peak_lr:.3g}, the optimizer LR every schedule peaks at")
            if tuned is not None:
                sweep.store.set_meta("tuned", {name: result.to_dict() for name, result in tuned.items()})
            if not sweep.pending:
                console.print(f"all {sweep.size.runs} runs are already in {out}: nothing to train")
                return 0
            return _train(sweep, console)
    except _StopError as stop:
        return stop.code


class _StopError(Exception):
    """A tuning sweep stopped (interrupted, a worker lost): its exit code, already reported."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _train_or_stop(sweep: Sweep, console: Console, what: str = "peak LR") -> None:
    """:func:`_train`, raising :class:`_StopError` when it stops (so a tuning stops with it)."""
    if (code := _train(sweep, console, what)) != 0:
        raise _StopError(code)


def _tune_peaks(config: ExperimentConfig, out: Path, console: Console) -> tuple[ExperimentConfig, dict]:
    """``--peak-lr tune``: every schedule's grid (``out/tuning/<name>``), printing each pick."""
    from lrlab.tuner import TUNE_SEED_BASE, tune_peaks

    settings = config.tune
    console.print(f"peak LR: tune, each schedule's own: {settings.per_decade} LRs per decade × {settings.seeds} "
                  f"seeds ({TUNE_SEED_BASE}..{TUNE_SEED_BASE + settings.seeds - 1}, held out from the comparison's)"
                  f", trained to the end; grids in {out / 'tuning'}", soft_wrap=True)

    def on_tune(name: str, i: int) -> None:
        console.print(f"tuning {name} ({i + 1}/{len(config.schedules)})", soft_wrap=True)

    tuned_config, results = tune_peaks(config, out, dir_name, on_tune, lambda sweep: _train_or_stop(sweep, console))
    for name, result in results.items():
        edge = " (at the grid's edge after every widening: the optimum may lie beyond)" if result.at_edge else ""
        console.print(f"  {name}: {result.line()}{edge}", soft_wrap=True)
    return tuned_config, results


def _train(sweep: Sweep, console: Console, what: str = "schedule") -> int:
    """Train the sweep's pending runs with a progress display; return 0, or the exit code of a stop."""
    from lrlab.progress import SweepProgress
    from lrlab.runner import run_sweep, set_threads_for_small_models
    from lrlab.workers import WorkerLostError

    size, pending, out = sweep.size, len(sweep.pending), sweep.out
    shape = f"{plural(len(sweep.config.schedules), what)} × {plural(len(sweep.config.seed_list()), 'seed')}"
    console.print(f"{sweep.experiment.task.name}: {shape}, {size.describe()}; "
                  f"{size.runs - pending} already in {out}, {pending} to train", soft_wrap=True)
    set_threads_for_small_models()
    start = time.perf_counter()
    try:
        with SweepProgress(size.runs, size.steps_per_run, console=console_for(stderr=True)) as progress:
            trainer = run_sweep(sweep, progress.on_start, progress.on_step)
            progress.finish(size.runs)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated): the finished runs are stored
        print(f"interrupted: {len(sweep.store.finished_runs())} runs stored; run the same command to resume",
              file=sys.stderr)
        return interrupted_code(stop)
    except WorkerLostError as error:
        stored = len(sweep.store.finished_runs())
        print(f"lrlab: error: {error}; {stored} runs stored; run the same command to resume", file=sys.stderr)
        return 1
    console.print(f"trained {plural(pending, 'run')} in {time.perf_counter() - start:.1f} s; "
                  f"results in {out}\ntrainer: {trainer}", soft_wrap=True)
    return 0


# ------------------------------------------------------------------------------------------------- tune-lr


def cmd_tune_lr(args: argparse.Namespace) -> int:
    """Tune one schedule's peak LR on a task: a grid of real runs over the range test's bracket; print the pick."""
    from lrlab.config import config_from, prepare
    from lrlab.runner import set_threads_for_small_models
    from lrlab.spec import parse
    from lrlab.tuner import TUNE_NAME, Bracket, range_test_bracket, tune_schedule

    overrides = {"task": args.task, "epochs": args.epochs, "batch_size": args.batch_size, "trainer": args.trainer,
                 "backend": args.backend, "address": args.address, "device": args.device, "precision": args.precision}
    config = config_from(None, overrides)
    spec = str(parse(args.schedule))
    seeds = range(args.seeds)
    out = Path(args.out) if args.out else Path("results") / f"{dir_name(config.task)}-tune-lr"
    console = console_for()
    if (args.min_lr is None) != (args.max_lr is None):
        raise ConfigError("--min-lr and --max-lr go together: give both, or neither (the LR range test's bracket)")

    def bracket() -> Bracket:
        if args.min_lr is not None:
            return Bracket(args.min_lr, args.max_lr, "--min-lr, --max-lr")
        console.print("bracket: running the LR range test")
        set_threads_for_small_models()
        return range_test_bracket(prepare(config), seeds[:3])

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        result = tune_schedule(config, spec, out, bracket, seeds=seeds, per_decade=args.per_decade,
                               max_widen=args.max_widen, refine=args.refine, halving=args.halving,
                               on_sweep=lambda sweep: _train_or_stop(sweep, console))
    except _StopError as stop:
        return stop.code
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"{spec} on {config.task}, final validation loss over {plural(len(seeds), 'seed')} per peak LR:")
    for point in result.points:
        mark = " <- pick" if point.lr == result.peak_lr else (
            " (good region)" if result.good_region[0] <= point.lr <= result.good_region[1] else "")
        failed = f", {point.failed} diverged" if point.failed else ""
        console.print(f"  {point.lr:<9.3g} {point.mean:.4f} ± {point.std:.4f}{failed}{mark}")
    for stopped in result.pruned:
        console.print(f"  {stopped.lr:<9.3g} stopped at update {stopped.step} (successive halving: "
                      f"{stopped.val_loss_mean:.4f} there)")
    console.print(f"wrote {out / TUNE_NAME}, {out / 'lr_sensitivity.png'}; runs in {out / 'lrlab.sqlite'}",
                  soft_wrap=True)
    if result.at_edge:
        side = "highest" if result.peak_lr == result.points[-1].lr else "lowest"
        console.print(f"note: the best LR is the grid's {side} after {args.max_widen} widenings: the optimum may lie "
                      "beyond it; raise --max-widen, or give "
                      "--min-lr and --max-lr around it", soft_wrap=True)
    console.print(result.line())
    return 0


# ------------------------------------------------------------------------------------------------- report


_VERDICT_STYLES = {"supported": "green", "contradicted": "red", "tie (within seed noise)": "yellow"}


def _print_report(result: Report, console: Console) -> None:
    """The summary table, one line per claim, the notes and where the report is."""
    from rich.text import Text

    from lrlab.report import summary_table

    console.print(summary_table(result.rows))
    console.print("claims:")
    width = max((len(c.verdict) for c in result.claims), default=0)
    for claim in result.claims:
        style = _VERDICT_STYLES.get(claim.verdict, "dim")
        console.print(Text.assemble("  ", (claim.verdict.ljust(width), style), "  ", claim.statement), soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if result.recommendation is not None:
        console.print(f"which schedule? {result.recommendation.text}", soft_wrap=True)
    console.print(f"report: {result.html}", soft_wrap=True)


def cmd_report(args: argparse.Namespace) -> int:
    """Rewrite the report of a results directory and print its table and paths."""
    from lrlab.report import make_report

    console = console_for()
    result = make_report(args.directory)
    _print_report(result, console)
    console.print(f"summary: {result.csv}", soft_wrap=True)
    if result.figures:
        folder = Path(next(iter(result.figures.values()))).parent
        console.print(f"figures: {folder} ({', '.join(result.figures)})", soft_wrap=True)
    return 0


