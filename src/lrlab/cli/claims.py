"""``lrlab claims``: run the study's experiments on each task (``compare``'s path), then judge every claim."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import time
from pathlib import Path

from lrlab.cli.common import console_for, dir_name, raise_terminated
from lrlab.cli.compare import train_experiment


def cmd_claims(args: argparse.Namespace) -> int:
    """Train what ``--budget`` asks on each task (resuming what ``--out`` holds), write each task's report, then
    print and write the claim × task table (``claims.csv``, ``claims.html``)."""
    from lrlab.report import make_report
    from lrlab.study import (
        budget_named,
        claim_cells,
        load_task_studies,
        task_parts,
        verdict_table,
        write_csv,
        write_html,
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
                console.print(f"== {task_name}: {part.kind} -> {out / part.directory}", soft_wrap=True)
                code = train_experiment(part.config, out / part.directory, console, confirmed=args.yes)
                if code != 0:
                    return code
            make_report(out / dir_name(task_name))
    finally:
        signal.signal(signal.SIGTERM, previous)
    cells = claim_cells([load_task_studies(t, out / dir_name(t)) for t in tasks])
    elapsed = time.perf_counter() - start
    title = f"The study's claims on {len(tasks)} tasks ({budget.name} budget)"
    lead = [budget.describe(tasks), "Each cell: the verdict, then the effect (candidate − reference, in the row's "
            "metric; see the observations for which sign the claim predicts) with its 95% CI and p-value. "
            "How to read it: docs/claims.md.", f"This run: {elapsed:.0f} s (runs already stored are not retrained)."]
    console.print(verdict_table(cells))
    csv_path = write_csv(cells, out / "claims.csv")
    html_path = write_html(cells, out / "claims.html", title, lead)
    console.print(f"{elapsed:.0f} s; table: {csv_path}, {html_path}; each task's report: "
                  f"{out}/<task>/report.html", soft_wrap=True)
    return 0
