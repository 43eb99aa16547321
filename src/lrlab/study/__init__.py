"""``lrlab claims``: the study note's claims run on the built-in tasks and judged, claim × task.

:mod:`~lrlab.study.plan` says what runs (budgets, experiments per task); ``lrlab compare``'s path runs them;
:mod:`~lrlab.study.verdicts` judges each claim on each task from the stores; :mod:`~lrlab.study.table` writes
``claims.csv``, ``claims.html`` and ``claims.md``; :mod:`~lrlab.study.figures` draws its figures.
"""

from lrlab.study.figures import SCHEDULES_FIGURE, SWEEP_FIGURE, plot_lr_sweeps, plot_schedules
from lrlab.study.plan import BUDGETS, SCHEDULES, Budget, Part, TaskPlan, budget_named, sweep_part, task_parts
from lrlab.study.table import render_markdown, verdict_table, write_csv, write_html, write_markdown
from lrlab.study.verdicts import (
    NOT_MEASURED,
    NOT_OBSERVED,
    REFERENCE,
    ROWS,
    Cell,
    TaskStudies,
    claim_cells,
    load_task_studies,
)

__all__ = [
    "BUDGETS",
    "NOT_MEASURED",
    "NOT_OBSERVED",
    "REFERENCE",
    "ROWS",
    "SCHEDULES",
    "SCHEDULES_FIGURE",
    "SWEEP_FIGURE",
    "Budget",
    "Cell",
    "Part",
    "TaskPlan",
    "TaskStudies",
    "budget_named",
    "claim_cells",
    "load_task_studies",
    "plot_lr_sweeps",
    "plot_schedules",
    "render_markdown",
    "sweep_part",
    "task_parts",
    "verdict_table",
    "write_csv",
    "write_html",
    "write_markdown",
]
