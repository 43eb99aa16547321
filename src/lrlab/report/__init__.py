"""Reports of a schedule comparison, from the results store alone: tables, claims, figures and one HTML file.

``make_report(directory)`` does it all; the pieces are importable for notebooks.
"""

from lrlab.report.build import make_report
from lrlab.report.claims import (
    CONTRADICTED,
    NOT_TESTABLE,
    SUPPORTED,
    TIE,
    VERDICTS,
    Claim,
    evaluate_claims,
)
from lrlab.report.contents import Report
from lrlab.report.data import RunSeries, ScheduleRuns, Study, epoch_matrix, load_study
from lrlab.report.drawing import FigureDrawing, make_figures
from lrlab.report.html import render_html
from lrlab.report.summary import (
    SUMMARY_COLUMNS,
    report_notes,
    summary_rows,
    summary_table,
    write_summary_csv,
)
from lrlab.stats import Comparison, Summary, cohens_d, compare, describe, epochs_to_target

__all__ = [
    "CONTRADICTED",
    "NOT_TESTABLE",
    "SUMMARY_COLUMNS",
    "SUPPORTED",
    "TIE",
    "VERDICTS",
    "Claim",
    "Comparison",
    "FigureDrawing",
    "Report",
    "RunSeries",
    "ScheduleRuns",
    "Study",
    "Summary",
    "cohens_d",
    "compare",
    "describe",
    "epoch_matrix",
    "epochs_to_target",
    "evaluate_claims",
    "load_study",
    "make_figures",
    "make_report",
    "render_html",
    "report_notes",
    "summary_rows",
    "summary_table",
    "write_summary_csv",
]
