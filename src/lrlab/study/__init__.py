"""``lrlab claims``: the study note's claims run on the built-in tasks and judged, claim × task.

:mod:`~lrlab.study.plan` says what runs (budgets, experiments per task); ``lrlab compare``'s path runs them;
:mod:`~lrlab.study.verdicts` judges each claim on each task from the stores; :mod:`~lrlab.study.table` writes
``claims.csv`` and ``claims.html``.
"""

from lrlab.study.plan import BUDGETS, SCHEDULES, Budget, Part, TaskPlan, budget_named, task_parts
from lrlab.study.table import verdict_table, write_csv, write_html
from lrlab.study.verdicts import NOT_OBSERVED, REFERENCE, ROWS, Cell, TaskStudies, claim_cells, load_task_studies

__all__ = [
    "BUDGETS",
    "NOT_OBSERVED",
    "REFERENCE",
    "ROWS",
    "SCHEDULES",
    "Budget",
    "Cell",
    "Part",
    "TaskPlan",
    "TaskStudies",
    "budget_named",
    "claim_cells",
    "load_task_studies",
    "task_parts",
    "verdict_table",
    "write_csv",
    "write_html",
]
