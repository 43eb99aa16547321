"""``lrlab claims``: run the study's experiments on each task (``compare``'s path), then judge every claim."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lrlab.cli.common import console_for, dir_name, raise_terminated
from lrlab.cli.compare import train_experiment

if TYPE_CHECKING:
    from rich.console import Console

    from lrlab.study import Budget, Part


def cmd_claims(args: argparse.Namespace) -> int:
    """Train what ``--budget`` asks on each task (resuming what ``--out`` holds), write each task's report, then
    print and write the claim × task table (``claims.csv``, ``claims.html``, ``claims.md``) and its figures
    (``claims_schedules.png``, ``claims_lr_sweep.png``)."""
    from lrlab.report import make_report
    from lrlab.study import (
        SCHEDULES_FIGURE,
        SWEEP_FIGURE,
        budget_named,
        claim_cells,
        load_task_studies,
        plot_lr_sweeps,
        plot_schedules,
        task_parts,
        verdict_table,
        write_csv,
        write_html,
        write_markdown,
    )
    from lrlab.tasks import load_task

    budget = budget_named(args.budget)
    tasks = list(dict.fromkeys(args.tasks or budget.plans))
    out = Path(args.out) if args.out else Path("results") / f"claims-{budget.name}"
    console = console_for()
    console.print(budget.describe(tasks), soft_wrap=True)
    has_schedulefree = importlib.util.find_spec("schedulefree") is not None
    start = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        for task_name in tasks:
            task = load_task(task_name)
            for part in task_parts(budget, task_name, dir_name(task_name), task.optimizer.name, task.optimizer.lr,
                                   task.batch_size):
                if part.kind == "schedulefree" and not has_schedulefree:
                    console.print(f"{task_name}: schedule-free not run (pip install 'lrlab[schedulefree]')")
                    continue
                code = _train(part, out, console, args.yes)
                if code != 0:
                    return code
                sweep = _sweep_after(budget, part, out) if part.kind == "schedules" else None
                if sweep is not None:
                    code = _train(sweep, out, console, args.yes)
                    if code != 0:
                        return code
            make_report(out / dir_name(task_name))
    finally:
        signal.signal(signal.SIGTERM, previous)
    studies = [load_task_studies(t, out / dir_name(t)) for t in tasks]
    cells = claim_cells(studies)
    drawn = {"Each schedule at its tuned peak LR, and schedule-free": plot_schedules(studies, out / SCHEDULES_FIGURE),
             "The constant LR from 1/100× to 1000× the tuned one (claims 6a, 6b)":
                 plot_lr_sweeps(studies, out / SWEEP_FIGURE)}
    figures = {heading: path for heading, path in drawn.items() if path is not None}
    elapsed = time.perf_counter() - start
    title = f"The study's claims on {len(tasks)} tasks ({budget.name} budget)"
    lead = [budget.describe(tasks), "Each cell: the verdict, then the effect (candidate − reference, in the row's "
            "metric; see the observations for which sign the claim predicts) with its 95% CI and p-value. "
            "How to read it: docs/claims.md.", f"This run: {elapsed:.0f} s (runs already stored are not retrained)."]
    console.print(verdict_table(cells))
    csv_path = write_csv(cells, out / "claims.csv")
    html_path = write_html(cells, out / "claims.html", title, lead, figures)
    markdown_path = write_markdown(cells, out / "claims.md")
    pictures = "".join(f", {path}" for path in figures.values())
    console.print(f"{elapsed:.0f} s; table: {csv_path}, {html_path}, {markdown_path}; figures{pictures}; each "
                  f"task's report: {out}/<task>/report.html", soft_wrap=True)
    return 0


def _train(part: Part, out: Path, console: Console, confirmed: bool) -> int:
    """Train one experiment of the study into ``out / part.directory`` (resuming); return its exit code."""
    console.print(f"== {part.task}: {part.kind} -> {out / part.directory}", soft_wrap=True)
    return train_experiment(part.config, out / part.directory, console, confirmed=confirmed)


def _sweep_after(budget: Budget, schedules: Part, out: Path) -> Part | None:
    """Claims 6a/6b's LR sweep around the constant schedule's tuning grid, once ``schedules`` (the task's tuned
    schedules) is trained; None where the constant schedule was not tuned or its grid spans the sweep."""
    from lrlab.store import Store
    from lrlab.study import sweep_part
    from lrlab.tuner import TUNE_SEED_BASE

    with Store(out / schedules.directory, readonly=True) as store:  # the grids' metadata, not the runs' curves
        tuned = (store.meta("tuned") or {}).get("constant")
    if not tuned:
        return None
    seeds = range(TUNE_SEED_BASE, TUNE_SEED_BASE + budget.tune["seeds"])
    return sweep_part(budget, schedules.task, schedules.directory, float(tuned["peak_lr"]),
                      [float(p["lr"]) for p in tuned["points"]], seeds)
